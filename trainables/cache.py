"""A content-addressed cache of trained OMASGAN stages, shared by every trial of a storage root.

Key: sha256 of the canonical JSON of everything a stage's output depends on (see
:func:`stage_cache_key`): the data request (data set, protocol, held-out class, split settings),
the seed, the networks, the divergence, the stage's own parameters and those of every upstream
stage, and the code-version tag.  Two trials whose Task 1 parameters match share one Task 1 entry.

Layout under ``<root>``::

    <stage>/<key>.entry   b"OMASGAN-STAGE-CACHE/1\\n" + sha256(body) hex + b"\\n" + body (a torch.save payload)
    <stage>/<key>.lock    JSON {"owner": ..., "heartbeat": unix time}: who is training the entry now

Entries are published atomically: written under a unique temporary name in the same folder, then
moved onto ``<key>.entry``, so a reader never sees half an entry; a truncated or corrupted entry
fails its checksum and is discarded and rebuilt, never loaded.  ``root`` is a local path or any
URI ``pyarrow.fs`` understands (``s3://bucket/prefix``, ``gs://...``), so nodes sharing that
storage share the cache.

Single flight: a trial that misses takes the entry's lock (``O_EXCL`` on local storage) and trains;
a trial that finds the lock taken waits for the entry.  The owner refreshes the lock's heartbeat
while it trains; a waiter that sees no heartbeat for ``stale_after_s`` removes the dead owner's lock
and raises :class:`StageCacheOwnerDied` (a retried trial then trains the entry itself), and one that
waits longer than ``wait_timeout_s`` raises :class:`StageCacheTimeout`.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import socket
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Callable

import pyarrow.fs as pafs
import torch

from omasgan.config import STAGES, OMASGANConfig
from omasgan.errors import OMASGANError
from omasgan.provenance import CODE_VERSION
from omasgan.trainables.storage import open_filesystem, write_atomic

MAGIC = b"OMASGAN-STAGE-CACHE/1\n"
DATA_KEYS = ("dataset", "protocol", "holdout", "split_seed", "val_fraction", "val_anomaly_fraction",
             "ood_dataset", "max_train", "tabular_path", "label_column", "synthetic_n_per_class")


class StageCacheError(OMASGANError):
    """The stage cache cannot serve an entry."""


class StageCacheTimeout(StageCacheError):
    """Waited too long for another trial to publish an entry."""


class StageCacheOwnerDied(StageCacheError):
    """The trial that was training an entry stopped refreshing its lock."""


def stage_dependencies(config: OMASGANConfig, stage: str) -> dict[str, Any]:
    """Everything the output of ``stage`` depends on, as plain JSON data."""
    everything = config.to_dict()
    upstream = STAGES[: STAGES.index(stage) + 1]
    return {
        "code_version": CODE_VERSION,
        "stage": stage,
        "data": {k: everything["data"][k] for k in DATA_KEYS},
        "seed": config.seed,
        "threads": config.threads,
        "network": everything["network"],
        "divergence": everything["divergence"],
        "stages": {name: everything[name] for name in upstream},
    }


def stage_cache_key(config: OMASGANConfig, stage: str) -> str:
    """sha256 (hex) of the canonical JSON of :func:`stage_dependencies`."""
    canonical = json.dumps(stage_dependencies(config, stage), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def encode_entry(payload: dict[str, Any]) -> bytes:
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    body = buffer.getvalue()
    return MAGIC + hashlib.sha256(body).hexdigest().encode() + b"\n" + body


def decode_entry(blob: bytes) -> dict[str, Any] | None:
    """The payload of an entry, or None when its header or checksum does not match (damaged)."""
    header = len(MAGIC) + 65
    if len(blob) <= header or not blob.startswith(MAGIC):
        return None
    digest, body = blob[len(MAGIC) : header - 1], blob[header:]
    if hashlib.sha256(body).hexdigest().encode() != digest:
        return None
    return torch.load(io.BytesIO(body), map_location="cpu", weights_only=True)


@dataclass
class CacheStats:
    """What one trial's cache calls did, per stage: hit, miss (trained here), waited (another trained it)."""

    hits: dict[str, int] = field(default_factory=dict)
    misses: dict[str, int] = field(default_factory=dict)
    waits: dict[str, int] = field(default_factory=dict)
    corrupt: int = 0

    def count(self, kind: str, stage: str) -> None:
        table = getattr(self, kind)
        table[stage] = table.get(stage, 0) + 1

    def as_metrics(self) -> dict[str, int]:
        return {
            "cache_hits": sum(self.hits.values()) + sum(self.waits.values()),
            "cache_misses": sum(self.misses.values()),
            "cache_waits": sum(self.waits.values()),
            "cache_corrupt": self.corrupt,
        }


class StageCache:
    """Get-or-build of stage payloads under a storage root (see the module docstring)."""

    def __init__(
        self,
        root: str,
        *,
        wait_timeout_s: float = 6 * 3600,
        stale_after_s: float = 120.0,
        heartbeat_s: float = 5.0,
        poll_s: float = 0.5,
    ) -> None:
        self.fs, self.base = open_filesystem(root)
        self.local = isinstance(self.fs, pafs.LocalFileSystem)
        self.root = root
        self.wait_timeout_s, self.stale_after_s = wait_timeout_s, stale_after_s
        self.heartbeat_s, self.poll_s = heartbeat_s, poll_s
        self.stats = CacheStats()
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"

    # ---- paths and raw I/O ------------------------------------------------------------------
    def entry_path(self, stage: str, key: str) -> str:
        return f"{self.base}/{stage}/{key}.entry"

    def lock_path(self, stage: str, key: str) -> str:
        return f"{self.base}/{stage}/{key}.lock"

    def _exists(self, path: str) -> bool:
        return self.fs.get_file_info(path).type == pafs.FileType.File

    def _read(self, path: str) -> bytes | None:
        try:
            with self.fs.open_input_stream(path) as handle:
                return handle.read()
        except (FileNotFoundError, OSError):
            return None

    def _write_atomic(self, path: str, blob: bytes) -> None:
        write_atomic(self.fs, path, blob)

    def _delete(self, path: str) -> None:
        try:
            self.fs.delete_file(path)
        except (FileNotFoundError, OSError):
            pass

    # ---- entries ------------------------------------------------------------------------------
    def get(self, stage: str, key: str) -> dict[str, Any] | None:
        """The entry's payload, or None when it is absent; a damaged entry is deleted and None returned."""
        blob = self._read(self.entry_path(stage, key))
        if blob is None:
            return None
        payload = decode_entry(blob)
        if payload is None:
            self.stats.corrupt += 1
            self._delete(self.entry_path(stage, key))
        return payload

    def put(self, stage: str, key: str, payload: dict[str, Any]) -> None:
        self._write_atomic(self.entry_path(stage, key), encode_entry(payload))

    # ---- locks --------------------------------------------------------------------------------
    def _lock_document(self) -> bytes:
        return json.dumps({"owner": self.owner, "heartbeat": time.time()}).encode()

    def _try_lock(self, stage: str, key: str) -> bool:
        path = self.lock_path(stage, key)
        self.fs.create_dir(path.rsplit("/", 1)[0], recursive=True)
        if self.local:
            try:
                fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                return False
            with os.fdopen(fd, "wb") as handle:
                handle.write(self._lock_document())
            return True
        # object stores have no exclusive create: write, then read back to see who won (best effort)
        if self._exists(path):
            return False
        self._write_atomic(path, self._lock_document())
        time.sleep(self.poll_s)
        document = self._read_lock(stage, key)
        return document is not None and document.get("owner") == self.owner

    def _read_lock(self, stage: str, key: str) -> dict[str, Any] | None:
        blob = self._read(self.lock_path(stage, key))
        if not blob:
            return None
        try:
            return json.loads(blob)
        except ValueError:
            return None

    def _heartbeat(self, stage: str, key: str, stop: threading.Event) -> None:
        while not stop.wait(self.heartbeat_s):
            try:
                self._write_atomic(self.lock_path(stage, key), self._lock_document())
            except OSError:
                pass

    # ---- the one call trials make -------------------------------------------------------------
    def get_or_build(
        self, stage: str, key: str, build: Callable[[], dict[str, Any]]
    ) -> tuple[dict[str, Any], str]:
        """The entry's payload and how it was had: "hit", "waited" (another trial built it) or
        "miss" (built here by ``build()`` and published)."""
        started = time.monotonic()
        waited = False
        while True:
            payload = self.get(stage, key)
            if payload is not None:
                kind = "waits" if waited else "hits"
                self.stats.count(kind, stage)
                return payload, "waited" if waited else "hit"
            if self._try_lock(stage, key):
                return self._build_locked(stage, key, build), "miss"
            waited = True
            document = self._read_lock(stage, key)
            if document is not None and time.time() - float(document.get("heartbeat", 0)) > self.stale_after_s:
                self._delete(self.lock_path(stage, key))
                raise StageCacheOwnerDied(
                    f"the trial training cache entry {stage}/{key[:12]} ({document.get('owner')}) stopped "
                    f"refreshing its lock {time.time() - float(document['heartbeat']):.0f} s ago; its lock was "
                    "removed, so a retry of this trial trains the entry itself"
                )
            if time.monotonic() - started > self.wait_timeout_s:
                raise StageCacheTimeout(
                    f"waited {self.wait_timeout_s:.0f} s for cache entry {stage}/{key[:12]} that "
                    f"{(document or {}).get('owner', 'another trial')} is training"
                )
            time.sleep(self.poll_s)

    def _build_locked(self, stage: str, key: str, build: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        stop = threading.Event()
        beat = threading.Thread(target=self._heartbeat, args=(stage, key, stop), daemon=True)
        beat.start()
        try:
            payload = self.get(stage, key)  # published while we took the lock?
            if payload is not None:
                self.stats.count("hits", stage)
                return payload
            payload = build()
            self.put(stage, key, payload)
            self.stats.count("misses", stage)
            return payload
        finally:
            stop.set()
            beat.join()
            self._delete(self.lock_path(stage, key))

"""A content-addressed cache of trained OMASGAN stages, shared by every trial of a storage root.

Key: sha256 of the canonical JSON of everything a stage's output depends on (see
:func:`stage_cache_key`): the data request (data set, protocol, held-out class, split settings),
the seed, the networks, the divergence, the stage's own parameters and those of every upstream
stage, the digest of the code that trains the stage and of every upstream stage's code
(:func:`omasgan.provenance.stage_code_digests`), and the runtime (torch and numpy versions, device
type: :func:`omasgan.provenance.stage_runtime`).  Two trials whose Task 1 parameters match share one
Task 1 entry; an entry written by other code or another torch is never hit (``omasgan cache prune
--older-than`` removes such entries).

Layout under ``<root>``::

    <stage>/<key>.entry   b"OMASGAN-STAGE-CACHE/1\\n" + sha256(body) hex + b"\\n" + body (a torch.save payload)
    <stage>/<key>.lock    JSON {"owner", "host", "pid", "beat", "since"}: who is training the entry now

Entries are published atomically (see :func:`omasgan.trainables.storage.filesystems.write_atomic`), so a reader
never sees half an entry; a truncated or corrupted entry fails its checksum and is discarded and
rebuilt, never loaded.  ``root`` is a local path or any URI ``pyarrow.fs`` understands
(``s3://bucket/prefix``, ``gs://...``), so nodes sharing that storage share the cache.

Single flight: a trial that misses takes the entry's lock and trains; a trial that finds the lock
taken waits for the entry.  The lock is a :class:`~omasgan.trainables.storage.leases.Lease`: created
with the storage's own precondition (a hard link locally, ``If-None-Match: *`` on S3, generation 0 on
GCS), refreshed by its owner every ``heartbeat_s`` with a write conditional on the owner's last
version, and deleted at the end only if it is still the owner's.  A waiter judges the owner dead when
the lock has not changed for ``stale_after_s`` seconds of the waiter's own monotonic clock (no
clocks of different machines are compared); it then takes the lock over, with a write conditional
on the stale version (one waiter wins), and trains the entry itself.  A waiter that waits longer
than ``wait_timeout_s`` raises :class:`StageCacheTimeout`.

The key of a ``tabular`` data set holds the sha256 of the file's content, not its path: the same
table under two paths shares entries, and a file changed in place gets new ones.

:func:`list_entries` and :func:`prune_entries` are what ``omasgan cache ls|prune`` show and remove.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import time
import warnings
from dataclasses import dataclass, field, fields
from datetime import datetime, timezone
from typing import Any, Callable

import pyarrow.fs as pafs
import torch

from omasgan.config import STAGES, DataConfig, OMASGANConfig
from omasgan.errors import OMASGANError
from omasgan.provenance import stage_code_digests, stage_runtime
from omasgan.trainables.storage.conditional import conditional_store
from omasgan.trainables.storage.filesystems import open_filesystem, write_atomic
from omasgan.trainables.storage.leases import Lease, StaleWatch, read_lease

MAGIC = b"OMASGAN-STAGE-CACHE/1\n"
NOT_IN_KEY = ("data_root", "download")
"""DataConfig fields that say where the data lives or how to fetch it, not what it is."""
DATA_KEYS = tuple(f.name for f in fields(DataConfig) if f.name not in NOT_IN_KEY)
"""The DataConfig fields a stage's cache key holds: every field but NOT_IN_KEY (derived, so that a
new data field enters the key unless it is listed there)."""


class StageCacheError(OMASGANError):
    """The stage cache cannot serve an entry."""


class StageCacheTimeout(StageCacheError):
    """Waited too long for another trial to publish an entry."""


_FILE_DIGESTS: dict[tuple[str, int, int], str] = {}


def file_digest(path: str) -> str:
    """sha256 (hex) of a file's content, computed once per (path, size, modification time)."""
    real = os.path.realpath(path)
    info = os.stat(real)
    memo = (real, info.st_size, info.st_mtime_ns)
    if memo not in _FILE_DIGESTS:
        digest = hashlib.sha256()
        with open(real, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
        _FILE_DIGESTS[memo] = digest.hexdigest()
    return _FILE_DIGESTS[memo]


def stage_dependencies(config: OMASGANConfig, stage: str, *, device: str | torch.device = "cpu",
                       code: dict[str, str] | None = None) -> dict[str, Any]:
    """Everything the output of ``stage`` trained on ``device`` depends on, as plain JSON data.  A
    tabular data set enters by the sha256 of its file's content (``tabular_sha256``), not by its path.
    ``code``: the per-stage code digests to use (default: this process's,
    :func:`~omasgan.provenance.stage_code_digests`); the key holds the digests of ``stage`` and of every
    stage upstream of it, so a change to Task 1's code changes every stage's key and a change to
    Task 3's changes only Task 3's and J's."""
    everything = config.to_dict()
    upstream = STAGES[: STAGES.index(stage) + 1]
    digests = stage_code_digests() if code is None else code
    data = {k: everything["data"][k] for k in DATA_KEYS}
    if data["tabular_path"]:
        data["tabular_sha256"] = file_digest(data.pop("tabular_path"))
    return {
        "code": {name: digests[name] for name in upstream},
        "runtime": stage_runtime(device),
        "stage": stage,
        "data": data,
        "seed": config.seed,
        "threads": config.threads,
        "network": everything["network"],
        "divergence": everything["divergence"],
        "stages": {name: everything[name] for name in upstream},
    }


def stage_cache_key(config: OMASGANConfig, stage: str, *, device: str | torch.device = "cpu",
                    code: dict[str, str] | None = None) -> str:
    """sha256 (hex) of the canonical JSON of :func:`stage_dependencies`."""
    canonical = json.dumps(stage_dependencies(config, stage, device=device, code=code), sort_keys=True,
                           separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def encode_entry(payload: dict[str, Any]) -> bytes:
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    body = buffer.getvalue()
    return MAGIC + hashlib.sha256(body).hexdigest().encode() + b"\n" + body


def decode_entry(blob: bytes) -> dict[str, Any] | None:
    """The payload of an entry, or None when its header or checksum does not match (damaged)."""
    if not entry_is_sound(blob):
        return None
    return torch.load(io.BytesIO(blob[len(MAGIC) + 65:]), map_location="cpu", weights_only=True)


def entry_is_sound(blob: bytes) -> bool:
    """Whether an entry's header and checksum match its body."""
    header = len(MAGIC) + 65
    if len(blob) <= header or not blob.startswith(MAGIC):
        return False
    return hashlib.sha256(blob[header:]).hexdigest().encode() == blob[len(MAGIC): header - 1]


@dataclass
class CacheStats:
    """What one trial's cache calls did, per stage: hit, miss (trained here), waited (another trained
    it); ``taken_over``: locks of dead owners this trial took over (and then trained)."""

    hits: dict[str, int] = field(default_factory=dict)
    misses: dict[str, int] = field(default_factory=dict)
    waits: dict[str, int] = field(default_factory=dict)
    corrupt: int = 0
    taken_over: int = 0

    def count(self, kind: str, stage: str) -> None:
        table = getattr(self, kind)
        table[stage] = table.get(stage, 0) + 1

    def as_metrics(self) -> dict[str, int]:
        return {
            "cache_hits": sum(self.hits.values()) + sum(self.waits.values()),
            "cache_misses": sum(self.misses.values()),
            "cache_waits": sum(self.waits.values()),
            "cache_corrupt": self.corrupt,
            "cache_taken_over": self.taken_over,
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
        self.locks, _ = conditional_store(root)
        self.root = root
        self.wait_timeout_s, self.stale_after_s = wait_timeout_s, stale_after_s
        self.heartbeat_s, self.poll_s = heartbeat_s, poll_s
        self.stats = CacheStats()

    # ---- paths and raw I/O ------------------------------------------------------------------
    def entry_path(self, stage: str, key: str) -> str:
        return f"{self.base}/{stage}/{key}.entry"

    def lock_path(self, stage: str, key: str) -> str:
        return f"{self.base}/{stage}/{key}.lock"

    def _read(self, path: str) -> bytes | None:
        try:
            with self.fs.open_input_stream(path) as handle:
                return handle.read()
        except (FileNotFoundError, OSError):
            return None

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
        write_atomic(self.fs, self.entry_path(stage, key), encode_entry(payload))

    # ---- the one call trials make -------------------------------------------------------------
    def get_or_build(
        self, stage: str, key: str, build: Callable[[], dict[str, Any]]
    ) -> tuple[dict[str, Any], str]:
        """The entry's payload and how it was had: "hit", "waited" (another trial built it) or
        "miss" (built here by ``build()`` and published; also after taking over a dead owner's lock).

        ``build`` runs at most once per call, and only while this call holds the entry's lock."""
        started = time.monotonic()
        waited = False
        watch = StaleWatch(self.stale_after_s)
        path = self.lock_path(stage, key)
        while True:
            payload = self.get(stage, key)
            if payload is not None:
                kind = "waits" if waited else "hits"
                self.stats.count(kind, stage)
                return payload, "waited" if waited else "hit"
            lease = Lease(self.locks, path, heartbeat_s=self.heartbeat_s, info={"entry": f"{stage}/{key}"})
            if lease.acquire():
                return self._build_locked(stage, key, build, lease), "miss"
            current = read_lease(self.locks, path)
            if current is None:
                continue  # released between the two calls: look for the entry again
            waited = True
            document, version = current
            silent = watch.unchanged_for(version)
            if silent > self.stale_after_s and lease.take_over(version):
                self.stats.taken_over += 1
                warnings.warn(f"cache entry {stage}/{key[:12]}: its owner {document.get('owner', '?')} stopped "
                              f"refreshing its lock ({silent:.0f} s without a change); this trial took the lock over "
                              "and trains the entry itself", stacklevel=2)
                return self._build_locked(stage, key, build, lease), "miss"
            if time.monotonic() - started > self.wait_timeout_s:
                raise StageCacheTimeout(
                    f"waited {self.wait_timeout_s:.0f} s for cache entry {stage}/{key[:12]} that "
                    f"{document.get('owner', 'another trial')} is training"
                )
            time.sleep(self.poll_s)

    def _build_locked(self, stage: str, key: str, build: Callable[[], dict[str, Any]], lease: Lease) -> dict[str, Any]:
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
            lease.release()


# ---------------------------------------------------------------- omasgan cache ls | prune


@dataclass
class CacheItem:
    """One entry (or an entry's lock without the entry) under a cache root."""

    stage: str
    key: str
    path: str
    size: int | None
    modified: datetime | None
    lock_owner: str | None = None

    def age_s(self, now: datetime | None = None) -> float:
        if self.modified is None:
            return 0.0
        return ((now or datetime.now(timezone.utc)) - self.modified).total_seconds()


def cache_root_of(root: str) -> str:
    """The cache root for ``root``: ``root/cache`` when that is a folder (``root`` is a study's
    folder or URI), else ``root`` itself."""
    fs, base = open_filesystem(root)
    if fs.get_file_info(f"{base}/cache").type == pafs.FileType.Directory:
        return f"{root.rstrip('/')}/cache"
    return root


def list_entries(root: str) -> list[CacheItem]:
    """Every entry under a cache root, stage by stage, with the lock owner of an entry being built
    (a lock with no entry yet is listed too, with size None)."""
    fs, base = open_filesystem(root)
    if fs.get_file_info(base).type != pafs.FileType.Directory:
        return []
    infos = fs.get_file_info(pafs.FileSelector(base, recursive=True))
    entries: dict[tuple[str, str], CacheItem] = {}
    locks: dict[tuple[str, str], str] = {}
    store, _ = conditional_store(root)
    for info in infos:
        relative = info.path[len(base):].lstrip("/")
        stage, _, name = relative.partition("/")
        if info.type != pafs.FileType.File or stage not in STAGES or "/" in name or name.startswith("."):
            continue
        if name.endswith(".entry"):
            modified = info.mtime if info.mtime is None or info.mtime.tzinfo else info.mtime.replace(tzinfo=timezone.utc)
            entries[(stage, name[:-6])] = CacheItem(stage, name[:-6], info.path, info.size, modified)
        elif name.endswith(".lock"):
            lease = read_lease(store, info.path)
            locks[(stage, name[:-5])] = (lease[0].get("owner", "?") if lease else "?")
    for (stage, key), owner in locks.items():
        item = entries.setdefault((stage, key), CacheItem(stage, key, f"{base}/{stage}/{key}.lock", None, None))
        item.lock_owner = owner
    return sorted(entries.values(), key=lambda i: (STAGES.index(i.stage), i.key))


def prune_entries(root: str, *, stages: list[str] | None = None, older_than_s: float | None = None,
                  damaged: bool = False, everything: bool = False, dry_run: bool = False) -> list[CacheItem]:
    """Delete the entries under a cache root that match every given selector (a stage among
    ``stages``; last written more than ``older_than_s`` ago; ``damaged``: failing their checksum);
    ``everything`` selects all.  Entries being built (their lock exists) are never deleted, nor are
    locks.  Returns what was deleted (or, with ``dry_run``, what would be)."""
    if not (stages or older_than_s is not None or damaged or everything):
        raise ValueError("prune needs a selector: stages, older_than_s, damaged or everything")
    fs, _ = open_filesystem(root)
    chosen = []
    now = datetime.now(timezone.utc)
    for item in list_entries(root):
        if item.size is None or item.lock_owner is not None:
            continue
        if stages and item.stage not in stages:
            continue
        if older_than_s is not None and item.age_s(now) <= older_than_s:
            continue
        if damaged:
            with fs.open_input_stream(item.path) as handle:
                if entry_is_sound(handle.read()):
                    continue
        chosen.append(item)
    if not dry_run:
        for item in chosen:
            try:
                fs.delete_file(item.path)
            except FileNotFoundError:
                pass
    return chosen

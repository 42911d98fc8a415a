"""Compare-and-swap on single small files of a study's storage, and the heartbeated leases built on it.

Stage-cache locks (:mod:`.cache`) and a study's driver lease (``omasgan.distributed.studies.control``)
must be exclusive across machines that share nothing but the storage.  A :class:`ConditionalStore`
gives four operations on one file, each a single request that the storage itself checks:

- ``create(path, data)``: write only if the file does not exist;
- ``read(path)``: the content and its *version* (S3's ETag, GCS's generation, a local content hash);
- ``replace(path, data, version)``: write only if the file still has that version;
- ``delete(path, version)``: delete only if the file still has that version.

Backends (:func:`conditional_store` picks one from the root):

- local paths (and ``file://``): ``os.link`` of a finished temporary file (fails if the target
  exists), and replace/delete under an ``fcntl.flock`` on the folder's hidden ``.guard`` file;
- ``s3://``: boto3 ``PutObject`` with ``If-None-Match: *`` / ``If-Match: <etag>`` and
  ``DeleteObject`` with ``If-Match`` (where a service refuses a conditional delete, the delete is
  preceded by a read that checks the version: a short window, reported once);
- ``gs://``: google-cloud-storage with ``if_generation_match`` (0 for create);
- any other ``pyarrow.fs`` URI: :class:`BestEffortStore`, a write followed by a read-back, which is
  not exclusive; it says so once when first used.

A :class:`Lease` is a lock file ``{"owner", "host", "pid", "beat", "since"}`` whose owner rewrites it
(``beat`` + 1, conditional on its own last version) every ``heartbeat_s``.  Whether somebody else's
lease is stale is judged by :class:`StaleWatch` on the *waiter's* monotonic clock: the lease is
stale when its version has not changed for ``stale_after_s`` seconds of the waiter's own time, so
clocks of different machines are never compared.  A stale lease is taken over with ``replace``
conditional on the stale version, so of several waiters exactly one wins; an owner whose heartbeat
finds its lease replaced knows it lost it, and a release deletes the lease only if it is still the
owner's version.

A lease may also be *fenced* (``fence_s``, shorter than the stale window the waiters use): it is
held only while its last successful write (acquire, take-over or renewal) was sent less than
``fence_s`` ago, on :func:`suspend_aware_clock`.  Renewals that fail (expired credentials,
throttling, no network) are retried every beat; once the fence passes, ``lost`` is set for good.  So
an owner that cannot renew, or that was paused (SIGSTOP, a laptop asleep) past its fence, stops
writing (its callers check :meth:`Lease.held` before each write) before any waiter can judge the
lease stale, which takes ``stale_after_s`` > ``fence_s`` of the waiter's own time after it first saw
that last version.
"""

from __future__ import annotations

import abc
import fcntl
import hashlib
import json
import os
import socket
import threading
import time
import uuid
import warnings
from dataclasses import dataclass
from typing import Any, Callable
from urllib.parse import parse_qs, urlparse

import pyarrow.fs as pafs

from omasgan.atomic_write import hidden_temporary, write_file_atomic, write_synced
from omasgan.errors import OMASGANError

from .storage import ensure_folder, open_filesystem


@dataclass(frozen=True)
class Versioned:
    """A file's content and the version the storage gave it."""

    data: bytes
    version: str


class ConditionalStore(abc.ABC):
    """Create, read, replace and delete single files with preconditions (see the module docstring).

    Paths are those of :func:`omasgan.trainables.storage.open_filesystem` for the same root: absolute
    local paths, or ``bucket/key`` for object stores."""

    exclusive = True
    """True when ``create``/``replace``/``delete`` are checked by the storage in one request."""

    @abc.abstractmethod
    def read(self, path: str) -> Versioned | None:
        """The file's content and version, or None when it does not exist."""

    @abc.abstractmethod
    def create(self, path: str, data: bytes) -> str | None:
        """Write ``data`` only if ``path`` does not exist; the new version, or None if it existed."""

    @abc.abstractmethod
    def replace(self, path: str, data: bytes, version: str) -> str | None:
        """Write ``data`` only if ``path`` still has ``version``; the new version, or None if the file
        changed or is gone."""

    @abc.abstractmethod
    def delete(self, path: str, version: str) -> bool:
        """Delete ``path`` only if it still has ``version``; whether it was deleted."""


# ---------------------------------------------------------------- local files


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class LocalConditionalStore(ConditionalStore):
    """Local (or NFS) files: exclusive create by hard link, replace/delete under a per-file flock."""

    def read(self, path: str) -> Versioned | None:
        try:
            with open(path, "rb") as handle:
                data = handle.read()
        except (FileNotFoundError, NotADirectoryError):
            return None
        return Versioned(data, _digest(data))

    def _temporary(self, path: str, data: bytes) -> str:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        temporary = hidden_temporary(path)
        write_synced(temporary, lambda handle: handle.write(data))
        return temporary

    def create(self, path: str, data: bytes) -> str | None:
        temporary = self._temporary(path, data)
        try:
            os.link(temporary, path)  # atomic, and fails when the target exists (also on NFS)
        except FileExistsError:
            return None
        finally:
            os.unlink(temporary)
        return _digest(data)

    def _guard(self, path: str):
        """An exclusive flock on the folder's one hidden guard file (kept: deleting a file others may
        be waiting to lock would let two writers in)."""
        folder = os.path.dirname(path)
        os.makedirs(folder, exist_ok=True)
        handle = open(os.path.join(folder, ".guard"), "a+b")
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        return handle

    def replace(self, path: str, data: bytes, version: str) -> str | None:
        with self._guard(path):
            current = self.read(path)
            if current is None or current.version != version:
                return None
            write_file_atomic(path, lambda handle: handle.write(data))
        return _digest(data)

    def delete(self, path: str, version: str) -> bool:
        with self._guard(path):
            current = self.read(path)
            if current is None or current.version != version:
                return False
            os.unlink(path)
        return True


# ---------------------------------------------------------------- S3 (boto3)


def _split(path: str) -> tuple[str, str]:
    bucket, _, key = path.partition("/")
    return bucket, key


def s3_client_for(root: str):
    """A boto3 S3 client for an ``s3://`` root: the endpoint from the URI's ``endpoint_override``
    (and ``scheme``) query parameters, else boto3's own (``AWS_ENDPOINT_URL``, the config file).

    The client comes from a new boto3 session, which resolves the credentials now (environment,
    credentials file, instance profile), as pyarrow does for the same root: boto3's default session
    keeps the credentials it first found for the life of the process."""
    try:
        import boto3
    except ImportError:
        raise ImportError(f"storage {root!r} needs boto3 for its conditional writes (cache locks, the driver "
                          "lease); install it with: pip install boto3") from None
    query = parse_qs(urlparse(root).query)
    kwargs: dict[str, Any] = {}
    if "endpoint_override" in query:
        endpoint = query["endpoint_override"][0]
        scheme = query.get("scheme", ["https"])[0]
        kwargs["endpoint_url"] = endpoint if "://" in endpoint else f"{scheme}://{endpoint}"
    if "region" in query:
        kwargs["region_name"] = query["region"][0]
    return boto3.session.Session().client("s3", **kwargs)


class S3ConditionalStore(ConditionalStore):
    """S3 conditional writes (``If-None-Match: *``, ``If-Match: <etag>``) through boto3."""

    LOST = ("PreconditionFailed", "ConditionalRequestConflict", "NoSuchKey", "404", "412", "409")

    def __init__(self, root: str) -> None:
        self.client = s3_client_for(root)
        self.unconditional_delete = False

    def _code(self, exc: Exception) -> str:
        return str(getattr(exc, "response", {}).get("Error", {}).get("Code", ""))

    def read(self, path: str) -> Versioned | None:
        bucket, key = _split(path)
        try:
            response = self.client.get_object(Bucket=bucket, Key=key)
        except self.client.exceptions.NoSuchKey:
            return None
        except Exception as exc:  # noqa: BLE001 - botocore raises ClientError subclasses by code
            if self._code(exc) in ("NoSuchKey", "404"):
                return None
            raise
        return Versioned(response["Body"].read(), response["ETag"])

    def create(self, path: str, data: bytes) -> str | None:
        bucket, key = _split(path)
        try:
            return self.client.put_object(Bucket=bucket, Key=key, Body=data, IfNoneMatch="*")["ETag"]
        except Exception as exc:  # noqa: BLE001
            if self._code(exc) in self.LOST:
                return None
            raise

    def replace(self, path: str, data: bytes, version: str) -> str | None:
        bucket, key = _split(path)
        try:
            return self.client.put_object(Bucket=bucket, Key=key, Body=data, IfMatch=version)["ETag"]
        except Exception as exc:  # noqa: BLE001
            if self._code(exc) in self.LOST:
                return None
            raise

    def delete(self, path: str, version: str) -> bool:
        bucket, key = _split(path)
        if not self.unconditional_delete:
            try:
                self.client.delete_object(Bucket=bucket, Key=key, IfMatch=version)
                return True
            except Exception as exc:  # noqa: BLE001
                code = self._code(exc)
                if code in self.LOST:
                    return False
                if code not in ("NotImplemented", "InvalidArgument", "InvalidRequest", "501", "400"):
                    raise
                self.unconditional_delete = True
                warnings.warn(f"this S3 service refuses conditional deletes ({code}); a lock is deleted after a "
                              "read that checks its owner instead (a short window)", stacklevel=2)
        current = self.read(path)
        if current is None or current.version != version:
            return False
        self.client.delete_object(Bucket=bucket, Key=key)
        return True


# ---------------------------------------------------------------- Google Cloud Storage


class GCSConditionalStore(ConditionalStore):
    """GCS generation preconditions (``if_generation_match``; 0 means "does not exist")."""

    def __init__(self, root: str, client: Any = None) -> None:
        if client is None:
            try:
                from google.cloud import storage
            except ImportError:
                raise ImportError(f"storage {root!r} needs google-cloud-storage for its conditional writes; "
                                  "install it with: pip install google-cloud-storage") from None
            client = storage.Client()
        self.client = client
        from google.api_core import exceptions

        self.lost = (exceptions.PreconditionFailed, exceptions.NotFound)

    def _blob(self, path: str):
        bucket, key = _split(path)
        return self.client.bucket(bucket).blob(key)

    def read(self, path: str) -> Versioned | None:
        bucket, key = _split(path)
        blob = self.client.bucket(bucket).get_blob(key)
        if blob is None:
            return None
        try:
            data = blob.download_as_bytes(if_generation_match=blob.generation)
        except self.lost:
            return self.read(path)  # replaced between the two requests: read the new one
        return Versioned(data, str(blob.generation))

    def _upload(self, path: str, data: bytes, generation: int) -> str | None:
        blob = self._blob(path)
        try:
            blob.upload_from_string(data, if_generation_match=generation)
        except self.lost:
            return None
        return str(blob.generation)

    def create(self, path: str, data: bytes) -> str | None:
        return self._upload(path, data, 0)

    def replace(self, path: str, data: bytes, version: str) -> str | None:
        return self._upload(path, data, int(version))

    def delete(self, path: str, version: str) -> bool:
        try:
            self._blob(path).delete(if_generation_match=int(version))
        except self.lost:
            return False
        return True


# ---------------------------------------------------------------- anything else pyarrow reaches


class BestEffortStore(ConditionalStore):
    """For storages without preconditions: check, write, read back.  Two writers can both believe
    they won; :func:`conditional_store` warns once when it hands one out."""

    exclusive = False

    def __init__(self, fs: pafs.FileSystem, settle_s: float = 0.5) -> None:
        self.fs, self.settle_s = fs, settle_s

    def read(self, path: str) -> Versioned | None:
        try:
            with self.fs.open_input_stream(path) as handle:
                data = handle.read()
        except (FileNotFoundError, OSError):
            return None
        return Versioned(data, _digest(data))

    def _write(self, path: str, data: bytes) -> str | None:
        ensure_folder(self.fs, path.rpartition("/")[0])
        with self.fs.open_output_stream(path) as handle:
            handle.write(data)
        time.sleep(self.settle_s)
        current = self.read(path)
        return current.version if current is not None and current.data == data else None

    def create(self, path: str, data: bytes) -> str | None:
        return None if self.read(path) is not None else self._write(path, data)

    def replace(self, path: str, data: bytes, version: str) -> str | None:
        current = self.read(path)
        return self._write(path, data) if current is not None and current.version == version else None

    def delete(self, path: str, version: str) -> bool:
        current = self.read(path)
        if current is None or current.version != version:
            return False
        self.fs.delete_file(path)
        return True


_WARNED: set[str] = set()


def conditional_store(root: str) -> tuple[ConditionalStore, str]:
    """``(store, base path)`` for a storage root, the base as :func:`open_filesystem` gives it."""
    fs, base = open_filesystem(root)
    scheme = urlparse(root).scheme if "://" in root else ""
    if isinstance(fs, pafs.LocalFileSystem):
        return LocalConditionalStore(), base
    if scheme == "s3":
        return S3ConditionalStore(root), base
    if scheme in ("gs", "gcs"):
        return GCSConditionalStore(root), base
    if scheme not in _WARNED:
        _WARNED.add(scheme)
        warnings.warn(f"storage {scheme}:// offers no conditional writes here; cache locks and the driver lease "
                      "on it are best effort (two machines may both build one entry)", stacklevel=2)
    return BestEffortStore(fs), base


# ---------------------------------------------------------------- leases


def _process_owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def suspend_aware_clock() -> float:
    """Seconds on a clock that keeps counting while the machine is suspended, for a lease's fence.

    Linux: ``CLOCK_BOOTTIME`` (``CLOCK_MONOTONIC`` stops while the machine sleeps).  macOS:
    ``clock_gettime(CLOCK_MONOTONIC)``, which counts sleep there (``time.monotonic`` does not).
    Elsewhere ``time.monotonic``, which may not count a suspended machine's sleep.  Every one of them
    counts the time a process is stopped (SIGSTOP) or starved, which is what a fence must see."""
    return _SUSPEND_AWARE()


def _pick_suspend_aware_clock() -> Callable[[], float]:
    import sys

    for name, platforms in (("CLOCK_BOOTTIME", ("linux",)), ("CLOCK_MONOTONIC", ("darwin",))):
        clock_id = getattr(time, name, None)
        if clock_id is not None and sys.platform.startswith(platforms):
            try:
                time.clock_gettime(clock_id)
            except OSError:  # an old kernel without it
                continue
            return lambda: time.clock_gettime(clock_id)
    return time.monotonic


_SUSPEND_AWARE = _pick_suspend_aware_clock()


class LeaseLost(OMASGANError, RuntimeError):
    """A write was refused because the lease that guards it is no longer held (taken over, or not
    renewed within its fence).  What the lease guarded can be continued by whoever takes it over
    (exit status 1, as a halted study)."""

    exit_status = 1


class StaleWatch:
    """Whether another party's lease has stopped changing, on this process's monotonic clock.

    The waiter's clock may under-count (``time.monotonic`` stops while the waiter's own machine
    sleeps), which only makes it wait longer: the owner's fence is counted on a clock that does not
    stop (:func:`suspend_aware_clock`)."""

    def __init__(self, stale_after_s: float) -> None:
        self.stale_after_s = stale_after_s
        self.version: str | None = None
        self.since = 0.0

    def unchanged_for(self, version: str) -> float:
        """Seconds (of this process's clock) for which the lease has had ``version``."""
        now = time.monotonic()
        if version != self.version:
            self.version, self.since = version, now
        return now - self.since

    def is_stale(self, version: str) -> bool:
        return self.unchanged_for(version) > self.stale_after_s


class Lease:
    """An exclusive, heartbeated claim on one file of a :class:`ConditionalStore`.

    Guarantees: at most one live holder when the store is ``exclusive`` (every write of the lock file
    is conditional); ``release`` never deletes a lock that another party holds now; after
    ``lost`` is set, this object no longer writes the file.

    With ``fence_s`` (see the module docstring), :meth:`held` is true only while the last successful
    write of the lock was sent less than ``fence_s`` ago on ``clock``; when the fence passes, ``lost``
    is set and stays set even if a later renewal could succeed.  Without it (stage-cache locks), a
    lease is held until it is released or found taken over, and failed renewals are retried for ever."""

    def __init__(self, store: ConditionalStore, path: str, *, heartbeat_s: float = 5.0,
                 owner: str | None = None, info: dict[str, Any] | None = None, fence_s: float | None = None,
                 clock: Callable[[], float] = suspend_aware_clock) -> None:
        if fence_s is not None and not heartbeat_s < fence_s:
            raise ValueError(f"a lease's heartbeat ({heartbeat_s:g} s) must be shorter than its fence ({fence_s:g} s)")
        self.store, self.path, self.heartbeat_s = store, path, heartbeat_s
        self.fence_s, self.clock = fence_s, clock
        self.owner = owner or _process_owner()
        self.info = dict(info or {})
        self.version: str | None = None
        self.beat = 0
        self.renewed_at: float | None = None
        """``clock`` reading taken just before the last successful write of the lock was sent."""
        self.failures = 0
        """Renewals that failed (raised) since the last one that succeeded."""
        self.last_error = ""
        """The last failed renewal's exception, in words."""
        self.lost = threading.Event()
        self.lost_reason = ""
        self.lost_at: float | None = None
        """``clock`` reading when ``lost`` was set."""
        self._released = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def document(self) -> bytes:
        return json.dumps({"owner": self.owner, "host": socket.gethostname(), "pid": os.getpid(),
                           "beat": self.beat, "since": time.time(), **self.info}).encode()

    def _write(self, write: Callable[[], str | None]) -> str | None:
        """Run one conditional write of the lock; on success, record the version and when it was sent."""
        sent = self.clock()
        version = write()
        if version is not None:
            self.version, self.renewed_at = version, sent
        return version

    def acquire(self) -> bool:
        """Create the lock file; whether this lease holds it now."""
        if self._write(lambda: self.store.create(self.path, self.document())) is not None:
            self._start()
            return True
        return False

    def take_over(self, stale_version: str) -> bool:
        """Replace a lock judged stale (still at ``stale_version``); whether this lease holds it now."""
        if self._write(lambda: self.store.replace(self.path, self.document(), stale_version)) is not None:
            self._start()
            return True
        self.version = None
        return False

    @property
    def released(self) -> bool:
        """Whether :meth:`release` was called."""
        return self._released

    def mark_lost(self, reason: str) -> None:
        """Give the lease up for good (no more writes of the lock); ``reason`` says why, in words."""
        if not self.lost.is_set():
            self.lost_reason, self.lost_at = reason, self.clock()
            self.lost.set()

    def held(self) -> bool:
        """Whether writes guarded by this lease may go on now: acquired, not released, not lost, and
        (with a fence) last renewed less than ``fence_s`` ago.  Sets ``lost`` once the fence has passed."""
        if self.version is None or self._released or self.lost.is_set():
            return False
        if self.fence_s is not None:
            silent = self.clock() - self.renewed_at
            if silent >= self.fence_s:
                failed = f"; {self.failures} renewal(s) failed, the last with {self.last_error}" if self.failures else ""
                self.mark_lost(f"no successful renewal for {silent:.1f} s, past its {self.fence_s:g} s fence{failed}")
                return False
        return True

    def check(self) -> None:
        """Raise :class:`LeaseLost` unless :meth:`held`."""
        if not self.held():
            raise LeaseLost(f"lease {self.path} is not held: {self.lost_reason or 'released or never acquired'}")

    def _start(self) -> None:
        self._thread = threading.Thread(target=self._beat, name=f"lease:{self.path}", daemon=True)
        self._thread.start()

    def _beat(self) -> None:
        while not self._stop.wait(self.heartbeat_s):
            with self._lock:
                if self._stop.is_set() or not self.held():
                    return  # released, taken over, or fenced: this lease writes the lock no more
                self.beat += 1
                try:
                    version = self._write(lambda: self.store.replace(self.path, self.document(), self.version))
                except Exception as exc:  # noqa: BLE001 - a transient storage error: try again next beat
                    self.failures += 1
                    self.last_error = f"{type(exc).__name__}: {exc}"
                    continue
                if version is None:
                    self.mark_lost("taken over by another party (or removed)")  # judged dead by a waiter
                    return
                self.failures = 0

    def release(self) -> bool:
        """Stop the heartbeat and delete the lock if this lease still holds it; whether it did."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        with self._lock:
            holding = self.held()
            self._released = True
            if not holding:
                return False
            try:
                return self.store.delete(self.path, self.version)
            except Exception:  # noqa: BLE001 - the lock then goes stale and is taken over
                return False


def read_lease(store: ConditionalStore, path: str) -> tuple[dict[str, Any], str] | None:
    """The lease document at ``path`` and its version, or None (no file; an unreadable one reads as {})."""
    current = store.read(path)
    if current is None:
        return None
    try:
        document = json.loads(current.data)
    except ValueError:
        document = {}
    return (document if isinstance(document, dict) else {}), current.version

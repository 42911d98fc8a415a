"""Compare-and-swap on single small files of a study's storage: the writes leases are made of.

Stage-cache locks, a study's driver lease and a result store's compaction lock
(:mod:`omasgan.trainables.storage.leases`) must be exclusive across machines that share nothing but
the storage.  A :class:`ConditionalStore` gives four operations on one file, each a single request
that the storage itself checks:

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
"""

from __future__ import annotations

import abc
import fcntl
import hashlib
import os
import time
import warnings
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlparse

import pyarrow.fs as pafs

from omasgan.atomic_write import hidden_temporary, write_file_atomic, write_synced

from .filesystems import ensure_folder, open_filesystem


@dataclass(frozen=True)
class Versioned:
    """A file's content and the version the storage gave it."""

    data: bytes
    version: str


class ConditionalStore(abc.ABC):
    """Create, read, replace and delete single files with preconditions (see the module docstring).

    Paths are those of :func:`.filesystems.open_filesystem` for the same root: absolute
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

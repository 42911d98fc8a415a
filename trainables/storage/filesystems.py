"""One way to reach a study's files, local or remote, and one way to replace a file atomically.

A study's durable data (stage-cache entries and locks, Parquet result and score files, trial
records) lives under a root that is either a local path or any URI ``pyarrow.fs`` understands
(``s3://bucket/omasgan``, ``gs://...``).  :func:`open_filesystem` turns such a root into a
``(filesystem, base path)`` pair, and :func:`write_atomic` replaces one file so that a reader sees
the old content or the new one, never a half-written file: the bytes go to a hidden temporary file
in the same folder (a name starting with "." that listings skip), which is then moved over the
target (:func:`omasgan.atomic_write.replace_via_temporary`, through the file system's
``open_output_stream``/``move``/``delete_file``).  A writer killed mid-write leaves only the hidden
temporary behind.  On object stores (S3,
GCS) a single upload is already all-or-nothing (an object appears only when its upload completes),
so the bytes go straight to the target there: a "move" would be a second full copy.  Nor does a write
there create the parent "directories": an object store has none (a key's prefix lists as a folder as
soon as one key is under it), and pyarrow's ``create_dir`` on S3 costs a ``HeadBucket`` and one
marker upload per level on every call.
"""

from __future__ import annotations

import os

import pyarrow.fs as pafs

from omasgan.atomic_write import replace_via_temporary


def open_filesystem(root: str) -> tuple[pafs.FileSystem, str]:
    """``(filesystem, base)`` for a local path (made absolute) or a ``pyarrow.fs`` URI."""
    if "://" in root:
        return pafs.FileSystem.from_uri(root)
    return pafs.LocalFileSystem(), os.path.abspath(root)


def is_object_store(fs: pafs.FileSystem) -> bool:
    """Whether ``fs`` is an object store whose uploads are atomic per object (S3, GCS)."""
    return fs.type_name in ("s3", "gcs")


def ensure_folder(fs: pafs.FileSystem, path: str) -> None:
    """Make the folder ``path`` exist where folders exist: on an object store nothing is needed (a key's
    prefix lists as a folder once a key is under it) and ``create_dir`` would cost a HeadBucket and a
    marker upload per level."""
    if not is_object_store(fs):
        fs.create_dir(path, recursive=True)


def write_atomic(fs: pafs.FileSystem, path: str, blob: bytes) -> None:
    """Replace ``path`` with ``blob`` so that a reader sees the old bytes or the new ones: on object
    stores one upload; elsewhere a hidden temporary next to it, then moved over."""
    if is_object_store(fs):
        data = memoryview(blob)  # a TypeError here, before the upload starts: closing a stream completes it
        with fs.open_output_stream(path) as handle:
            handle.write(data)
        return

    def write_temporary(temporary: str) -> None:
        with fs.open_output_stream(temporary) as handle:
            handle.write(blob)

    ensure_folder(fs, path.rpartition("/")[0])
    replace_via_temporary(path, write_temporary, fs.move, fs.delete_file)

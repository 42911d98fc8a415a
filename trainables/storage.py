"""One way to reach a study's files, local or remote, and one way to replace a file atomically.

A study's durable data (stage-cache entries and locks, Parquet result and score files, trial
records) lives under a root that is either a local path or any URI ``pyarrow.fs`` understands
(``s3://bucket/omasgan``, ``gs://...``).  :func:`open_filesystem` turns such a root into a
``(filesystem, base path)`` pair, and :func:`write_atomic` replaces one file so that a reader sees
the old content or the new one, never a half-written file: the bytes go to a hidden temporary file
in the same folder (a name starting with "." that listings skip), which is then moved over the
target.  A writer killed mid-write leaves only the hidden temporary behind.
"""

from __future__ import annotations

import os
import uuid

import pyarrow.fs as pafs


def open_filesystem(root: str) -> tuple[pafs.FileSystem, str]:
    """``(filesystem, base)`` for a local path (made absolute) or a ``pyarrow.fs`` URI."""
    if "://" in root:
        return pafs.FileSystem.from_uri(root)
    return pafs.LocalFileSystem(), os.path.abspath(root)


def hidden_temporary(path: str) -> str:
    """A unique hidden file name next to ``path`` (``<folder>/.<name>.<random>.tmp``)."""
    folder, _, name = path.rpartition("/")
    return f"{folder}/.{name}.{uuid.uuid4().hex}.tmp"


def write_atomic(fs: pafs.FileSystem, path: str, blob: bytes) -> None:
    """Replace ``path`` with ``blob``: write a hidden temporary next to it, then move it over."""
    fs.create_dir(path.rpartition("/")[0], recursive=True)
    temporary = hidden_temporary(path)
    try:
        with fs.open_output_stream(temporary) as handle:
            handle.write(blob)
        fs.move(temporary, path)
    except BaseException:
        try:
            fs.delete_file(temporary)
        except (FileNotFoundError, OSError):
            pass
        raise

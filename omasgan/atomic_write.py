"""Replace a file so that a reader sees the old content or the new one, never half of it.

The one way every writer of the core and of the trainables does it: the bytes go to a hidden
temporary file in the target's folder (``.<name>.<random>.tmp``, a name listings skip), which is
then moved over the target in one rename.  On any error (or interrupt) the temporary is deleted and
the target keeps its old content; a writer killed mid-write leaves only the hidden temporary.

:func:`write_file_atomic` does this on a local path, with the bytes fsync'd before the rename (so
after a crash the target holds the old or the whole new content).  :func:`replace_via_temporary` is
the same sequence for any storage, given how to write, move and delete there (the pyarrow file
systems of :mod:`omasgan.trainables.storage` build on it; this module never imports pyarrow).
"""

from __future__ import annotations

import os
import uuid
from typing import BinaryIO, Callable

Writer = Callable[[BinaryIO], None]
"""Writes the file's content to an open binary handle."""


def hidden_temporary(path: str) -> str:
    """A unique hidden file name next to ``path`` (``<folder>/.<name>.<random>.tmp``)."""
    folder, name = os.path.split(path)
    return os.path.join(folder, f".{name}.{uuid.uuid4().hex}.tmp")


def replace_via_temporary(
    path: str,
    write_temporary: Callable[[str], None],
    move: Callable[[str, str], None],
    delete: Callable[[str], None],
) -> None:
    """``write_temporary(t)`` to a hidden temporary ``t`` beside ``path``, then ``move(t, path)``;
    on any exception ``delete(t)`` (a temporary that is already gone is fine) and re-raise."""
    temporary = hidden_temporary(path)
    try:
        write_temporary(temporary)
        move(temporary, path)
    except BaseException:
        try:
            delete(temporary)
        except (FileNotFoundError, OSError):
            pass
        raise


def write_synced(path: str | os.PathLike, write: Writer) -> None:
    """Write a local file with ``write(handle)`` and fsync it: its bytes are on disk on return."""
    with open(path, "wb") as handle:
        write(handle)
        handle.flush()
        os.fsync(handle.fileno())


def write_file_atomic(path: str | os.PathLike, write: Writer) -> None:
    """Replace the local file ``path`` (its folder is created if missing) with what ``write(handle)``
    writes, atomically (see the module docstring)."""
    path = os.fspath(path)
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    replace_via_temporary(path, lambda temporary: write_synced(temporary, write), os.replace, os.unlink)


def write_folder_atomic(folder: str | os.PathLike, build: Callable[[str], None]) -> None:
    """Replace the local folder ``folder`` with the one ``build(path)`` fills in, atomically: it is built
    under a hidden temporary name beside ``folder`` and renamed into place (the old folder, if any, is
    moved aside first and deleted after), so a failed build leaves the previous folder as it was."""
    import shutil

    folder = os.fspath(folder).rstrip(os.sep)
    os.makedirs(os.path.dirname(folder) or ".", exist_ok=True)
    building = hidden_temporary(folder)
    try:
        os.makedirs(building)
        build(building)
    except BaseException:
        shutil.rmtree(building, ignore_errors=True)
        raise
    old = hidden_temporary(folder) if os.path.exists(folder) else None
    if old is not None:
        os.replace(folder, old)
    try:
        os.replace(building, folder)
    except BaseException:
        if old is not None:
            os.replace(old, folder)
        shutil.rmtree(building, ignore_errors=True)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)

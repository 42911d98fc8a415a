"""Compaction's merge protocol: which files of a result table are live, and how a compaction commits.

:mod:`.compaction` merges a table's small files into a few large *parts* per partition,
``part-g<generation>-<token>-<index>.parquet`` next to them (:func:`part_name`), and commits each
generation by replacing one manifest, ``<table>/_manifest.json`` (a name plain readers skip), that
lists the live parts (:func:`commit_manifest`).  A reader (:class:`~.result_store.ResultStore`)
sees exactly one copy of every row:

- the parts the manifest lists (parts it does not list are superseded or from an unfinished
  compaction, and are ignored), and
- every small file, whose rows replace the rows of the same (study, trial, method, stage or
  detector) in the same partition's parts (:meth:`TableSnapshot.superseding`): a unit rerun after
  compaction writes its small file again, and that file wins, exactly as it replaced its earlier
  file before compaction.

A reader lists the table once, then reads the manifest (:func:`take_snapshot`); if a compaction
committed in between, or deleted a file before the reader opened it, the reader starts again, so it
reads one generation's parts, never two.  A single-object replace is atomic on a local disk (rename)
and on object stores (PUT), so a reader sees the old generation or the new one.  Plain Parquet readers
see the same rows whenever no compaction is running and no unit was rerun since the last one.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import pyarrow.fs as pafs

from omasgan.trainables.storage.filesystems import write_atomic

from .result_schema import row_set_of

MANIFEST_FILE = "_manifest.json"
MANIFEST_FORMAT = 1
PART_NAME = re.compile(r"^part-g(\d{6})-([0-9a-f]{8})-(\d{4})\.parquet$")
"""A compacted part's file name: its generation, its compaction's token and its index."""
READ_ATTEMPTS = 5
"""Listings (and reads) a reader tries while compactions commit or delete under it."""


def part_name(generation: int, token: str, index: int) -> str:
    """The file name of a compaction's ``index``-th part of a partition (see :data:`PART_NAME`)."""
    return f"part-g{generation:06d}-{token}-{index:04d}.parquet"


@dataclass
class TableSnapshot:
    """One listing of a table: what a reader reads and what a compaction starts from.

    ``parts`` are the parts the committed manifest lists (generation ``generation``, 0 when none was
    committed), ``small`` every small file, ``stray`` the parts the manifest does not list (superseded,
    or left by a compaction that did not commit).  Paths are full paths on the store's file system;
    ``infos`` holds the listing's FileInfo of each small file."""

    table: str
    directory: str
    generation: int = 0
    parts: list[str] = field(default_factory=list)
    small: list[str] = field(default_factory=list)
    stray: list[str] = field(default_factory=list)
    infos: dict[str, pafs.FileInfo] = field(default_factory=dict)

    def relative(self, path: str) -> str:
        return path[len(self.directory) + 1:]

    def superseding(self) -> set[str]:
        """Row sets that small files hold in partitions that also have parts: those rows of the parts
        are not read (the small file is newer, or the same rows not yet deleted after a compaction)."""
        with_parts = {self.relative(p).rpartition("/")[0] for p in self.parts}
        sets = set()
        for path in self.small:
            relative = self.relative(path)
            if relative.rpartition("/")[0] in with_parts:
                row_set = row_set_of(relative)
                if row_set is not None:
                    sets.add(row_set)
        return sets


def data_files(fs: pafs.FileSystem, directory: str) -> list[pafs.FileInfo]:
    """Every finished data file under a table's folder ``directory``: small files and parts, live or not
    (hidden temporaries and ``_``-names such as the manifest left out)."""
    selector = pafs.FileSelector(directory, recursive=True, allow_not_found=True)
    return [i for i in fs.get_file_info(selector)
            if i.type == pafs.FileType.File and not i.base_name.startswith((".", "_"))]


def read_manifest(fs: pafs.FileSystem, directory: str) -> dict[str, Any] | None:
    """The committed manifest of the table at ``directory``, or None when no compaction has committed."""
    try:
        with fs.open_input_stream(f"{directory}/{MANIFEST_FILE}") as handle:
            return json.loads(handle.read().decode())
    except FileNotFoundError:
        return None


def take_snapshot(table: str, directory: str, list_files: Callable[[], list[pafs.FileInfo]],
                  manifest: Callable[[], dict[str, Any] | None]) -> TableSnapshot:
    """List the table (``list_files()``) once, then read its manifest (``manifest()``), in that order.

    Guarantees that every part the manifest lists was in the listing; when a compaction committed
    between the two (a listed part is missing), it lists again, and after ``READ_ATTEMPTS`` listings
    raises RuntimeError."""
    for _ in range(READ_ATTEMPTS):
        infos = list_files()
        committed = manifest()
        listed = {i.path for i in infos}
        live = {f"{directory}/{p}" for p in (committed or {}).get("parts", [])}
        if not live <= listed:
            continue  # committed after the listing: list again
        snap = TableSnapshot(table, directory, int((committed or {}).get("generation", 0)))
        for info in sorted(infos, key=lambda i: i.path):
            if PART_NAME.match(info.base_name):
                (snap.parts if info.path in live else snap.stray).append(info.path)
            elif info.base_name.endswith(".parquet"):
                snap.small.append(info.path)
                snap.infos[info.path] = info
        return snap
    raise RuntimeError(f"{directory}: a compaction committed during each of {READ_ATTEMPTS} listings; try again")


def commit_manifest(fs: pafs.FileSystem, directory: str, table: str, generation: int, token: str,
                    parts: list[str]) -> None:
    """Commit a compaction: replace the manifest of the table at ``directory`` (one atomic write) with
    generation ``generation`` whose live parts are ``parts`` (relative to ``directory``)."""
    manifest = {"format": MANIFEST_FORMAT, "table": table, "generation": generation, "token": token,
                "parts": sorted(parts), "committed_at": time.time()}
    write_atomic(fs, f"{directory}/{MANIFEST_FILE}", json.dumps(manifest, indent=1).encode())

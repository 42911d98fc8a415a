"""Compaction of a result store: a table's many small Parquet files merged into a few large parts.

A unit writes one small file per stage (results) and per kept detector (scores), so a 2,000-trial
study over 30 units holds hundreds of thousands of them, which an object store lists slowly and
every reader opens one by one.  ``compact_store`` merges, per hive partition (data set, held-out
class, seed), the small files and the partition's earlier parts into new parts
``part-g<generation>-<token>-<index>.parquet`` (at most ``rows_per_part`` rows each, row groups of
``ROW_GROUP_ROWS``, rows kept in file-name order so a trial's rows sit together and row-group
statistics let a filter on ``trial_id`` skip the rest).  It runs at the end of every study and as
``omasgan compact FOLDER``.

The protocol, with the reader's rule in :mod:`.result_store` (live parts are the ones the manifest
lists; a small file's rows replace the same row set's rows in the partition's parts):

1. take the store's lock (``_compaction.lock``; one compaction at a time);
2. list the table and read its manifest (one snapshot);
3. write the new parts of every partition that has small files to merge or rows to drop; a part
   holds the partition's live part rows, less the row sets any small file replaces and the rows of
   dropped trials, then the merged small files' rows;
4. commit: replace ``<table>/_manifest.json`` (generation + 1) with the list of live parts: the new
   ones and the untouched partitions' old ones.  A single-object replace is atomic on a local disk
   (rename) and on object stores (PUT), so a reader sees the old generation or the new one;
5. delete the superseded parts, the parts of compactions that never committed, and the merged small
   files, each only if its size and modification time are still what step 2 listed (a file written
   again since is newer than its merged copy, so it stays and keeps replacing that copy).

A compaction killed at any step leaves a store that reads exactly as before it started (steps 1-3:
the manifest still lists the old parts; its new parts are ignored) or as after it (step 5: every
remaining merged small file replaces its own copy in the new parts); running it again finishes the
work.  Every row is kept exactly once throughout.

While trials may still write (``omasgan compact`` on a running study), only *settled* small files
are merged: those of rounds the trial's durable record (:mod:`.trial_record`) holds as finished,
which no retry or resume writes again.  At the end of a study every file is settled, and the rows
of trials the experiment does not know (see ``omasgan.distributed.studies.runner.remove_orphan_files``) are dropped.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import os
import re
import socket
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from omasgan.errors import ConfigError
from omasgan.trainables.storage.filesystems import ensure_folder

from .result_store import ROW_SET_FIELD, TABLES, ResultStore, TableSnapshot, row_set_expression, table_schema

LOCK_FILE = "_compaction.lock"
LOCK_STALE_S = 120.0
"""A lock whose heartbeat (refreshed every ``LOCK_HEARTBEAT_S``) is older than this is taken to be
left by a killed compaction, and is broken."""
LOCK_HEARTBEAT_S = 20.0
ROWS_PER_PART = 4_000_000
ROW_GROUP_ROWS = 65_536
READ_THREADS = 8
DETECTOR_STAGES = {"task1": "task1", "task3": "task3", "final": "j"}
"""The stage round that writes each OMASGAN detector's scores (a baseline's method: ``baseline``)."""
MANIFEST_FORMAT = 1

Fault = Callable[[str], None]
"""Test hook: called with the step just done ("part-written", "committed", "part-deleted",
"small-deleted"), so a test can stop the process there."""


class CompactionBusy(ConfigError):
    """Another compaction holds the store's lock."""


@dataclass
class TableCompaction:
    """What one table's compaction did."""

    generation: int = 0
    merged_files: int = 0
    parts_written: int = 0
    parts_live: int = 0
    rows_written: int = 0
    rows_dropped: int = 0
    files_deleted: int = 0
    files_kept: int = 0
    """Merged small files left in place because they changed after they were read."""
    unsettled_files: int = 0

    def line(self, table: str) -> str:
        if not self.merged_files and not self.rows_dropped and not self.parts_written:
            return f"{table}: nothing to merge ({self.parts_live} part(s), generation {self.generation})"
        return (f"{table}: merged {self.merged_files} small file(s) into {self.parts_live} part(s) of generation "
                f"{self.generation} ({self.rows_written} rows written, {self.rows_dropped} dropped)"
                + (f"; {self.unsettled_files} file(s) of unfinished rounds left as they are" if self.unsettled_files
                   else ""))


@dataclass
class CompactionStats:
    """What ``compact_store`` did, per table, and how long it took."""

    root: str
    tables: dict[str, TableCompaction] = field(default_factory=dict)
    seconds: float = 0.0

    def summary(self) -> str:
        return "; ".join(t.line(name) for name, t in self.tables.items()) + f" ({self.seconds:.1f} s)"


# ---- the lock --------------------------------------------------------------------------------------

class StoreLock:
    """The store's compaction lock: ``<root>/_compaction.lock``, a :class:`Lease` of the storage's
    conditional store (``trainables.conditional``): created only if absent (``O_EXCL``-like on a
    local disk, ``If-None-Match: *`` on S3, generation 0 on GCS), refreshed every
    ``LOCK_HEARTBEAT_S`` by the owner, and deleted on release only while the owner still holds it.

    A lock whose owner is gone (a process on this host that no longer runs, or no refresh for
    ``LOCK_STALE_S`` by its own recorded time) is taken over with a conditional replace of the very
    version read, so two compactions that both find it stale cannot both take it."""

    def __init__(self, store: ResultStore) -> None:
        from omasgan.trainables.storage.conditional import conditional_store
        from omasgan.trainables.storage.leases import Lease

        self.store = store
        self.conditional, base = conditional_store(store.root)
        self.path = f"{base}/{LOCK_FILE}"
        self.lease = Lease(self.conditional, self.path, heartbeat_s=LOCK_HEARTBEAT_S)
        self.owner = self.lease.owner

    def _read(self) -> tuple[dict[str, Any], str] | None:
        from omasgan.trainables.storage.leases import read_lease

        return read_lease(self.conditional, self.path)

    @staticmethod
    def _stale(document: dict[str, Any]) -> bool:
        """The lock was left by a compaction that is gone: an owner process on this host that no longer
        runs, or no refresh for ``LOCK_STALE_S`` (the owner's own clock, as written in the lock)."""
        if time.time() - float(document.get("since", 0)) > LOCK_STALE_S:
            return True
        pid = document.get("pid")
        if document.get("host") == socket.gethostname() and isinstance(pid, int):
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return True
            except PermissionError:
                return False
        return False

    def acquire(self) -> None:
        """Take the lock or raise CompactionBusy naming its owner."""
        ensure_folder(self.store.fs, self.store.base)
        if self.lease.acquire():
            return
        current = self._read()
        if current is None and self.lease.acquire():  # released between the two calls
            return
        if current is None:
            raise CompactionBusy(f"{self.store.root!r}: another compaction took the lock {self.path} just now")
        document, version = current
        if not self._stale(document):
            age = time.time() - float(document.get("since", 0))
            raise CompactionBusy(f"{self.store.root!r} is being compacted by {document.get('owner')} (heartbeat "
                                 f"{age:.0f} s ago); wait for it to finish, or delete {self.path} if that "
                                 f"process is gone")
        if not self.lease.take_over(version):  # left by a killed compaction; another one was quicker
            raise CompactionBusy(f"{self.store.root!r}: another compaction took the lock {self.path} just now")

    def release(self) -> None:
        self.lease.release()

    def __enter__(self) -> "StoreLock":
        self.acquire()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.release()


# ---- compaction ------------------------------------------------------------------------------------

def _conform(table: pa.Table, schema: pa.Schema) -> pa.Table:
    """``table`` with exactly ``schema``'s columns: missing ones as nulls, others cast."""
    columns = []
    for target in schema:
        if target.name in table.column_names:
            column = table.column(target.name)
            columns.append(column if column.type == target.type else column.cast(target.type))
        else:
            columns.append(pa.nulls(table.num_rows, target.type))
    return pa.Table.from_arrays(columns, schema=schema)


_UNSAFE = re.compile(r"[^0-9A-Za-z._-]")


def _names_its_file(rows: pa.Table, table: str, stem: str) -> bool:
    """Whether every row of a small file gives back the file's own stem (see
    ``result_store.stem_expression``), so the reader can tell its compacted copy by its columns."""
    if rows.num_rows == 0:
        return True
    values = []
    for column in ("study", "trial_id", "method", ROW_SET_FIELD[table]):
        unique = pc.unique(rows.column(column))
        if len(unique) != 1 or not unique[0].is_valid:
            return False
        values.append(unique[0].as_py())
    return _UNSAFE.sub("-", ".".join(values)) == stem


@dataclass
class _Partition:
    folder: str  # relative to the table's folder: dataset=D/holdout_class=K/seed=S
    small: list[str] = field(default_factory=list)
    parts: list[str] = field(default_factory=list)


def _partitions(snap: TableSnapshot) -> dict[str, _Partition]:
    found: dict[str, _Partition] = {}
    for path in snap.small:
        folder = snap.relative(path).rpartition("/")[0]
        found.setdefault(folder, _Partition(folder)).small.append(path)
    for path in snap.parts:
        folder = snap.relative(path).rpartition("/")[0]
        found.setdefault(folder, _Partition(folder)).parts.append(path)
    return found


@dataclass
class OrphanRule:
    """Which rows a compaction drops: those of ``study``, in the partitions of ``seeds`` (None: every
    seed), whose trial id is not in ``keep`` (an experiment's own trials, see
    ``omasgan.distributed.studies.runner.remove_orphan_files``)."""

    study: str
    keep: set[str]
    seeds: list[int] | None = None

    def expression(self, folder: str) -> pc.Expression | None:
        """The rows to drop in the partition ``folder`` (``dataset=D/holdout_class=K/seed=S``)."""
        seed = folder.rpartition("seed=")[2]
        if self.seeds is not None and seed not in {str(s) for s in self.seeds}:
            return None
        return (ds.field("study") == self.study) & ~ds.field("trial_id").isin(sorted(self.keep))


class _PartWriter:
    """Writes one partition's new parts: hidden temporary files moved to their final names on close."""

    def __init__(self, store: ResultStore, directory: str, schema: pa.Schema, generation: int, token: str,
                 rows_per_part: int, fault: Fault | None) -> None:
        self.store, self.directory, self.schema = store, directory, schema
        self.generation, self.token, self.rows_per_part, self.fault = generation, token, rows_per_part, fault
        self.written: list[str] = []
        self.rows = 0
        self._pending: list[pa.Table] = []
        self._pending_rows = 0
        self._writer: pq.ParquetWriter | None = None
        self._stream = None
        self._temporary = ""
        self._part_rows = 0

    def _name(self) -> str:
        return f"part-g{self.generation:06d}-{self.token}-{len(self.written):04d}.parquet"

    def _open(self) -> None:
        ensure_folder(self.store.fs, self.directory)
        self._temporary = f"{self.directory}/.{self._name()}.{uuid.uuid4().hex}.tmp"
        self._stream = self.store.fs.open_output_stream(self._temporary)
        self._writer = pq.ParquetWriter(self._stream, self.schema)
        self._part_rows = 0

    def _close_part(self) -> None:
        if self._writer is None:
            return
        self._writer.close()
        self._stream.close()
        final = f"{self.directory}/{self._name()}"
        self.store.fs.move(self._temporary, final)
        self.written.append(final)
        self._writer = None
        if self.fault:
            self.fault("part-written")

    def _flush(self) -> None:
        if not self._pending:
            return
        block = pa.concat_tables(self._pending)
        self._pending, self._pending_rows = [], 0
        offset = 0
        while offset < block.num_rows:
            if self._writer is None:
                self._open()
            take = min(block.num_rows - offset, self.rows_per_part - self._part_rows)
            self._writer.write_table(block.slice(offset, take), row_group_size=ROW_GROUP_ROWS)
            self._part_rows += take
            offset += take
            if self._part_rows >= self.rows_per_part:
                self._close_part()

    def add(self, table: pa.Table) -> None:
        if table.num_rows == 0:
            return
        self._pending.append(table)
        self._pending_rows += table.num_rows
        self.rows += table.num_rows
        if self._pending_rows >= ROW_GROUP_ROWS:
            self._flush()

    def close(self) -> list[str]:
        self._flush()
        self._close_part()
        return self.written

    def abort(self) -> None:
        if self._writer is not None:
            try:
                self._writer.close()
                self._stream.close()
                self.store.fs.delete_file(self._temporary)
            except OSError:
                pass


def _read_small(store: ResultStore, schema: pa.Schema, path: str) -> pa.Table:
    with store.fs.open_input_file(path) as handle:
        return _conform(pq.ParquetFile(handle).read(), schema)


def _in_order(store: ResultStore, schema: pa.Schema, paths: list[str], threads: int
              ) -> Iterator[tuple[str, pa.Table]]:
    """(path, rows) of each small file, in the order given, read ``threads`` at a time."""
    chunk = max(1, threads * 8)
    with concurrent.futures.ThreadPoolExecutor(max_workers=threads) as pool:
        for start in range(0, len(paths), chunk):
            batch = paths[start:start + chunk]
            yield from zip(batch, pool.map(lambda p: _read_small(store, schema, p), batch))


@dataclass
class PartitionJob:
    """One partition's share of a compaction: plain data, so it can run in another process (a Ray
    task next to the data on a cluster)."""

    root: str
    table: str
    folder: str  # relative to the table's folder: dataset=D/holdout_class=K/seed=S
    small: list[str]  # the small files to merge, in order
    parts: list[str]  # the partition's live parts
    superseded: list[str]  # row sets (see result_store.row_set_expression) any small file replaces here
    orphans: OrphanRule | None
    generation: int
    token: str
    rows_per_part: int = ROWS_PER_PART
    threads: int = READ_THREADS


@dataclass
class PartitionResult:
    """What a partition job wrote: its new parts (not yet live) and which small files they hold."""

    folder: str
    parts: list[str]
    rows: int
    dropped: int
    merged: list[str]
    skipped: int


def compact_partition(job: PartitionJob, fault: Fault | None = None) -> PartitionResult | None:
    """Write the new parts of one partition (the live parts' rows less the row sets small files replace
    and the rows of dropped trials, then the small files' rows); None when there is nothing to do.
    Writes nothing a reader sees: the parts become live only when the manifest lists them."""
    store = ResultStore(job.root)
    schema = table_schema(job.table)
    dropped = job.orphans.expression(job.folder) if job.orphans is not None else None
    old_filter = ~row_set_expression(job.table).isin(job.superseded) if job.superseded else None
    if dropped is not None:
        old_filter = ~dropped if old_filter is None else (old_filter & ~dropped)
    drop_rows = store.dataset(job.parts, job.table).count_rows(filter=dropped) if job.parts and dropped is not None else 0
    if not job.small and not drop_rows:
        return None
    directory = f"{store.base}/{job.table}/{job.folder}"
    writer = _PartWriter(store, directory, schema, job.generation, job.token, job.rows_per_part, fault)
    merged, skipped = [], 0
    try:
        if job.parts:
            for batch in store.dataset(job.parts, job.table).to_batches(filter=old_filter, columns=list(schema.names)):
                writer.add(_conform(pa.Table.from_batches([batch]), schema))
        for path, rows in _in_order(store, schema, job.small, job.threads):
            if not _names_its_file(rows, job.table, path.rpartition("/")[2][: -len(".parquet")]):
                skipped += 1  # the reader could not tell its compacted copy: leave it small
                continue
            if dropped is not None and rows.num_rows:
                before = rows.num_rows
                rows = rows.filter(pc.invert(pc.fill_null(_evaluate(rows, dropped), False)))
                drop_rows += before - rows.num_rows
            writer.add(rows)
            merged.append(path)
        parts = writer.close()
    except BaseException:
        writer.abort()
        raise
    return PartitionResult(job.folder, parts, writer.rows, drop_rows, merged, skipped)


Executor = Callable[[Callable[[PartitionJob], Any], list[PartitionJob]], Iterable[Any]]
"""Runs ``compact_partition`` over the jobs and returns the results in order (default: one by one in
this process; the study runner passes Ray tasks)."""


def compact_table(store: ResultStore, table: str, *, orphans: OrphanRule | None = None,
                  settled: Callable[[str, str], bool] | None = None, threads: int = READ_THREADS,
                  rows_per_part: int = ROWS_PER_PART, fault: Fault | None = None,
                  executor: Executor | None = None) -> TableCompaction:
    """Compact one table (the caller holds the store's lock); see the module docstring.

    Guarantees: the rows :meth:`ResultStore.read` returns are the same before, during and after (less
    the rows ``orphans`` drops), each exactly once, whichever step a kill stops it at."""
    snap = store.snapshot(table)
    stats = TableCompaction(generation=snap.generation, parts_live=len(snap.parts))
    superseded = snap.superseding()
    generation, token = snap.generation + 1, uuid.uuid4().hex[:8]
    jobs = []
    for folder, partition in sorted(_partitions(snap).items()):
        chosen = [p for p in partition.small if settled is None or settled(table, snap.relative(p))]
        stats.unsettled_files += len(partition.small) - len(chosen)
        prefix = _row_set_prefix(folder)
        jobs.append(PartitionJob(store.root, table, folder, chosen, partition.parts,
                                 sorted(r for r in superseded if r.startswith(prefix)), orphans,
                                 generation, token, rows_per_part, threads))
    if executor is None:
        results = [compact_partition(job, fault) for job in jobs]
    else:
        results = list(executor(compact_partition, jobs))
    done = {r.folder: r for r in results if r is not None}
    retired = {p for job in jobs if job.folder in done for p in job.parts}
    merged = [p for r in done.values() for p in r.merged]
    for r in done.values():
        stats.rows_written += r.rows
        stats.rows_dropped += r.dropped
        stats.unsettled_files += r.skipped
        stats.parts_written += len(r.parts)
    if done:
        live = [p for p in snap.parts if p not in retired] + [p for r in done.values() for p in r.parts]
        manifest = {"format": MANIFEST_FORMAT, "table": table, "generation": generation, "token": token,
                    "parts": sorted(snap.relative(p) for p in live), "committed_at": time.time()}
        from omasgan.trainables.storage.filesystems import write_atomic

        write_atomic(store.fs, store.manifest_path(table), json.dumps(manifest, indent=1).encode())
        if fault:
            fault("committed")
        stats.generation, stats.parts_live, stats.merged_files = generation, len(live), len(merged)
    for path in sorted(retired) + snap.stray:  # superseded, or of a compaction that never committed
        _delete(store.fs, path)
        stats.files_deleted += 1
        if fault:
            fault("part-deleted")
    for path in merged:
        if _unchanged(store.fs, path, snap.infos[path]):
            _delete(store.fs, path)
            stats.files_deleted += 1
        else:
            stats.files_kept += 1
        if fault:
            fault("small-deleted")
    _remove_temporaries(store, table)
    return stats


def _row_set_prefix(folder: str) -> str:
    """``dataset=D/holdout_class=K/seed=S`` -> ``D/K/S/``, how the partition's row sets begin."""
    values = [piece.partition("=")[2] for piece in folder.split("/")]
    return "/".join(values) + "/"


def _evaluate(table: pa.Table, expression: pc.Expression) -> pa.ChunkedArray:
    return ds.dataset(table).to_table(columns={"x": expression}).column("x")


def _unchanged(fs: pafs.FileSystem, path: str, listed: pafs.FileInfo) -> bool:
    now = fs.get_file_info(path)
    return now.type == pafs.FileType.File and now.size == listed.size and now.mtime == listed.mtime


def _delete(fs: pafs.FileSystem, path: str) -> None:
    try:
        fs.delete_file(path)
    except FileNotFoundError:
        pass


def _remove_temporaries(store: ResultStore, table: str) -> None:
    """Hidden temporary parts left by killed compactions (the lock says no other one is writing)."""
    selector = pafs.FileSelector(f"{store.base}/{table}", recursive=True, allow_not_found=True)
    for info in store.fs.get_file_info(selector):
        if info.type == pafs.FileType.File and info.base_name.startswith(".part-g") and info.base_name.endswith(".tmp"):
            _delete(store.fs, info.path)


def compact_store(root: str, *, orphans: OrphanRule | None = None,
                  settled: Callable[[str, str], bool] | None = None, threads: int = READ_THREADS,
                  rows_per_part: int = ROWS_PER_PART, fault: Fault | None = None,
                  executor: Executor | None = None) -> CompactionStats:
    """Compact the ``results`` and ``scores`` tables of the store at ``root`` under its lock.

    ``orphans`` says which rows of trials an experiment does not know to drop;
    ``settled(table, relative_path)`` says which small files may be merged (default: all); ``executor`` runs the partitions' jobs (default: one after another here).
    Raises CompactionBusy when another compaction holds the lock."""
    started = time.perf_counter()
    store = ResultStore(root)
    stats = CompactionStats(root)
    with StoreLock(store):
        for table in TABLES:
            stats.tables[table] = compact_table(store, table, orphans=orphans, settled=settled,
                                                threads=threads, rows_per_part=rows_per_part, fault=fault,
                                                executor=executor)
    stats.seconds = time.perf_counter() - started
    return stats


def settled_by_records(root: str, spec: Any, confirmed: bool = False) -> Callable[[str, str], bool] | None:
    """Which small files of the study ``spec`` (a StudySpec) no trial will write again, for a
    compaction while the study may run: in the partitions of the study's own seeds, files of the
    rounds each trial's durable record holds as finished; in other partitions (a confirmation's fresh
    seeds, whose rows carry the confirmed trial's id), every file once the confirmation has finished
    (``confirmed``), none before.  None (every file) for a ``baseline`` study, whose units are
    written once per command.  Files of other studies in the store count as settled."""
    if spec.kind == "baseline":
        return None
    from .trial_record import TrialRecords

    records = TrialRecords(root)
    rounds: dict[str, set[str]] = {}
    for trial_id in records.trial_ids():
        record = records.read(trial_id)
        rounds[trial_id] = set(record["rounds"]) if record else set()
    prefix = f"{spec.name}."
    own_seeds = {f"seed={s}" for s in spec.seeds}

    def settled(table: str, relative_path: str) -> bool:
        folder, _, name = relative_path.rpartition("/")
        stem = name[: -len(".parquet")]
        if not stem.startswith(prefix):
            return True
        if folder.rpartition("/")[2] not in own_seeds:
            return confirmed
        pieces = stem[len(prefix):].rsplit(".", 2)
        if len(pieces) != 3:
            return False
        trial_id, _, last = pieces
        stage = last if table == "results" else DETECTOR_STAGES.get(last, "baseline")
        return stage in rounds.get(trial_id, set())

    return settled


# ---- omasgan compact -------------------------------------------------------------------------------

def cmd_compact(args: argparse.Namespace) -> int:
    from .study_folder import STUDY_FILE, StudySpec, read_confirmation, result_root, study_folders

    if args.threads < 1:
        raise ConfigError(f"--threads {args.threads} is out of range; give an integer >= 1")
    folder = Path(args.folder)
    if not folder.is_dir():
        raise ConfigError(f"{str(folder)!r} does not exist or is not a folder; give a study folder")
    folders = study_folders(folder)
    if not folders:
        raise ConfigError(f"{str(folder)!r} holds no study ({STUDY_FILE} in it or in a folder directly inside it)")
    for path in folders:
        spec = StudySpec.read(path)
        root = result_root(path)
        settled = settled_by_records(root, spec, confirmed=read_confirmation(path) is not None)
        stats = compact_store(root, settled=settled, threads=args.threads)
        print(f"omasgan compact: {spec.name}: {stats.summary()}", flush=True)
    return 0


def add_compact_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add ``omasgan compact`` to the ``omasgan`` subcommands."""
    parser = sub.add_parser(
        "compact", help="merge a study's small result files into a few large ones per partition",
        description="Merge the small Parquet files of a study's results and scores tables (one per unit and "
        "stage) into a few large parts per (data set, class, seed) partition, atomically: readers see every "
        "row exactly once before, during and after. Safe on a running study (only rounds the trials have "
        "finished are merged). Every study also compacts itself when it ends.")
    parser.add_argument("folder", help="a study folder (holds study.json) or a folder of study folders")
    parser.add_argument("--threads", type=int, default=READ_THREADS,
                        help=f"small files read at once (default {READ_THREADS}; more for object stores)")
    parser.set_defaults(handler=cmd_compact)
    return parser

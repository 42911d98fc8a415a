"""Compaction of a result store: a table's many small Parquet files merged into a few large parts.

A unit writes one small file per stage (results) and per kept detector (scores), so a 2,000-trial
study over 30 units holds hundreds of thousands of them, which an object store lists slowly and
every reader opens one by one.  ``compact_store`` merges, per hive partition (data set, held-out
class, seed), the small files and the partition's earlier parts into new parts (at most
``rows_per_part`` rows each, row groups of ``ROW_GROUP_ROWS``, rows kept in file-name order so a
trial's rows sit together and row-group statistics let a filter on ``trial_id`` skip the rest).  It
runs at the end of every study and as ``omasgan compact FOLDER``.

The steps, with the reader's rule and the commit in :mod:`.manifest` (live parts are the ones the
manifest lists; a small file's rows replace the same row set's rows in the partition's parts):

1. take the store's lock (:mod:`.compaction_lock`; one compaction at a time);
2. list the table and read its manifest (one snapshot);
3. write the new parts of every partition that has small files to merge or rows to drop; a part
   holds the partition's live part rows, less the row sets any small file replaces and the rows of
   dropped trials, then the merged small files' rows; each part is written under a hidden temporary
   name and moved to its own (:func:`omasgan.atomic_write.replace_via_temporary`);
4. commit: replace ``<table>/_manifest.json`` (generation + 1) with the list of live parts: the new
   ones and the untouched partitions' old ones (:func:`.manifest.commit_manifest`);
5. delete the superseded parts, the parts of compactions that never committed, and the merged small
   files, each only if its size and modification time are still what step 2 listed (a file written
   again since is newer than its merged copy, so it stays and keeps replacing that copy).

A compaction killed at any step (or stopped because its lock was taken over: steps 4 and 5 run only
while the lock is held) leaves a store that reads exactly as before it started (steps 1-3: the
manifest still lists the old parts; its new parts are ignored) or as after it (step 5: every
remaining merged small file replaces its own copy in the new parts); running it again finishes the
work.  Every row is kept exactly once throughout.

While trials may still write (``omasgan compact`` on a running study), only *settled* small files
are merged; at the end of a study every file is settled, and the rows of trials the experiment does
not know are dropped (both rules: :mod:`.compaction_scope`).
"""

from __future__ import annotations

import concurrent.futures
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Iterator

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from omasgan.atomic_write import replace_via_temporary
from omasgan.trainables.storage.filesystems import ensure_folder

from .compaction_lock import StoreLock
from .compaction_scope import OrphanRule
from .manifest import TableSnapshot, commit_manifest, part_name
from .result_schema import ROW_SET_FIELD, TABLES, row_set_expression, row_set_prefix, row_stem, table_schema
from .result_store import ResultStore

ROWS_PER_PART = 4_000_000
ROW_GROUP_ROWS = 65_536
READ_THREADS = 8

Fault = Callable[[str], None]
"""Test hook: called with the step just done ("part-written", "committed", "part-deleted",
"small-deleted"), so a test can stop the process there."""


@dataclass
class TableCompaction:
    """What one table's compaction did."""

    generation: int = 0
    """The table's generation after it: the one it committed, or the one it found."""
    merged_files: int = 0
    parts_written: int = 0
    parts_live: int = 0
    """Parts the manifest lists after it."""
    rows_written: int = 0
    rows_dropped: int = 0
    """Rows of trials the experiment does not know (``OrphanRule``), left out of the new parts."""
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


# ---- one partition ---------------------------------------------------------------------------------

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


def _names_its_file(rows: pa.Table, table: str, stem: str) -> bool:
    """Whether every row of a small file gives back the file's own stem (``result_schema.row_stem``),
    so the reader can tell its compacted copy by its columns."""
    if rows.num_rows == 0:
        return True
    values = []
    for column in ("study", "trial_id", "method", ROW_SET_FIELD[table]):
        unique = pc.unique(rows.column(column))
        if len(unique) != 1 or not unique[0].is_valid:
            return False
        values.append(unique[0].as_py())
    return row_stem(*values) == stem


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


def _row_blocks(tables: Iterable[pa.Table]) -> Iterator[pa.Table]:
    """The rows of ``tables``, in order, joined into blocks of at least ``ROW_GROUP_ROWS`` rows (the
    last one may hold fewer)."""
    pending: list[pa.Table] = []
    rows = 0
    for table in tables:
        if table.num_rows == 0:
            continue
        pending.append(table)
        rows += table.num_rows
        if rows >= ROW_GROUP_ROWS:
            yield pa.concat_tables(pending)
            pending, rows = [], 0
    if pending:
        yield pa.concat_tables(pending)


def write_parts(fs: pafs.FileSystem, directory: str, schema: pa.Schema, generation: int, token: str,
                rows_per_part: int, tables: Iterable[pa.Table], fault: Fault | None = None) -> list[str]:
    """Write the rows of ``tables``, in order, as the parts ``part_name(generation, token, i)`` of the
    partition folder ``directory``, at most ``rows_per_part`` rows each (row groups of
    ``ROW_GROUP_ROWS``); each part is written to a hidden temporary and moved to its name.  Returns
    the parts' paths (none for no rows)."""
    blocks = _row_blocks(tables)
    block = next(blocks, None)
    written: list[str] = []
    while block is not None:
        def write_part(temporary: str) -> None:
            nonlocal block
            with fs.open_output_stream(temporary) as stream, pq.ParquetWriter(stream, schema) as writer:
                room = rows_per_part
                while block is not None and room:
                    rows = block.slice(0, room)
                    writer.write_table(rows, row_group_size=ROW_GROUP_ROWS)
                    room -= rows.num_rows
                    block = block.slice(rows.num_rows) if rows.num_rows < block.num_rows else next(blocks, None)

        ensure_folder(fs, directory)
        final = f"{directory}/{part_name(generation, token, len(written))}"
        replace_via_temporary(final, write_part, fs.move, fs.delete_file)
        written.append(final)
        if fault:
            fault("part-written")
    return written


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


def _evaluate(table: pa.Table, expression: pc.Expression) -> pa.ChunkedArray:
    return ds.dataset(table).to_table(columns={"x": expression}).column("x")


@dataclass
class PartitionJob:
    """One partition's share of a compaction: plain data, so it can run in another process (a Ray
    task next to the data on a cluster)."""

    root: str
    table: str
    folder: str  # relative to the table's folder: dataset=D/holdout_class=K/seed=S
    small: list[str]  # the small files to merge, in order
    parts: list[str]  # the partition's live parts
    superseded: list[str]  # row sets (see result_schema.row_set_expression) any small file replaces here
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
    result = PartitionResult(job.folder, [], 0, drop_rows, [], 0)

    def rows() -> Iterator[pa.Table]:
        """The partition's rows in the order its parts hold them; counts them into ``result``."""
        if job.parts:
            for batch in store.dataset(job.parts, job.table).to_batches(filter=old_filter, columns=list(schema.names)):
                table = _conform(pa.Table.from_batches([batch]), schema)
                result.rows += table.num_rows
                yield table
        for path, table in _in_order(store, schema, job.small, job.threads):
            if not _names_its_file(table, job.table, path.rpartition("/")[2][: -len(".parquet")]):
                result.skipped += 1  # the reader could not tell its compacted copy: leave it small
                continue
            if dropped is not None and table.num_rows:
                before = table.num_rows
                table = table.filter(pc.invert(pc.fill_null(_evaluate(table, dropped), False)))
                result.dropped += before - table.num_rows
            result.rows += table.num_rows
            result.merged.append(path)
            yield table

    result.parts = write_parts(store.fs, f"{store.table_directory(job.table)}/{job.folder}", schema, job.generation,
                               job.token, job.rows_per_part, rows(), fault)
    return result


# ---- one table, and the store ----------------------------------------------------------------------

Executor = Callable[[Callable[[PartitionJob], Any], list[PartitionJob]], Iterable[Any]]
"""Runs ``compact_partition`` over the jobs and returns the results in order (default: one by one in
this process; the study runner passes Ray tasks)."""


def compact_table(store: ResultStore, table: str, *, orphans: OrphanRule | None = None,
                  settled: Callable[[str, str], bool] | None = None, threads: int = READ_THREADS,
                  rows_per_part: int = ROWS_PER_PART, fault: Fault | None = None,
                  executor: Executor | None = None, check_lock: Callable[[], None] | None = None) -> TableCompaction:
    """Compact one table (the caller holds the store's lock; ``check_lock()``, called before the commit
    and before each deletion, raises when it no longer does); see the module docstring.

    Guarantees: the rows :meth:`ResultStore.read` returns are the same before, during and after (less
    the rows ``orphans`` drops), each exactly once, whichever step a kill stops it at."""
    check_lock = check_lock or (lambda: None)
    snap = store.snapshot(table)
    stats = TableCompaction(generation=snap.generation, parts_live=len(snap.parts))
    superseded = snap.superseding()
    generation, token = snap.generation + 1, uuid.uuid4().hex[:8]
    jobs = []
    for folder, partition in sorted(_partitions(snap).items()):
        chosen = [p for p in partition.small if settled is None or settled(table, snap.relative(p))]
        stats.unsettled_files += len(partition.small) - len(chosen)
        prefix = row_set_prefix(folder)
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
        check_lock()
        commit_manifest(store.fs, snap.directory, table, generation, token, [snap.relative(p) for p in live])
        if fault:
            fault("committed")
        stats.generation, stats.parts_live, stats.merged_files = generation, len(live), len(merged)
    for path in sorted(retired) + snap.stray:  # superseded, or of a compaction that never committed
        check_lock()
        _delete(store.fs, path)
        stats.files_deleted += 1
        if fault:
            fault("part-deleted")
    for path in merged:
        check_lock()
        if _unchanged(store.fs, path, snap.infos[path]):
            _delete(store.fs, path)
            stats.files_deleted += 1
        else:
            stats.files_kept += 1
        if fault:
            fault("small-deleted")
    _remove_temporaries(store, table)
    return stats


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
    selector = pafs.FileSelector(store.table_directory(table), recursive=True, allow_not_found=True)
    for info in store.fs.get_file_info(selector):
        if info.type == pafs.FileType.File and info.base_name.startswith(".part-g") and info.base_name.endswith(".tmp"):
            _delete(store.fs, info.path)


def compact_store(root: str, *, orphans: OrphanRule | None = None,
                  settled: Callable[[str, str], bool] | None = None, threads: int = READ_THREADS,
                  rows_per_part: int = ROWS_PER_PART, fault: Fault | None = None,
                  executor: Executor | None = None, say: Callable[[str], None] | None = None) -> CompactionStats:
    """Compact the ``results`` and ``scores`` tables of the store at ``root`` under its lock.

    ``orphans`` says which rows of trials an experiment does not know to drop;
    ``settled(table, relative_path)`` says which small files may be merged (default: all); ``executor``
    runs the partitions' jobs (default: one after another here); ``say`` is told when another
    compaction's lock is watched or taken over (:class:`.compaction_lock.StoreLock`).
    Raises CompactionBusy when another compaction holds the lock, and LeaseLost when this one lost
    it before its commit or deletions were done."""
    started = time.perf_counter()
    store = ResultStore(root)
    stats = CompactionStats(root)
    with StoreLock(root, say=say) as lock:
        for table in TABLES:
            stats.tables[table] = compact_table(store, table, orphans=orphans, settled=settled,
                                                threads=threads, rows_per_part=rows_per_part, fault=fault,
                                                executor=executor, check_lock=lock.check)
    stats.seconds = time.perf_counter() - started
    return stats

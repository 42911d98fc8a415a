"""The Parquet result store: one row per (study, trial, held-out class, seed, stage, split).

Layout under ``<root>`` (a local path or any ``pyarrow.fs`` URI), hive-partitioned so any Parquet
reader (pandas, pyarrow.dataset, DuckDB, Polars) finds the partition columns with no project code::

    results/dataset=<d>/holdout_class=<k>/seed=<s>/<study>.<trial>.<method>.<stage>.parquet
    scores/dataset=<d>/holdout_class=<k>/seed=<s>/<study>.<trial>.<method>.<detector>.parquet
    samples/dataset=<d>/holdout_class=<k>/seed=<s>/<study>.<trial>.npz   (2-D data: x, G(z), B(z))

Every file is written under a unique temporary name and renamed into place, so a reader never sees
half a file.  A file's name is unique per (study, trial, unit, method, stage): writing the same unit
and stage again (a retried or resumed trial) replaces the file instead of adding a duplicate row.  The schema is explicit and
versioned (``SCHEMA_VERSION``): the config is stored both flattened (one typed column per config
key, ``cfg_<section>_<key>``) and as JSON.

Version 2 added the shortcut alarm's columns (``ALARM_COLUMNS``, :mod:`omasgan.alarm`):
``alarm_ink_auroc``, ``alarm_contrast_auroc`` and ``alarm_nn_auroc`` on the task2 rows (and on the j
rows when J refined B), ``alarm_ink_spearman`` on the j rows; and the config columns of the issue-12
variants.  Files written before (version 1) lack those columns: the store's reader gives them as
nulls, so old and new files read together.  Config keys added since (``data.image_size``,
``network.g_spectral_norm``, ``network.init``) are typed columns the same way, without a new
version: a file written before them reads them as null.

**Compacted parts.**  :mod:`.compaction` merges a table's small files into a few large *parts* per
partition, ``part-g<generation>-<token>-<index>.parquet`` next to them, and commits each generation
by replacing one manifest, ``<table>/_manifest.json`` (a name plain readers skip), that lists the
live parts.  :meth:`ResultStore.read` (and everything built on it) sees exactly one copy of every row:

- the parts the manifest lists (parts it does not list are superseded or from an unfinished
  compaction, and are ignored), and
- every small file, whose rows replace the rows of the same (study, trial, method, stage or
  detector) in the same partition's parts: a unit rerun after compaction writes its small file
  again, and that file wins, exactly as it replaced its earlier file before compaction.

A reader lists the table once, then reads the manifest; if a compaction committed in between, or
deleted a file before the reader opened it, the reader starts again, so it reads one generation's
parts, never two.  Plain Parquet readers see the same rows whenever no compaction is running and no
unit was rerun since the last one.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import re
import socket
import typing
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Iterable

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from omasgan.alarm import ALARM_KEYS
from omasgan.config import OMASGANConfig
from omasgan.metrics import METRIC_NAMES
from omasgan.provenance import CODE_VERSION, library_versions
from omasgan.trainables.storage.filesystems import open_filesystem, write_atomic
from omasgan.vocabulary import SCORE_CHOICES  # noqa: F401 (re-exported)

SCHEMA_VERSION = 2
ALARM_COLUMNS = tuple(f"alarm_{name}" for name in ALARM_KEYS)
"""The shortcut alarm's figures, one float column each (null where a stage has none)."""
PARTITION_COLUMNS = ("dataset", "holdout_class", "seed")
STATUSES = ("ok", "error")
TABLES = ("results", "scores")
"""The Parquet tables of a store (``samples`` holds .npz files and is never compacted)."""
DEFAULT_SCORES = "test"
"""Which per-sample scores a unit stores (``--scores``): ``none``; ``test``, the test split of the
unit's final detector (J, or a baseline's method: what the report's histograms read); ``all``, the
validation and test splits of every detector (Task 1 critic, Task 3 critic, J)."""
MANIFEST_FILE = "_manifest.json"
PART_NAME = re.compile(r"^part-g(\d{6})-([0-9a-f]{8})-(\d{4})\.parquet$")
"""A compacted part's file name: its generation, its compaction's token and its index."""
READ_ATTEMPTS = 5
DAMAGE_CHECK_THREADS = 8
"""Files read at a time when a failed read looks for the damaged file."""


def score_splits(choice: str, final: bool) -> tuple[str, ...]:
    """The splits whose per-sample scores a unit stores for one detector under the ``--scores``
    ``choice``; ``final`` says whether the detector is the unit's final one (J, or a baseline's
    method).  Raises ValueError naming the allowed choices for any other ``choice``."""
    if choice not in SCORE_CHOICES:
        raise ValueError(f"scores {choice!r}; choose one of: {', '.join(SCORE_CHOICES)}")
    if choice == "all":
        return ("val", "test")
    return ("test",) if choice == "test" and final else ()


def _arrow_type(annotation: Any) -> pa.DataType:
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    if len(args) > 1:  # e.g. str | int
        return pa.string()
    base = args[0] if args else annotation
    return {bool: pa.bool_(), int: pa.int64(), float: pa.float64()}.get(base, pa.string())


@functools.lru_cache(maxsize=None)
def config_fields() -> tuple[tuple[str, pa.DataType], ...]:
    """(column name, type) of every flattened config key, in config order (computed once per process)."""
    fields = []
    for section in dataclasses.fields(OMASGANConfig):
        hints = typing.get_type_hints(OMASGANConfig)
        if dataclasses.is_dataclass(hints[section.name]):
            section_hints = typing.get_type_hints(hints[section.name])
            for leaf in dataclasses.fields(hints[section.name]):
                fields.append((f"cfg_{section.name}_{leaf.name}", _arrow_type(section_hints[leaf.name])))
        else:
            fields.append((f"cfg_{section.name}", _arrow_type(hints[section.name])))
    return tuple(fields)


@functools.lru_cache(maxsize=None)
def result_schema() -> pa.Schema:
    """The schema of the files (partition columns live in the path, not in the files)."""
    columns = [
        pa.field("schema_version", pa.int32(), nullable=False),
        pa.field("study", pa.string(), nullable=False),
        pa.field("study_kind", pa.string(), nullable=False),
        pa.field("trial_id", pa.string(), nullable=False),
        pa.field("method", pa.string(), nullable=False),
        pa.field("protocol", pa.string()),
        pa.field("stage", pa.string(), nullable=False),
        pa.field("detector", pa.string()),
        pa.field("split", pa.string()),
        *[pa.field(name, pa.float64()) for name in METRIC_NAMES],
        pa.field("threshold", pa.float64()),
        pa.field("sweep_param", pa.string()),
        pa.field("sweep_value", pa.float64()),
        pa.field("wall_time_s", pa.float64()),
        *[pa.field(name, pa.float64()) for name in ALARM_COLUMNS],
        pa.field("status", pa.string(), nullable=False),
        pa.field("error", pa.string()),
        pa.field("config_json", pa.string()),
        *[pa.field(name, kind) for name, kind in config_fields()],
        pa.field("code_version", pa.string()),
        pa.field("versions_json", pa.string()),
        pa.field("host", pa.string()),
        pa.field("device", pa.string()),
        pa.field("created_at", pa.timestamp("ms", tz="UTC")),
    ]
    return pa.schema(columns, metadata={"omasgan_schema_version": str(SCHEMA_VERSION)})


def with_partitions(schema: pa.Schema) -> pa.Schema:
    """A file schema plus the three hive partition columns: what a reader of the dataset sees."""
    for name, kind in (("dataset", pa.string()), ("holdout_class", pa.int64()), ("seed", pa.int64())):
        schema = schema.append(pa.field(name, kind))
    return schema


def dataset_schema() -> pa.Schema:
    return with_partitions(result_schema())


@functools.lru_cache(maxsize=None)
def score_schema() -> pa.Schema:
    return pa.schema([
        pa.field("schema_version", pa.int32(), nullable=False),
        pa.field("study", pa.string(), nullable=False),
        pa.field("trial_id", pa.string(), nullable=False),
        pa.field("method", pa.string(), nullable=False),
        pa.field("detector", pa.string(), nullable=False),
        pa.field("split", pa.string(), nullable=False),
        pa.field("index", pa.int64(), nullable=False),
        pa.field("label", pa.int8(), nullable=False),
        pa.field("score", pa.float64(), nullable=False),
    ], metadata={"omasgan_schema_version": str(SCHEMA_VERSION)})


def _float_or_none(value: Any) -> float | None:
    return None if value is None else float(value)


@dataclass
class UnitKey:
    """Which trial unit a set of rows belongs to."""

    study: str
    study_kind: str
    trial_id: str
    dataset: str
    holdout_class: int
    seed: int
    method: str = "omasgan"

    def folder(self, table: str) -> str:
        return f"{table}/dataset={self.dataset}/holdout_class={self.holdout_class}/seed={self.seed}"


def table_schema(table: str) -> pa.Schema:
    """The file schema of ``table`` (``results`` or ``scores``)."""
    if table not in TABLES:
        raise ValueError(f"table {table!r}; choose one of: {', '.join(TABLES)}")
    return result_schema() if table == "results" else score_schema()


@functools.lru_cache(maxsize=None)
def _versions_json() -> str:
    return json.dumps(library_versions(), sort_keys=True)


def _flatten(nested: dict[str, Any]) -> dict[str, Any]:
    """``OMASGANConfig.flat()`` of the config whose ``to_dict()`` is ``nested``."""
    out: dict[str, Any] = {}
    for key, value in nested.items():
        if isinstance(value, dict):
            out.update({f"{key}.{k}": v for k, v in value.items()})
        else:
            out[key] = value
    return out


def safe_name(text: str) -> str:
    """``text`` as a file-name part: letters, digits, '-', '_' and '.' kept, anything else '-'."""
    return "".join(c if c.isalnum() or c in "-_." else "-" for c in text)


ROW_SET_FIELD = {"results": "stage", "scores": "detector"}
"""The column that, with study, trial_id and method, names a small file: one row set."""


def stem_expression(table: str) -> pc.Expression:
    """The stem of the small file each row of ``table`` was written to, computed from the row's own
    columns: ``<study>.<trial_id>.<method>.<stage or detector>`` with every character other than an
    ASCII letter, digit, ``-``, ``_`` or ``.`` replaced by ``-`` (what ``safe_name`` does to ASCII names;
    compaction merges only files whose rows give back their own file's stem)."""
    joined = pc.binary_join_element_wise(ds.field("study"), ds.field("trial_id"), ds.field("method"),
                                         ds.field(ROW_SET_FIELD[table]), ".")
    return pc.replace_substring_regex(joined, pattern="[^0-9A-Za-z._-]", replacement="-")


def row_set_expression(table: str) -> pc.Expression:
    """``<dataset>/<holdout_class>/<seed>/<stem>`` of each row: which small file's row set it is."""
    return pc.binary_join_element_wise(ds.field("dataset"), ds.field("holdout_class").cast(pa.string()),
                                       ds.field("seed").cast(pa.string()), stem_expression(table), "/")


_PARTITION_PATH = re.compile(r"dataset=([^/]+)/holdout_class=(-?\d+)/seed=(-?\d+)$")


def row_set_of(relative_path: str) -> str | None:
    """The row set (see :func:`row_set_expression`) a small file at ``relative_path`` (relative to its
    table's folder) holds, or None for a path outside the partition layout."""
    folder, _, name = relative_path.rpartition("/")
    match = _PARTITION_PATH.search(folder)
    if not match or not name.endswith(".parquet"):
        return None
    return f"{match.group(1)}/{match.group(2)}/{match.group(3)}/{name[: -len('.parquet')]}"


def _scan_binds(table: str, filter: Any, columns: list[str] | None) -> bool:
    """Whether ``filter`` and ``columns`` can be evaluated on ``table``'s columns at all (checked on an
    empty table: a string compared with a number fails here, whatever the files hold)."""
    try:
        ds.dataset(with_partitions(table_schema(table)).empty_table()).to_table(filter=filter, columns=columns)
    except (pa.ArrowException, TypeError, ValueError):
        return False
    return True


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


class ResultStore:
    """Writes and reads the result and score tables under ``root``."""

    def __init__(self, root: str) -> None:
        self.fs, self.base = open_filesystem(root)
        self.root = root

    def partitioning(self, table: str) -> ds.Partitioning:
        schema = with_partitions(table_schema(table))
        return ds.partitioning(pa.schema([schema.field(c) for c in PARTITION_COLUMNS]), flavor="hive")

    def _write(self, table: pa.Table, folder: str, stem: str) -> str:
        final = f"{self.base}/{folder}/{safe_name(stem)}.parquet"
        sink = pa.BufferOutputStream()
        pq.write_table(table, sink)
        write_atomic(self.fs, final, sink.getvalue().to_pybytes())  # replaces an earlier attempt's file
        return final

    def write_samples(self, key: UnitKey, arrays: dict[str, Any]) -> str:
        """Named arrays of one unit (for 2-D data: ``x``, ``generated``, ``boundary``) as an .npz."""
        import io

        import numpy as np

        buffer = io.BytesIO()
        np.savez_compressed(buffer, **arrays)
        final = f"{self.base}/{key.folder('samples')}/{safe_name(f'{key.study}.{key.trial_id}')}.npz"
        write_atomic(self.fs, final, buffer.getvalue())
        return final

    def files(self, table: str = "results") -> list[str]:
        """Paths of every finished data file of ``table``: small files and compacted parts, live or not
        (temporary files, the manifest and the compaction lock excluded)."""
        return sorted(i.path for i in self._list(table))

    def _list(self, table: str) -> list[pafs.FileInfo]:
        selector = pafs.FileSelector(f"{self.base}/{table}", recursive=True, allow_not_found=True)
        infos = self.fs.get_file_info(selector)
        return [i for i in infos if i.type == pafs.FileType.File and not i.base_name.startswith((".", "_"))]

    def manifest_path(self, table: str) -> str:
        return f"{self.base}/{table}/{MANIFEST_FILE}"

    def read_manifest(self, table: str) -> dict[str, Any] | None:
        """The committed manifest of ``table``, or None when no compaction has committed."""
        try:
            with self.fs.open_input_stream(self.manifest_path(table)) as handle:
                return json.loads(handle.read().decode())
        except FileNotFoundError:
            return None

    def snapshot(self, table: str = "results") -> TableSnapshot:
        """List ``table`` once, then read its manifest (in that order, see the module docstring).

        Guarantees that every part the manifest lists was in the listing; when a compaction committed
        between the two (a listed part is missing), it lists again, and after ``READ_ATTEMPTS``
        listings raises RuntimeError."""
        directory = f"{self.base}/{table}"
        for _ in range(READ_ATTEMPTS):
            infos = self._list(table)
            manifest = self.read_manifest(table)
            listed = {i.path for i in infos}
            live = {f"{directory}/{p}" for p in (manifest or {}).get("parts", [])}
            if not live <= listed:
                continue  # committed after the listing: list again
            snap = TableSnapshot(table, directory, int((manifest or {}).get("generation", 0)))
            for info in sorted(infos, key=lambda i: i.path):
                if PART_NAME.match(info.base_name):
                    (snap.parts if info.path in live else snap.stray).append(info.path)
                elif info.base_name.endswith(".parquet"):
                    snap.small.append(info.path)
                    snap.infos[info.path] = info
            return snap
        raise RuntimeError(f"{directory}: a compaction committed during each of {READ_ATTEMPTS} listings; try again")

    def delete(self, paths: Iterable[str]) -> None:
        for path in paths:
            self.fs.delete_file(path)

    def write_stage_rows(
        self,
        key: UnitKey,
        stage: str,
        *,
        config: OMASGANConfig | None,
        evaluation: dict[str, Any] | None = None,
        wall_time_s: float | None = None,
        status: str = "ok",
        error: str | None = None,
        device: str = "cpu",
        sweep: tuple[str, float] | None = None,
        alarm: dict[str, float] | None = None,
    ) -> str:
        """One file with a row per split of ``stage`` (or one row without a split for a stage with no
        detector, or for an error); ``alarm`` (the stage's shortcut alarm, keys as in
        :data:`omasgan.alarm.ALARM_KEYS`) fills the ``alarm_*`` columns of every row."""
        if status not in STATUSES:
            raise ValueError(f"status {status!r}; choose one of: {', '.join(STATUSES)}")
        nested = config.to_dict() if config is not None else None
        common: dict[str, Any] = {
            "schema_version": SCHEMA_VERSION, "study": key.study, "study_kind": key.study_kind,
            "trial_id": key.trial_id, "method": key.method,
            "protocol": config.data.protocol if config else None, "stage": stage,
            "wall_time_s": wall_time_s, "status": status, "error": error,
            "config_json": json.dumps(nested, sort_keys=True) if config else None,
            "code_version": CODE_VERSION, "versions_json": _versions_json(),
            "host": socket.gethostname(), "device": device,
            "sweep_param": sweep[0] if sweep else None, "sweep_value": float(sweep[1]) if sweep else None,
            "created_at": datetime.now(timezone.utc),
            **{column: _float_or_none((alarm or {}).get(column[len("alarm_"):])) for column in ALARM_COLUMNS},
        }
        if config is not None:
            flat = _flatten(nested)  # config.flat(), without a second dataclasses.asdict
            for name, kind in config_fields():
                value = flat[name[4:].replace("_", ".", 1)]
                common[name] = str(value) if (value is not None and pa.types.is_string(kind)) else value
        rows = []
        if evaluation is not None:
            for split, metrics in evaluation["metrics"].items():
                rows.append({**common, "detector": evaluation["detector"], "split": split,
                             "threshold": evaluation["threshold"], **{m: metrics[m] for m in METRIC_NAMES}})
        else:
            rows.append(dict(common))
        table = pa.Table.from_pylist(rows, schema=result_schema())
        return self._write(table, key.folder("results"), f"{key.study}.{key.trial_id}.{key.method}.{stage}")

    def write_scores(self, key: UnitKey, detector: str, scores: dict[str, Iterable[float]],
                     labels: dict[str, Iterable[int]]) -> str:
        """Per-sample anomaly scores of one detector on each split, as their own table."""
        columns: dict[str, list] = {name: [] for name in score_schema().names}
        for split, values in scores.items():
            values, split_labels = list(values), list(labels[split])
            n = len(values)
            columns["schema_version"] += [SCHEMA_VERSION] * n
            columns["study"] += [key.study] * n
            columns["trial_id"] += [key.trial_id] * n
            columns["method"] += [key.method] * n
            columns["detector"] += [detector] * n
            columns["split"] += [split] * n
            columns["index"] += list(range(n))
            columns["label"] += [int(v) for v in split_labels]
            columns["score"] += [float(v) for v in values]
        table = pa.table(columns, schema=score_schema())
        return self._write(table, key.folder("scores"), f"{key.study}.{key.trial_id}.{key.method}.{detector}")

    def clear_scores(self, key: UnitKey, detector: str) -> None:
        """Remove the unit's scores of ``detector``: delete its scores file and, once the scores table
        has compacted parts (which may hold a copy of those scores), put an empty file in its place,
        which hides that copy from every reader (see the module docstring)."""
        path = f"{self.base}/{key.folder('scores')}/{safe_name(f'{key.study}.{key.trial_id}.{key.method}.{detector}')}.parquet"
        try:
            self.fs.delete_file(path)
        except FileNotFoundError:
            pass
        if self.read_manifest("scores") is not None:
            self._write(score_schema().empty_table(), key.folder("scores"),
                        f"{key.study}.{key.trial_id}.{key.method}.{detector}")

    def dataset(self, paths: list[str], table: str) -> ds.Dataset:
        """A pyarrow dataset over some files of ``table``, with the partition columns and the current
        schema (columns a file lacks read as null)."""
        return ds.dataset(paths, filesystem=self.fs, format="parquet", partitioning=self.partitioning(table),
                          partition_base_dir=f"{self.base}/{table}", schema=with_partitions(table_schema(table)),
                          exclude_invalid_files=False)

    def read(self, table: str = "results", filter: Any = None, columns: list[str] | None = None) -> pa.Table:
        """The rows of ``table`` (``results`` or ``scores``) with its partition columns: every row once,
        whether it sits in a small file or a compacted part (see the module docstring).

        ``filter`` (a ``pyarrow.dataset`` expression) and ``columns`` (names to keep, in that order) are
        pushed down to the Parquet scan, so only those columns of the matching row groups are read.
        When a compaction deletes a file while this reads, it lists again (``READ_ATTEMPTS`` times).  A
        file in the table's folder that is not one of this store's (not Parquet, or without its
        columns), or one whose data cannot be read (a damaged data page under an intact footer), is a
        one-line ConfigError naming the file and what to do."""
        error: Exception | None = None
        # schema_version is read with any projection: a row without one is from a foreign file
        scanned = columns if columns is None or "schema_version" in columns else [*columns, "schema_version"]
        for _ in range(READ_ATTEMPTS):
            snap = self.snapshot(table)
            try:
                result = self._read_snapshot(snap, filter, scanned)
            except (FileNotFoundError, OSError, pa.ArrowException) as exc:
                if all(self.fs.get_file_info(p).type == pafs.FileType.File for p in snap.parts + snap.small):
                    if not _scan_binds(table, filter, scanned):
                        raise  # not a file's fault: a filter the columns cannot evaluate
                    bad = self._foreign_file(table) or self._damaged_file(snap, scanned)
                    if bad is not None:
                        raise bad from None
                    raise
                error = exc  # a compaction deleted a file we listed: list again
                continue
            if result.num_rows and result.column("schema_version").null_count:
                raise self._foreign_file(table) or self._unreadable(table)
            return result if scanned is columns else result.drop_columns(["schema_version"])
        raise RuntimeError(f"{self.base}/{table} changed under {READ_ATTEMPTS} reads in a row: {error}")

    def _read_snapshot(self, snap: TableSnapshot, filter: Any, columns: list[str] | None) -> pa.Table:
        schema = with_partitions(table_schema(snap.table))
        out_schema = pa.schema([schema.field(c) for c in columns]) if columns is not None else schema
        pieces = []
        if snap.small:
            pieces.append(self.dataset(snap.small, snap.table).to_table(filter=filter, columns=columns))
        if snap.parts:
            superseded = snap.superseding()
            where = filter
            if superseded:
                fresh = ~row_set_expression(snap.table).isin(sorted(superseded))
                where = fresh if where is None else (where & fresh)
            pieces.append(self.dataset(snap.parts, snap.table).to_table(filter=where, columns=columns))
        if not pieces:
            return out_schema.empty_table()
        return pa.concat_tables(pieces)
    def _foreign_file(self, table: str) -> Exception | None:
        """A ConfigError naming the first file of ``table`` that is not this store's (not Parquet, or
        without its columns), or None when every file is one of this store's."""
        from omasgan.errors import ConfigError

        required = ("schema_version", "study", "trial_id")
        for path in self.files(table):
            where = f"{self.root.rstrip('/')}{path[len(self.base):]}"
            try:
                schema = pq.read_schema(path, filesystem=self.fs)
            except (pa.ArrowException, OSError) as error:
                return ConfigError(f"{where!r} is not a Parquet file ({str(error).splitlines()[0][:120]}); only "
                                   f"omasgan's result files belong under {table}/: move it out")
            missing = [c for c in required if c not in schema.names]
            if missing:
                return ConfigError(f"{where!r} is not an omasgan {table} file (no column {missing[0]!r}; it has "
                                   f"{', '.join(schema.names[:6])}); move it out of {table}/")
        return None

    def _damaged_file(self, snap: TableSnapshot, columns: list[str] | None) -> Exception | None:
        """A ConfigError naming the first file of ``snap`` (small files, then parts) whose ``columns``
        cannot be read although its footer can (a damaged data page, a truncated column chunk), with
        what to do about it; None when every file reads.  Files are read ``DAMAGE_CHECK_THREADS`` at a
        time: this runs only after a read failed."""
        import concurrent.futures

        from omasgan.errors import ConfigError

        def problem(path: str) -> str | None:
            try:
                self.dataset([path], snap.table).to_table(columns=columns)
            except (OSError, pa.ArrowException) as error:
                return " ".join(str(error).split())[:160]
            return None

        paths = snap.small + snap.parts
        pool = concurrent.futures.ThreadPoolExecutor(DAMAGE_CHECK_THREADS)
        try:
            for path, why in zip(paths, pool.map(problem, paths)):
                if why is None:
                    continue
                where = f"{self.root.rstrip('/')}{path[len(self.base):]}"
                if path in snap.parts:
                    todo = ("it is a compacted part, the only copy of the rows of every unit merged into it: "
                            "restore it from a copy of the study folder (e.g. the bucket's earlier object "
                            "version), or rerun the study into a new folder")
                else:
                    todo = ("restore it from a copy of the study folder, or move it out of "
                            f"{snap.table}/ to read the rest without its rows")
                return ConfigError(f"{where!r} is damaged: its footer reads but its data does not ({why}); {todo}")
        finally:
            pool.shutdown(wait=True, cancel_futures=True)  # the files after the damaged one are not read
        return None

    def _unreadable(self, table: str) -> Exception:
        from omasgan.errors import ConfigError

        return ConfigError(f"the {table} under {self.root!r} have rows without a schema version: "
                           "they were not written by omasgan")



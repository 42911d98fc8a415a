"""The Parquet result store's reader and writer: one row per (study, trial, held-out class, seed, stage,
split), and per-sample scores.

Where each file lies, what it is named and which columns it has: :mod:`.result_schema`.  Every file is
written under a unique temporary name and renamed into place (on object stores, one upload), so a
reader never sees half a file; writing the same unit and stage again (a retried or resumed trial)
replaces its file instead of adding a duplicate row.  :meth:`ResultStore.read` (and everything built
on it) sees exactly one copy of every row, whether it sits in a small file or in a part that
compaction merged it into (the protocol: :mod:`.manifest`).
"""

from __future__ import annotations

import functools
import json
import socket
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Iterable

import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from omasgan.config import OMASGANConfig
from omasgan.vocabulary import METRIC_NAMES
from omasgan.provenance import CODE_VERSION, library_versions
from omasgan.trainables.storage.filesystems import open_filesystem, write_atomic
from omasgan.vocabulary import SCORE_CHOICES

from .manifest import READ_ATTEMPTS, TableSnapshot, data_files, read_manifest, take_snapshot
from .result_schema import (
    ALARM_COLUMNS,
    PARTITION_COLUMNS,
    SCHEMA_VERSION,
    config_fields,
    config_key,
    partition_folder,
    result_schema,
    row_set_expression,
    samples_stem,
    score_schema,
    small_file_stem,
    table_schema,
    with_partitions,
)

STATUSES = ("ok", "error")
DEFAULT_SCORES = "test"
"""Which per-sample scores a unit stores (``--scores``): ``none``; ``test``, the test split of the
unit's final detector (J, or a baseline's method: what the report's histograms read); ``all``, the
validation and test splits of every detector (Task 1 critic, Task 3 critic, J)."""
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


def dataset_schema() -> pa.Schema:
    """The schema :meth:`ResultStore.read` gives the results table: its file schema and the partition
    columns."""
    return with_partitions(result_schema())


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
        return f"{table}/{partition_folder(self.dataset, self.holdout_class, self.seed)}"

    def stem(self, row_set: str) -> str:
        """The stem of this unit's small file of ``row_set`` (a stage, or a detector)."""
        return small_file_stem(self.study, self.trial_id, self.method, row_set)


@functools.lru_cache(maxsize=None)
def _versions_json() -> str:
    return json.dumps(library_versions(), sort_keys=True)


def _scan_binds(table: str, filter: Any, columns: list[str] | None) -> bool:
    """Whether ``filter`` and ``columns`` can be evaluated on ``table``'s columns at all (checked on an
    empty table: a string compared with a number fails here, whatever the files hold)."""
    try:
        ds.dataset(with_partitions(table_schema(table)).empty_table()).to_table(filter=filter, columns=columns)
    except (pa.ArrowException, TypeError, ValueError):
        return False
    return True


class ResultStore:
    """Writes and reads the result and score tables under ``root``."""

    def __init__(self, root: str) -> None:
        self.fs, self.base = open_filesystem(root)
        self.root = root

    def partitioning(self, table: str) -> ds.Partitioning:
        schema = with_partitions(table_schema(table))
        return ds.partitioning(pa.schema([schema.field(c) for c in PARTITION_COLUMNS]), flavor="hive")

    def table_directory(self, table: str) -> str:
        return f"{self.base}/{table}"

    def _write(self, table: pa.Table, folder: str, stem: str) -> str:
        final = f"{self.base}/{folder}/{stem}.parquet"
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
        final = f"{self.base}/{key.folder('samples')}/{samples_stem(key.study, key.trial_id)}.npz"
        write_atomic(self.fs, final, buffer.getvalue())
        return final

    def files(self, table: str = "results") -> list[str]:
        """Paths of every finished data file of ``table``: small files and compacted parts, live or not
        (temporary files, the manifest and the compaction lock excluded)."""
        return sorted(i.path for i in self._list(table))

    def _list(self, table: str) -> list[pafs.FileInfo]:
        return data_files(self.fs, self.table_directory(table))

    def read_manifest(self, table: str) -> dict[str, Any] | None:
        """The committed manifest of ``table``, or None when no compaction has committed."""
        return read_manifest(self.fs, self.table_directory(table))

    def snapshot(self, table: str = "results") -> TableSnapshot:
        """List ``table`` once, then read its manifest (:func:`.manifest.take_snapshot`)."""
        return take_snapshot(table, self.table_directory(table), lambda: self._list(table),
                             lambda: self.read_manifest(table))

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
            flat = config.flat()
            for name, kind in config_fields():
                value = flat[config_key(name)]
                common[name] = str(value) if (value is not None and pa.types.is_string(kind)) else value
        rows = []
        if evaluation is not None:
            for split, metrics in evaluation["metrics"].items():
                rows.append({**common, "detector": evaluation["detector"], "split": split,
                             "threshold": evaluation["threshold"], **{m: metrics[m] for m in METRIC_NAMES}})
        else:
            rows.append(dict(common))
        table = pa.Table.from_pylist(rows, schema=result_schema())
        return self._write(table, key.folder("results"), key.stem(stage))

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
        return self._write(table, key.folder("scores"), key.stem(detector))

    def clear_scores(self, key: UnitKey, detector: str) -> None:
        """Remove the unit's scores of ``detector``: delete its scores file and, once the scores table
        has compacted parts (which may hold a copy of those scores), put an empty file in its place,
        which hides that copy from every reader (see the module docstring)."""
        path = f"{self.base}/{key.folder('scores')}/{key.stem(detector)}.parquet"
        try:
            self.fs.delete_file(path)
        except FileNotFoundError:
            pass
        if self.read_manifest("scores") is not None:
            self._write(score_schema().empty_table(), key.folder("scores"), key.stem(detector))

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



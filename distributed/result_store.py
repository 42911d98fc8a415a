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
nulls, so old and new files read together.
"""

from __future__ import annotations

import dataclasses
import json
import socket
import typing
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Iterable

import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from omasgan.alarm import ALARM_KEYS
from omasgan.config import OMASGANConfig
from omasgan.metrics import METRIC_NAMES
from omasgan.provenance import CODE_VERSION, library_versions
from omasgan.trainables.storage import open_filesystem, write_atomic

SCHEMA_VERSION = 2
ALARM_COLUMNS = tuple(f"alarm_{name}" for name in ALARM_KEYS)
"""The shortcut alarm's figures, one float column each (null where a stage has none)."""
PARTITION_COLUMNS = ("dataset", "holdout_class", "seed")
STATUSES = ("ok", "error")


def _arrow_type(annotation: Any) -> pa.DataType:
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    if len(args) > 1:  # e.g. str | int
        return pa.string()
    base = args[0] if args else annotation
    return {bool: pa.bool_(), int: pa.int64(), float: pa.float64()}.get(base, pa.string())


def config_fields() -> list[tuple[str, pa.DataType]]:
    """(column name, type) of every flattened config key, in config order."""
    fields = []
    for section in dataclasses.fields(OMASGANConfig):
        hints = typing.get_type_hints(OMASGANConfig)
        if dataclasses.is_dataclass(hints[section.name]):
            section_hints = typing.get_type_hints(hints[section.name])
            for leaf in dataclasses.fields(hints[section.name]):
                fields.append((f"cfg_{section.name}_{leaf.name}", _arrow_type(section_hints[leaf.name])))
        else:
            fields.append((f"cfg_{section.name}", _arrow_type(hints[section.name])))
    return fields


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


def _safe(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "-" for c in text)


class ResultStore:
    """Writes and reads the result and score tables under ``root``."""

    def __init__(self, root: str) -> None:
        self.fs, self.base = open_filesystem(root)
        self.root = root

    def _write(self, table: pa.Table, folder: str, stem: str) -> str:
        final = f"{self.base}/{folder}/{_safe(stem)}.parquet"
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
        final = f"{self.base}/{key.folder('samples')}/{_safe(f'{key.study}.{key.trial_id}')}.npz"
        write_atomic(self.fs, final, buffer.getvalue())
        return final

    def files(self, table: str = "results") -> list[str]:
        """Paths of every finished file of ``table`` (temporary files excluded)."""
        directory = f"{self.base}/{table}"
        if self.fs.get_file_info(directory).type != pafs.FileType.Directory:
            return []
        infos = self.fs.get_file_info(pafs.FileSelector(directory, recursive=True))
        return sorted(i.path for i in infos if i.type == pafs.FileType.File and not i.base_name.startswith("."))

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
        common: dict[str, Any] = {
            "schema_version": SCHEMA_VERSION, "study": key.study, "study_kind": key.study_kind,
            "trial_id": key.trial_id, "method": key.method,
            "protocol": config.data.protocol if config else None, "stage": stage,
            "wall_time_s": wall_time_s, "status": status, "error": error,
            "config_json": json.dumps(config.to_dict(), sort_keys=True) if config else None,
            "code_version": CODE_VERSION, "versions_json": json.dumps(library_versions(), sort_keys=True),
            "host": socket.gethostname(), "device": device,
            "sweep_param": sweep[0] if sweep else None, "sweep_value": float(sweep[1]) if sweep else None,
            "created_at": datetime.now(timezone.utc),
            **{column: _float_or_none((alarm or {}).get(column[len("alarm_"):])) for column in ALARM_COLUMNS},
        }
        if config is not None:
            flat = config.flat()
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

    def read(self, table: str = "results", filter: Any = None) -> pa.Table:
        """The whole table (``results`` or ``scores``) with its partition columns, optionally filtered
        with a ``pyarrow.dataset`` expression.  A file in the table's folder that is not one of this
        store's (not Parquet, or without its columns) is a one-line ConfigError naming the file."""
        try:
            result = self._read(table, filter)
        except (pa.ArrowException, OSError) as exc:
            raise self._foreign_file_error(table, exc) from None
        if result.num_rows and result.column("schema_version").null_count:
            raise self._foreign_file_error(table, None)
        return result

    def _foreign_file_error(self, table: str, exc: Exception | None) -> Exception:
        """A ConfigError naming the first file of ``table`` that is not this store's (or, when none is
        found, one that quotes ``exc``)."""
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
        detail = f": {str(exc).splitlines()[0][:200]}" if exc is not None else ""
        return ConfigError(f"the {table} under {self.root!r} cannot be read as omasgan's{detail}")

    def _read(self, table: str, filter: Any) -> pa.Table:
        schema = dataset_schema() if table == "results" else with_partitions(score_schema())
        partitioning = ds.partitioning(pa.schema([schema.field(c) for c in PARTITION_COLUMNS]), flavor="hive")
        directory = f"{self.base}/{table}"
        if self.fs.get_file_info(directory).type != pafs.FileType.Directory:
            return schema.empty_table()
        dataset = ds.dataset(directory, filesystem=self.fs, format="parquet", partitioning=partitioning,
                             schema=schema, exclude_invalid_files=False, ignore_prefixes=[".", "_"])
        return dataset.to_table(filter=filter)


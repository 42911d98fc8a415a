"""The result store's layout and schema: where a row's file lies, what the file is named, which columns it has.

Layout under a store's root, hive-partitioned so any Parquet reader (pandas, pyarrow.dataset, DuckDB,
Polars) finds the partition columns with no project code::

    results/dataset=<d>/holdout_class=<k>/seed=<s>/<study>.<trial>.<method>.<stage>.parquet
    scores/dataset=<d>/holdout_class=<k>/seed=<s>/<study>.<trial>.<method>.<detector>.parquet
    samples/dataset=<d>/holdout_class=<k>/seed=<s>/<study>.<trial>.npz   (2-D data: x, G(z), B(z))

**The file-name rule.**  A small file holds one *row set*: the rows of one (study, trial, method,
stage or detector) in one partition, and its name is :func:`small_file_stem` of those four values
(``.parquet`` added); :func:`parse_small_file` reads them back from a name, and
:func:`stem_expression` computes the stem from a row's own columns (what compaction relies on to tell
a small file's compacted copy).  Writing the same unit and stage again replaces its file.

**The schema** is explicit and versioned (``SCHEMA_VERSION``): the config is stored both flattened
(one typed column per config key, ``cfg_<section>_<key>``) and as JSON.  Version 2 added the
shortcut alarm's columns (``ALARM_COLUMNS``, :mod:`omasgan.alarm`): ``alarm_ink_auroc``,
``alarm_contrast_auroc`` and ``alarm_nn_auroc`` on the task2 rows (and on the j rows when J refined
B), ``alarm_ink_spearman`` on the j rows; and the config columns of the issue-12 variants.  Files
written before (version 1) lack those columns: the store's reader gives them as nulls, so old and
new files read together.  Config keys added since (``data.image_size``, ``network.g_spectral_norm``,
``network.init``) are typed columns the same way, without a new version: a file written before them
reads them as null.
"""

from __future__ import annotations

import dataclasses
import functools
import re
import typing
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds

from omasgan.config import OMASGANConfig
from omasgan.vocabulary import ALARM_KEYS, METRIC_NAMES

SCHEMA_VERSION = 2
ALARM_COLUMNS = tuple(f"alarm_{name}" for name in ALARM_KEYS)
"""The shortcut alarm's figures, one float column each (null where a stage has none)."""
PARTITION_COLUMNS = ("dataset", "holdout_class", "seed")
TABLES = ("results", "scores")
"""The Parquet tables of a store (``samples`` holds .npz files and is never compacted)."""
ROW_SET_FIELD = {"results": "stage", "scores": "detector"}
"""The column that, with study, trial_id and method, names a small file: one row set."""


# ---- the columns -----------------------------------------------------------------------------------

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


def config_key(column: str) -> str:
    """The ``OMASGANConfig.flat()`` key of a config column (``cfg_task2_mu`` -> ``task2.mu``)."""
    return column[len("cfg_"):].replace("_", ".", 1)


def _columns(kind: pa.DataType, *names: str, required: bool = False) -> list[pa.Field]:
    return [pa.field(name, kind, nullable=not required) for name in names]


@functools.lru_cache(maxsize=None)
def result_schema() -> pa.Schema:
    """The schema of the results files (partition columns live in the path, not in the files)."""
    text, number = pa.string(), pa.float64()
    columns = [
        pa.field("schema_version", pa.int32(), nullable=False),
        *_columns(text, "study", "study_kind", "trial_id", "method", required=True),
        *_columns(text, "protocol"),
        *_columns(text, "stage", required=True),
        *_columns(text, "detector", "split"),
        *_columns(number, *METRIC_NAMES, "threshold"),
        *_columns(text, "sweep_param"),
        *_columns(number, "sweep_value", "wall_time_s", *ALARM_COLUMNS),
        *_columns(text, "status", required=True),
        *_columns(text, "error", "config_json"),
        *[pa.field(name, kind) for name, kind in config_fields()],
        *_columns(text, "code_version", "versions_json", "host", "device"),
        pa.field("created_at", pa.timestamp("ms", tz="UTC")),
    ]
    return pa.schema(columns, metadata={"omasgan_schema_version": str(SCHEMA_VERSION)})


@functools.lru_cache(maxsize=None)
def score_schema() -> pa.Schema:
    """The schema of the scores files: one row per sample of a split, its label and its score."""
    return pa.schema([
        pa.field("schema_version", pa.int32(), nullable=False),
        *_columns(pa.string(), "study", "trial_id", "method", "detector", "split", required=True),
        pa.field("index", pa.int64(), nullable=False),
        pa.field("label", pa.int8(), nullable=False),
        pa.field("score", pa.float64(), nullable=False),
    ], metadata={"omasgan_schema_version": str(SCHEMA_VERSION)})


def table_schema(table: str) -> pa.Schema:
    """The file schema of ``table`` (``results`` or ``scores``)."""
    if table not in TABLES:
        raise ValueError(f"table {table!r}; choose one of: {', '.join(TABLES)}")
    return result_schema() if table == "results" else score_schema()


def with_partitions(schema: pa.Schema) -> pa.Schema:
    """A file schema plus the three hive partition columns: what a reader of the dataset sees."""
    for name, kind in (("dataset", pa.string()), ("holdout_class", pa.int64()), ("seed", pa.int64())):
        schema = schema.append(pa.field(name, kind))
    return schema


# ---- the partitions and the file names -------------------------------------------------------------

_PARTITION = re.compile(r"dataset=([^/]+)/holdout_class=(-?\d+)/seed=(-?\d+)$")
UNSAFE_IN_STEMS = "[^0-9A-Za-z._-]"
"""The characters :func:`stem_expression` replaces by ``-`` (what :func:`safe_name` does to ASCII text)."""


def partition_folder(dataset: str, holdout_class: int, seed: int) -> str:
    """``dataset=D/holdout_class=K/seed=S``: a partition's folder, relative to its table's folder."""
    return f"dataset={dataset}/holdout_class={holdout_class}/seed={seed}"


def partition_of(folder: str) -> tuple[str, str, str] | None:
    """The (dataset, holdout class, seed) values, as text, of a folder ending in a partition's folder,
    or None for any other folder."""
    match = _PARTITION.search(folder)
    return (match.group(1), match.group(2), match.group(3)) if match else None


def safe_name(text: str) -> str:
    """``text`` as a file-name part: letters, digits, '-', '_' and '.' kept, anything else '-'."""
    return "".join(c if c.isalnum() or c in "-_." else "-" for c in text)


def small_file_stem(study: str, trial_id: str, method: str, row_set: str) -> str:
    """The stem of the small file holding one row set: ``<study>.<trial_id>.<method>.<row_set>`` (the
    row set: a results file's stage, a scores file's detector) as a file-name part."""
    return safe_name(f"{study}.{trial_id}.{method}.{row_set}")


def samples_stem(study: str, trial_id: str) -> str:
    """The stem of a unit's samples file (``<study>.<trial_id>``, with ``.npz``) as a file-name part."""
    return safe_name(f"{study}.{trial_id}")


@dataclass(frozen=True)
class SmallFileName:
    """The four values a small file's name holds (see :func:`small_file_stem`)."""

    study: str
    trial_id: str
    method: str
    row_set: str


def parse_small_file(name: str) -> SmallFileName | None:
    """The values of a small file's name ``<study>.<trial_id>.<method>.<row_set>.parquet`` (a study
    name holds no dot; a trial id may, e.g. a baseline's ``ae-...-lr0.001-...``), or None for any
    other file name (a compacted part, the manifest, a temporary)."""
    if not name.endswith(".parquet"):
        return None
    study, _, rest = name[: -len(".parquet")].partition(".")
    pieces = rest.rsplit(".", 2)
    if not study or len(pieces) != 3:
        return None
    return SmallFileName(study, *pieces)


def stem_expression(table: str) -> pc.Expression:
    """The stem of the small file each row of ``table`` was written to, computed from the row's own
    columns: ``<study>.<trial_id>.<method>.<stage or detector>`` with every character other than an
    ASCII letter, digit, ``-``, ``_`` or ``.`` replaced by ``-`` (what ``safe_name`` does to ASCII names;
    compaction merges only files whose rows give back their own file's stem: :func:`row_stem`)."""
    joined = pc.binary_join_element_wise(ds.field("study"), ds.field("trial_id"), ds.field("method"),
                                         ds.field(ROW_SET_FIELD[table]), ".")
    return pc.replace_substring_regex(joined, pattern=UNSAFE_IN_STEMS, replacement="-")


def row_stem(study: str, trial_id: str, method: str, row_set: str) -> str:
    """What :func:`stem_expression` computes for a row with these values."""
    return re.sub(UNSAFE_IN_STEMS, "-", f"{study}.{trial_id}.{method}.{row_set}")


def row_set_expression(table: str) -> pc.Expression:
    """``<dataset>/<holdout_class>/<seed>/<stem>`` of each row: which small file's row set it is."""
    return pc.binary_join_element_wise(ds.field("dataset"), ds.field("holdout_class").cast(pa.string()),
                                       ds.field("seed").cast(pa.string()), stem_expression(table), "/")


def row_set_prefix(folder: str) -> str:
    """``dataset=D/holdout_class=K/seed=S`` -> ``D/K/S/``: how the row sets of that partition begin."""
    return "/".join(partition_of(folder) or ()) + "/"


def row_set_of(relative_path: str) -> str | None:
    """The row set (see :func:`row_set_expression`) a small file at ``relative_path`` (relative to its
    table's folder) holds, or None for a path outside the partition layout."""
    folder, _, name = relative_path.rpartition("/")
    values = partition_of(folder)
    if values is None or not name.endswith(".parquet"):
        return None
    return f"{row_set_prefix(folder)}{name[: -len('.parquet')]}"

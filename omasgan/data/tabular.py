"""The ``tabular`` data set: a user's Parquet, CSV, NPY or NPZ file with an integer label column.

pandas (and through it pyarrow, for Parquet) is imported only inside the functions that read files.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

import numpy as np

from ..errors import ConfigError, DataError, DataMissingError
from .raw import RawData, as_float64

TABULAR_SUFFIXES = (".parquet", ".pq", ".csv", ".npy", ".npz")


def _integer_labels(values, path: Path, column: str) -> np.ndarray:
    """Convert label values to int64, raising DataError when any is missing or not an integer."""
    import pandas as pd

    raw = np.asarray(values)
    if raw.dtype.kind in "OUS":
        raw = pd.to_numeric(pd.Series(raw.reshape(-1)), errors="coerce").to_numpy()
    if raw.dtype.kind == "b":
        raw = raw.astype(np.int64)
    if raw.dtype.kind not in "iuf":
        raise DataError(f"labels in column {column} of {path} are {raw.dtype}; they must be integers")
    raw = raw.reshape(-1)
    if raw.dtype.kind == "f":
        bad = ~np.isfinite(raw) | (raw != np.round(raw))
        if bad.any():
            first = np.flatnonzero(bad)[0]
            raise DataError(f"labels in column {column} of {path} must be integers: {int(bad.sum())} are "
                            f"missing or not integral (first at row {first})")
    return raw.astype(np.int64)


def _read_frame(path: Path, label_column: str | int) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Read a Parquet/CSV file; return (float64 features, int64 labels, feature column names)."""
    import pandas as pd

    try:
        frame = pd.read_csv(path) if path.suffix.lower() == ".csv" else pd.read_parquet(path)
    except Exception as exc:  # pandas/pyarrow raise many types for damaged files
        raise DataError(f"cannot read tabular file {path}: {str(exc).splitlines()[0] if str(exc) else exc!r}") from exc
    columns = list(frame.columns)
    if label_column in columns:
        label_pos = columns.index(label_column)
    elif isinstance(label_column, (int, np.integer)) and not isinstance(label_column, bool) \
            and -len(columns) <= label_column < len(columns):
        label_pos = int(label_column) % len(columns)
    else:
        raise DataError(f"label column {label_column!r} is not in {path}; available columns: "
                        f"{', '.join(str(c) for c in columns)}")
    label_name = columns[label_pos]
    features = frame.drop(columns=[label_name])
    non_numeric = [str(c) for c in features.columns
                   if not (pd.api.types.is_numeric_dtype(features[c]) or pd.api.types.is_bool_dtype(features[c]))]
    if non_numeric:
        raise DataError(f"feature columns of {path} must be numeric; not numeric: {', '.join(non_numeric)}")
    labels = _integer_labels(frame[label_name].to_numpy(), path, repr(label_name))
    return features.to_numpy(dtype=np.float64), labels, [str(c) for c in features.columns]


def _read_arrays(path: Path, label_column: str | int) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Read an NPY (2-D, label in column ``label_column``, default last) or NPZ (arrays X and y) file."""
    try:
        loaded = np.load(path, allow_pickle=False)
    except Exception as exc:
        raise DataError(f"cannot read tabular file {path}: {exc}") from exc
    if path.suffix.lower() == ".npz":
        with loaded:
            if "X" not in loaded.files or "y" not in loaded.files:
                raise DataError(f"{path} must hold arrays 'X' and 'y'; it holds: {', '.join(loaded.files)}")
            x, y = loaded["X"], loaded["y"]
        if x.ndim != 2 or y.reshape(-1).shape[0] != x.shape[0]:
            raise DataError(f"{path}: X must be 2-D (N, D) and y hold N labels; found X {x.shape}, y {y.shape}")
        if x.dtype.kind not in "biuf":
            raise DataError(f"{path}: X must be numeric, found dtype {x.dtype}")
        return x.astype(np.float64), _integer_labels(y, path, "'y'"), [str(i) for i in range(x.shape[1])]
    array = loaded
    if array.ndim != 2 or array.dtype.kind not in "biuf":
        raise DataError(f"{path} must hold a 2-D numeric array (rows = samples), found {array.dtype} {array.shape}")
    if label_column == "label":
        label_column = -1
    if isinstance(label_column, bool) or not isinstance(label_column, (int, np.integer)):
        raise ConfigError(f"label_column for a .npy file must be an integer column index, got {label_column!r}")
    n_cols = array.shape[1]
    if not -n_cols <= label_column < n_cols or n_cols < 2:
        raise DataError(f"label column {label_column} is not in {path}; available columns: 0-{n_cols - 1}")
    pos = int(label_column) % n_cols
    kept = [i for i in range(n_cols) if i != pos]
    labels = _integer_labels(array[:, pos], path, str(pos))
    return array[:, kept].astype(np.float64), labels, [str(i) for i in kept]


def read_tabular(path: str | os.PathLike, label_column: str | int = "label") -> tuple[np.ndarray, np.ndarray]:
    """Read a tabular file into (float64 features (N, D), int64 labels (N,)).

    ``.parquet``/``.pq`` (pandas.read_parquet) and ``.csv`` (pandas.read_csv) take ``label_column``
    as a column name, or as a position when no column has that name; ``.npy`` holds one 2-D numeric
    array whose label column is the int ``label_column`` (the default ``"label"`` means the last);
    ``.npz`` holds arrays ``X`` (N, D) and ``y`` (N,). Raises DataError for a missing file, an
    unknown suffix, a missing label column (listing the available ones), non-integer labels,
    non-numeric features, no feature column, and any NaN/inf feature (naming the count and the first
    offending column).
    """
    path = Path(path)
    if path.suffix.lower() not in TABULAR_SUFFIXES:
        raise DataError(f"tabular file {path} has an unsupported suffix {path.suffix!r}; "
                        f"use one of: {', '.join(TABULAR_SUFFIXES)}")
    if not path.is_file():
        raise DataMissingError(f"tabular file {path} is missing")
    if path.suffix.lower() in (".npy", ".npz"):
        x, y, names = _read_arrays(path, label_column)
    else:
        x, y, names = _read_frame(path, label_column)
    if x.shape[1] == 0:
        raise DataError(f"tabular file {path} has no feature columns besides the label")
    if x.shape[0] == 0:
        raise DataError(f"tabular file {path} has no rows")
    bad = ~np.isfinite(x)
    if bad.any():
        first = names[int(np.flatnonzero(bad.any(axis=0))[0])]
        raise DataError(f"tabular file {path} has {int(bad.sum())} NaN/inf feature values "
                        f"(first in column {first!r})")
    return x, y


@functools.lru_cache(maxsize=2)
def _load_cached(path: str, mtime_ns: int, size: int, label_column: str | int) -> RawData:
    """Read and split a tabular file; cached on (path, mtime, size, label column)."""
    from sklearn.model_selection import train_test_split

    x, y = read_tabular(path, label_column)
    classes, counts = np.unique(y, return_counts=True)
    if counts.min() < 2:
        raise DataError(f"class {int(classes[counts.argmin()])} of tabular file {path} has only "
                        f"{int(counts.min())} sample; the stratified 70/30 split needs at least 2 per class")
    train_x, test_x, train_y, test_y = train_test_split(x, y, test_size=0.3, stratify=y, random_state=0)
    for a in (train_x, test_x, train_y, test_y):
        a.flags.writeable = False
    return RawData("tabular", train_x, train_y, test_x, test_y, (x.shape[1],), False,
                   tuple(int(c) for c in classes), scale=as_float64, standardise=True)


def load_tabular(path: str | os.PathLike | None, label_column: str | int = "label") -> RawData:
    """Load a tabular file as RawData with a fixed stratified 70/30 train/test split
    (``random_state=0``); features stay raw here and are standardised by the split logic with the
    normal training split's statistics. Raises ConfigError when ``path`` is None."""
    if path is None:
        raise ConfigError("dataset 'tabular' needs tabular_path (--tabular-path) pointing to a "
                          f"{', '.join(TABULAR_SUFFIXES)} file")
    p = Path(path).resolve()
    if not p.is_file():
        raise DataMissingError(f"tabular file {p} is missing")
    st = p.stat()
    return _load_cached(str(p), st.st_mtime_ns, st.st_size, label_column)

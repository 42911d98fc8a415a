"""Image data sets: sklearn ``digits``, the MNIST family (IDX), CIFAR-10 (python pickles), SVHN (.mat).

Files are read by the small readers here, in the directory layouts torchvision uses, never through
torchvision's dataset classes; torchvision is imported only by :func:`download_images`, which runs
only when the caller asked for a download. Every loader returns a :class:`RawData` whose images are
uint8 arrays (N, C, H, W) scaled to float32 [-1, 1] on demand.
"""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import numpy as np

from ..errors import DataError, DataMissingError
from .idx import check_idx_file, read_idx
from .raw import RawData, uint8_to_unit

TEN_CLASSES = tuple(range(10))

# dataset name -> (folder under the root, display name, torchvision class name)
IDX_SETS = {
    "mnist": ("MNIST", "MNIST", "MNIST"),
    "fashion_mnist": ("FashionMNIST", "Fashion-MNIST", "FashionMNIST"),
    "kmnist": ("KMNIST", "KMNIST", "KMNIST"),
}
IDX_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
CIFAR_DIR = "cifar-10-batches-py"
CIFAR_TRAIN = tuple(f"data_batch_{i}" for i in range(1, 6))
CIFAR_TEST = "test_batch"
SVHN_FILES = {"train": "train_32x32.mat", "test": "test_32x32.mat"}
FILE_SETS = tuple(IDX_SETS) + ("cifar10", "svhn")
NOMINAL_SHAPES = {"mnist": (1, 28, 28), "fashion_mnist": (1, 28, 28), "kmnist": (1, 28, 28),
                  "cifar10": (3, 32, 32), "svhn": (3, 32, 32), "digits": (1, 8, 8)}


# --------------------------------------------------------------------------------------- digits
def load_digits_set() -> RawData:
    """sklearn's 8x8 ``digits`` (1797 images, values 0..16) with a fixed stratified 70/30
    train/test split (``random_state=0``); images (N, 1, 8, 8) scaled to [-1, 1] as ``x / 8 - 1``."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    bunch = load_digits()
    x = bunch.images.astype(np.float32).reshape(-1, 1, 8, 8)
    y = bunch.target.astype(np.int64)
    train_x, test_x, train_y, test_y = train_test_split(x, y, test_size=0.3, stratify=y, random_state=0)
    return RawData("digits", train_x, train_y, test_x, test_y, (1, 8, 8), True, TEN_CLASSES,
                   scale=_digits_scale)


def _digits_scale(x: np.ndarray) -> np.ndarray:
    """Map digits pixel values 0..16 to float32 [-1, 1] as ``x / 8 - 1``."""
    return (x.astype(np.float32) / np.float32(8.0)) - np.float32(1.0)


# ------------------------------------------------------------------------------ file locations
def _idx_path(folder: Path, name: str) -> Path:
    """The raw IDX file ``folder/name`` if present, else its ``.gz`` if present, else the raw path."""
    raw = folder / name
    gz = folder / (name + ".gz")
    return gz if (not raw.exists() and gz.exists()) else raw


def required_files(dataset: str, root: str | os.PathLike) -> list[Path]:
    """The files ``dataset`` needs under ``root`` (IDX files resolved to their ``.gz`` when only
    that exists)."""
    root = Path(root)
    if dataset in IDX_SETS:
        folder = root / IDX_SETS[dataset][0] / "raw"
        return [_idx_path(folder, n) for split in ("train", "test") for n in IDX_FILES[split]]
    if dataset == "cifar10":
        return [root / CIFAR_DIR / n for n in CIFAR_TRAIN + (CIFAR_TEST,)]
    if dataset == "svhn":
        return [root / SVHN_FILES["train"], root / SVHN_FILES["test"]]
    raise ValueError(f"{dataset!r} is not a file-backed image data set")


def missing_message(dataset: str, root: str | os.PathLike, path: Path) -> str:
    """The one-line message for a missing file of ``dataset``: where to put it, or ``--download``."""
    root = Path(root)
    hint = "pass download=True (--download) to fetch them with torchvision"
    if dataset in IDX_SETS:
        folder, display, _ = IDX_SETS[dataset]
        return (f"{display} file {path} is missing; place the IDX files under {root / folder / 'raw'}/ "
                f"or {hint}")
    if dataset == "cifar10":
        return (f"CIFAR-10 file {path} is missing; place the python-version batches (data_batch_1..5, "
                f"test_batch) under {root / CIFAR_DIR}/ or {hint}")
    return (f"SVHN file {path} is missing; place train_32x32.mat and test_32x32.mat under {root}/ "
            f"or {hint}")


def check_image_files(dataset: str, root: str | os.PathLike, download: bool = False) -> tuple[int, ...]:
    """Cheap checks of ``dataset``'s files under ``root``; return its sample shape (C, H, W).

    A missing file raises DataError (naming it and the ``download`` option) unless ``download``
    is true, in which case the nominal shape is returned. IDX files are checked for a valid header,
    a size that matches the header, and image/label counts that agree; CIFAR-10 and SVHN files for
    being non-empty (their contents are checked when read).
    """
    files = required_files(dataset, root)
    missing = [p for p in files if not p.exists()]
    if missing:
        if download:
            return NOMINAL_SHAPES[dataset]
        raise DataMissingError(missing_message(dataset, root, missing[0]))
    for p in files:
        if p.stat().st_size == 0:
            raise DataError(f"{p} is truncated: the file is empty")
    if dataset not in IDX_SETS:
        return NOMINAL_SHAPES[dataset]
    shape = None
    for images, labels in zip(files[0::2], files[1::2]):
        img_shape = check_idx_file(images, ndim=3)
        lab_shape = check_idx_file(labels, ndim=1)
        if img_shape[0] != lab_shape[0]:
            raise DataError(f"{images} has {img_shape[0]} images but {labels} has {lab_shape[0]} labels")
        if shape is not None and img_shape[1:] != shape[1:]:
            raise DataError(f"{images} holds {img_shape[1]}x{img_shape[2]} images but the training "
                            f"images are {shape[1]}x{shape[2]}")
        shape = img_shape
    return (1, shape[1], shape[2])


# ------------------------------------------------------------------------------------- readers
def _check_labels(labels: np.ndarray, source: Path) -> np.ndarray:
    """Return ``labels`` as int64, raising DataError when any lies outside 0..9."""
    labels = np.asarray(labels).astype(np.int64).reshape(-1)
    bad = labels[(labels < 0) | (labels > 9)]
    if bad.size:
        raise DataError(f"{source} has {bad.size} labels outside 0-9 (first: {int(bad[0])})")
    return labels


def load_idx_set(dataset: str, root: str | os.PathLike) -> RawData:
    """Read ``mnist``, ``fashion_mnist`` or ``kmnist`` from ``{root}/<Folder>/raw/`` (raw or .gz IDX);
    images become uint8 (N, 1, H, W)."""
    shape = check_image_files(dataset, root)
    files = required_files(dataset, root)
    parts = []
    for images, labels in zip(files[0::2], files[1::2]):
        x = read_idx(images, ndim=3)
        if x.dtype != np.uint8:
            raise DataError(f"{images} holds {x.dtype} pixels; MNIST-style images must be unsigned bytes")
        parts += [x[:, None, :, :], _check_labels(read_idx(labels, ndim=1), labels)]
    return RawData(dataset, parts[0], parts[1], parts[2], parts[3], shape, True, TEN_CLASSES,
                   scale=uint8_to_unit)


class _ArrayUnpickler(pickle.Unpickler):
    """An unpickler that only rebuilds numpy arrays and plain containers (what CIFAR batches hold)."""

    _ALLOWED = {
        ("numpy", "ndarray"), ("numpy", "dtype"),
        ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
        ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
        ("numpy.core.numeric", "_frombuffer"), ("numpy._core.numeric", "_frombuffer"),
        ("builtins", "bytearray"), ("_codecs", "encode"),
    }

    def find_class(self, module: str, name: str):
        if (module, name) not in self._ALLOWED:
            raise pickle.UnpicklingError(f"global {module}.{name} is not allowed in a CIFAR-10 batch")
        if module.startswith("numpy.core.") and hasattr(np, "_core"):
            module = "numpy._core." + module[len("numpy.core."):]
        return super().find_class(module, name)


def read_cifar_batch(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """Read one CIFAR-10 python batch (a pickled dict with ``b"data"`` uint8 (N, 3072) and
    ``b"labels"``); return uint8 images (N, 3, 32, 32) and int64 labels."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            batch = _ArrayUnpickler(f, encoding="bytes").load()
    except (EOFError, pickle.UnpicklingError, ValueError, TypeError, OSError) as exc:
        raise DataError(f"{path} is truncated or not a CIFAR-10 python batch: {exc}") from exc
    if not isinstance(batch, dict) or b"data" not in batch or b"labels" not in batch:
        keys = sorted(batch) if isinstance(batch, dict) else type(batch).__name__
        raise DataError(f"{path} is not a CIFAR-10 python batch: expected keys b'data' and b'labels', found {keys}")
    data = np.asarray(batch[b"data"])
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072:
        raise DataError(f"{path}: b'data' must be uint8 of shape (N, 3072), found {data.dtype} {data.shape}")
    labels = _check_labels(batch[b"labels"], path)
    if len(labels) != len(data):
        raise DataError(f"{path} has {len(data)} images but {len(labels)} labels")
    return data.reshape(-1, 3, 32, 32), labels


def load_cifar10(root: str | os.PathLike) -> RawData:
    """Read CIFAR-10 from ``{root}/cifar-10-batches-py/`` (data_batch_1..5 for train, test_batch)."""
    check_image_files("cifar10", root)
    folder = Path(root) / CIFAR_DIR
    train = [read_cifar_batch(folder / n) for n in CIFAR_TRAIN]
    test_x, test_y = read_cifar_batch(folder / CIFAR_TEST)
    return RawData("cifar10", np.concatenate([b[0] for b in train]), np.concatenate([b[1] for b in train]),
                   test_x, test_y, (3, 32, 32), True, TEN_CLASSES, scale=uint8_to_unit)


def read_svhn_mat(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """Read an SVHN ``*_32x32.mat`` (``X`` uint8 (32, 32, 3, N), ``y`` (N, 1) with 10 meaning
    digit 0); return uint8 images (N, 3, 32, 32) and int64 labels with 10 mapped to 0."""
    import scipy.io

    path = Path(path)
    try:
        mat = scipy.io.loadmat(path)
    except Exception as exc:  # scipy raises many types for damaged files
        raise DataError(f"{path} is truncated or not a MATLAB file: {exc}") from exc
    if "X" not in mat or "y" not in mat:
        raise DataError(f"{path} is not an SVHN file: expected variables X and y, found "
                        f"{sorted(k for k in mat if not k.startswith('__'))}")
    x, y = np.asarray(mat["X"]), np.asarray(mat["y"]).reshape(-1).astype(np.int64)
    if x.ndim != 4 or x.shape[:3] != (32, 32, 3) or x.dtype != np.uint8:
        raise DataError(f"{path}: X must be uint8 of shape (32, 32, 3, N), found {x.dtype} {x.shape}")
    if x.shape[3] != len(y):
        raise DataError(f"{path} has {x.shape[3]} images but {len(y)} labels")
    y = np.where(y == 10, 0, y)
    return np.ascontiguousarray(x.transpose(3, 2, 0, 1)), _check_labels(y, path)


def load_svhn(root: str | os.PathLike) -> RawData:
    """Read SVHN from ``{root}/train_32x32.mat`` and ``{root}/test_32x32.mat``."""
    check_image_files("svhn", root)
    train_x, train_y = read_svhn_mat(Path(root) / SVHN_FILES["train"])
    test_x, test_y = read_svhn_mat(Path(root) / SVHN_FILES["test"])
    return RawData("svhn", train_x, train_y, test_x, test_y, (3, 32, 32), True, TEN_CLASSES,
                   scale=uint8_to_unit)


def load_image_set(dataset: str, root: str | os.PathLike) -> RawData:
    """Read a file-backed image set (``mnist``, ``fashion_mnist``, ``kmnist``, ``cifar10``, ``svhn``)."""
    if dataset in IDX_SETS:
        return load_idx_set(dataset, root)
    if dataset == "cifar10":
        return load_cifar10(root)
    return load_svhn(root)


def download_images(dataset: str, root: str | os.PathLike) -> None:
    """Fetch ``dataset``'s train and test files into ``root`` with torchvision (internet needed).

    Raises DataError naming the data set and root when the download fails.
    """
    import torchvision.datasets as tvd

    root = str(root)
    try:
        if dataset in IDX_SETS:
            cls = getattr(tvd, IDX_SETS[dataset][2])
            for train in (True, False):
                cls(root, train=train, download=True)
        elif dataset == "cifar10":
            for train in (True, False):
                tvd.CIFAR10(root, train=train, download=True)
        else:
            for split in ("train", "test"):
                tvd.SVHN(root, split=split, download=True)
    except Exception as exc:  # network and checksum errors come in many types
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise DataError(f"downloading {dataset} into {root} failed: {first}") from exc

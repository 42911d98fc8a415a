"""Data set names, request validation and :func:`load_splits`, the package's entry point."""

from __future__ import annotations

import numbers
from pathlib import Path

import torch

from ..config import MAX_IMAGE_SIZE
from ..errors import ConfigError, DataError
from ..vocabulary import DATASET_NAMES
from .images import FILE_SETS, NOMINAL_SHAPES, TEN_CLASSES, check_image_files, download_images, \
    load_digits_set, load_image_set, required_files
from .raw import RawData, format_classes
from .splits import PROTOCOLS, DataSplits, make_splits
from .synthetic import SYNTHETIC_CLASSES, load_synthetic
from .tabular import load_tabular

DATASETS = DATASET_NAMES  # the name this module has always exported
DEFAULT_DATA_ROOT = "./data"


def _root(data_root: str | None) -> Path:
    """The data root: ``data_root``, or ``./data`` when None."""
    return Path(DEFAULT_DATA_ROOT if data_root is None else data_root)


def _check_dataset_name(dataset, role: str = "dataset") -> None:
    """Raise ConfigError unless ``dataset`` is one of DATASETS."""
    if dataset not in DATASETS:
        raise ConfigError(f"unknown {role} {dataset!r}; choose one of: {', '.join(DATASETS)}")


def dataset_classes(dataset: str, *, data_root: str | None = None, tabular_path: str | None = None,
                    label_column: str | int = "label") -> tuple[int, ...]:
    """Every class label ``dataset`` has: 0-4 for ``synthetic``, 0-9 for the image sets, and the
    sorted distinct labels of the file for ``tabular`` (which reads it). ``data_root`` is accepted
    for symmetry; the image sets' classes do not depend on their files."""
    _check_dataset_name(dataset)
    if dataset == "synthetic":
        return SYNTHETIC_CLASSES
    if dataset == "tabular":
        return load_tabular(tabular_path, label_column).classes
    return TEN_CLASSES


def _sample_shape(dataset: str, root: Path, download: bool, tabular_path, label_column) -> tuple[int, ...]:
    """``dataset``'s sample shape after the cheap file checks (which raise on missing/truncated files)."""
    if dataset == "synthetic":
        return (2,)
    if dataset == "digits":
        return NOMINAL_SHAPES["digits"]
    if dataset == "tabular":
        return load_tabular(tabular_path, label_column).sample_shape
    return check_image_files(dataset, root, download)


def validate_data_request(dataset: str, protocol: str, holdout: int | None, *, data_root: str | None = None,
                          ood_dataset: str | None = None, download: bool = False,
                          tabular_path: str | None = None, label_column: str | int = "label",
                          image_size: int | None = None) -> tuple[int, ...]:
    """Run every cheap check of a data request, raising a one-line ConfigError or DataError, and
    return the sample shape the networks will take.

    Checks: ``dataset`` and ``protocol`` are known names; for ``loo``/``occ`` ``holdout`` is an int
    class of the data set (for ``ood`` it is ignored); for ``ood`` ``ood_dataset`` is a known name
    other than ``dataset`` with the same sample shape; the required files exist (unless
    ``download``) and are not truncated (IDX: header-implied size vs file size); a tabular file is
    readable, with its label column and finite features; ``image_size`` (when not None) is an
    integer in 1..MAX_IMAGE_SIZE, the data set holds (C, H, W) images, and it is at least H and W
    (images are only enlarged).  The returned shape is the data set's, or (C, image_size,
    image_size).
    """
    _check_dataset_name(dataset)
    if protocol not in PROTOCOLS:
        raise ConfigError(f"unknown protocol {protocol!r}; choose one of: {', '.join(PROTOCOLS)}")
    root = _root(data_root)
    shape = _sample_shape(dataset, root, download, tabular_path, label_column)
    if protocol == "ood":
        if ood_dataset is None:
            raise ConfigError(f"protocol 'ood' needs ood_dataset (--ood-dataset), the anomaly data set; "
                              f"choose one of: {', '.join(d for d in DATASETS if d != dataset)}")
        _check_dataset_name(ood_dataset, "ood_dataset")
        if ood_dataset == dataset:
            raise ConfigError(f"ood_dataset {ood_dataset!r} must differ from dataset {dataset!r}")
        ood_shape = _sample_shape(ood_dataset, root, download, tabular_path, label_column)
        if tuple(ood_shape) != tuple(shape):
            raise DataError(f"ood needs data sets with the same sample shape: {dataset!r} has {tuple(shape)} "
                            f"but {ood_dataset!r} has {tuple(ood_shape)}")
        return _model_shape(dataset, tuple(shape), image_size)
    classes = dataset_classes(dataset, data_root=data_root, tabular_path=tabular_path, label_column=label_column)
    if holdout is None or isinstance(holdout, bool) or not isinstance(holdout, numbers.Integral):
        raise ConfigError(f"protocol {protocol!r} needs an integer holdout class, got {holdout!r} "
                          f"(classes of {dataset!r}: {format_classes(classes)})")
    if int(holdout) not in classes:
        raise ConfigError(f"holdout class {holdout} is not in dataset {dataset!r} "
                          f"(classes {format_classes(classes)})")
    return _model_shape(dataset, tuple(shape), image_size)


def _model_shape(dataset: str, shape: tuple[int, ...], image_size) -> tuple[int, ...]:
    """``shape``, or (C, image_size, image_size) after checking ``image_size`` against it (one-line
    ConfigError naming the value and what is allowed)."""
    if image_size is None:
        return tuple(int(d) for d in shape)
    if isinstance(image_size, bool) or not isinstance(image_size, numbers.Integral) \
            or not 1 <= image_size <= MAX_IMAGE_SIZE:
        raise ConfigError(f"data.image_size={image_size!r} is out of range; it must be an integer in "
                          f"1..{MAX_IMAGE_SIZE} or null (the native size)")
    if dataset in ("synthetic", "tabular") or len(shape) != 3:
        raise ConfigError(f"data.image_size={image_size} applies to image data sets only; {dataset!r} holds "
                          f"samples of shape {shape}: leave data.image_size null")
    if image_size < max(shape[1:]):
        raise ConfigError(f"data.image_size={image_size} is smaller than {dataset!r}'s {shape[1]}x{shape[2]} "
                          f"images; it must be >= {max(shape[1:])} (images are only enlarged) or null")
    return (int(shape[0]), int(image_size), int(image_size))


def _check_load_options(split_seed, val_fraction, val_anomaly_fraction, max_train, synthetic_n_per_class) -> None:
    """Raise ConfigError for an out-of-range split option of :func:`load_splits`."""
    def is_int(v):
        return isinstance(v, numbers.Integral) and not isinstance(v, bool)

    if not is_int(split_seed) or split_seed < 0:
        raise ConfigError(f"split_seed must be a non-negative integer, got {split_seed!r}")
    if not isinstance(val_fraction, numbers.Real) or not 0 < val_fraction < 1:
        raise ConfigError(f"val_fraction must be in (0, 1), got {val_fraction!r}")
    if not isinstance(val_anomaly_fraction, numbers.Real) or not 0 < val_anomaly_fraction <= 1:
        raise ConfigError(f"val_anomaly_fraction must be in (0, 1], got {val_anomaly_fraction!r}")
    if max_train is not None and (not is_int(max_train) or max_train < 1):
        raise ConfigError(f"max_train must be a positive integer or None, got {max_train!r}")
    if not is_int(synthetic_n_per_class) or synthetic_n_per_class < 2:
        raise ConfigError(f"synthetic_n_per_class must be an integer >= 2, got {synthetic_n_per_class!r}")


def _load_raw(dataset: str, root: Path, download: bool, tabular_path, label_column,
              synthetic_n_per_class: int) -> RawData:
    """Load ``dataset``'s official train/test splits, downloading missing image files first when
    ``download`` is set."""
    if dataset == "synthetic":
        return load_synthetic(synthetic_n_per_class)
    if dataset == "digits":
        return load_digits_set()
    if dataset == "tabular":
        return load_tabular(tabular_path, label_column)
    assert dataset in FILE_SETS
    if download and any(not p.exists() for p in required_files(dataset, root)):
        root.mkdir(parents=True, exist_ok=True)
        download_images(dataset, root)
    return load_image_set(dataset, root)


def load_splits(dataset: str, protocol: str = "loo", holdout: int | None = 0, *, data_root: str | None = None,
                split_seed: int = 0, val_fraction: float = 0.1, val_anomaly_fraction: float = 0.05,
                ood_dataset: str | None = None, download: bool = False, max_train: int | None = None,
                tabular_path: str | None = None, label_column: str | int = "label",
                synthetic_n_per_class: int = 1000, image_size: int | None = None,
                device: str | torch.device = "cpu") -> DataSplits:
    """Load ``dataset`` and return its ``protocol`` splits as float32 tensors on ``device``.

    Calls :func:`validate_data_request` first, then reads the data (fetching missing image files
    with torchvision only when ``download`` is true) and cuts the splits as
    :func:`omasgan.data.splits.make_splits` describes: they depend on ``split_seed`` alone.
    ``data_root`` defaults to ``./data``. Images are scaled to [-1, 1]; tabular features are
    standardised with the normal training split's statistics; synthetic points stay raw.
    ``image_size`` (default None, the native size) enlarges every image of every split to
    image_size x image_size (:func:`omasgan.transform.resize_images`, bilinear).
    """
    validate_data_request(dataset, protocol, holdout, data_root=data_root, ood_dataset=ood_dataset,
                          download=download, tabular_path=tabular_path, label_column=label_column,
                          image_size=image_size)
    _check_load_options(split_seed, val_fraction, val_anomaly_fraction, max_train, synthetic_n_per_class)
    root = _root(data_root)
    a = _load_raw(dataset, root, download, tabular_path, label_column, synthetic_n_per_class)
    b = None
    if protocol == "ood":
        b = _load_raw(ood_dataset, root, download, tabular_path, label_column, synthetic_n_per_class)
        holdout = None
    else:
        holdout = int(holdout)
    splits = make_splits(a, protocol, holdout, b=b, split_seed=int(split_seed), val_fraction=float(val_fraction),
                         val_anomaly_fraction=float(val_anomaly_fraction), max_train=max_train,
                         image_size=None if image_size is None else int(image_size))
    return splits.to(device)

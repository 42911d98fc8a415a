"""Evaluation protocols and the train / validation / test split (docs/design.md section 4).

train      = normal samples of the data set's TRAINING split, minus a validation fraction;
validation = that held-back normal part (label 0) + a fraction of the anomaly samples of the
             TRAINING split (label 1);
test       = the official TEST split, normal classes labelled 0 and anomaly classes 1.
Every random choice uses numpy generators seeded from ``split_seed`` alone.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import torch

from ..errors import DataError
from ..vocabulary import PROTOCOL_NAMES
from ..transform import RAW_AFFINE, InputTransform, resize_images
from .raw import RawData, format_classes

PROTOCOLS = PROTOCOL_NAMES  # the name this module has always exported

# stream ids mixed into split_seed so each random choice has its own generator
_VAL_STREAM, _ANOMALY_STREAM, _MAX_TRAIN_STREAM = 0, 1, 2


@dataclass
class DataSplits:
    """A protocol's three splits as whole float32 tensors (no DataLoader).

    ``train_x`` holds normal samples only. ``val_y``/``test_y`` are float32 with 0 = normal and
    1 = anomaly; within ``val_x`` and (for ``ood``) ``test_x`` the normal rows come first.
    ``sample_shape`` is (C, H, W) for images and (D,) for vectors. ``classes`` lists every class
    of the data set, ``anomaly_classes`` for ``ood`` the classes of the second data set.
    """

    train_x: torch.Tensor
    val_x: torch.Tensor
    val_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor
    sample_shape: tuple[int, ...]
    is_image: bool
    classes: tuple[int, ...]
    normal_classes: tuple[int, ...]
    anomaly_classes: tuple[int, ...]
    description: str
    input_transform: InputTransform | None = None
    """How raw values of this data set map to the model's input (kept with saved models)."""

    def to(self, device: str | torch.device) -> "DataSplits":
        """Return a copy whose five tensors are on ``device`` (the other fields are shared)."""
        return dataclasses.replace(
            self,
            train_x=self.train_x.to(device),
            val_x=self.val_x.to(device),
            val_y=self.val_y.to(device),
            test_x=self.test_x.to(device),
            test_y=self.test_y.to(device),
        )

    def summary(self) -> dict:
        """Sample counts per split, anomaly counts, shape and classes as a JSON-serialisable dict."""
        val_anom = int(self.val_y.sum().item())
        test_anom = int(self.test_y.sum().item())
        return {
            "train": int(self.train_x.shape[0]),
            "val": int(self.val_x.shape[0]),
            "val_normal": int(self.val_x.shape[0]) - val_anom,
            "val_anomalies": val_anom,
            "test": int(self.test_x.shape[0]),
            "test_normal": int(self.test_x.shape[0]) - test_anom,
            "test_anomalies": test_anom,
            "sample_shape": [int(s) for s in self.sample_shape],
            "is_image": bool(self.is_image),
            "classes": [int(c) for c in self.classes],
            "normal_classes": [int(c) for c in self.normal_classes],
            "anomaly_classes": [int(c) for c in self.anomaly_classes],
            "description": self.description,
        }


def protocol_classes(protocol: str, classes: tuple[int, ...], holdout: int | None,
                     ood_classes: tuple[int, ...] = ()) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Return (normal classes, anomaly classes): ``loo`` holds ``holdout`` out as the anomaly,
    ``occ`` keeps only ``holdout`` as normal, ``ood`` takes every class of the set as normal and
    ``ood_classes`` (the second set's) as anomalies."""
    if protocol == "loo":
        return tuple(c for c in classes if c != holdout), (holdout,)
    if protocol == "occ":
        return (holdout,), tuple(c for c in classes if c != holdout)
    return tuple(classes), tuple(ood_classes)


def _choose(n_total: int, n_pick: int, split_seed: int, stream: int) -> np.ndarray:
    """Sorted positions of ``n_pick`` of ``n_total`` items drawn without replacement by a numpy
    generator seeded with ``(split_seed, stream)``."""
    rng = np.random.default_rng([split_seed, stream])
    return np.sort(rng.permutation(n_total)[:n_pick])


def validation_count(n_normal: int, val_fraction: float) -> int:
    """How many of ``n_normal`` training normals go to validation: ``round(fraction * n)``, at
    least 1, but leaving at least 1 for training (0 when ``n_normal < 2``)."""
    if n_normal < 2:
        return 0
    return min(max(1, int(round(val_fraction * n_normal))), n_normal - 1)


def _tensor(x: np.ndarray) -> torch.Tensor:
    """A contiguous float32 tensor copy of ``x``."""
    return torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))


def _check_image_size(a: RawData, image_size: int) -> None:
    """Raise DataError unless ``a`` holds (C, H, W) images that ``image_size`` enlarges (or keeps)."""
    shape = tuple(a.sample_shape)
    if not a.is_image or len(shape) != 3 or a.standardise:
        raise DataError(f"image_size={image_size} applies to image data sets only; {a.name!r} holds samples of shape {shape}")
    if image_size < max(shape[1:]):
        raise DataError(f"image_size={image_size} is smaller than {a.name!r}'s {shape[1]}x{shape[2]} images; "
                        f"images are only enlarged")


def make_splits(a: RawData, protocol: str, holdout: int | None, *, b: RawData | None = None,
                split_seed: int = 0, val_fraction: float = 0.1, val_anomaly_fraction: float = 0.05,
                max_train: int | None = None, image_size: int | None = None) -> DataSplits:
    """Apply ``protocol`` to data set ``a`` (and, for ``ood``, anomaly set ``b``) and cut the splits.

    The validation normals are ``validation_count`` of the training normals; the validation
    anomalies are ``round(val_anomaly_fraction * n)`` (at least 1) of the ``n`` anomaly samples of
    the training split (of ``b`` for ``ood``); ``max_train`` then subsamples the remaining training
    normals. When ``a.standardise`` is set, every split is standardised with the final training
    split's per-feature mean and std (a std of 0 counts as 1).  ``image_size`` = S enlarges every
    image of every split to (C, S, S) after scaling (:func:`omasgan.transform.resize_images`; the
    splits' ``sample_shape`` is then (C, S, S) and their ``input_transform`` resizes too); it is
    for image data sets of at most S x S pixels (checked by
    :func:`omasgan.data.registry.validate_data_request`). Raises DataError when the training
    split has no normal sample, when validation or test lacks normals or anomalies, and when ``b``'s
    sample shape differs from ``a``'s.
    """
    if protocol == "ood":
        if b is None:
            raise DataError("protocol 'ood' needs a second data set for the anomalies")
        if tuple(b.sample_shape) != tuple(a.sample_shape):
            raise DataError(f"ood needs data sets with the same sample shape: {a.name!r} has "
                            f"{tuple(a.sample_shape)} but {b.name!r} has {tuple(b.sample_shape)}")
    if image_size is not None:
        _check_image_size(a, image_size)
    normal, anomaly = protocol_classes(protocol, a.classes, holdout, b.classes if b is not None else ())
    what = f"{a.name} ood vs {b.name}" if protocol == "ood" else f"{a.name} {protocol} holdout={holdout}"

    normal_idx = np.flatnonzero(np.isin(a.train_y, normal))
    if normal_idx.size == 0:
        raise DataError(f"{what}: the training split has no normal samples "
                        f"(normal classes: {format_classes(normal)})")
    if protocol == "ood":
        pool_x, pool_scale, anom_idx = b.train_x, b.scale, np.arange(len(b.train_y))
    else:
        pool_x, pool_scale, anom_idx = a.train_x, a.scale, np.flatnonzero(np.isin(a.train_y, anomaly))

    n_val = validation_count(normal_idx.size, val_fraction)
    val_pos = _choose(normal_idx.size, n_val, split_seed, _VAL_STREAM)
    keep = np.ones(normal_idx.size, dtype=bool)
    keep[val_pos] = False
    val_idx, train_idx = normal_idx[val_pos], normal_idx[keep]
    if max_train is not None and train_idx.size > max_train:
        train_idx = train_idx[_choose(train_idx.size, max_train, split_seed, _MAX_TRAIN_STREAM)]
    n_anom = max(1, int(round(val_anomaly_fraction * anom_idx.size))) if anom_idx.size else 0
    val_anom_idx = anom_idx[_choose(anom_idx.size, n_anom, split_seed, _ANOMALY_STREAM)]

    train_x = a.scale(a.train_x[train_idx])
    val_x = np.concatenate([a.scale(a.train_x[val_idx]), pool_scale(pool_x[val_anom_idx])])
    val_y = np.concatenate([np.zeros(val_idx.size), np.ones(val_anom_idx.size)])
    if protocol == "ood":
        test_x = np.concatenate([a.scale(a.test_x), b.scale(b.test_x)])
        test_y = np.concatenate([np.zeros(len(a.test_y)), np.ones(len(b.test_y))])
    else:
        test_x = a.scale(a.test_x)
        test_y = np.isin(a.test_y, anomaly).astype(np.float64)

    for split, y in (("validation", val_y), ("test", test_y)):
        for label, kind in ((0, "normal"), (1, "anomaly")):
            if not (y == label).any():
                raise DataError(f"{what}: the {split} split has no {kind} samples "
                                f"(normal classes: {format_classes(normal)}; anomaly classes: "
                                f"{format_classes(anomaly)})")

    sample_shape = tuple(int(s) for s in a.sample_shape)
    if a.standardise:
        transform = InputTransform.standardising(np.asarray(train_x).reshape(len(train_x), -1))
        mean, std = np.asarray(transform.shift), np.asarray(transform.scale)
        train_x, val_x, test_x = ((x - mean) / std for x in (train_x, val_x, test_x))
    else:
        shift, scale = RAW_AFFINE.get(a.name, (0.0, 1.0))
        transform = InputTransform(sample_shape, shift, scale, image_size)

    train_t, val_t, test_t = _tensor(train_x), _tensor(val_x), _tensor(test_x)
    if image_size is not None:
        train_t, val_t, test_t = (resize_images(t, image_size) for t in (train_t, val_t, test_t))
        sample_shape = transform.model_shape

    n_va, n_ta = int(val_y.sum()), int(test_y.sum())
    size = "" if image_size is None else f", images enlarged to {image_size}x{image_size}"
    description = (f"{what}: {len(train_x)} train, {len(val_x)} val ({n_va} anomalies), "
                   f"{len(test_x)} test ({n_ta} anomalies){size}")
    return DataSplits(
        train_x=train_t, val_x=val_t, val_y=_tensor(val_y),
        test_x=test_t, test_y=_tensor(test_y),
        sample_shape=sample_shape, is_image=bool(a.is_image),
        classes=tuple(int(c) for c in a.classes), normal_classes=tuple(int(c) for c in normal),
        anomaly_classes=tuple(int(c) for c in anomaly), description=description,
        input_transform=transform,
    )

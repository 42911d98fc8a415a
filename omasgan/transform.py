"""The map from a data set's raw values to what the networks take: model_input = (raw - shift) / scale.

Image sets store uint8 pixels: shift = scale = 127.5 maps [0, 255] to [-1, 1]; sklearn digits store
0..16: shift = scale = 8; tabular data is standardised with the normal training split's per-feature
mean and std; synthetic 2-D data is used as it is.  A saved model keeps its transform, so
``omasgan score`` takes new data in the same raw units (and the same image size) as the training files.

``data.image_size`` = S enlarges every (C, H, W) image to (C, S, S) after the affine map
(:func:`resize_images`): the training, validation and test splits (:func:`omasgan.data.splits.make_splits`)
and, through the saved transform, whatever ``omasgan score`` reads.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from .errors import DataError

RESIZE_MODE = "bilinear"
"""How :func:`resize_images` interpolates: bilinear, half-pixel centres (``align_corners=False``),
no antialiasing filter.  For enlarging this is the interpolation of PIL's bilinear resize, the
default of ``torchvision.transforms.Resize``, which the paper's public code (built on BigGAN-PyTorch)
applies to MNIST (28 -> 32): on 8-bit images the two agree to within one grey level (PIL computes in
fixed point and rounds to 8 bits; this keeps float32)."""

RAW_AFFINE: dict[str, tuple[float, float]] = {
    "mnist": (127.5, 127.5),
    "fashion_mnist": (127.5, 127.5),
    "kmnist": (127.5, 127.5),
    "cifar10": (127.5, 127.5),
    "svhn": (127.5, 127.5),
    "digits": (8.0, 8.0),
    "synthetic": (0.0, 1.0),
}


def resize_images(x: torch.Tensor, size: int) -> torch.Tensor:
    """Images (N, C, H, W) as (N, C, size, size), interpolated as :data:`RESIZE_MODE` says; ``x``
    itself when it already has that size.  Each output pixel is a fixed convex combination of input
    pixels (no reduction across the batch), so the result depends on neither the batch nor the
    thread count, and it commutes with the affine map raw -> model input."""
    if tuple(x.shape[-2:]) == (size, size):
        return x
    return F.interpolate(x, size=(size, size), mode=RESIZE_MODE, align_corners=False, antialias=False)


@dataclass
class InputTransform:
    """model_input = (raw - shift) / scale, reshaped to ``sample_shape`` (shift/scale: scalars or
    one value per feature), then, when ``image_size`` is set, images (C, H, W) enlarged to
    (C, image_size, image_size) by :func:`resize_images`.  ``sample_shape`` is the raw samples'
    shape; :attr:`model_shape` is what the networks take."""

    sample_shape: tuple[int, ...]
    shift: float | list[float] = 0.0
    scale: float | list[float] = 1.0
    image_size: int | None = None

    @property
    def model_shape(self) -> tuple[int, ...]:
        """The shape the networks take: ``sample_shape``, or (C, image_size, image_size)."""
        if self.image_size is None:
            return tuple(self.sample_shape)
        return (int(self.sample_shape[0]), int(self.image_size), int(self.image_size))

    def apply(self, raw: Any) -> torch.Tensor:
        """Check and map raw samples (N, *sample_shape) or flattened (N, prod(sample_shape))."""
        array = np.asarray(raw, dtype=np.float64)
        size = int(np.prod(self.sample_shape))
        if array.ndim == 0 or array.shape[0] == 0:
            raise DataError("no samples to score: the input holds no rows")
        if array.ndim == 1 and size != 1:
            array = array.reshape(1, -1) if array.size == size else array
        flat = array.reshape(array.shape[0], -1)
        if flat.shape[1] != size:
            raise DataError(
                f"input samples have {flat.shape[1]} values each; the model takes shape {self.sample_shape} "
                f"({size} values)"
            )
        bad = ~np.isfinite(flat)
        if bad.any():
            row, col = np.argwhere(bad)[0]
            raise DataError(f"input holds {int(bad.sum())} NaN/inf values (first at row {row}, column {col})")
        shift = np.asarray(self.shift, dtype=np.float64).reshape(-1)
        scale = np.asarray(self.scale, dtype=np.float64).reshape(-1)
        mapped = (flat - shift) / scale
        x = torch.from_numpy(mapped.astype(np.float32).reshape((flat.shape[0],) + tuple(self.sample_shape)))
        return x if self.image_size is None else resize_images(x, self.image_size)

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (model.json's ``transform``); ``image_size`` only when set, so a transform
        without one writes what it always wrote."""
        document = {"sample_shape": list(self.sample_shape), "shift": self.shift, "scale": self.scale}
        if self.image_size is not None:
            document["image_size"] = int(self.image_size)
        return document

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> "InputTransform":
        return cls(tuple(raw["sample_shape"]), raw["shift"], raw["scale"], raw.get("image_size"))

    @classmethod
    def standardising(cls, x: np.ndarray) -> "InputTransform":
        """Per-feature standardisation fitted on x (N, D); a zero std counts as 1."""
        mean = x.mean(axis=0, dtype=np.float64)
        std = x.std(axis=0, dtype=np.float64)
        std[std == 0] = 1.0
        return cls((x.shape[1],), mean.tolist(), std.tolist())

"""The map from a data set's raw values to what the networks take: model_input = (raw - shift) / scale.

Image sets store uint8 pixels: shift = scale = 127.5 maps [0, 255] to [-1, 1]; sklearn digits store
0..16: shift = scale = 8; tabular data is standardised with the normal training split's per-feature
mean and std; synthetic 2-D data is used as it is.  A saved model keeps its transform, so
``omasgan score`` takes new data in the same raw units as the training files.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from .errors import DataError

RAW_AFFINE: dict[str, tuple[float, float]] = {
    "mnist": (127.5, 127.5),
    "fashion_mnist": (127.5, 127.5),
    "kmnist": (127.5, 127.5),
    "cifar10": (127.5, 127.5),
    "svhn": (127.5, 127.5),
    "digits": (8.0, 8.0),
    "synthetic": (0.0, 1.0),
}


@dataclass
class InputTransform:
    """model_input = (raw - shift) / scale, reshaped to ``sample_shape`` (shift/scale: scalars or
    one value per feature)."""

    sample_shape: tuple[int, ...]
    shift: float | list[float] = 0.0
    scale: float | list[float] = 1.0

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
        return torch.from_numpy(mapped.astype(np.float32).reshape((flat.shape[0],) + tuple(self.sample_shape)))

    def to_dict(self) -> dict[str, Any]:
        return {"sample_shape": list(self.sample_shape), "shift": self.shift, "scale": self.scale}

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> "InputTransform":
        return cls(tuple(raw["sample_shape"]), raw["shift"], raw["scale"])

    @classmethod
    def standardising(cls, x: np.ndarray) -> "InputTransform":
        """Per-feature standardisation fitted on x (N, D); a zero std counts as 1."""
        mean = x.mean(axis=0, dtype=np.float64)
        std = x.std(axis=0, dtype=np.float64)
        std[std == 0] = 1.0
        return cls((x.shape[1],), mean.tolist(), std.tolist())

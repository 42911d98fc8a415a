"""The in-memory form every loader returns before the protocol split: :class:`RawData`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np


def uint8_to_unit(x: np.ndarray) -> np.ndarray:
    """Map uint8 pixels to float32 in [-1, 1] as ``x / 255 * 2 - 1`` (0 -> -1, 255 -> 1)."""
    return (x.astype(np.float32) / np.float32(255.0)) * np.float32(2.0) - np.float32(1.0)


def as_float32(x: np.ndarray) -> np.ndarray:
    """Return ``x`` as a float32 array, values unchanged."""
    return np.asarray(x, dtype=np.float32)


def as_float64(x: np.ndarray) -> np.ndarray:
    """Return ``x`` as a float64 array, values unchanged (tabular data is standardised later)."""
    return np.asarray(x, dtype=np.float64)


@dataclass(frozen=True)
class RawData:
    """A data set's official train and test splits, before any protocol is applied.

    ``train_x``/``test_x`` keep the file's storage form (e.g. uint8 images of shape (N, C, H, W));
    ``scale`` maps any row subset of them to the model's float form, so only the rows a split
    needs are ever converted. ``train_y``/``test_y`` are int64 class labels. ``standardise`` asks
    the split logic to standardise features with the normal training split's mean and std.
    """

    name: str
    train_x: np.ndarray
    train_y: np.ndarray
    test_x: np.ndarray
    test_y: np.ndarray
    sample_shape: tuple[int, ...]
    is_image: bool
    classes: tuple[int, ...]
    scale: Callable[[np.ndarray], np.ndarray] = as_float32
    standardise: bool = False


def format_classes(classes: tuple[int, ...]) -> str:
    """Describe a class tuple compactly: ``0-9`` when contiguous, else ``1, 4, 7``."""
    if not classes:
        return "none"
    if len(classes) > 2 and tuple(classes) == tuple(range(classes[0], classes[-1] + 1)):
        return f"{classes[0]}-{classes[-1]}"
    return ", ".join(str(c) for c in classes)

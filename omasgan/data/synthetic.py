"""The 2-D ``synthetic`` data set: four Gaussian blobs enclosed by a ring, one class per component."""

from __future__ import annotations

import numpy as np

from .raw import RawData, as_float32

SYNTHETIC_CLASSES = (0, 1, 2, 3, 4)
BLOB_CENTRES = ((2.0, 2.0), (-2.0, 2.0), (-2.0, -2.0), (2.0, -2.0))
BLOB_STD = 0.2
RING_RADIUS = 4.5
RING_STD = 0.1
TRAIN_SEED = 1_000_003
TEST_SEED = 2_000_003


def sample_synthetic(n_per_class: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Draw ``n_per_class`` points of each of the 5 classes from a numpy generator seeded ``seed``.

    Classes 0-3 are isotropic Gaussians (std ``BLOB_STD``) centred at (2, 2), (-2, 2), (-2, -2),
    (2, -2); class 4 is a ring of radius ``RING_RADIUS`` around the origin with uniform angle and
    Gaussian radial noise (std ``RING_STD``). Returns float32 points (5 * n, 2) grouped by class
    and their int64 labels.
    """
    rng = np.random.default_rng(seed)
    xs, ys = [], []
    for label, centre in enumerate(BLOB_CENTRES):
        xs.append(rng.normal(loc=centre, scale=BLOB_STD, size=(n_per_class, 2)))
        ys.append(np.full(n_per_class, label, dtype=np.int64))
    angle = rng.uniform(0.0, 2.0 * np.pi, size=n_per_class)
    radius = RING_RADIUS + rng.normal(0.0, RING_STD, size=n_per_class)
    xs.append(np.stack([radius * np.cos(angle), radius * np.sin(angle)], axis=1))
    ys.append(np.full(n_per_class, 4, dtype=np.int64))
    return np.concatenate(xs).astype(np.float32), np.concatenate(ys)


def load_synthetic(n_per_class: int = 1000) -> RawData:
    """Build the synthetic set: ``n_per_class`` train points per class from the fixed train seed
    and ``max(1, n_per_class // 2)`` test points per class from the fixed test seed, in raw
    coordinates (no scaling). Independent of any split or training seed."""
    train_x, train_y = sample_synthetic(n_per_class, TRAIN_SEED)
    test_x, test_y = sample_synthetic(max(1, n_per_class // 2), TEST_SEED)
    return RawData(
        name="synthetic",
        train_x=train_x,
        train_y=train_y,
        test_x=test_x,
        test_y=test_y,
        sample_shape=(2,),
        is_image=False,
        classes=SYNTHETIC_CLASSES,
        scale=as_float32,
        standardise=False,
    )

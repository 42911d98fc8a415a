"""kNN baseline: the Euclidean distance from a sample x (flattened) to its k nearest training
normals n_1(x), ..., n_k(x) (sorted by distance): the mean (1/k) sum_i ||x - n_i(x)|| (``statistic =
"mean"``) or the k-th smallest ||x - n_k(x)|| (``"kth"``); scikit-learn ``NearestNeighbors``."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import ConfigError
from .protocol import BaselineDetector, flat_samples


class KNNDetector(BaselineDetector):
    """Nearest-neighbour distance to the training normals (see the module docstring)."""

    def __init__(self, k: int = 5, statistic: str = "mean", contamination: float = 0.05) -> None:
        self.k = k
        self.statistic = statistic
        self.contamination = contamination

    def fit(self, X: Any, y: Any = None) -> "KNNDetector":
        from sklearn.neighbors import NearestNeighbors

        train = flat_samples(X)
        if self.k > len(train):
            raise ConfigError(f"baseline.k={self.k} exceeds the {len(train)} training normals; "
                              f"choose k <= {len(train)}")
        self.index_ = NearestNeighbors(n_neighbors=self.k, metric="euclidean").fit(train)
        self.fit_threshold(X)
        return self

    def decision_function(self, X: Any) -> np.ndarray:
        """The mean distance to the k nearest training normals, or the k-th smallest distance."""
        distances, _ = self.index_.kneighbors(flat_samples(X), n_neighbors=self.k)
        distances = distances.astype(np.float64)
        return distances.mean(axis=1) if self.statistic == "mean" else distances[:, -1]

"""Isolation Forest baseline: scikit-learn ``IsolationForest`` on the flattened samples; the score
is ``-score_samples(x)`` = 2^(-E[h(x)] / c(n)) in (0, 1], with h(x) the path length isolating x in a
tree and c(n) the mean path length of an unsuccessful search among n samples: short average paths =
anomalous."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import ConfigError
from .protocol import BaselineDetector, flat_samples


class IsolationForestDetector(BaselineDetector):
    """scikit-learn's IsolationForest (one job) seeded with ``random_state``; ``max_samples=None``
    draws scikit-learn's ``auto`` (min(256, n)) samples per tree."""

    def __init__(self, n_estimators: int = 100, max_samples: int | None = None, random_state: int = 0,
                 contamination: float = 0.05) -> None:
        self.n_estimators = n_estimators
        self.max_samples = max_samples
        self.random_state = random_state
        self.contamination = contamination

    def fit(self, X: Any, y: Any = None) -> "IsolationForestDetector":
        from sklearn.ensemble import IsolationForest

        train = flat_samples(X)
        if self.max_samples and self.max_samples > len(train):
            raise ConfigError(f"baseline.max_samples={self.max_samples} exceeds the {len(train)} "
                              f"training normals; choose max_samples <= {len(train)}")
        self.forest_ = IsolationForest(n_estimators=self.n_estimators, max_samples=self.max_samples or "auto",
                                       random_state=self.random_state, n_jobs=1).fit(train)
        self.fit_threshold(X)
        return self

    def decision_function(self, X: Any) -> np.ndarray:
        """The forest's anomaly score 2^(-E[h(x)]/c(n)): higher = shorter paths = more anomalous."""
        return -self.forest_.score_samples(flat_samples(X)).astype(np.float64)

"""The detector protocol the baselines share with :class:`omasgan.detector.OMASGANDetector`.

    detector = KNNDetector(k=5).fit(X_normal)       # only normal samples; y is ignored
    scores = detector.decision_function(X)          # higher = more anomalous
    labels = detector.predict(X)                    # 1 = anomaly (score >= threshold_), 0 = normal

Each baseline is a scikit-learn estimator: its constructor stores its arguments verbatim (checked
in ``fit``), so ``get_params``/``set_params`` and ``sklearn.base.clone`` work.  Samples are rows of
an array or tensor: (N, D) vectors or (N, C, H, W) images.  ``fit`` sets ``threshold_``, the
(1 - contamination) quantile of the training normals' own scores (for kNN each training sample
counts itself among its neighbours).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from sklearn.base import BaseEstimator


def flat_samples(X: Any) -> np.ndarray:
    """Samples (N, ...) as an (N, features) float32 array."""
    array = X.detach().cpu().numpy() if isinstance(X, torch.Tensor) else np.asarray(X)
    return array.reshape(len(array), -1).astype(np.float32, copy=False)


class BaselineDetector(BaseEstimator):
    """``predict`` from a subclass's ``decision_function`` and the threshold its ``fit`` sets (see the
    module docstring)."""

    contamination: float

    def fit_threshold(self, X: Any) -> None:
        """``threshold_`` = the (1 - contamination) quantile of the scores of the training normals ``X``."""
        self.threshold_ = float(np.quantile(self.decision_function(X), 1.0 - self.contamination))

    def predict(self, X: Any) -> np.ndarray:
        """1 for samples scored at or above ``threshold_`` (anomalies), else 0."""
        return (self.decision_function(X) >= self.threshold_).astype(np.int64)

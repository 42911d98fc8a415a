"""Detection metrics (scikit-learn): AUROC, AUPRC and, at a threshold, F1, precision, recall and
accuracy.  Labels: 1 = anomaly (the positive class), 0 = normal; scores: higher = more anomalous.
The threshold is chosen on the validation split (max F1) and only applied to the test split."""

from __future__ import annotations

import math

import numpy as np
from sklearn.metrics import (
    accuracy_score,
    average_precision_score,
    f1_score,
    precision_recall_curve,
    precision_score,
    recall_score,
    roc_auc_score,
)

from .vocabulary import METRIC_NAMES


def _as_numpy(values) -> np.ndarray:
    if hasattr(values, "detach"):
        values = values.detach().cpu().numpy()
    return np.asarray(values, dtype=np.float64).reshape(-1)


def max_f1_threshold(scores, labels) -> float:
    """The score threshold (predict anomaly when score >= threshold) with the highest F1.

    When the labels hold only one class, F1 is undefined: the threshold is then the largest score
    (only the most extreme sample is flagged)."""
    scores, labels = _as_numpy(scores), _as_numpy(labels)
    if labels.min() == labels.max():
        return float(scores.max())
    precision, recall, thresholds = precision_recall_curve(labels, scores)
    f1 = np.where(precision + recall > 0, 2 * precision * recall / np.maximum(precision + recall, 1e-12), 0.0)
    best = int(np.argmax(f1[:-1]))  # the last (precision=1, recall=0) point has no threshold
    return float(thresholds[best])


def detection_metrics(scores, labels, threshold: float) -> dict[str, float]:
    """AUROC and AUPRC of the scores, and F1/precision/recall/accuracy of ``score >= threshold``.

    AUROC and AUPRC are NaN when the labels hold a single class (they are undefined there)."""
    scores, labels = _as_numpy(scores), _as_numpy(labels).astype(int)
    if not np.all(np.isfinite(scores)):
        raise ValueError(f"{int((~np.isfinite(scores)).sum())} anomaly scores are NaN or infinite")
    predicted = (scores >= threshold).astype(int)
    both = labels.min() != labels.max()
    return {
        "auroc": float(roc_auc_score(labels, scores)) if both else math.nan,
        "auprc": float(average_precision_score(labels, scores)) if both else math.nan,
        "f1": float(f1_score(labels, predicted, zero_division=0)),
        "precision": float(precision_score(labels, predicted, zero_division=0)),
        "recall": float(recall_score(labels, predicted, zero_division=0)),
        "accuracy": float(accuracy_score(labels, predicted)),
    }

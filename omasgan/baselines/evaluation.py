"""A baseline scored with OMASGAN's evaluation protocol (:func:`omasgan.evaluation.evaluate_scores`):
fitted on the normal training split only (``splits.train_x``), the max-F1 threshold chosen on
validation, the test split scored once."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import torch

from ..data import DataSplits
from ..errors import ConfigError
from ..evaluation import StageEvaluation, evaluate_scores
from .autoencoder import AutoencoderDetector
from .config import BaselineConfig
from .isolation_forest import IsolationForestDetector
from .knn import KNNDetector
from .protocol import BaselineDetector


@dataclass
class BaselineEvaluation(StageEvaluation):
    """A :class:`StageEvaluation` (detector = the method) plus the baseline's cost and, for ae, the
    per-epoch mean training loss (``history["loss"]``)."""

    wall_time_s: float = 0.0
    """Fit plus scoring of validation and test, in seconds."""
    fit_time_s: float = 0.0
    history: dict[str, list[float]] = field(default_factory=dict)


def baseline_detector(config: BaselineConfig, seed: int, device: str | torch.device = "cpu") -> BaselineDetector:
    """The (unfitted) detector of ``config.method`` with ``config``'s settings, seeded with ``seed``."""
    if config.method == "knn":
        return KNNDetector(k=config.k, statistic=config.knn_score)
    if config.method == "iforest":
        return IsolationForestDetector(n_estimators=config.n_estimators, max_samples=config.max_samples,
                                       random_state=seed)
    return AutoencoderDetector(epochs=config.epochs, lr=config.lr, batch_size=config.batch_size,
                               latent_dim=config.latent_dim, width=config.width, random_state=seed, device=device)


def fit_baseline(config: BaselineConfig, splits: DataSplits, seed: int,
                 device: str | torch.device = "cpu") -> BaselineDetector:
    """The detector of ``config.method`` fitted on ``splits.train_x`` (normals only)."""
    return baseline_detector(config, seed, device).fit(splits.train_x)


def evaluate_baseline(config: BaselineConfig, splits: DataSplits, seed: int,
                      device: str | torch.device = "cpu") -> BaselineEvaluation:
    """Fit ``config.method`` on the normal training split, choose the max-F1 threshold on validation,
    then score test once; the result is a :class:`StageEvaluation` (detector = the method name) plus
    the wall time and, for ae, the loss history."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ConfigError(f"seed={seed!r} is out of range; it must be an integer >= 0")
    start = time.perf_counter()
    detector = fit_baseline(config, splits, int(seed), device)
    fit_time = time.perf_counter() - start
    scored = evaluate_scores(config.method, detector.decision_function, splits)
    return BaselineEvaluation(scored.detector, scored.threshold, scored.metrics, scored.scores,
                              wall_time_s=time.perf_counter() - start, fit_time_s=fit_time,
                              history=dict(getattr(detector, "history_", {})))

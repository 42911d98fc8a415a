"""Classical anomaly-detection baselines scored with OMASGAN's evaluation protocol (docs/design.md section 4).

Every baseline is fitted on the normal training split only (``splits.train_x``) and gives each sample
one anomaly score, higher = more anomalous, exactly like OMASGAN's detectors:

    knn      distance from a sample to its nearest training normals (Euclidean, on the flattened
             input): the mean distance to the ``k`` nearest (``knn_score="mean"``) or the distance
             to the ``k``-th nearest (``knn_score="kth"``); scikit-learn ``NearestNeighbors``.
    iforest  scikit-learn ``IsolationForest``; score = ``-score_samples(x)``, i.e. the forest's
             anomaly score 2^(-E[h(x)] / c(n)) in (0, 1]: short average path length = anomalous.
    ae       an autoencoder (convolutional for images, MLP for vectors) trained on the normals with
             Adam for a fixed number of epochs; score = mean squared reconstruction error of the
             sample over its features.

The hard-label threshold is chosen on the validation split (max F1) and the test split is scored
once, as :func:`omasgan.pipeline.evaluate_detector` does.  A fixed seed gives identical scores on CPU.
This module is pure torch / numpy / scikit-learn (no Ray, Optuna or pyarrow).
"""

from __future__ import annotations

import dataclasses
import math
import time
import typing
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from .autoencoders import ConvAutoencoder, MLPAutoencoder, default_latent_dim, reconstruction_error
from .config import coerce_value, parse_override
from .data import DataSplits
from .errors import ConfigError, TrainingDivergedError
from .metrics import detection_metrics, max_f1_threshold
from .pipeline import StageEvaluation

BASELINE_METHODS = ("knn", "iforest", "ae")
KNN_SCORES = ("mean", "kth")
SCORE_CHUNK = 4096
"""Samples per forward pass when the autoencoder scores a split."""


def _int_at_least(name: str, value: Any, low: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ConfigError(f"baseline.{name}={value!r} is out of range; it must be an integer >= {low}")


@dataclass(frozen=True)
class BaselineConfig:
    """One baseline and its settings; invalid values raise :class:`ConfigError` at construction.

    Only the fields of the chosen ``method`` matter: ``k``/``knn_score`` for knn,
    ``n_estimators``/``max_samples`` for iforest, the rest for ae.  The number of training normals
    is set by the data config (``data.max_train``, ``--max-train``), shared with OMASGAN runs.
    """

    method: str = "knn"
    k: int = 5
    """knn: the number of nearest training normals."""
    knn_score: str = "mean"
    """knn: ``mean`` distance to the k nearest, or distance to the ``kth`` nearest."""
    n_estimators: int = 100
    """iforest: the number of trees."""
    max_samples: int | None = None
    """iforest: samples drawn per tree; None = scikit-learn's ``auto`` (min(256, n))."""
    epochs: int = 30
    """ae: passes over the training normals."""
    lr: float = 1e-3
    """ae: Adam learning rate."""
    batch_size: int = 128
    """ae: minibatch size (the last partial batch of an epoch is used too)."""
    latent_dim: int | None = None
    """ae: bottleneck size; None = min(32, n_features // 4) for images and
    min(32, n_features // 2) for vectors (at least 1). For vectors it must be < n_features."""
    width: int = 32
    """ae: channels of the first conv layer (images; the second has twice as many) or units of
    each of the two hidden layers (vectors)."""

    def __post_init__(self) -> None:
        if self.method not in BASELINE_METHODS:
            raise ConfigError(f"baseline method {self.method!r} is not allowed; choose one of: "
                              f"{', '.join(BASELINE_METHODS)}")
        if self.knn_score not in KNN_SCORES:
            raise ConfigError(f"baseline.knn_score={self.knn_score!r} is not allowed; choose one of: "
                              f"{', '.join(KNN_SCORES)}")
        _int_at_least("k", self.k, 1)
        _int_at_least("n_estimators", self.n_estimators, 1)
        if self.max_samples is not None:
            _int_at_least("max_samples", self.max_samples, 2)
        _int_at_least("epochs", self.epochs, 1)
        _int_at_least("batch_size", self.batch_size, 1)
        _int_at_least("width", self.width, 1)
        if self.latent_dim is not None:
            _int_at_least("latent_dim", self.latent_dim, 1)
        if isinstance(self.lr, bool) or not isinstance(self.lr, (int, float)) or not math.isfinite(self.lr) \
                or self.lr <= 0:
            raise ConfigError(f"baseline.lr={self.lr!r} is out of range; it must be a finite number > 0")

    # ---- conversion ---------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> "BaselineConfig":
        """Build from a plain dict (unknown keys and wrong types raise :class:`ConfigError`)."""
        if not isinstance(raw, dict):
            raise ConfigError(f"a baseline config must be a mapping, got {raw!r}")
        hints = typing.get_type_hints(cls)
        names = [f.name for f in dataclasses.fields(cls)]
        kwargs: dict[str, Any] = {}
        for key, value in raw.items():
            if key not in names:
                raise ConfigError(f"unknown baseline key {key!r}; allowed: {', '.join(names)}")
            kwargs[key] = coerce_value(value, hints[key], f"baseline.{key}")
        return cls(**kwargs)

    def with_overrides(self, overrides: list[str] | dict[str, Any]) -> "BaselineConfig":
        """A new config with overrides applied: ``["baseline.k=10"]`` or ``{"k": 10}`` (the
        ``baseline.`` prefix is optional; values in strings are parsed as YAML scalars)."""
        items = overrides.items() if isinstance(overrides, dict) else (parse_override(o) for o in overrides)
        raw = self.to_dict()
        for key, value in items:
            raw[key[len("baseline."):] if key.startswith("baseline.") else key] = value
        return BaselineConfig.from_dict(raw)

    def settings(self) -> dict[str, Any]:
        """Only the fields the chosen method uses."""
        used = {"knn": ("k", "knn_score"), "iforest": ("n_estimators", "max_samples"),
                "ae": ("epochs", "lr", "batch_size", "latent_dim", "width")}[self.method]
        return {name: getattr(self, name) for name in used}

    def tag(self) -> str:
        """A short deterministic name of the method and its settings, e.g. ``knn-k5-mean``; used as
        the result store's trial id, so a rerun of the same unit replaces its files."""
        if self.method == "knn":
            return f"knn-k{self.k}-{self.knn_score}"
        if self.method == "iforest":
            return f"iforest-n{self.n_estimators}-s{self.max_samples or 'auto'}"
        latent = self.latent_dim or "auto"
        return f"ae-e{self.epochs}-lr{self.lr:g}-b{self.batch_size}-l{latent}-w{self.width}"


@dataclass
class BaselineEvaluation(StageEvaluation):
    """A :class:`StageEvaluation` (detector = the method) plus the baseline's cost and, for ae, the
    per-epoch mean training loss (``history["loss"]``)."""

    wall_time_s: float = 0.0
    """Fit plus scoring of validation and test, in seconds."""
    fit_time_s: float = 0.0
    history: dict[str, list[float]] = field(default_factory=dict)


# ---- the three scorers ----------------------------------------------------------------------------
def _flat(x: torch.Tensor) -> np.ndarray:
    return x.detach().cpu().reshape(len(x), -1).numpy().astype(np.float32, copy=False)


class KNNScorer:
    """Euclidean nearest-neighbour distance to the training normals (flattened inputs)."""

    def __init__(self, config: BaselineConfig) -> None:
        self.k, self.reduce = config.k, config.knn_score

    def fit(self, train_x: torch.Tensor) -> "KNNScorer":
        from sklearn.neighbors import NearestNeighbors

        train = _flat(train_x)
        if self.k > len(train):
            raise ConfigError(f"baseline.k={self.k} exceeds the {len(train)} training normals; "
                              f"choose k <= {len(train)}")
        self.index = NearestNeighbors(n_neighbors=self.k, metric="euclidean").fit(train)
        return self

    def score(self, x: torch.Tensor) -> np.ndarray:
        """The mean distance to the k nearest training normals, or the k-th smallest distance."""
        distances, _ = self.index.kneighbors(_flat(x), n_neighbors=self.k)
        distances = distances.astype(np.float64)
        return distances.mean(axis=1) if self.reduce == "mean" else distances[:, -1]


class IForestScorer:
    """scikit-learn IsolationForest seeded with the run seed; score = ``-score_samples``."""

    def __init__(self, config: BaselineConfig, seed: int) -> None:
        from sklearn.ensemble import IsolationForest

        self.forest = IsolationForest(n_estimators=config.n_estimators,
                                      max_samples=config.max_samples if config.max_samples else "auto",
                                      random_state=seed, n_jobs=1)

    def fit(self, train_x: torch.Tensor) -> "IForestScorer":
        train = _flat(train_x)
        if self.forest.max_samples != "auto" and self.forest.max_samples > len(train):
            raise ConfigError(f"baseline.max_samples={self.forest.max_samples} exceeds the {len(train)} "
                              f"training normals; choose max_samples <= {len(train)}")
        self.forest.fit(train)
        return self

    def score(self, x: torch.Tensor) -> np.ndarray:
        """The forest's anomaly score 2^(-E[h(x)]/c(n)): higher = shorter paths = more anomalous."""
        return -self.forest.score_samples(_flat(x)).astype(np.float64)


class AEScorer:
    """An autoencoder trained on the normals; score = per-sample reconstruction MSE."""

    def __init__(self, config: BaselineConfig, seed: int, sample_shape: tuple[int, ...], is_image: bool,
                 device: torch.device) -> None:
        self.config, self.seed, self.device = config, int(seed), device
        self.sample_shape, self.is_image = tuple(int(s) for s in sample_shape), bool(is_image)
        self.history: dict[str, list[float]] = {"loss": []}

    def _build(self) -> nn.Module:
        latent = self.config.latent_dim or default_latent_dim(self.sample_shape, self.is_image)
        if self.is_image and len(self.sample_shape) == 3:
            return ConvAutoencoder(self.sample_shape, latent, self.config.width)  # type: ignore[arg-type]
        return MLPAutoencoder(int(np.prod(self.sample_shape)), latent, self.config.width, key="baseline.latent_dim")

    def fit(self, train_x: torch.Tensor) -> "AEScorer":
        cfg = self.config
        train = train_x.to(self.device)
        devices = [self.device.index or 0] if self.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):  # seed locally; the caller's RNG state is kept
            torch.manual_seed(self.seed)
            self.model = self._build().to(self.device)
        order_rng = torch.Generator().manual_seed(self.seed + 1)
        optimizer = torch.optim.Adam(self.model.parameters(), lr=cfg.lr)
        n = len(train)
        self.model.train()
        for epoch in range(1, cfg.epochs + 1):
            order = torch.randperm(n, generator=order_rng).to(self.device)
            total, steps = 0.0, 0
            for start in range(0, n, cfg.batch_size):
                loss = reconstruction_error(self.model, train[order[start:start + cfg.batch_size]]).mean()
                if not torch.isfinite(loss):
                    raise TrainingDivergedError(f"baseline ae: the reconstruction loss became {loss.item()} "
                                                f"at epoch {epoch}, step {steps + 1}; lower baseline.lr")
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                total += loss.item()
                steps += 1
            self.history["loss"].append(total / steps)
        self.model.eval()
        return self

    @torch.no_grad()
    def score(self, x: torch.Tensor) -> np.ndarray:
        """Mean squared reconstruction error of each sample over its features."""
        parts = [reconstruction_error(self.model, x[i:i + SCORE_CHUNK].to(self.device)).cpu()
                 for i in range(0, len(x), SCORE_CHUNK)]
        return torch.cat(parts).double().numpy()


def fit_baseline(config: BaselineConfig, splits: DataSplits, seed: int, device: str | torch.device = "cpu"):
    """The fitted scorer of ``config.method`` on ``splits.train_x`` (normals only); it has
    ``score(x) -> np.ndarray`` (higher = more anomalous) and, for ae, ``history``."""
    device = torch.device(device)
    if config.method == "knn":
        scorer = KNNScorer(config)
    elif config.method == "iforest":
        scorer = IForestScorer(config, seed)
    else:
        scorer = AEScorer(config, seed, splits.sample_shape, splits.is_image, device)
    return scorer.fit(splits.train_x)


def evaluate_baseline(config: BaselineConfig, splits: DataSplits, seed: int,
                      device: str | torch.device = "cpu") -> BaselineEvaluation:
    """Fit ``config.method`` on the normal training split, choose the max-F1 threshold on validation,
    then score test once; the result has the shape of :class:`omasgan.pipeline.StageEvaluation`
    (detector = the method name) plus the wall time."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ConfigError(f"seed={seed!r} is out of range; it must be an integer >= 0")
    start = time.perf_counter()
    scorer = fit_baseline(config, splits, int(seed), device)
    fit_time = time.perf_counter() - start
    val_scores = scorer.score(splits.val_x)
    val_labels = splits.val_y.cpu().numpy()
    threshold = max_f1_threshold(val_scores, val_labels)
    metrics = {"val": detection_metrics(val_scores, val_labels, threshold)}
    test_scores = scorer.score(splits.test_x)
    metrics["test"] = detection_metrics(test_scores, splits.test_y.cpu().numpy(), threshold)
    wall = time.perf_counter() - start
    return BaselineEvaluation(config.method, threshold, metrics, {"val": val_scores, "test": test_scores},
                              wall_time_s=wall, fit_time_s=fit_time,
                              history=dict(getattr(scorer, "history", {})))

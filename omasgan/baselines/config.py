"""A baseline's settings (:class:`BaselineConfig`), as the ``omasgan baseline`` command and the
studies take them (``--set baseline.KEY=VALUE``)."""

from __future__ import annotations

import dataclasses
import math
import typing
from dataclasses import dataclass
from typing import Any

from ..config import coerce_value, parse_override
from ..errors import ConfigError

BASELINE_METHODS = ("knn", "iforest", "ae")
KNN_SCORES = ("mean", "kth")


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

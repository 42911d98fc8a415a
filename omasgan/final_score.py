"""The final detector's anomaly score (``j.score``); higher = more anomalous, always.

    j        s(x) = j(x)                          J's raw logit (the paper; docs/design.md 3.6)
    critic   s(x) = -g_f(c(x))                    Task 3's critic score (the ``task3`` detector's)
    fusion   s(x) = ( (j(x) - a_j) / b_j + (-g_f(c(x)) - a_c) / b_c ) / 2

In ``fusion`` each score is standardised with a centre a and scale b fitted on the VALIDATION NORMALS
only (labels of validation anomalies are never used): ``fusion_scaling = standard`` takes the mean
and the SD (ddof = 0), ``robust`` the median and the interquartile range (numpy's linear
percentiles); a scale that is 0 or not finite counts as 1.  The fitted (a, b) travel with the saved
model (model.json ``score``), so ``omasgan score`` and ``OMASGANDetector`` give the same numbers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from .config import OMASGANConfig
from .divergences import Divergence, build_divergence
from .scoring import anomaly_scores, critic_outputs


def fit_scaling(scores: Any, kind: str = "standard") -> tuple[float, float]:
    """(centre, scale) of ``scores``: (mean, SD) for ``standard``, (median, IQR) for ``robust``."""
    values = np.asarray(scores.detach().cpu() if isinstance(scores, Tensor) else scores, dtype=np.float64).ravel()
    if values.size == 0:
        raise ValueError("fitting a score scaling needs at least one validation normal")
    if kind == "standard":
        centre, scale = float(values.mean()), float(values.std())
    elif kind == "robust":
        q25, centre, q75 = np.percentile(values, [25, 50, 75])
        centre, scale = float(centre), float(q75 - q25)
    else:
        raise ValueError(f"unknown scaling {kind!r}; choose standard or robust")
    return centre, scale if math.isfinite(scale) and scale > 0 else 1.0


@dataclass
class FinalScore:
    """The final score of ``mode`` from J (``detector``) and, for critic / fusion, Task 3's critic."""

    mode: str
    detector: nn.Module
    divergence: Divergence
    critic: nn.Module | None = None
    scaling: str = "standard"
    stats: dict[str, tuple[float, float]] = field(default_factory=dict)

    @classmethod
    def from_modules(cls, config: OMASGANConfig, modules: dict[str, nn.Module],
                     spec: dict[str, Any] | None = None) -> "FinalScore":
        """The J stage's score; ``spec`` (from :meth:`to_dict`) restores fitted statistics."""
        mode = (spec or {}).get("mode", config.j.score)
        critic = modules.get("critic")
        if mode != "j" and critic is None:
            raise KeyError(f"j.score={mode!r} needs Task 3's critic in the J stage's modules")
        stats = {k: (float(v[0]), float(v[1])) for k, v in (spec or {}).get("stats", {}).items()}
        return cls(mode, modules["detector"], build_divergence(config.divergence), critic,
                   (spec or {}).get("scaling", config.j.fusion_scaling), stats)

    def _j(self, x: Tensor) -> Tensor:
        return anomaly_scores("final", self.detector, x, self.divergence)

    def _critic(self, x: Tensor) -> Tensor:
        return -self.divergence.activation(critic_outputs(self.critic, x))

    def fit(self, normal_x: Tensor) -> "FinalScore":
        """Fit the fusion's standardisation on validation normals (a no-op for j and critic)."""
        if self.mode == "fusion":
            self.stats = {"j": fit_scaling(self._j(normal_x), self.scaling),
                          "critic": fit_scaling(self._critic(normal_x), self.scaling)}
        return self

    @torch.no_grad()
    def __call__(self, x: Tensor) -> Tensor:
        if self.mode == "j":
            return self._j(x)
        if self.mode == "critic":
            return self._critic(x)
        if set(self.stats) != {"j", "critic"}:
            raise RuntimeError("the fusion score is not fitted; call fit(validation_normals) first")
        (a_j, b_j), (a_c, b_c) = self.stats["j"], self.stats["critic"]
        return ((self._j(x) - a_j) / b_j + (self._critic(x) - a_c) / b_c) / 2

    def to_dict(self) -> dict[str, Any]:
        return {"mode": self.mode, "scaling": self.scaling, "stats": {k: list(v) for k, v in self.stats.items()}}

"""The shortcut alarm: can a trivial statistic tell the boundary samples B(z) from the real data?

After Task 2 (and, with ``j.refine_steps`` > 0, for J's refined B_r), for m = min(2000, n) samples of
B(z) (positive) and m training normals x (negative), the AUROC of each statistic used alone as the
score:

    ink_auroc        the sample's mean value over its features (mean intensity; > 0.5: B is inkier)
    contrast_auroc   the sample's SD over its features (per-image contrast; > 0.5: B has more contrast)
    nn_auroc         the distance to the nearest training normal (> 0.5: B lies farther from the data)

The nearest-neighbour reference is up to 10,000 training normals; the probed x are part of it and
their own row is left out (leave-one-out), so a real sample's distance is never 0 by construction.
Rows and latent codes come from a generator seeded from the run seed, never from the global RNG.

An AUROC far BELOW 0.5 is as much a shortcut as one far above: :func:`separability` is max(a, 1 - a),
and the warning of ``omasgan run`` fires when the separability of a GLOBAL image statistic (ink or
contrast: ``WARNED``) exceeds its threshold (0.9).  The nearest-neighbour distance is stored but does
not warn: B is meant to lie off the data's support, so it separates B from x on every run (0.99-1.00
on digits and MNIST), and a detector that learns "far from the data" is what kNN is, not a shortcut.
After J, ``ink_spearman`` is the Spearman correlation of the final score with the ink of the
validation samples (J's "ink detector" signature: strongly negative or positive).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from .vocabulary import ALARM_KEYS, ALARM_STATISTICS

ALARM_SAMPLES = 2000
ALARM_REFERENCE = 10_000
WARNED = ("ink_auroc", "contrast_auroc")
"""The statistics whose separability warns: global image statistics a detector must not learn."""
DEFAULT_THRESHOLD = 0.9
_CHUNK = 512


def _flat(x: Tensor) -> Tensor:
    return x.reshape(x.shape[0], -1)


def ink(x: Tensor) -> Tensor:
    """Per-sample mean over the features."""
    return _flat(x).mean(dim=1)


def contrast(x: Tensor) -> Tensor:
    """Per-sample standard deviation over the features (ddof = 0)."""
    return _flat(x).std(dim=1, unbiased=False)


def nearest_distance(x: Tensor, reference: Tensor, self_index: Tensor | None = None) -> Tensor:
    """Euclidean distance of each row of x to its nearest row of ``reference``; row i of x skips
    reference row ``self_index[i]`` (its own copy) when given."""
    out = []
    flat_x, flat_ref = _flat(x), _flat(reference)
    for start in range(0, x.shape[0], _CHUNK):
        distances = torch.cdist(flat_x[start:start + _CHUNK], flat_ref)
        if self_index is not None:
            rows = torch.arange(distances.shape[0], device=distances.device)
            distances[rows, self_index[start:start + _CHUNK]] = float("inf")
        out.append(distances.min(dim=1).values)
    return torch.cat(out)


def auroc(positive: Tensor, negative: Tensor) -> float:
    """P(score of a positive > score of a negative) + 0.5 P(tie): the Mann-Whitney AUROC."""
    from sklearn.metrics import roc_auc_score

    scores = torch.cat([positive, negative]).detach().double().cpu().numpy()
    labels = np.concatenate([np.ones(len(positive)), np.zeros(len(negative))])
    if not np.all(np.isfinite(scores)):
        return math.nan
    return float(roc_auc_score(labels, scores))


def separability(value: float) -> float:
    """max(a, 1 - a): how well the statistic separates, whichever side is higher."""
    return max(value, 1.0 - value) if math.isfinite(value) else math.nan


def statistic_aurocs(boundary: Tensor, probe: Tensor, reference: Tensor, probe_index: Tensor) -> dict[str, float]:
    """The three AUROCs of B(z) (``boundary``) against real ``probe`` samples; ``probe_index[i]`` is
    probe i's row in ``reference`` (left out of its own nearest-neighbour search)."""
    return {
        "ink_auroc": auroc(ink(boundary), ink(probe)),
        "contrast_auroc": auroc(contrast(boundary), contrast(probe)),
        "nn_auroc": auroc(nearest_distance(boundary, reference), nearest_distance(probe, reference, probe_index)),
    }


@torch.no_grad()
def shortcut_alarm(sampler: nn.Module, train_x: Tensor, latent_dim: int, seed: int,
                   n_samples: int = ALARM_SAMPLES, max_reference: int = ALARM_REFERENCE) -> dict[str, float]:
    """The alarm's three AUROCs for the boundary ``sampler`` (in its current mode) against ``train_x``."""
    generator = torch.Generator().manual_seed(int(seed))
    n = train_x.shape[0]
    order = torch.randperm(n, generator=generator)[: min(n, max_reference)].to(train_x.device)
    reference = train_x[order]
    m = min(n_samples, reference.shape[0])
    z = torch.randn(m, latent_dim, generator=generator).to(train_x.device)
    boundary = sampler(z)
    return statistic_aurocs(boundary, reference[:m], reference, torch.arange(m, device=train_x.device))


def ink_spearman(scores: Any, x: Tensor) -> float:
    """Spearman's rho between per-sample scores and the samples' ink."""
    from scipy.stats import spearmanr

    values = np.asarray(scores, dtype=np.float64).ravel()
    inks = ink(x).detach().double().cpu().numpy()
    if values.size < 2 or np.ptp(values) == 0 or np.ptp(inks) == 0:
        return math.nan
    return float(spearmanr(values, inks).statistic)


def alarm_seed(seed: int, stage: str) -> int:
    """The alarm's own seed per (run seed, stage)."""
    return int(seed) * 1_000_003 + {"task2": 101, "j": 103}.get(stage, 107)


def exceeded(alarm: dict[str, float], threshold: float = DEFAULT_THRESHOLD) -> list[str]:
    """The alarm's warned statistics (``WARNED``) whose separability max(a, 1 - a) exceeds ``threshold``."""
    return [k for k in WARNED if k in alarm and separability(alarm[k]) > threshold]

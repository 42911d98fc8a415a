"""Adversarial boundary refinement inside the J stage (``j.refine_steps`` > 0; GAAL / MO-GAAL spirit).

The paper's J separates a fixed B(z) from {x, G'(z)}; when B differs from the data by a cheap global
statistic (ink), J learns that statistic.  Refinement makes B a moving target: a copy B_r of Task 2's
B (of the union of its K boundary models) takes ``refine_steps`` steps after every J step on

    L_r = E_z[ j(B_r(z)) ] + w * E_z[ max(0, eps - min_m ||B_r(z) - x_m||_2) ]

- the first term: B_r lowers J's logit on its samples, i.e. tries to look normal to J, so any
  shortcut J finds is taken away again;
- the hinge (weight w = ``refine_weight``) keeps B_r at least eps from the nearest training normal
  x_m (sought among ``refine_bank`` training normals drawn afresh each step), so B_r stays off the
  data's support; eps = ``refine_margin`` * the median distance of a training normal to its nearest
  other training normal (:func:`median_nn_distance`), so eps is in the data's own scale.
J keeps its eq. (6) loss with B_r's current samples as the positive side.  B_r is trained in eval mode
(its BatchNorm statistics stay Task 2's) and J is in eval mode with frozen weights during B_r's steps
(its spectral-norm estimates are not advanced by them).

Early stopping (``refine_patience`` > 0): a ``refine_holdout`` fraction of the TRAINING normals is
held out of J's training; after every epoch J's eq. (6) loss is computed with those normals on the
data side and fixed latent codes for B_r and G'.  Once it has not reached a new minimum for
``refine_patience`` epochs, B_r is frozen and J trains on against it to the end.  The validation and
test splits are never looked at.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..config import OMASGANConfig
from .common import BatchCycler, adam, descend, latent, stage_seed, trainable_copy


def _flat(x: Tensor) -> Tensor:
    return x.reshape(x.shape[0], -1)


def support_hinge(samples: Tensor, reference: Tensor, eps: float) -> Tensor:
    """mean_i max(0, eps - min_m ||samples_i - reference_m||_2)."""
    nearest = torch.cdist(_flat(samples), _flat(reference)).min(dim=1).values
    return F.relu(eps - nearest).mean()


def refine_loss(v_boundary: Tensor, samples: Tensor, reference: Tensor, eps: float, weight: float
                ) -> tuple[Tensor, Tensor, Tensor]:
    """(L_r, mean logit, hinge): L_r = mean(v_boundary) + weight * support_hinge(samples, reference, eps)."""
    logit = v_boundary.mean()
    hinge = support_hinge(samples, reference, eps)
    return logit + weight * hinge, logit, hinge


def median_nn_distance(x: Tensor, max_rows: int = 2048, seed: int = 0) -> float:
    """The median (the mean of the two middle values for an even count) over (at most ``max_rows``,
    drawn with a generator seeded ``seed``) rows of x of the Euclidean distance to the nearest OTHER
    row of that subset (leave-one-out)."""
    n = x.shape[0]
    if n < 2:
        return 0.0
    rows = x if n <= max_rows else x[torch.randperm(n, generator=torch.Generator().manual_seed(seed))[:max_rows]]
    distances = torch.cdist(_flat(rows), _flat(rows))
    distances.fill_diagonal_(float("inf"))
    return float(distances.min(dim=1).values.double().quantile(0.5))


@contextmanager
def frozen(module: nn.Module) -> Iterator[nn.Module]:
    """Eval mode and no weight gradients inside the block; the module's mode and flags are restored."""
    was_training = module.training
    flags = [p.requires_grad for p in module.parameters()]
    module.eval()
    for p in module.parameters():
        p.requires_grad_(False)
    try:
        yield module
    finally:
        for p, flag in zip(module.parameters(), flags):
            p.requires_grad_(flag)
        module.train(was_training)


def holdout_split(config: OMASGANConfig, train_x: Tensor) -> tuple[Tensor, Tensor | None]:
    """(J's training normals, held-out training normals or None): the held-out part exists only when
    refinement runs with early stopping; rows are drawn with a generator seeded from (seed, "j")."""
    cfg = config.j
    n = train_x.shape[0]
    if cfg.refine_steps == 0 or cfg.refine_patience == 0 or n < 2:
        return train_x, None
    n_held = min(max(1, int(round(cfg.refine_holdout * n))), n - 1)
    order = torch.randperm(n, generator=torch.Generator().manual_seed(stage_seed(config.seed, "j") + 1))
    order = order.to(train_x.device)
    return train_x[order[n_held:]], train_x[order[:n_held]]


class BoundaryRefiner:
    """B_r, its optimiser, eps, the reference normals and the early-stopping state."""

    def __init__(self, config: OMASGANConfig, boundary: nn.Module, train_x: Tensor) -> None:
        cfg = config.j
        self.cfg, self.latent_dim = cfg, config.network.latent_dim
        self.model = trainable_copy(boundary).eval()
        self.optimizer = adam(self.model, cfg.refine_lr, cfg)
        self.eps = cfg.refine_margin * median_nn_distance(train_x, seed=stage_seed(config.seed, "j") + 2)
        self.reference = BatchCycler(train_x, min(cfg.refine_bank, train_x.shape[0]))
        self.active = True
        self.best = float("inf")
        self.since_best = 0

    def step(self, detector: nn.Module, n: int, device: torch.device) -> tuple[Tensor, Tensor, Tensor]:
        """One step of B_r on L_r against the current J; returns (L_r, mean logit, hinge)."""
        z = latent(n, self.latent_dim, device)
        with frozen(detector):
            samples = self.model(z)
            loss, logit, hinge = refine_loss(detector(samples), samples, self.reference.next(), self.eps,
                                             self.cfg.refine_weight)
            descend(self.optimizer, loss)
        return loss, logit, hinge

    def end_epoch(self, holdout_loss: float | None) -> None:
        """Early stopping: freeze B_r after ``refine_patience`` epochs without a new held-out minimum."""
        if holdout_loss is None or not self.active:
            return
        if holdout_loss < self.best:
            self.best, self.since_best = holdout_loss, 0
        else:
            self.since_best += 1
            if self.since_best >= self.cfg.refine_patience:
                self.active = False

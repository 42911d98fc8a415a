"""The final discriminator J (paper eq. 6, docs/design.md 3.5).

J maximises  E_z[real_term(j(B(z)))] - zeta E_x[fake_term(j(x))] - (1 - zeta) E_z[fake_term(j(G'(z)))]:
the boundary samples are the positive ("abnormal") side, the data and G' the negative side, so a
large j(x) means anomalous.  With ``gan`` this is exactly eq. (6).  B and G' are frozen.  J starts
from scratch (``init = scratch``, default), from Task 3's C or from Task 1's D.

Variants (``j.*``, the defaults are the paper's):
- ``refine_steps`` > 0: B is refined adversarially while J trains (:mod:`.refine`); the refined
  boundary models are part of the stage's output (``boundary``, ``boundary_1``, ...), and the loss
  history adds ``refine_loss``, ``refine_logit``, ``refine_hinge``, ``refine_active`` (1 while B_r
  still learns) and, with early stopping, ``holdout_loss_j``.
- ``score`` = ``critic`` or ``fusion``: Task 3's critic is kept in the stage's output as ``critic``,
  so the saved model scores the same way (:mod:`omasgan.final_score`).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ..config import OMASGANConfig
from .common import (EpochCallback, StageLoop, StageResult, adam, freeze, new_critic, shuffled_batches, stage_seed,
                     trainable_copy)
from .refine import BoundaryRefiner, frozen, holdout_split
from .union import member_name, sampler_members


def train_j(
    config: OMASGANConfig,
    boundary: nn.Module,
    retrained_generator: nn.Module,
    train_x: Tensor,
    *,
    init_from: nn.Module | None = None,
    score_critic: nn.Module | None = None,
    on_epoch: EpochCallback | None = None,
) -> StageResult:
    """Train J on B's samples (positive) against ``train_x`` and G'(z) (negative).

    ``init_from`` is the critic J starts from when ``config.j.init`` is not ``scratch``;
    ``score_critic`` (Task 3's critic) is kept in the output for ``j.score`` = critic | fusion.
    """
    loop = StageLoop("j", config, train_x.device, on_epoch)
    cfg, divergence = config.j, loop.divergence
    frozen_b, frozen_g = freeze(boundary), freeze(retrained_generator)
    if cfg.init == "scratch" or init_from is None:
        detector = new_critic(config.network, tuple(train_x.shape[1:])).to(loop.device).train()
    else:
        detector = trainable_copy(init_from)
    opt = adam(detector, cfg.lr, cfg)
    fit_x, held_x = holdout_split(config, train_x)
    refiner = BoundaryRefiner(config, frozen_b, fit_x) if cfg.refine_steps > 0 else None
    holdout_z = _holdout_codes(config, held_x, loop.device) if held_x is not None else None

    for _ in loop.epochs(cfg.epochs):
        for x in shuffled_batches(fit_x, cfg.batch_size):
            n = x.shape[0]
            b_samples = loop.samples_of(frozen_b if refiner is None else refiner.model, n)
            g_samples = loop.samples_of(frozen_g, n)
            loss = j_loss(divergence, cfg.zeta, v_boundary=detector(b_samples), v_data=detector(x),
                          v_retrained=detector(g_samples))
            loop.critic_step(opt, detector, b_samples, x, loss_j=loss)
            loop.steps += 1
            if refiner is not None and refiner.active:
                for _ in range(cfg.refine_steps):
                    loss_r, logit, hinge = refiner.step(detector, n, loop.device)
                    loop.log.add(refine_loss=loss_r, refine_logit=logit, refine_hinge=hinge)
        if refiner is not None:
            loop.log.add(refine_active=torch.tensor(float(refiner.active)))
            if held_x is not None:
                held_loss = _holdout_loss(divergence, cfg.zeta, detector, refiner.model, frozen_g, held_x, holdout_z)
                loop.log.add(holdout_loss_j=held_loss)
                refiner.end_epoch(float(held_loss))

    detector.eval()
    modules: dict[str, nn.Module] = {"detector": detector}
    if score_critic is not None:
        modules["critic"] = score_critic
    if refiner is not None:
        refiner.model.eval()
        for k, member in enumerate(sampler_members(refiner.model)):
            modules[member_name(k)] = member
    return loop.result(modules)


def j_loss(divergence, zeta: float, *, v_boundary: Tensor, v_data: Tensor, v_retrained: Tensor) -> Tensor:
    """The negated eq. (6) objective J minimises (see the module docstring)."""
    return divergence.weighted_critic_loss(
        positives=[(1.0, v_boundary)], negatives=[(zeta, v_data), (1.0 - zeta, v_retrained)]
    )


def _holdout_codes(config: OMASGANConfig, held_x: Tensor, device: torch.device) -> tuple[Tensor, Tensor]:
    """Fixed latent codes for B_r and G' in the held-out loss (a generator seeded from (seed, "j"))."""
    generator = torch.Generator().manual_seed(stage_seed(config.seed, "j") + 3)
    n, dim = held_x.shape[0], config.network.latent_dim
    return (torch.randn(n, dim, generator=generator).to(device), torch.randn(n, dim, generator=generator).to(device))


@torch.no_grad()
def _holdout_loss(divergence, zeta, detector, boundary, generator, held_x, codes) -> Tensor:
    """J's eq. (6) loss with the held-out training normals on the data side (for early stopping)."""
    with frozen(detector):
        return j_loss(divergence, zeta, v_boundary=detector(boundary(codes[0])), v_data=detector(held_x),
                      v_retrained=detector(generator(codes[1])))

"""The final discriminator J (paper eq. 6, docs/design.md 3.5).

J maximises  E_z[real_term(j(B(z)))] - zeta E_x[fake_term(j(x))] - (1 - zeta) E_z[fake_term(j(G'(z)))]:
the boundary samples are the positive ("abnormal") side, the data and G' the negative side, so a
large j(x) means anomalous.  With ``gan`` this is exactly eq. (6).  B and G' are frozen.  J starts
from scratch (``init = scratch``, default), from Task 3's C or from Task 1's D.
"""

from __future__ import annotations

from torch import Tensor, nn

from ..config import OMASGANConfig
from ..divergences import build_divergence
from .common import (
    EpochCallback,
    LossLog,
    StageResult,
    StageTimer,
    adam,
    descend,
    critic_penalty,
    epoch_batches,
    freeze,
    latent,
    new_critic,
    samples_without_graph,
    seed_stage,
    trainable_copy,
)


def train_j(
    config: OMASGANConfig,
    boundary: nn.Module,
    retrained_generator: nn.Module,
    train_x: Tensor,
    *,
    init_from: nn.Module | None = None,
    on_epoch: EpochCallback | None = None,
) -> StageResult:
    """Train J on B's samples (positive) against ``train_x`` and G'(z) (negative).

    ``init_from`` is the critic J starts from when ``config.j.init`` is not ``scratch``.
    """
    seed_stage(config.seed, "j")
    device = train_x.device
    cfg, latent_dim = config.j, config.network.latent_dim
    divergence = build_divergence(config.divergence)
    frozen_b, frozen_g = freeze(boundary), freeze(retrained_generator)
    if cfg.init == "scratch" or init_from is None:
        detector = new_critic(config.network, tuple(train_x.shape[1:])).to(device).train()
    else:
        detector = trainable_copy(init_from)
    opt = adam(detector, cfg.lr, cfg.beta1, cfg.beta2)
    log, timer, step = LossLog("j"), StageTimer(), 0

    for epoch in range(1, cfg.epochs + 1):
        for index in epoch_batches(train_x.shape[0], cfg.batch_size, device):
            x = train_x[index]
            n = x.shape[0]
            b_samples = samples_without_graph(frozen_b, latent(n, latent_dim, device))
            g_samples = samples_without_graph(frozen_g, latent(n, latent_dim, device))
            loss = j_loss(
                divergence, cfg.zeta, v_boundary=detector(b_samples), v_data=detector(x), v_retrained=detector(g_samples)
            )
            penalty = critic_penalty(divergence, config.divergence, detector, b_samples, x)
            if penalty is not None:
                loss = loss + penalty
            descend(opt, loss)
            log.add(loss_j=loss)
            step += 1
        means = log.end_epoch()
        if on_epoch is not None:
            on_epoch("j", epoch, cfg.epochs, means)

    detector.eval()
    return StageResult("j", {"detector": detector}, log.history, timer.elapsed(), step)


def j_loss(divergence, zeta: float, *, v_boundary: Tensor, v_data: Tensor, v_retrained: Tensor) -> Tensor:
    """The negated eq. (6) objective J minimises (see the module docstring)."""
    return divergence.weighted_critic_loss(
        positives=[(1.0, v_boundary)], negatives=[(zeta, v_data), (1.0 - zeta, v_retrained)]
    )

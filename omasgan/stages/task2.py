"""Task 2 (paper eq. 2-4, docs/design.md 3.3): the boundary model B.

B has G's architecture and starts from G's weights; G is frozen.  B minimises

    L_B = -m(B, G) + mu d(B, G) + nu s(B, z)

- m(B, G) = E_P[real_term(D_m(p))] - E_z[fake_term(D_m(B(z)))], P = G's samples (or the data when
  ``reference = "data"``); D_m starts from Task 1's D and keeps maximising m during Task 2.  Only the
  Q-side term depends on B, so B's gradient of -m is that of E_z[fake_term(D_m(B(z)))], which pushes
  B away from where G puts its mass.
- d(B, G): mean distance of B(z_i) to the nearest of a bank of Q samples of G, refreshed every
  ``bank_refresh`` steps (:func:`omasgan.boundary.nearest_bank_distance`).
- s(B, z): the dispersion over all pairs of the batch (:func:`omasgan.boundary.dispersion`).
One epoch is ``n_train // N`` steps (at least 1).  The logged ``loss_b`` is the surrogate B
minimises, E_z[fake_term(D_m(B(z)))] + mu d + nu s, which equals L_B + E_P[real_term] (a term
constant in B); ``loss_d`` is the critic's loss, minus its estimate of m(B, G).  Output: B (and the critic D_m).
"""

from __future__ import annotations

from torch import Tensor, nn

from ..boundary import dispersion, nearest_bank_distance
from ..config import OMASGANConfig
from ..divergences import build_divergence
from .common import (
    BatchCycler,
    EpochCallback,
    LossLog,
    StageResult,
    StageTimer,
    adam,
    descend,
    critic_penalty,
    freeze,
    latent,
    samples_without_graph,
    seed_stage,
    steps_per_epoch,
    trainable_copy,
)


def train_task2(
    config: OMASGANConfig,
    generator: nn.Module,
    discriminator: nn.Module,
    train_x: Tensor,
    *,
    on_epoch: EpochCallback | None = None,
) -> StageResult:
    """Train B from Task 1's (G, D); ``train_x`` is used for the epoch length and for ``reference=data``."""
    seed_stage(config.seed, "task2")
    device = train_x.device
    cfg, latent_dim = config.task2, config.network.latent_dim
    divergence = build_divergence(config.divergence)
    frozen_g = freeze(generator)
    boundary = trainable_copy(generator)
    critic = trainable_copy(discriminator)
    opt_b = adam(boundary, cfg.lr_b, cfg.beta1, cfg.beta2)
    opt_d = adam(critic, cfg.lr_d, cfg.beta1, cfg.beta2)
    log, timer, step = LossLog("task2"), StageTimer(), 0
    n_steps = steps_per_epoch(train_x.shape[0], cfg.batch_size)
    bank = None
    data_batches = BatchCycler(train_x, cfg.batch_size) if cfg.reference == "data" else None

    for epoch in range(1, cfg.epochs + 1):
        for _ in range(n_steps):
            if bank is None or step % cfg.bank_refresh == 0:
                bank = samples_without_graph(frozen_g, latent(cfg.bank_size, latent_dim, device))
            z = latent(cfg.batch_size, latent_dim, device)

            for _ in range(cfg.d_steps):
                if data_batches is not None:
                    positive = data_batches.next()
                else:
                    positive = samples_without_graph(frozen_g, latent(cfg.batch_size, latent_dim, device))
                negative = samples_without_graph(boundary, z)
                loss_d = divergence.discriminator_loss(critic(positive), critic(negative))
                penalty = critic_penalty(divergence, config.divergence, critic, positive, negative)
                if penalty is not None:
                    loss_d = loss_d + penalty
                descend(opt_d, loss_d)
                log.add(loss_d=loss_d)

            samples = boundary(z)
            v_boundary = critic(samples)
            m_q_term = divergence.fake_cost(v_boundary)
            d_term = nearest_bank_distance(samples, bank, cfg.p)
            s_term = dispersion(z, samples, cfg.eps)
            loss_b = m_q_term + cfg.mu * d_term + cfg.nu * s_term
            descend(opt_b, loss_b)
            log.add(loss_b=loss_b, m_fake_term=m_q_term, d=d_term, s=s_term)
            step += 1
        means = log.end_epoch()
        if on_epoch is not None:
            on_epoch("task2", epoch, cfg.epochs, means)

    boundary.eval()
    critic.eval()
    return StageResult("task2", {"boundary": boundary, "critic": critic}, log.history, timer.elapsed(), step)

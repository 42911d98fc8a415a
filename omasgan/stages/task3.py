"""Task 3 (paper eq. 5, docs/design.md 3.4): retrain G' and C with the boundary samples.

G' starts from G and C from Task 1's D; G and B are frozen.  C maximises

    alpha E_x[real_term(c(x))] + delta E_z[real_term(c(G(z)))]
      - beta E_z[fake_term(c(G'(z)))] - gamma E_z[fake_term(c(B(z)))]

and G' minimises beta * generator_loss(c(G'(z))) (= -beta E_z[g_f(c(G'(z)))], non-saturating).
With ``gan`` (real_term = log sigmoid, fake_term = -log(1 - sigmoid)) this is exactly eq. (5).
With ``wasserstein`` the gradient penalty is taken between x and G'(z).
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
    samples_without_graph,
    seed_stage,
    trainable_copy,
)


def train_task3(
    config: OMASGANConfig,
    generator: nn.Module,
    discriminator: nn.Module,
    boundary: nn.Module,
    train_x: Tensor,
    *,
    on_epoch: EpochCallback | None = None,
) -> StageResult:
    """Train (G', C) from Task 1's (G, D) and Task 2's B on the normal ``train_x``."""
    seed_stage(config.seed, "task3")
    device = train_x.device
    cfg, latent_dim = config.task3, config.network.latent_dim
    divergence = build_divergence(config.divergence)
    frozen_g, frozen_b = freeze(generator), freeze(boundary)
    retrained_g = trainable_copy(generator)
    critic = trainable_copy(discriminator)
    opt_g = adam(retrained_g, cfg.lr_g, cfg.beta1, cfg.beta2)
    opt_c = adam(critic, cfg.lr_d, cfg.beta1, cfg.beta2)
    log, timer, step = LossLog("task3"), StageTimer(), 0

    for epoch in range(1, cfg.epochs + 1):
        for index in epoch_batches(train_x.shape[0], cfg.batch_size, device):
            x = train_x[index]
            n = x.shape[0]
            g_samples = samples_without_graph(frozen_g, latent(n, latent_dim, device))
            b_samples = samples_without_graph(frozen_b, latent(n, latent_dim, device))
            g_prime_samples = samples_without_graph(retrained_g, latent(n, latent_dim, device))
            loss_c = task3_critic_loss(
                divergence,
                cfg.alpha,
                cfg.beta,
                cfg.gamma,
                cfg.delta,
                v_data=critic(x),
                v_generator=critic(g_samples),
                v_retrained=critic(g_prime_samples),
                v_boundary=critic(b_samples),
            )
            penalty = critic_penalty(divergence, config.divergence, critic, x, g_prime_samples)
            if penalty is not None:
                loss_c = loss_c + penalty
            descend(opt_c, loss_c)
            log.add(loss_c=loss_c)
            step += 1
            if step % cfg.d_steps == 0 and cfg.beta > 0:
                loss_g = cfg.beta * divergence.generator_loss(critic(retrained_g(latent(n, latent_dim, device))))
                descend(opt_g, loss_g)
                log.add(loss_g=loss_g)
        means = log.end_epoch()
        if on_epoch is not None:
            on_epoch("task3", epoch, cfg.epochs, means)

    retrained_g.eval()
    critic.eval()
    return StageResult("task3", {"generator": retrained_g, "critic": critic}, log.history, timer.elapsed(), step)


def task3_critic_loss(
    divergence,
    alpha: float,
    beta: float,
    gamma: float,
    delta: float,
    *,
    v_data: Tensor,
    v_generator: Tensor,
    v_retrained: Tensor,
    v_boundary: Tensor,
) -> Tensor:
    """The negated eq. (5) objective C minimises (see the module docstring)."""
    return divergence.weighted_critic_loss(
        positives=[(alpha, v_data), (delta, v_generator)],
        negatives=[(beta, v_retrained), (gamma, v_boundary)],
    )

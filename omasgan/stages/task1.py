"""Task 1 (paper eq. 1, docs/design.md 3.2): the base f-GAN on the normal data.

The critic D maximises E_x[real_term(D(x))] - E_z[fake_term(D(G(z)))] (minus its penalties);
every ``d_steps`` critic steps the generator takes one step on ``divergence.generator_loss``.
Output: the generator G and the discriminator D.
"""

from __future__ import annotations

from torch import Tensor

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
    latent,
    new_critic,
    new_generator,
    samples_without_graph,
    seed_stage,
)


def train_task1(
    config: OMASGANConfig,
    train_x: Tensor,
    *,
    is_image: bool,
    on_epoch: EpochCallback | None = None,
) -> StageResult:
    """Train (G, D) on ``train_x`` (normal samples, on the training device)."""
    seed_stage(config.seed, "task1")
    device = train_x.device
    sample_shape = tuple(train_x.shape[1:])
    cfg, net = config.task1, config.network
    divergence = build_divergence(config.divergence)
    generator = new_generator(net, sample_shape, is_image).to(device).train()
    critic = new_critic(net, sample_shape).to(device).train()
    opt_g = adam(generator, cfg.lr_g, cfg.beta1, cfg.beta2)
    opt_d = adam(critic, cfg.lr_d, cfg.beta1, cfg.beta2)
    log, timer, step = LossLog("task1"), StageTimer(), 0

    for epoch in range(1, cfg.epochs + 1):
        for index in epoch_batches(train_x.shape[0], cfg.batch_size, device):
            x = train_x[index]
            fake = samples_without_graph(generator, latent(x.shape[0], net.latent_dim, device))
            v_real, v_fake = critic(x), critic(fake)
            loss_d = divergence.discriminator_loss(v_real, v_fake)
            penalty = critic_penalty(divergence, config.divergence, critic, x, fake)
            if penalty is not None:
                loss_d = loss_d + penalty
            descend(opt_d, loss_d)
            log.add(loss_d=loss_d)
            step += 1
            if step % cfg.d_steps == 0:
                loss_g = divergence.generator_loss(critic(generator(latent(cfg.batch_size, net.latent_dim, device))))
                descend(opt_g, loss_g)
                log.add(loss_g=loss_g)
        means = log.end_epoch()
        if on_epoch is not None:
            on_epoch("task1", epoch, cfg.epochs, means)

    generator.eval()
    critic.eval()
    return StageResult(
        "task1", {"generator": generator, "discriminator": critic}, log.history, timer.elapsed(), step
    )

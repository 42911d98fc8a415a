"""Task 1 (paper eq. 1, docs/design.md 3.2): the base f-GAN on the normal data.

The critic D maximises E_x[real_term(D(x))] - E_z[fake_term(D(G(z)))] (minus its penalties);
every ``d_steps`` critic steps the generator takes one step on ``divergence.generator_loss``.
Output: the generator G and the discriminator D.
"""

from __future__ import annotations

from torch import Tensor

from ..config import OMASGANConfig
from .common import EpochCallback, StageLoop, StageResult, adam, new_critic, new_generator, shuffled_batches


def train_task1(config: OMASGANConfig, train_x: Tensor, *, is_image: bool,
                on_epoch: EpochCallback | None = None) -> StageResult:
    """Train (G, D) on ``train_x`` (normal samples, on the training device)."""
    loop = StageLoop("task1", config, train_x.device, on_epoch)
    cfg, divergence = config.task1, loop.divergence
    sample_shape = tuple(train_x.shape[1:])
    generator = new_generator(config.network, sample_shape, is_image).to(loop.device).train()
    critic = new_critic(config.network, sample_shape).to(loop.device).train()
    opt_g = adam(generator, cfg.lr_g, cfg)
    opt_d = adam(critic, cfg.lr_d, cfg)

    for _ in loop.epochs(cfg.epochs):
        for x in shuffled_batches(train_x, cfg.batch_size):
            fake = loop.samples_of(generator, x.shape[0])
            loop.critic_step(opt_d, critic, x, fake, loss_d=divergence.discriminator_loss(critic(x), critic(fake)))
            loop.steps += 1
            if loop.steps % cfg.d_steps == 0:
                loop.step(opt_g, loss_g=divergence.generator_loss(critic(generator(loop.codes(cfg.batch_size)))))

    generator.eval()
    critic.eval()
    return loop.result({"generator": generator, "discriminator": critic})

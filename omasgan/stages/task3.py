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
from .common import EpochCallback, StageLoop, StageResult, adam, freeze, shuffled_batches, trainable_copy


def train_task3(config: OMASGANConfig, generator: nn.Module, discriminator: nn.Module, boundary: nn.Module,
                train_x: Tensor, *, on_epoch: EpochCallback | None = None) -> StageResult:
    """Train (G', C) from Task 1's (G, D) and Task 2's B on the normal ``train_x``."""
    loop = StageLoop("task3", config, train_x.device, on_epoch)
    cfg, divergence = config.task3, loop.divergence
    frozen_g, frozen_b = freeze(generator), freeze(boundary)
    retrained_g = trainable_copy(generator)
    critic = trainable_copy(discriminator)
    opt_g = adam(retrained_g, cfg.lr_g, cfg)
    opt_c = adam(critic, cfg.lr_d, cfg)

    for _ in loop.epochs(cfg.epochs):
        for x in shuffled_batches(train_x, cfg.batch_size):
            n = x.shape[0]
            g_samples = loop.samples_of(frozen_g, n)
            b_samples = loop.samples_of(frozen_b, n)
            g_prime_samples = loop.samples_of(retrained_g, n)
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
            loop.critic_step(opt_c, critic, x, g_prime_samples, loss_c=loss_c)
            loop.steps += 1
            if loop.steps % cfg.d_steps == 0 and cfg.beta > 0:
                loop.step(opt_g, loss_g=cfg.beta * divergence.generator_loss(critic(retrained_g(loop.codes(n)))))

    retrained_g.eval()
    critic.eval()
    return loop.result({"generator": retrained_g, "critic": critic})


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

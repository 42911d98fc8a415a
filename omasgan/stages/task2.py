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

Variants (``task2.*``, the defaults are the paper's):
- ``feature_space``: d and s are measured on phi(B(z)), phi(G(z)) (:mod:`.feature_space`); the
  autoencoder's per-epoch loss is logged as ``ae_loss``.
- ``boundaries`` = K > 1: B_1..B_K, each from G's weights (every one but the first jittered by a
  factor 1 + 0.02 N(0, 1) per weight, to leave the symmetric start where the diversity term has no
  gradient) with its own critic D_m,k (also from Task 1's D), share each step's z and bank and
  together minimise

      sum_k [E_z[fake_term(D_m,k(B_k(z)))] + mu d(B_k, G) + nu s(B_k, z)] + diversity * div(o_1..o_K)

  with o_k = mean_i (B_k(z_i) - G(z_i)) and div the mean pairwise cosine similarity
  (:func:`omasgan.boundary.offset_similarity`).  ``loss_b`` is that sum, ``m_fake_term``, ``d`` and
  ``s`` are means over k, and ``diversity`` is div.  The modules are ``boundary``, ``critic``,
  ``boundary_1``, ``critic_1``, ... (:mod:`.union`).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ..boundary import dispersion, mean_offset, nearest_bank_distance, offset_similarity
from ..config import OMASGANConfig
from .common import (BatchCycler, EpochCallback, StageLoop, StageResult, adam, freeze, samples_without_graph,
                     steps_per_epoch, trainable_copy)
from .feature_space import task2_feature_map
from .union import member_name


def train_task2(config: OMASGANConfig, generator: nn.Module, discriminator: nn.Module, train_x: Tensor, *,
                on_epoch: EpochCallback | None = None) -> StageResult:
    """Train B from Task 1's (G, D); ``train_x`` is used for the epoch length and for ``reference=data``."""
    loop = StageLoop("task2", config, train_x.device, on_epoch)
    cfg, divergence = config.task2, loop.divergence
    phi, feature_history = task2_feature_map(config, discriminator, train_x)
    k_count = cfg.boundaries
    frozen_g = freeze(generator)
    boundaries = [trainable_copy(generator) for _ in range(k_count)]
    for boundary in boundaries[1:]:
        _break_symmetry(boundary)
    critics = [trainable_copy(discriminator) for _ in range(k_count)]
    opt_b = adam(boundaries[0] if k_count == 1 else nn.ModuleList(boundaries), cfg.lr_b, cfg)
    opt_ds = [adam(critic, cfg.lr_d, cfg) for critic in critics]
    n_steps = steps_per_epoch(train_x.shape[0], cfg.batch_size)
    bank = bank_features = None
    data_batches = BatchCycler(train_x, cfg.batch_size) if cfg.reference == "data" else None

    for _ in loop.epochs(cfg.epochs):
        for _ in range(n_steps):
            if bank is None or loop.steps % cfg.bank_refresh == 0:
                bank = loop.samples_of(frozen_g, cfg.bank_size)
                bank_features = bank if phi is None else _features_without_graph(phi, bank)
            z = loop.codes(cfg.batch_size)

            for boundary, critic, opt_d in zip(boundaries, critics, opt_ds):
                for _ in range(cfg.d_steps):
                    if data_batches is not None:
                        positive = data_batches.next()
                    else:
                        positive = loop.samples_of(frozen_g, cfg.batch_size)
                    negative = samples_without_graph(boundary, z)
                    loss_d = divergence.discriminator_loss(critic(positive), critic(negative))
                    loop.critic_step(opt_d, critic, positive, negative, loss_d=loss_d)

            if k_count == 1:
                loss_b, m_q_term, d_term, s_term, _ = _boundary_loss(
                    boundaries[0], critics[0], z, bank_features, phi, divergence, cfg)
                loop.step(opt_b, loss_b=loss_b)
                loop.log.add(m_fake_term=m_q_term, d=d_term, s=s_term)
            else:
                g_z = samples_without_graph(frozen_g, z)
                parts = [_boundary_loss(b, c, z, bank_features, phi, divergence, cfg, g_z)
                         for b, c in zip(boundaries, critics)]
                diversity = offset_similarity([part[4] for part in parts])
                loop.step(opt_b, loss_b=torch.stack([part[0] for part in parts]).sum() + cfg.diversity * diversity)
                means = {name: torch.stack([part[i] for part in parts]).mean()
                         for i, name in ((1, "m_fake_term"), (2, "d"), (3, "s"))}
                loop.log.add(diversity=diversity, **means)
            loop.steps += 1

    modules: dict[str, nn.Module] = {}
    for k, (boundary, critic) in enumerate(zip(boundaries, critics)):
        boundary.eval()
        critic.eval()
        modules[member_name(k)] = boundary
        modules["critic" if k == 0 else f"critic_{k}"] = critic
    return loop.result(modules, feature_history)


SYMMETRY_BREAK = 0.02
"""B_k (k >= 1) starts from G's weights times (1 + SYMMETRY_BREAK * N(0, 1)), elementwise."""


@torch.no_grad()
def _break_symmetry(boundary: nn.Module) -> None:
    """K copies of G are a stationary point of the diversity term (a cosine similarity has zero
    gradient where two offsets point the same way), so every B_k but the first is jittered a little."""
    for parameter in boundary.parameters():
        parameter.mul_(1.0 + SYMMETRY_BREAK * torch.randn_like(parameter))


@torch.no_grad()
def _features_without_graph(phi, x: Tensor) -> Tensor:
    return phi(x)


def _boundary_loss(boundary, critic, z, bank_features, phi, divergence, cfg, g_z=None):
    """One boundary model's E_z[fake_term(D_m(B(z)))] + mu d + nu s, its three terms, and (given
    G(z)) its mean offset from G."""
    samples = boundary(z)
    v_boundary = critic(samples)
    m_q_term = divergence.fake_cost(v_boundary)
    features = samples if phi is None else phi(samples)
    d_term = nearest_bank_distance(features, bank_features, cfg.p)
    s_term = dispersion(z, features, cfg.eps)
    loss = m_q_term + cfg.mu * d_term + cfg.nu * s_term
    offset = mean_offset(samples, g_z) if g_z is not None else None
    return loss, m_q_term, d_term, s_term, offset

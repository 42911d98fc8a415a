"""Where Task 2 measures d and s (``task2.feature_space``, docs/design.md 3.3 for the pixel case).

    pixel        phi(x) = x                         (the paper)
    critic       phi(x) = D.features(x)             the penultimate layer of Task 1's D, frozen
    autoencoder  phi(x) = enc(x)                    the encoder of an autoencoder trained here on the
                                                    normal training data (``ae_epochs`` epochs of
                                                    Adam at ``ae_lr``, batches of task1.batch_size),
                                                    then frozen

Task 2 then uses d(B, G) = mean_i min_j ||phi(B(z_i)) - phi(G(z_j))||_p and
s = mean_i 1/(N-1) sum_{j != i} ||z_i - z_j|| / (||phi(B(z_i)) - phi(B(z_j))|| + eps); gradients
flow through phi into B (phi's own weights never change).  The autoencoder is built and trained
under a forked RNG seeded from (seed, "task2"), so Task 2's own random draws are the same in every
feature space.
"""

from __future__ import annotations

import copy
from typing import Callable

import torch
from torch import Tensor, nn

from ..autoencoders import build_autoencoder, seeded_autoencoder, train_autoencoder
from ..config import OMASGANConfig
from .common import freeze, stage_seed

FeatureMap = Callable[[Tensor], Tensor]


def task2_feature_map(
    config: OMASGANConfig, discriminator: nn.Module, train_x: Tensor
) -> tuple[FeatureMap | None, dict[str, list[float]]]:
    """phi of ``config.task2.feature_space`` (None for ``pixel``) and the history of its training
    (``{"ae_loss": [...]}`` for ``autoencoder``, else empty)."""
    cfg = config.task2
    if cfg.feature_space == "pixel":
        return None, {}
    if cfg.feature_space == "critic":
        return freeze(copy.deepcopy(discriminator)).features, {}
    seed = stage_seed(config.seed, "task2") + 1
    model = seeded_autoencoder(tuple(train_x.shape[1:]), train_x.dim() == 4, cfg.ae_latent_dim, cfg.ae_width,
                               seed=seed, device=train_x.device, key="task2.ae_latent_dim")
    history = train_autoencoder(model, train_x, epochs=cfg.ae_epochs, lr=cfg.ae_lr, batch_size=config.task1.batch_size,
                                seed=seed + 1)
    return freeze(model).encoder, {"ae_loss": history}


def check_feature_space(config: OMASGANConfig, sample_shape: tuple[int, ...], is_image: bool) -> None:
    """Raise ConfigError (before any training) when the feature space's network cannot take the data."""
    if config.task2.feature_space == "autoencoder":
        cfg = config.task2
        with torch.random.fork_rng(devices=[]):  # building draws initial weights; leave the caller's RNG alone
            build_autoencoder(tuple(sample_shape), is_image and len(sample_shape) == 3, cfg.ae_latent_dim, 1,
                              key="task2.ae_latent_dim")

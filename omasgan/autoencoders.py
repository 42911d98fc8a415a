"""Autoencoders: the ``ae`` baseline's networks, and the feature map of Task 2's
``feature_space = autoencoder`` (the encoder of an autoencoder trained on the normal training data).

Both minimise the per-sample mean squared reconstruction error over the features,
``r(x) = mean_f (dec(enc(x))_f - x_f)^2``, with Adam.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from .errors import ConfigError, TrainingDivergedError


def default_latent_dim(sample_shape: tuple[int, ...], is_image: bool) -> int:
    """min(32, n_features // 4) for images, min(32, n_features // 2) for vectors, at least 1."""
    n_features = int(np.prod(sample_shape))
    return max(1, min(32, n_features // (4 if is_image else 2)))


class ConvAutoencoder(nn.Module):
    """(C, H, W) -> conv(4, stride 2) x2 -> linear bottleneck -> mirror with transposed convs.

    H and W must be multiples of 4 (8x8 digits, 28x28 MNIST, 32x32 CIFAR all are); no BatchNorm,
    so the output of a sample never depends on its batch. The output layer is linear."""

    def __init__(self, sample_shape: tuple[int, int, int], latent_dim: int, width: int) -> None:
        super().__init__()
        c, h, w = sample_shape
        if h % 4 or w % 4:
            raise ConfigError(f"the autoencoder's conv net needs an image height and width divisible by 4, "
                              f"got {tuple(sample_shape)}")
        inner = (2 * width, h // 4, w // 4)
        n_inner = int(np.prod(inner))
        self.encoder = nn.Sequential(
            nn.Conv2d(c, width, 4, 2, 1), nn.LeakyReLU(0.2),
            nn.Conv2d(width, 2 * width, 4, 2, 1), nn.LeakyReLU(0.2),
            nn.Flatten(), nn.Linear(n_inner, latent_dim),
        )
        self.decoder = nn.Sequential(
            nn.Linear(latent_dim, n_inner), nn.LeakyReLU(0.2), nn.Unflatten(1, inner),
            nn.ConvTranspose2d(2 * width, width, 4, 2, 1), nn.LeakyReLU(0.2),
            nn.ConvTranspose2d(width, c, 4, 2, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder(x))


class MLPAutoencoder(nn.Module):
    """D -> width -> width -> latent -> width -> width -> D with LeakyReLU; linear output."""

    def __init__(self, n_features: int, latent_dim: int, width: int, key: str = "latent_dim") -> None:
        super().__init__()
        if latent_dim >= n_features:
            raise ConfigError(f"{key}={latent_dim} must be smaller than the {n_features} "
                              f"features of the data for an MLP autoencoder; choose 1..{n_features - 1}")
        act = lambda: nn.LeakyReLU(0.2)  # noqa: E731
        self.encoder = nn.Sequential(nn.Flatten(), nn.Linear(n_features, width), act(), nn.Linear(width, width),
                                     act(), nn.Linear(width, latent_dim))
        self.decoder = nn.Sequential(nn.Linear(latent_dim, width), act(), nn.Linear(width, width), act(),
                                     nn.Linear(width, n_features))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder(x)).reshape(x.shape)


def reconstruction_error(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Per-sample mean squared reconstruction error over all features."""
    return (model(x) - x).pow(2).reshape(len(x), -1).mean(dim=1)


def build_autoencoder(sample_shape: tuple[int, ...], is_image: bool, latent_dim: int, width: int,
                      key: str = "latent_dim") -> nn.Module:
    """A conv autoencoder for (C, H, W) images, an MLP one otherwise; ``latent_dim`` 0 = the default."""
    latent = latent_dim or default_latent_dim(sample_shape, is_image)
    if is_image and len(sample_shape) == 3:
        return ConvAutoencoder(tuple(sample_shape), latent, width)  # type: ignore[arg-type]
    return MLPAutoencoder(int(np.prod(sample_shape)), latent, width, key=key)


def seeded_autoencoder(sample_shape: tuple[int, ...], is_image: bool, latent_dim: int, width: int, *, seed: int,
                       device: torch.device, key: str = "latent_dim") -> nn.Module:
    """:func:`build_autoencoder` with its initial weights drawn after ``torch.manual_seed(seed)``, on
    ``device``; the caller's RNG state is kept."""
    devices = [device.index or 0] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        return build_autoencoder(sample_shape, is_image, latent_dim, width, key=key).to(device)


def train_autoencoder(model: nn.Module, train_x: torch.Tensor, *, epochs: int, lr: float, batch_size: int,
                      seed: int, name: str = "autoencoder", lr_key: str = "its learning rate") -> list[float]:
    """Adam on the mean reconstruction error over shuffled batches (the last partial batch too); the
    batch order comes from a generator seeded with ``seed``.  Returns the per-epoch mean losses.  A
    non-finite loss raises :class:`TrainingDivergedError` naming ``name`` and ``lr_key``."""
    order_rng = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    history: list[float] = []
    n = len(train_x)
    model.train()
    for epoch in range(1, epochs + 1):
        order = torch.randperm(n, generator=order_rng).to(train_x.device)
        total, steps = 0.0, 0
        for start in range(0, n, batch_size):
            loss = reconstruction_error(model, train_x[order[start:start + batch_size]]).mean()
            if not torch.isfinite(loss):
                raise TrainingDivergedError(f"{name}: the reconstruction loss became {loss.item()} at epoch "
                                            f"{epoch}, step {steps + 1}; lower {lr_key}")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total += loss.item()
            steps += 1
        history.append(total / steps)
    model.eval()
    return history

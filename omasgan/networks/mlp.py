"""Fully connected generator and discriminator for synthetic 2-D and tabular data (any sample shape).

Initialisation: PyTorch's default (Kaiming-uniform weights, a = sqrt(5)) everywhere.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ._layers import SequentialCritic, apply_spectral_norm, output_activation


class MLPGenerator(nn.Module):
    """z (B, latent_dim) -> x (B, *sample_shape).

    Layer plan (``depth`` hidden layers of ``width`` units)::

        [Linear(in, width) -> BatchNorm1d(width) -> ReLU] x depth      (in = latent_dim, then width)
        Linear(width, prod(sample_shape)) -> output activation (tanh | identity) -> reshape

    With ``batchnorm=True`` (the default, which trains small 2-D GANs well) the hidden ``Linear``
    layers have no bias (BatchNorm's shift replaces it); with ``batchnorm=False`` the hidden block is
    ``Linear -> ReLU``. BatchNorm1d needs batches of at least 2 in train mode.
    """

    kind = "mlp"

    def __init__(self, sample_shape: tuple[int, ...], latent_dim: int, width: int = 64, depth: int = 3,
                 output: str = "linear", batchnorm: bool = True) -> None:
        super().__init__()
        self.sample_shape = tuple(sample_shape)
        self.latent_dim = latent_dim
        layers: list[nn.Module] = []
        in_features = latent_dim
        for _ in range(depth):
            layers.append(nn.Linear(in_features, width, bias=not batchnorm))
            if batchnorm:
                layers.append(nn.BatchNorm1d(width))
            layers.append(nn.ReLU())
            in_features = width
        layers.append(nn.Linear(width, math.prod(self.sample_shape)))
        layers.append(output_activation(output))
        layers.append(nn.Unflatten(1, self.sample_shape))
        self.net = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z)


class MLPDiscriminator(SequentialCritic):
    """x (B, *sample_shape) -> raw logits (B,).

    Layer plan::

        Flatten -> [Linear(in, width) -> LeakyReLU(0.2)] x depth -> Linear(width, 1) -> squeeze

    No BatchNorm (a discriminator's BatchNorm mixes the statistics of the real and fake batches and
    makes gradient penalties ill-defined), so the factory's ``batchnorm`` flag is ignored here.
    With ``spectral_norm=True`` every ``Linear`` is wrapped with spectral normalisation.
    ``features(x)`` is the last hidden LeakyReLU output, (B, width).
    """

    kind = "mlp"

    def __init__(self, sample_shape: tuple[int, ...], width: int = 64, depth: int = 3,
                 spectral_norm: bool = False) -> None:
        super().__init__()
        self.sample_shape = tuple(sample_shape)
        layers: list[nn.Module] = [nn.Flatten(1)]
        in_features = math.prod(self.sample_shape)
        for _ in range(depth):
            layers += [nn.Linear(in_features, width), nn.LeakyReLU(0.2)]
            in_features = width
        layers.append(nn.Linear(width, 1))
        self.net = nn.Sequential(*layers)
        if spectral_norm:
            apply_spectral_norm(self)

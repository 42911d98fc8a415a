"""DCGAN convolutional generator and discriminator for (C, 28, 28) and (C, 32, 32) images, C in {1, 3}.

``width`` is the base channel count w; ``depth`` does not apply (the number of resolution steps is
fixed by the image size: two for 28x28, three for 32x32).

Initialisation (Radford et al. 2016): conv / transposed-conv / linear weights ~ N(0, 0.02), biases 0,
BatchNorm scales ~ N(1, 0.02) and shifts 0. Layers followed by BatchNorm have no bias.
"""

from __future__ import annotations

import torch
from torch import nn

from ._layers import SequentialCritic, apply_spectral_norm, output_activation

# image side -> (side of the smallest feature map, number of stride-2 resolution steps)
_PLAN = {28: (7, 2), 32: (4, 3)}


def dcgan_init(module: nn.Module) -> None:
    """DCGAN weight initialisation for one module (use with ``net.apply(dcgan_init)``)."""
    if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
        nn.init.normal_(module.weight, 0.0, 0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, (nn.BatchNorm1d, nn.BatchNorm2d)):
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)


class DCGANGenerator(nn.Module):
    """z (B, latent_dim) -> x (B, C, S, S), S in {28, 32}.

    With n = 2 steps for S = 28 (s = 7) and n = 3 for S = 32 (s = 4), the channel count starts at
    w * 2**n and halves at every step down to w::

        Linear(latent_dim, w*2**n * s * s) -> (w*2**n, s, s) -> BatchNorm2d -> ReLU
        [ConvTranspose2d(k=4, stride=2, pad=1), channels / 2 -> BatchNorm2d -> ReLU] x n
        Conv2d(w, C, k=3, pad=1) -> output activation (tanh | identity)

    28x28: (4w, 7, 7) -> (2w, 14, 14) -> (w, 28, 28) -> (C, 28, 28)
    32x32: (8w, 4, 4) -> (4w, 8, 8) -> (2w, 16, 16) -> (w, 32, 32) -> (C, 32, 32)
    (the 32x32 plan is the "standard CNN" generator of Miyato et al. 2018, 512 channels at w = 64).
    ``batchnorm=False`` drops every BatchNorm (and restores the biases).
    """

    kind = "dcgan"

    def __init__(self, sample_shape: tuple[int, ...], latent_dim: int, width: int = 64,
                 output: str = "tanh", batchnorm: bool = True) -> None:
        super().__init__()
        self.sample_shape = tuple(sample_shape)
        self.latent_dim = latent_dim
        channels, side = self.sample_shape[0], self.sample_shape[1]
        s, n = _PLAN[side]
        ch = width * 2 ** n
        layers: list[nn.Module] = [nn.Linear(latent_dim, ch * s * s, bias=not batchnorm), nn.Unflatten(1, (ch, s, s))]
        if batchnorm:
            layers.append(nn.BatchNorm2d(ch))
        layers.append(nn.ReLU())
        for _ in range(n):
            layers.append(nn.ConvTranspose2d(ch, ch // 2, 4, 2, 1, bias=not batchnorm))
            if batchnorm:
                layers.append(nn.BatchNorm2d(ch // 2))
            layers.append(nn.ReLU())
            ch //= 2
        layers += [nn.Conv2d(ch, channels, 3, 1, 1), output_activation(output)]
        self.net = nn.Sequential(*layers)
        self.apply(dcgan_init)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z)


class DCGANDiscriminator(SequentialCritic):
    """x (B, C, S, S) -> raw logits (B,), S in {28, 32}; the generator's plan run backwards.

    Stride-2 convolutions (k=4, pad=1) halve the side and double the channels, starting at w::

        Conv2d(C, w) -> LeakyReLU(0.2)                                  (no BatchNorm on the first conv)
        [Conv2d(ch, 2ch) -> BatchNorm2d -> LeakyReLU(0.2)] x (n - 1)
        Flatten -> Linear(ch * s * s, 1) -> squeeze

    28x28: (C, 28, 28) -> (w, 14, 14) -> (2w, 7, 7) -> (B,)
    32x32: (C, 32, 32) -> (w, 16, 16) -> (2w, 8, 8) -> (4w, 4, 4) -> (B,)
    BatchNorm is used when ``batchnorm=True`` and ``spectral_norm=False``; with ``spectral_norm=True``
    every conv and the linear layer are spectrally normalised and there is no BatchNorm.
    ``features(x)`` is the flattened last feature map, (B, ch * s * s).
    """

    kind = "dcgan"

    def __init__(self, sample_shape: tuple[int, ...], width: int = 64, spectral_norm: bool = False,
                 batchnorm: bool = True) -> None:
        super().__init__()
        self.sample_shape = tuple(sample_shape)
        channels, side = self.sample_shape[0], self.sample_shape[1]
        s, n = _PLAN[side]
        use_bn = batchnorm and not spectral_norm
        layers: list[nn.Module] = [nn.Conv2d(channels, width, 4, 2, 1), nn.LeakyReLU(0.2)]
        ch = width
        for _ in range(n - 1):
            layers.append(nn.Conv2d(ch, ch * 2, 4, 2, 1, bias=not use_bn))
            if use_bn:
                layers.append(nn.BatchNorm2d(ch * 2))
            layers.append(nn.LeakyReLU(0.2))
            ch *= 2
        layers += [nn.Flatten(1), nn.Linear(ch * s * s, 1)]
        self.net = nn.Sequential(*layers)
        self.apply(dcgan_init)
        if spectral_norm:
            apply_spectral_norm(self)

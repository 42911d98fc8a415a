"""SN-ResNet generator and discriminator for (C, 32, 32) images, C in {1, 3}.

The CIFAR-10 ResNet of Miyato et al. (2018, Table 4), also the architecture of Song & Ermon's (2020)
KL-WGAN CIFAR experiments, with ``width`` channels in every block (their G uses 256, their D 128).
``depth`` does not apply (the block plan is fixed).

Initialisation ``init = "default"`` (as in the SN-GAN reference code): Xavier-uniform weights with
gain sqrt(2) for the 3x3 convolutions inside residual branches and gain 1 for shortcuts, the input
linear layer, the output convolution and the final linear layer; biases 0.  ``init = "n02"`` (BigGAN's
``N02``): every convolution and linear weight ~ N(0, 0.02), biases left at PyTorch's default
(uniform in +-1/sqrt(fan_in)), BatchNorm at weight 1, bias 0.

The BigGAN of the paper's public code (BigGAN-PyTorch's 32x32 plan at channel multiplier ch = 64,
no attention) has this block plan with 4 ch = 256 channels in every block of G and D, so ``width =
256`` gives its layer shapes.  ``spectral_norm=True`` in the generator is BigGAN's spectrally
normalised G (``G_param = SN``); the discriminator is always spectrally normalised.  What still
differs from it is listed in bench/configs/mnist_paper.yaml.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ._layers import apply_spectral_norm, output_activation

INITS = ("default", "n02")


def _init(module: nn.Module, gain: float = 1.0) -> nn.Module:
    nn.init.xavier_uniform_(module.weight, gain)
    if module.bias is not None:
        nn.init.zeros_(module.bias)
    return module


def _init_n02(network: nn.Module) -> None:
    """BigGAN's ``N02``: every Linear/Conv2d weight ~ N(0, 0.02), in module order; the biases get
    PyTorch's default initialisation again (BigGAN never sets them)."""
    for module in network.modules():
        if isinstance(module, (nn.Linear, nn.Conv2d)):
            module.reset_parameters()  # PyTorch's default weight and bias
            nn.init.normal_(module.weight, 0.0, 0.02)


def _reinitialise(network: nn.Module, init: str) -> None:
    """Apply ``init`` to a freshly built network (``default`` keeps the constructor's weights)."""
    if init == "n02":
        _init_n02(network)


def _bn(channels: int, on: bool) -> nn.Module:
    return nn.BatchNorm2d(channels) if on else nn.Identity()


class GeneratorBlock(nn.Module):
    """Up-sampling residual block: (B, in, H, W) -> (B, out, 2H, 2W).

    branch:   BN -> ReLU -> nearest-upsample x2 -> conv3x3 -> BN -> ReLU -> conv3x3
    shortcut: nearest-upsample x2 -> conv1x1
    """

    def __init__(self, in_ch: int, out_ch: int, batchnorm: bool = True) -> None:
        super().__init__()
        g = math.sqrt(2.0)
        self.bn1 = _bn(in_ch, batchnorm)
        self.conv1 = _init(nn.Conv2d(in_ch, out_ch, 3, 1, 1, bias=not batchnorm), g)
        self.bn2 = _bn(out_ch, batchnorm)
        self.conv2 = _init(nn.Conv2d(out_ch, out_ch, 3, 1, 1), g)
        self.shortcut = _init(nn.Conv2d(in_ch, out_ch, 1, 1, 0))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.interpolate(F.relu(self.bn1(x)), scale_factor=2, mode="nearest")
        h = self.conv2(F.relu(self.bn2(self.conv1(h))))
        return h + self.shortcut(F.interpolate(x, scale_factor=2, mode="nearest"))


class OptimizedDiscriminatorBlock(nn.Module):
    """First discriminator block, on the raw image: (B, in, H, W) -> (B, out, H/2, W/2).

    branch:   conv3x3 -> ReLU -> conv3x3 -> avgpool2      (no ReLU before the first conv)
    shortcut: avgpool2 -> conv1x1
    """

    def __init__(self, in_ch: int, out_ch: int) -> None:
        super().__init__()
        g = math.sqrt(2.0)
        self.conv1 = _init(nn.Conv2d(in_ch, out_ch, 3, 1, 1), g)
        self.conv2 = _init(nn.Conv2d(out_ch, out_ch, 3, 1, 1), g)
        self.shortcut = _init(nn.Conv2d(in_ch, out_ch, 1, 1, 0))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.avg_pool2d(self.conv2(F.relu(self.conv1(x))), 2)
        return h + self.shortcut(F.avg_pool2d(x, 2))


class DiscriminatorBlock(nn.Module):
    """Residual discriminator block: (B, in, H, W) -> (B, out, H/2, W/2) or (B, out, H, W).

    branch:   ReLU -> conv3x3 -> ReLU -> conv3x3 [-> avgpool2 when downsampling]
    shortcut: conv1x1 [-> avgpool2] when downsampling or in != out, else the identity
    """

    def __init__(self, in_ch: int, out_ch: int, downsample: bool) -> None:
        super().__init__()
        g = math.sqrt(2.0)
        self.downsample = downsample
        self.conv1 = _init(nn.Conv2d(in_ch, out_ch, 3, 1, 1), g)
        self.conv2 = _init(nn.Conv2d(out_ch, out_ch, 3, 1, 1), g)
        self.shortcut = _init(nn.Conv2d(in_ch, out_ch, 1, 1, 0)) if downsample or in_ch != out_ch else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv2(F.relu(self.conv1(F.relu(x))))
        s = x if self.shortcut is None else self.shortcut(x)
        if self.downsample:
            h, s = F.avg_pool2d(h, 2), F.avg_pool2d(s, 2)
        return h + s


class ResNetGenerator(nn.Module):
    """z (B, latent_dim) -> x (B, C, 32, 32); w = ``width``::

        Linear(latent_dim, w*4*4) -> (w, 4, 4)
        GeneratorBlock x 3: (w, 8, 8) -> (w, 16, 16) -> (w, 32, 32)
        BN -> ReLU -> conv3x3(w, C) -> output activation (tanh | identity)

    ``batchnorm=False`` replaces every BatchNorm by the identity; ``spectral_norm=True`` wraps the
    linear layer and every convolution in spectral norm (BigGAN's G); ``init`` as in the module
    docstring.
    """

    kind = "resnet"

    def __init__(self, sample_shape: tuple[int, ...], latent_dim: int, width: int = 64,
                 output: str = "tanh", batchnorm: bool = True, spectral_norm: bool = False,
                 init: str = "default") -> None:
        super().__init__()
        self.sample_shape = tuple(sample_shape)
        self.latent_dim = latent_dim
        self.width = width
        self.linear = _init(nn.Linear(latent_dim, width * 4 * 4))
        self.blocks = nn.Sequential(*(GeneratorBlock(width, width, batchnorm) for _ in range(3)))
        self.bn = _bn(width, batchnorm)
        self.conv = _init(nn.Conv2d(width, self.sample_shape[0], 3, 1, 1))
        self.out = output_activation(output)
        _reinitialise(self, init)
        if spectral_norm:
            apply_spectral_norm(self)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = self.linear(z).view(z.shape[0], self.width, 4, 4)
        h = self.blocks(h)
        return self.out(self.conv(F.relu(self.bn(h))))


class ResNetDiscriminator(nn.Module):
    """x (B, C, 32, 32) -> raw logits (B,); w = ``width``::

        OptimizedDiscriminatorBlock(C, w)          -> (w, 16, 16)
        DiscriminatorBlock(w, w, downsample=True)  -> (w, 8, 8)
        DiscriminatorBlock(w, w) x 2               -> (w, 8, 8)
        ReLU -> sum over H, W -> Linear(w, 1) -> squeeze

    Every convolution and the linear layer are always spectrally normalised (that is what makes it
    the SN-ResNet); there is no BatchNorm.  ``init`` as in the module docstring.
    """

    kind = "resnet"

    def __init__(self, sample_shape: tuple[int, ...], width: int = 64, init: str = "default") -> None:
        super().__init__()
        self.sample_shape = tuple(sample_shape)
        self.blocks = nn.Sequential(
            OptimizedDiscriminatorBlock(self.sample_shape[0], width),
            DiscriminatorBlock(width, width, downsample=True),
            DiscriminatorBlock(width, width, downsample=False),
            DiscriminatorBlock(width, width, downsample=False),
        )
        self.linear = _init(nn.Linear(width, 1))
        _reinitialise(self, init)
        apply_spectral_norm(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(self.features(x)).squeeze(1)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The penultimate layer: ReLU of the last block summed over H and W, (B, width)."""
        return F.relu(self.blocks(x)).sum(dim=(2, 3))

"""Small building blocks shared by the network families (output activations, spectral norm, the
sequential critic's head)."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm as _spectral_norm

OUTPUTS = ("tanh", "linear")


def output_activation(output: str) -> nn.Module:
    """The generator's final activation: ``tanh`` (images in [-1, 1]) or ``linear`` (identity)."""
    return nn.Tanh() if output == "tanh" else nn.Identity()


def apply_spectral_norm(module: nn.Module) -> nn.Module:
    """Wrap every ``Linear``/``Conv2d``/``ConvTranspose2d`` below ``module`` (in place) with
    :func:`torch.nn.utils.parametrizations.spectral_norm` and return ``module``.

    Call it after the weights are initialised: the parametrisation stores the original weight and
    normalises it by its largest singular value (one power iteration per training forward pass).
    """
    targets = [m for m in module.modules() if isinstance(m, (nn.Linear, nn.Conv2d, nn.ConvTranspose2d))]
    for m in targets:
        _spectral_norm(m)
    return module


class SequentialCritic(nn.Module):
    """A critic whose layers are one ``nn.Sequential`` ``self.net`` ending in ``Linear(features, 1)``:
    ``forward`` gives the raw logits (B,), ``features`` the input of that last layer."""

    net: nn.Sequential

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).squeeze(1)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The penultimate layer, (B, features)."""
        return self.net[:-1](x)

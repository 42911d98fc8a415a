"""Gradient penalties for the critics.

    R1 (Mescheder et al. 2018):  gamma/2 * E_P[ ||grad_x v(x)||^2 ]          on P-side samples
    WGAN-GP (Gulrajani et al. 2017): lambda * E[ (||grad_x v(x~)||_2 - 1)^2 ],
        x~ = e x_P + (1 - e) x_Q,  e ~ U[0, 1] per sample
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


def _input_gradient(critic: nn.Module, x: Tensor) -> Tensor:
    x = x.detach().requires_grad_(True)
    (grad,) = torch.autograd.grad(critic(x).sum(), x, create_graph=True)
    return grad.reshape(grad.shape[0], -1)


def r1_penalty(critic: nn.Module, x_real: Tensor, gamma: float) -> Tensor:
    """gamma/2 * mean ||grad_x critic(x)||^2 over the real batch."""
    return 0.5 * gamma * _input_gradient(critic, x_real).pow(2).sum(dim=1).mean()


def wgan_gradient_penalty(critic: nn.Module, x_real: Tensor, x_fake: Tensor, weight: float) -> Tensor:
    """weight * mean (||grad critic(x~)|| - 1)^2 on random interpolates of equal-size batches."""
    n = min(x_real.shape[0], x_fake.shape[0])
    real, fake = x_real[:n].detach(), x_fake[:n].detach()
    mix = torch.rand((n,) + (1,) * (real.dim() - 1), device=real.device, dtype=real.dtype)
    interpolates = mix * real + (1.0 - mix) * fake
    return weight * (_input_gradient(critic, interpolates).norm(2, dim=1) - 1.0).pow(2).mean()

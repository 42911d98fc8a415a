"""Anomaly scores (docs/design.md 3.6); higher = more anomalous, always.

    final:  score(x) = j(x)            (the raw logit: saturated sigmoids tie and corrupt AUROC)
    task1:  score(x) = -g_f(d(x))      (Task 1's discriminator D)
    task3:  score(x) = -g_f(c(x))      (Task 3's critic C)

Networks are scored in eval mode (BatchNorm uses its training statistics) under no_grad, in chunks.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .divergences import Divergence

SCORED_STAGES = ("task1", "task3", "final")


@torch.no_grad()
def critic_outputs(critic: nn.Module, x: Tensor, chunk_size: int = 4096) -> Tensor:
    """Raw critic outputs v(x) for every row of x, in eval mode; the module's mode is restored."""
    was_training = critic.training
    critic.eval()
    try:
        device = next(critic.parameters()).device
        pieces = [critic(x[i : i + chunk_size].to(device)) for i in range(0, x.shape[0], chunk_size)]
    finally:
        critic.train(was_training)
    return torch.cat(pieces) if pieces else x.new_zeros((0,))


def anomaly_scores(stage: str, critic: nn.Module, x: Tensor, divergence: Divergence) -> Tensor:
    """The anomaly score of ``stage`` ("task1", "task3" or "final") for every row of x."""
    v = critic_outputs(critic, x)
    if stage == "final":
        return v
    if stage in ("task1", "task3"):
        return -divergence.activation(v)
    raise ValueError(f"unknown scored stage {stage!r}; choose one of: {', '.join(SCORED_STAGES)}")

"""What every OMASGAN stage's training loop shares: seeding, batching, optimisers, loss logging
with a NaN/inf stop, sampling from frozen generators, critic penalties and the stage result."""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass, field
from typing import Callable, Iterator

import torch
from torch import Tensor, nn

from ..config import STAGES, DivergenceConfig, NetworkConfig
from ..divergences import Divergence
from ..errors import TrainingDivergedError
from ..networks import build_discriminator, build_generator
from ..penalties import r1_penalty, wgan_gradient_penalty

EpochCallback = Callable[[str, int, int, dict[str, float]], None]
"""Called after every epoch as ``on_epoch(stage, epoch, epochs, mean_losses)`` (epoch from 1)."""


@dataclass
class StageResult:
    """A trained stage: its modules, the per-epoch mean of every loss it logs, and its cost."""

    stage: str
    modules: dict[str, nn.Module]
    history: dict[str, list[float]] = field(default_factory=dict)
    wall_time_s: float = 0.0
    steps: int = 0

    def state_dicts(self) -> dict[str, dict[str, Tensor]]:
        return {name: module.state_dict() for name, module in self.modules.items()}


def stage_seed(seed: int, stage: str) -> int:
    """The seed a stage starts from: fixed per (run seed, stage), so a stage rerun alone (after a
    resume or a cache miss) draws exactly what it drew inside a full pipeline."""
    return int(seed) * 1_000_003 + STAGES.index(stage) * 7_919 + 17


def seed_stage(seed: int, stage: str) -> None:
    torch.manual_seed(stage_seed(seed, stage))


def adam(module: nn.Module, lr: float, beta1: float, beta2: float) -> torch.optim.Adam:
    return torch.optim.Adam(module.parameters(), lr=lr, betas=(beta1, beta2))


def descend(optimizer: torch.optim.Optimizer, loss: Tensor) -> None:
    """One gradient step of ``optimizer`` on ``loss``."""
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()


def steps_per_epoch(n: int, batch_size: int) -> int:
    """Full batches per pass over n samples (the last partial batch is dropped); at least 1."""
    return max(1, n // batch_size)


def epoch_batches(n: int, batch_size: int, device: torch.device) -> Iterator[Tensor]:
    """Index tensors of one shuffled pass over n samples, held on ``device`` (no DataLoader)."""
    order = torch.randperm(n, device=device)
    if n < batch_size:
        yield order
        return
    for k in range(n // batch_size):
        yield order[k * batch_size : (k + 1) * batch_size]


class BatchCycler:
    """Endless shuffled batches of a tensor: a new permutation each time a pass runs out."""

    def __init__(self, data: Tensor, batch_size: int) -> None:
        self.data, self.batch_size = data, batch_size
        self._batches: Iterator[Tensor] = iter(())

    def next(self) -> Tensor:
        index = next(self._batches, None)
        if index is None:
            self._batches = epoch_batches(self.data.shape[0], self.batch_size, self.data.device)
            index = next(self._batches)
        return self.data[index]


def latent(n: int, latent_dim: int, device: torch.device) -> Tensor:
    """z ~ N(0, I_l)."""
    return torch.randn(n, latent_dim, device=device)


@torch.no_grad()
def samples_without_graph(generator: nn.Module, z: Tensor) -> Tensor:
    """generator(z) with no autograd graph: for frozen generators, and for a trained generator's
    samples on the critic's side of a step (its mode, and so BatchNorm's, is left as it is)."""
    return generator(z)


def freeze(module: nn.Module) -> nn.Module:
    """Eval mode and no gradients: the module is an input of this stage, not trained by it."""
    module.eval()
    for parameter in module.parameters():
        parameter.requires_grad_(False)
    return module


def trainable_copy(module: nn.Module) -> nn.Module:
    """A deep copy in train mode with gradients on: the starting point of a retrained network."""
    clone = copy.deepcopy(module)
    clone.train()
    for parameter in clone.parameters():
        parameter.requires_grad_(True)
    return clone


def new_generator(network: NetworkConfig, sample_shape: tuple[int, ...], is_image: bool) -> nn.Module:
    return build_generator(
        network.kind,
        sample_shape,
        network.latent_dim,
        width=network.g_width,
        depth=network.depth,
        output="tanh" if is_image else "linear",
        batchnorm=network.g_batchnorm,
        spectral_norm=network.g_spectral_norm,
        init=network.init,
    )


def new_critic(network: NetworkConfig, sample_shape: tuple[int, ...]) -> nn.Module:
    return build_discriminator(
        network.kind,
        sample_shape,
        width=network.d_width,
        depth=network.depth,
        spectral_norm=network.spectral_norm,
        batchnorm=network.d_batchnorm,
        init=network.init,
    )


def critic_penalty(
    divergence: Divergence, config: DivergenceConfig, critic: nn.Module, positive: Tensor, negative: Tensor
) -> Tensor | None:
    """WGAN-GP (for ``wasserstein``) between the positive and negative batch, plus R1 on the
    positive batch when ``r1_gamma`` > 0; None when no penalty applies."""
    penalty = None
    if divergence.uses_gradient_penalty and config.gp_weight > 0:
        penalty = wgan_gradient_penalty(critic, positive, negative, config.gp_weight)
    if config.r1_gamma > 0:
        r1 = r1_penalty(critic, positive, config.r1_gamma)
        penalty = r1 if penalty is None else penalty + r1
    return penalty


class LossLog:
    """Collects per-step losses on the device and, once per epoch, checks them and keeps the means.

    Values stay on the device during the epoch (no host sync per step); at the epoch's end any
    NaN or inf raises :class:`TrainingDivergedError` naming the stage, epoch, step and loss.
    """

    def __init__(self, stage: str) -> None:
        self.stage = stage
        self.history: dict[str, list[float]] = {}
        self._steps: dict[str, list[Tensor]] = {}
        self._epoch = 0
        self.total_steps = 0

    def add(self, **losses: Tensor) -> None:
        for name, value in losses.items():
            self._steps.setdefault(name, []).append(value.detach())

    def end_epoch(self) -> dict[str, float]:
        self._epoch += 1
        means: dict[str, float] = {}
        steps_this_epoch = 0
        for name, values in self._steps.items():
            stacked = torch.stack(values).float().cpu()
            finite = torch.isfinite(stacked)
            if not bool(finite.all()):
                first_bad = int((~finite).nonzero()[0, 0])
                step = self.total_steps + first_bad + 1
                raise TrainingDivergedError(
                    f"stage {self.stage}: loss {name!r} became {stacked[first_bad].item()} at epoch "
                    f"{self._epoch}, step {step}; lower the learning rates or pick another divergence"
                )
            means[name] = float(stacked.mean())
            self.history.setdefault(name, []).append(means[name])
            steps_this_epoch = max(steps_this_epoch, len(values))
        self.total_steps += steps_this_epoch
        self._steps = {}
        return means


class StageTimer:
    def __init__(self) -> None:
        self.start = time.perf_counter()

    def elapsed(self) -> float:
        return time.perf_counter() - self.start

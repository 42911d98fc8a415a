"""What every OMASGAN stage's training loop shares: seeding, batching, optimisers, loss logging
with a NaN/inf stop, sampling from frozen generators, critic penalties and the stage result.

A stage builds a :class:`StageLoop` first thing (it seeds the stage and builds the divergence), then
runs ``for epoch in loop.epochs(n)`` over its own loss, taking its optimiser steps through
:meth:`StageLoop.step` and :meth:`StageLoop.critic_step`, and returns :meth:`StageLoop.result`."""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass, field
from typing import Callable, Iterator

import torch
from torch import Tensor, nn

from ..config import (STAGES, DivergenceConfig, JConfig, NetworkConfig, OMASGANConfig, Task1Config, Task2Config,
                      Task3Config)
from ..divergences import Divergence, build_divergence
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


def adam(module: nn.Module, lr: float, section: Task1Config | Task2Config | Task3Config | JConfig
         ) -> torch.optim.Adam:
    """Adam over ``module``'s parameters at rate ``lr`` with the ``beta1``, ``beta2`` of config ``section``."""
    return torch.optim.Adam(module.parameters(), lr=lr, betas=(section.beta1, section.beta2))


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


def shuffled_batches(data: Tensor, batch_size: int) -> Iterator[Tensor]:
    """The batches of one shuffled pass over the rows of ``data`` (:func:`epoch_batches`)."""
    for index in epoch_batches(data.shape[0], batch_size, data.device):
        yield data[index]


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


class StageLoop:
    """The bookkeeping of one stage's training loop, around the stage's own loss.

    Built first thing in a stage: it seeds the stage (:func:`seed_stage`, so every draw after it is
    the stage's own) and builds the divergence.  :meth:`epochs` yields the epochs, timed from the
    first; after each, the epoch's losses are checked for NaN/inf and their means handed to
    ``on_epoch``.  :meth:`step` and :meth:`critic_step` take an optimiser step and log its loss;
    ``steps`` is the stage's step count (the stage advances it); :meth:`result` packs the trained
    modules with the loss history, the wall time and the step count.
    """

    def __init__(self, stage: str, config: OMASGANConfig, device: torch.device,
                 on_epoch: EpochCallback | None) -> None:
        seed_stage(config.seed, stage)
        self.stage, self.device, self.on_epoch = stage, device, on_epoch
        self.latent_dim = config.network.latent_dim
        self.divergence_config = config.divergence
        self.divergence = build_divergence(config.divergence)
        self.log = LossLog(stage)
        self.steps = 0
        self._start = time.perf_counter()

    def epochs(self, count: int) -> Iterator[int]:
        """1, ..., ``count``; when the body of an epoch is done, its losses are checked and reported."""
        self._start = time.perf_counter()
        for epoch in range(1, count + 1):
            yield epoch
            means = self.log.end_epoch()
            if self.on_epoch is not None:
                self.on_epoch(self.stage, epoch, count, means)

    def codes(self, n: int) -> Tensor:
        """n latent codes z ~ N(0, I) on the stage's device."""
        return latent(n, self.latent_dim, self.device)

    def samples_of(self, generator: nn.Module, n: int) -> Tensor:
        """``generator`` applied to n fresh codes, without an autograd graph (:func:`samples_without_graph`)."""
        return samples_without_graph(generator, self.codes(n))

    def step(self, optimizer: torch.optim.Optimizer, **loss: Tensor) -> None:
        """One step of ``optimizer`` on the one loss given (``loss_g=...``), logged under its name."""
        ((name, value),) = loss.items()
        descend(optimizer, value)
        self.log.add(**{name: value})

    def critic_step(self, optimizer: torch.optim.Optimizer, critic: nn.Module, positive: Tensor, negative: Tensor,
                    **loss: Tensor) -> None:
        """:meth:`step` on a critic's loss plus its penalties between the ``positive`` and ``negative``
        batches (:func:`critic_penalty`); the logged loss includes the penalties."""
        ((name, value),) = loss.items()
        penalty = critic_penalty(self.divergence, self.divergence_config, critic, positive, negative)
        if penalty is not None:
            value = value + penalty
        self.step(optimizer, **{name: value})

    def result(self, modules: dict[str, nn.Module], extra_history: dict[str, list[float]] | None = None
               ) -> StageResult:
        """The stage's result: ``modules``, the per-epoch loss means (and ``extra_history``), the
        wall time since the first epoch began and ``steps``."""
        history = {**self.log.history, **(extra_history or {})}
        return StageResult(self.stage, modules, history, time.perf_counter() - self._start, self.steps)

"""Named training budgets of the paper's experiments: what ``omasgan reproduce --budget NAME`` trains.

A budget is a data set, config overrides laid over that data set's defaults (:func:`omasgan.config.
default_config`), and the seeds it runs by default.  Every setting not named keeps the paper's value
(mu, nu, alpha..delta, zeta are the paper's in every budget).

- ``quick``: sklearn's 8x8 digits (no download), short epochs: minutes on two CPU cores.  It runs every
  part of ``reproduce`` and writes the claims table, but its data is not the paper's: its verdicts say
  nothing about the paper's MNIST numbers.
- ``quality``: MNIST, 4,000 training normals, Task 1 for 8 epochs (the project's CPU quality budget,
  ``bench/configs/mnist_quality.yaml``): about 1/800 of the paper's images x Task 1 epochs, and about
  1/200,000 of its CPU time (the paper's network is far larger and every task runs 500 epochs).
- ``paper``: the paper's MNIST setting (section 5.2 and its public code): every normal training image,
  32x32, the ResNet closest to its BigGAN network, 500 epochs in every task (``bench/configs/mnist_paper.yaml``);
  a GPU cluster's budget.

The f-GAN base model of the paper's Figure 9 is its public code's f-GAN path: the Pearson chi-squared
divergence with an R1 penalty of gamma = 0.01 (:data:`FGAN_OVERRIDES`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .config import OMASGANConfig, default_config
from .errors import ConfigError

FGAN_OVERRIDES = {"divergence.name": "pearson", "divergence.r1_gamma": 0.01}
"""The paper's f-GAN base model (Figure 9), as its public code trains it (losses_Task1_fGAN...py:
divergence "pearson", the R1 gradient penalty gamma = 0.01); everything else as the budget has it."""


@dataclass(frozen=True)
class Budget:
    """A data set, the overrides over its defaults, and the default seeds of ``omasgan reproduce``."""

    name: str
    dataset: str
    overrides: dict[str, Any]
    seeds: tuple[int, ...]
    description: str
    paper_data: bool = True
    """Whether the budget trains on the paper's data set (MNIST): only then do its verdicts speak to the
    paper's numbers."""
    notes: tuple[str, ...] = field(default_factory=tuple)

    def config(self, **data: Any) -> OMASGANConfig:
        """The budget's config (``data`` sets data fields such as ``data_root``)."""
        return default_config(self.dataset, **data).with_overrides(self.overrides)


QUALITY_OVERRIDES: dict[str, Any] = {
    "data.max_train": 4000,
    "network.kind": "dcgan", "network.latent_dim": 64, "network.g_width": 32, "network.d_width": 32,
    "network.spectral_norm": True, "network.d_batchnorm": False,
    "divergence.name": "klwgan",
    "task1.epochs": 8, "task1.batch_size": 64,
    "task2.epochs": 3, "task2.batch_size": 256, "task2.bank_size": 1024, "task2.mu": 0.2, "task2.nu": 0.3,
    "task2.bank_refresh": 5,
    "task3.epochs": 2, "task3.batch_size": 64,
    "j.epochs": 2, "j.batch_size": 64,
}

PAPER_OVERRIDES: dict[str, Any] = {
    "data.max_train": None, "data.image_size": 32,
    "network.kind": "resnet", "network.latent_dim": 128, "network.g_width": 256, "network.d_width": 256,
    "network.g_batchnorm": True, "network.spectral_norm": True, "network.g_spectral_norm": True,
    "network.init": "n02",
    "divergence.name": "klwgan", "divergence.klwgan_tau": 5.0, "divergence.generator_loss": "non_saturating",
    "task1.epochs": 500, "task1.batch_size": 64, "task1.lr_g": 2e-4, "task1.lr_d": 2e-4, "task1.beta1": 0.0,
    "task1.beta2": 0.999, "task1.d_steps": 4,
    "task2.epochs": 500, "task2.batch_size": 256, "task2.bank_size": 1024, "task2.bank_refresh": 1, "task2.mu": 0.2,
    "task2.nu": 0.3, "task2.lr_b": 2e-4, "task2.lr_d": 2e-4, "task2.beta1": 0.0, "task2.beta2": 0.999,
    "task2.d_steps": 1,
    "task3.epochs": 500, "task3.batch_size": 64, "task3.alpha": 0.3, "task3.beta": 1.0, "task3.gamma": 0.7,
    "task3.delta": 0.4, "task3.lr_g": 2e-4, "task3.lr_d": 2e-4, "task3.beta1": 0.0, "task3.beta2": 0.999,
    "task3.d_steps": 4,
    "j.epochs": 500, "j.batch_size": 64, "j.zeta": 0.5, "j.lr": 2e-4, "j.beta1": 0.0, "j.beta2": 0.999,
}
"""The paper's MNIST setting as far as this library can express it (bench/configs/mnist_paper.yaml,
whose header gives each setting's source and what still differs: no EMA of G, plain BatchNorm, one
channel, 10% of the normals held out for validation)."""

BUDGETS: dict[str, Budget] = {
    "quick": Budget(
        name="quick", dataset="digits",
        overrides={"divergence.name": "klwgan", "task1.epochs": 30, "task2.epochs": 10, "task3.epochs": 20,
                   "j.epochs": 20},
        seeds=(0, 1),
        description="sklearn's 8x8 digits, short epochs: the whole command in minutes on a laptop",
        paper_data=False,
        notes=("digits are not the paper's MNIST: these verdicts test the machinery, not the paper",),
    ),
    "quality": Budget(
        name="quality", dataset="mnist", overrides=QUALITY_OVERRIDES, seeds=(0, 1, 2),
        description="MNIST, 4,000 training normals, DCGAN-style 28-px networks, Task 1 for 8 epochs "
                    "(about 1/200,000 of the paper's CPU time: bench/paper_budget.py)",
    ),
    "paper": Budget(
        name="paper", dataset="mnist", overrides=PAPER_OVERRIDES, seeds=(0, 1, 2),
        description="the paper's MNIST setting: every normal training image at 32x32, the 256-channel ResNet, "
                    "500 epochs in every task (a GPU cluster's budget: about 37 GPU-hours per (digit, seed) "
                    "unit by bench/paper_budget.py's estimate)",
    ),
}


def budget(name: str) -> Budget:
    """The budget called ``name``; a ConfigError naming the allowed ones otherwise."""
    if name not in BUDGETS:
        raise ConfigError(f"--budget {name!r} is not a budget; choose one of: {', '.join(BUDGETS)}")
    return BUDGETS[name]

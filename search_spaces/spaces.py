"""Optuna define-by-run search spaces over the OMASGAN config.

A space is a function ``space(trial) -> dict`` in Optuna's define-by-run form (the form
``ray.tune.search.optuna.OptunaSearch(space=...)`` takes): it samples with ``trial.suggest_*``
and returns the config values it derives.  Parameter names are dotted config keys
(``task2.mu``); names that start with "_" are parametrisation helpers that the trainables skip.

- The divergence is a categorical over all ten metrics; each branch samples only its own
  parameters (``divergence.klwgan_tau`` for klwgan, ``divergence.gp_weight`` for wasserstein), so
  no name is ever sampled with two different distributions.
- mu and nu are log-uniform.
- alpha..delta are parametrised so every sample is admissible (paper section 3.4):
  s = alpha + delta ~ U[0, 1], alpha = s * a with a ~ U[0, 1], delta = s - alpha,
  gamma = (s - 1) + m with m ~ U[0, 2], so gamma >= alpha + delta - 1 always; beta ~ U[0.1, 2].
- zeta ~ U[0, 1].
- Learning rates and Q/N are categorical options (``with_optimizer``, ``with_batch``).
- The issue-12 variant switches (categorical): ``task2.boundaries`` in {1, 2, 3},
  ``task2.feature_space`` in {pixel, critic, autoencoder}, ``j.refine_steps`` in {0, 1, 2} and
  ``j.score`` in {j, critic, fusion}.  In ``full`` each switch has its own branch parameters, sampled
  only on its branch: ``task2.diversity`` (log-uniform, K > 1), ``task2.ae_epochs`` (autoencoder),
  ``j.refine_weight`` and ``j.refine_margin`` (refine_steps > 0), ``j.fusion_scaling`` (fusion).
  ``variants`` samples the switches only, every other value as the base config has it.
- ``branches`` tunes a chosen variant: the base config's switches stay as they are, and mu, nu, the
  branch parameters of the switches it has on and alpha..delta are sampled (the second search of
  issue 12: first choose a variant with ``variants``, then tune its own parameters).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Any, Callable

from omasgan.config import DIVERGENCES, OMASGANConfig, FEATURE_SPACES, FUSION_SCALINGS, J_SCORES
from omasgan.vocabulary import SPACE_NAMES

Space = Callable[[Any], dict[str, Any]]

MU_RANGE = (0.01, 20.0)
NU_RANGE = (0.01, 50.0)
LEARNING_RATES = (1e-4, 2e-4, 5e-4, 1e-3)
BANK_SIZES = (256, 1024, 4096)
BATCH_SIZES = (64, 100, 256)
BOUNDARY_COUNTS = (1, 2, 3)
REFINE_STEPS = (0, 1, 2)
DIVERSITY_RANGE = (0.1, 10.0)
AE_EPOCHS = (10, 20, 40)
REFINE_WEIGHT_RANGE = (0.1, 10.0)
REFINE_MARGIN_RANGE = (0.25, 2.0)


def sample_divergence(trial) -> dict[str, Any]:
    """The metric, and the parameters of its branch only."""
    name = trial.suggest_categorical("divergence.name", list(DIVERGENCES))
    if name == "klwgan":
        trial.suggest_float("divergence.klwgan_tau", 0.5, 20.0, log=True)
    elif name == "wasserstein":
        trial.suggest_float("divergence.gp_weight", 1.0, 50.0, log=True)
    return {}


def sample_task2(trial) -> dict[str, Any]:
    trial.suggest_float("task2.mu", *MU_RANGE, log=True)
    trial.suggest_float("task2.nu", *NU_RANGE, log=True)
    return {}


def task3_weights(alpha_plus_delta: float, alpha_share: float, gamma_margin: float) -> dict[str, float]:
    """alpha, delta and gamma from the admissible parametrisation (see the module docstring)."""
    alpha = alpha_plus_delta * alpha_share
    return {
        "task3.alpha": alpha,
        "task3.delta": alpha_plus_delta - alpha,
        "task3.gamma": (alpha_plus_delta - 1.0) + gamma_margin,
    }


def task3_parametrisation(alpha: float, delta: float, gamma: float) -> dict[str, float]:
    """The inverse of :func:`task3_weights`: helper parameters that give (alpha, delta, gamma)."""
    total = alpha + delta
    return {
        "_task3.alpha_plus_delta": total,
        "_task3.alpha_share": alpha / total if total > 0 else 0.5,
        "_task3.gamma_margin": gamma - (total - 1.0),
    }


def sample_task3(trial) -> dict[str, Any]:
    total = trial.suggest_float("_task3.alpha_plus_delta", 0.0, 1.0)
    share = trial.suggest_float("_task3.alpha_share", 0.0, 1.0)
    margin = trial.suggest_float("_task3.gamma_margin", 0.0, 2.0)
    trial.suggest_float("task3.beta", 0.1, 2.0)
    return task3_weights(total, share, margin)


def sample_j(trial) -> dict[str, Any]:
    trial.suggest_float("j.zeta", 0.0, 1.0)
    return {}


def sample_variants(trial, branches: bool = True) -> dict[str, Any]:
    """The four variant switches and, when ``branches``, each switch's own parameters on its branch."""
    boundaries = trial.suggest_categorical("task2.boundaries", list(BOUNDARY_COUNTS))
    feature_space = trial.suggest_categorical("task2.feature_space", list(FEATURE_SPACES))
    refine_steps = trial.suggest_categorical("j.refine_steps", list(REFINE_STEPS))
    score = trial.suggest_categorical("j.score", list(J_SCORES))
    if branches:
        sample_branch_parameters(trial, VariantSwitches(boundaries, feature_space, refine_steps, score))
    return {}


@dataclass(frozen=True)
class VariantSwitches:
    """The four issue-12 switches of one config (the paper's: 1, pixel, 0, j)."""

    boundaries: int = 1
    feature_space: str = "pixel"
    refine_steps: int = 0
    score: str = "j"

    @classmethod
    def of(cls, config: OMASGANConfig) -> "VariantSwitches":
        return cls(config.task2.boundaries, config.task2.feature_space, config.j.refine_steps, config.j.score)

    def point(self) -> dict[str, Any]:
        """The switches in the spaces' parameter names."""
        return {"task2.boundaries": self.boundaries, "task2.feature_space": self.feature_space,
                "j.refine_steps": self.refine_steps, "j.score": self.score}

    def branch_parameters(self) -> tuple[str, ...]:
        """The parameters of the branches these switches have on: the diversity weight (K > 1
        boundaries), the autoencoder's epochs (autoencoder feature space), the refinement weight and
        margin (refine steps > 0), the fusion's scaling (fusion score)."""
        return ((("task2.diversity",) if self.boundaries > 1 else ())
                + (("task2.ae_epochs",) if self.feature_space == "autoencoder" else ())
                + (("j.refine_weight", "j.refine_margin") if self.refine_steps > 0 else ())
                + (("j.fusion_scaling",) if self.score == "fusion" else ()))


BRANCH_SAMPLERS: dict[str, Callable[[Any, str], Any]] = {
    "task2.diversity": lambda trial, name: trial.suggest_float(name, *DIVERSITY_RANGE, log=True),
    "task2.ae_epochs": lambda trial, name: trial.suggest_categorical(name, list(AE_EPOCHS)),
    "j.refine_weight": lambda trial, name: trial.suggest_float(name, *REFINE_WEIGHT_RANGE, log=True),
    "j.refine_margin": lambda trial, name: trial.suggest_float(name, *REFINE_MARGIN_RANGE),
    "j.fusion_scaling": lambda trial, name: trial.suggest_categorical(name, list(FUSION_SCALINGS)),
}
"""How each branch parameter is sampled."""


def sample_branch_parameters(trial, switches: VariantSwitches) -> dict[str, Any]:
    """The parameters of the branches ``switches`` has on (:meth:`VariantSwitches.branch_parameters`)."""
    for name in switches.branch_parameters():
        BRANCH_SAMPLERS[name](trial, name)
    return {}


def sample_variant_tuning(trial, switches: VariantSwitches) -> dict[str, Any]:
    """A chosen variant's own parameters, its switches kept: Task 2's mu and nu, the branch
    parameters of the switches it has on, and Task 3's alpha..delta (the weights of the critic that
    the ``critic`` and ``fusion`` scores read)."""
    sample_task2(trial)
    sample_branch_parameters(trial, switches)
    return sample_task3(trial)


def sample_variant_switches(trial) -> dict[str, Any]:
    return sample_variants(trial, branches=False)


def sample_optimizer(trial) -> dict[str, Any]:
    for key in ("task1.lr_g", "task1.lr_d", "task2.lr_b", "task3.lr_d", "j.lr"):
        trial.suggest_categorical(key, list(LEARNING_RATES))
    return {}


def sample_batch(trial) -> dict[str, Any]:
    trial.suggest_categorical("task2.bank_size", list(BANK_SIZES))
    trial.suggest_categorical("task2.batch_size", list(BATCH_SIZES))
    return {}


@dataclass(frozen=True)
class SearchSpace:
    """A named define-by-run space; call it with an Optuna trial."""

    name: str
    parts: tuple[Callable[[Any], dict[str, Any]], ...]

    def __call__(self, trial) -> dict[str, Any]:
        constants: dict[str, Any] = {}
        for part in self.parts:
            constants.update(part(trial))
        return constants


def build_space(name: str = "full", *, with_optimizer: bool = False, with_batch: bool = False,
                base: OMASGANConfig | None = None) -> SearchSpace:
    """``full`` (divergence, mu, nu, alpha..delta, zeta and the variants with their branch
    parameters), one stage's parameters only: ``task2`` (mu, nu), ``task3`` (alpha..delta), ``j``
    (zeta), ``variants`` (the four variant switches only), or ``branches`` (the variant ``base`` has
    switched on, kept: mu, nu, the branch parameters of its switches and alpha..delta; ``base``
    defaults to the paper's config, whose branches are all off).  A stage space leaves everything
    upstream as the base config has it, so every trial of a search hits the stage cache for the
    upstream stages."""
    switches = VariantSwitches.of(base) if base is not None else VariantSwitches()
    parts = {
        "full": (sample_divergence, sample_task2, sample_task3, sample_j, sample_variants),
        "task2": (sample_task2,),
        "task3": (sample_task3,),
        "j": (sample_j,),
        "variants": (sample_variant_switches,),
        "branches": (partial(sample_variant_tuning, switches=switches),),
    }
    if name not in parts:
        raise ValueError(f"unknown search space {name!r}; choose one of: {', '.join(SPACE_NAMES)}")
    extra = ((sample_optimizer,) if with_optimizer else ()) + ((sample_batch,) if with_batch else ())
    return SearchSpace(name, parts[name] + extra)


def resolve_params(params: dict[str, Any]) -> dict[str, Any]:
    """A sampled trial's config overrides: the sampled config keys plus the derived alpha/delta/gamma
    (what a trainable receives from OptunaSearch: sampled params and returned constants)."""
    overrides = {k: v for k, v in params.items() if not k.startswith("_")}
    if "_task3.alpha_plus_delta" in params:
        overrides.update(task3_weights(params["_task3.alpha_plus_delta"], params["_task3.alpha_share"],
                                       params["_task3.gamma_margin"]))
    return overrides

"""The paper's defaults as starting points, one-at-a-time sensitivity grids and seed lists.

``points_to_evaluate(dataset, space)`` gives the paper's setting in the parameter names of a space
(for ``OptunaSearch(points_to_evaluate=...)``), so every search tries the published setting first.
``sensitivity_grid(param, base)`` sweeps one parameter around the base config, keeping every other
value; grid points outside the admissible region are dropped, and the base value is always in.
"""

from __future__ import annotations

from typing import Any

from omasgan.config import OMASGANConfig, Task3Config, default_config
from omasgan.errors import ConfigError

from .spaces import VariantSwitches, task3_parametrisation

SENSITIVITY_PARAMS = ("task2.mu", "task2.nu", "task3.alpha", "task3.beta", "task3.gamma", "task3.delta", "j.zeta")
DEFAULT_SEEDS = (0, 1, 2)

# Multipliers of the base value for the scale parameters, absolute grids for the weights.
_SCALE_GRID = (0.1, 0.3, 1.0, 3.0, 10.0)
_ABSOLUTE_GRIDS = {
    "task3.alpha": (0.0, 0.1, 0.2, 0.3, 0.45, 0.6),
    "task3.beta": (0.25, 0.5, 1.0, 1.5, 2.0),
    "task3.gamma": (-0.3, 0.0, 0.35, 0.7, 1.0, 1.4),
    "task3.delta": (0.0, 0.2, 0.4, 0.55, 0.7),
    "j.zeta": (0.0, 0.25, 0.5, 0.75, 1.0),
}


def paper_point(config: OMASGANConfig, space: str = "full") -> dict[str, Any]:
    """The config's values (for the defaults: the paper's) in the parameter names of ``space``."""
    point: dict[str, Any] = {}
    if space == "full":
        point["divergence.name"] = config.divergence.name
        if config.divergence.name == "klwgan":
            point["divergence.klwgan_tau"] = config.divergence.klwgan_tau
        elif config.divergence.name == "wasserstein":
            point["divergence.gp_weight"] = config.divergence.gp_weight
    if space in ("full", "task2", "branches"):
        point.update({"task2.mu": config.task2.mu, "task2.nu": config.task2.nu})
    if space == "branches":
        point.update(branch_point(config))
    if space in ("full", "task3", "branches"):
        t3 = config.task3
        point.update(task3_parametrisation(t3.alpha, t3.delta, t3.gamma))
        point["task3.beta"] = t3.beta
    if space in ("full", "j"):
        point["j.zeta"] = config.j.zeta
    if space in ("full", "variants"):
        point.update(variant_point(config, branches=space == "full"))
    return point


def variant_point(config: OMASGANConfig, branches: bool = True) -> dict[str, Any]:
    """The config's variant switches (for the defaults: the paper's setting, every variant off) and,
    when ``branches``, the parameters of the branches they are on."""
    return {**VariantSwitches.of(config).point(), **(branch_point(config) if branches else {})}


def branch_point(config: OMASGANConfig) -> dict[str, Any]:
    """The config's values of the branch parameters its switches have on."""
    def value(name: str) -> Any:
        section, field = name.split(".")
        return getattr(getattr(config, section), field)

    return {name: value(name) for name in VariantSwitches.of(config).branch_parameters()}


def points_to_evaluate(dataset: str, space: str = "full") -> list[dict[str, Any]]:
    """The paper's defaults for ``dataset`` as one starting point of a search over ``space``."""
    return [paper_point(default_config(dataset), space)]


def sensitivity_grid(param: str, base: OMASGANConfig) -> list[float]:
    """Values of ``param`` to sweep one at a time around ``base`` (admissible ones only, sorted)."""
    if param not in SENSITIVITY_PARAMS:
        raise ConfigError(f"unknown sensitivity parameter {param!r}; choose one of: {', '.join(SENSITIVITY_PARAMS)}")
    section, name = param.split(".")
    current = float(getattr(getattr(base, section), name))
    if param in ("task2.mu", "task2.nu"):
        values = {round(current * k, 10) for k in _SCALE_GRID}
    else:
        values = set(_ABSOLUTE_GRIDS[param]) | {current}
    admissible = []
    for value in sorted(values):
        try:
            if section == "task3":
                weights = {k: getattr(base.task3, k) for k in ("alpha", "beta", "gamma", "delta")}
                weights[name] = value
                Task3Config(**weights)
            base.with_overrides({param: value})
        except ConfigError:
            continue
        admissible.append(value)
    return admissible


def seed_list(n: int = len(DEFAULT_SEEDS)) -> list[int]:
    """The first n seeds, 0..n-1 (the seed studies' default is 0, 1, 2)."""
    if n < 1:
        raise ConfigError(f"a seed list needs at least one seed; got n={n}")
    return list(range(n))


# ---- the sampler window (see windowed_tpe.py) ------------------------------------------------------

KEEP_BEST = 25
"""The best complete trials every window keeps: TPE's largest good set, ``gamma(n)`` for n >= 250."""

MIN_WINDOW = 10 * KEEP_BEST
"""The smallest window (other than 0) for which TPE's good set is the study's own (gamma(250) = 25)."""

DEFAULT_WINDOW = 500
"""A search's default window: searches of up to 500 trials are plain TPE; past that a suggestion costs
what it costs at 500 trials."""


def check_window(window: int) -> int:
    """``window`` if it is 0 (no window) or at least :data:`MIN_WINDOW`; a ValueError naming it otherwise."""
    if isinstance(window, bool) or not isinstance(window, int) or (window != 0 and window < MIN_WINDOW):
        raise ValueError(f"the sampler window must be 0 (every trial) or an integer >= {MIN_WINDOW} "
                         f"(TPE's good set is the 25 best of at least 250 trials); got {window!r}")
    return window

"""Optuna define-by-run search spaces, the paper's defaults as starting points, sensitivity grids
seed lists and the TPE sampler window (installed as ``omasgan.search_spaces``)."""

from .defaults import (
    DEFAULT_SEEDS,
    DEFAULT_WINDOW,
    MIN_WINDOW,
    SENSITIVITY_PARAMS,
    check_window,
    paper_point,
    points_to_evaluate,
    seed_list,
    sensitivity_grid,
)
from .spaces import SPACE_NAMES, SearchSpace, build_space, resolve_params, task3_parametrisation, task3_weights

__all__ = [
    "DEFAULT_SEEDS",
    "DEFAULT_WINDOW",
    "MIN_WINDOW",
    "SENSITIVITY_PARAMS",
    "SPACE_NAMES",
    "SearchSpace",
    "build_space",
    "check_window",
    "paper_point",
    "points_to_evaluate",
    "resolve_params",
    "seed_list",
    "sensitivity_grid",
    "task3_parametrisation",
    "task3_weights",
]

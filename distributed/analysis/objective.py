"""What a search maximises: one number for a trial's (held-out class, seed) units.

    mean         the mean over units of their validation AUROC (every unit counts the same)
    iqm          the interquartile mean: scipy.stats.trim_mean(values, 0.25), the mean of the units
                 between the 25th and the 75th percentile (robust to a few lucky or broken units)
    worst-class  min over classes k of the mean over seeds of value(k, seed)

A NaN unit (a failed unit, or one with no finite AUROC) makes every aggregate NaN: a trial is never
scored on its surviving units.  This module is light (numpy; scipy only when ``iqm`` is asked), so
the command line can name the choices without loading the statistics of :mod:`.statistics`.
"""

from __future__ import annotations

from typing import Iterable

import numpy as np

from omasgan.errors import ConfigError

AGGREGATES = ("mean", "iqm", "worst-class")
STUDY_OBJECTIVE = "objective"
"""The metric key under which a study trial reports its objective to Tune and Optuna: the study's
aggregate (``options["objective"]``, one of AGGREGATES) over ALL the trial's units of the newest
detector's validation AUROC.  Not ``omasgan.trainables.trial.OBJECTIVE`` (one unit's best validation
AUROC of any detector), though the string is the same: Tune's experiment state and the Optuna journal
of every existing study name this metric, and resuming one reads it back."""


def check_aggregate(how: str) -> str:
    if how not in AGGREGATES:
        raise ConfigError(f"objective aggregate {how!r} is not allowed; choose one of: {', '.join(AGGREGATES)}")
    return how


def iqm(values: Iterable[float]) -> float:
    """The interquartile mean: ``scipy.stats.trim_mean(values, 0.25)`` (cuts int(n / 4) values at
    each end; for fewer than 4 values it cuts nothing)."""
    from scipy import stats

    values = np.asarray(list(values), dtype=float)
    return float(stats.trim_mean(values, 0.25)) if len(values) else float("nan")


def aggregate(classes: Iterable[int], values: Iterable[float], how: str = "mean") -> float:
    """The ``how`` aggregate (see the module docstring) of the units' values; NaN for no units."""
    check_aggregate(how)
    classes, values = list(classes), np.asarray(list(values), dtype=float)
    if len(values) == 0 or np.isnan(values).any():
        return float("nan")
    if how == "mean":
        return float(values.mean())
    if how == "iqm":
        return iqm(values)
    per_class = {k: values[[c == k for c in classes]].mean() for k in dict.fromkeys(classes)}
    return float(min(per_class.values()))

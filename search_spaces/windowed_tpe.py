"""A TPE sampler whose cost stops growing with the study: it fits on a window of the finished trials.

Optuna's multivariate TPE refits its two Parzen estimators on every finished trial at every
suggestion, and with ``group=True`` once per group of the space: the cost of one suggestion grows
linearly with the trials, the cost of a study quadratically (measured in BENCHMARKS.md, "Studies at
scale": 0.46 s per suggestion at 5,000 trials).

TPE splits the finished trials into the good ones, the ``gamma(n) = min(ceil(0.1 n), 25)`` best,
which it models with l(x), and the rest, modelled with g(x); it samples where l(x) / g(x) is largest.
For n >= 250 the good set is always the 25 best trials.  :class:`WindowedTPESampler` shows TPE,
whenever a study has more than ``window`` finished trials, only

    the ``KEEP_BEST`` (= 25) best complete trials  U  the most recent finished trials,
    ``window`` in all, in trial order,

plus the running trials (for the constant liar).  With ``window >= 250`` the good set, and so l(x),
is exactly what plain TPE fits; only g(x) is fitted on recent trials instead of all of them (TPE's
own weights already give older trials of g less weight).  Up to ``window`` finished trials TPE sees
every trial, so a study of at most ``window`` trials samples exactly what ``TPESampler`` samples with
the same seed.  ``window=0`` means no window (plain TPE).
"""

from __future__ import annotations

import heapq
from typing import Any, Container

from optuna.samplers import TPESampler
from optuna.study import StudyDirection
from optuna.trial import FrozenTrial, TrialState

from .defaults import KEEP_BEST, check_window

FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)


def chosen_numbers(trials: list[FrozenTrial], window: int, maximize: bool) -> set[int] | None:
    """The numbers of the finished trials TPE sees, or None when it sees every trial (at most
    ``window`` finished, or ``window`` = 0): the :data:`KEEP_BEST` best complete ones and the most
    recent finished ones, ``window`` in all (``trials`` is in trial-number order)."""
    finished = [t for t in trials if t.state in FINISHED]
    if window == 0 or len(finished) <= window:
        return None
    complete = [t for t in finished if t.state == TrialState.COMPLETE and t.value is not None]
    best = heapq.nlargest(KEEP_BEST, complete, key=lambda t: t.value if maximize else -t.value)
    chosen = {t.number for t in best}
    for trial in reversed(finished):
        if len(chosen) >= window:
            break
        chosen.add(trial.number)
    return chosen


def seen_trials(trials: list[FrozenTrial], chosen: set[int] | None) -> list[FrozenTrial]:
    """``trials`` as TPE sees them: the running ones and the finished ones ``chosen`` (all when None),
    in trial-number order."""
    if chosen is None:
        return trials
    return [t for t in trials if t.number in chosen or t.state not in FINISHED]


class _StudyWindow:
    """The study as TPE should see it while it samples one trial: every attribute is the study's,
    except that its trial lists hold only the trials ``chosen`` names (computed once per sampled
    trial, see :meth:`WindowedTPESampler._chosen`) and the running ones."""

    def __init__(self, study: Any, chosen: set[int] | None) -> None:
        self._study, self._chosen = study, chosen

    def __getattr__(self, name: str) -> Any:
        return getattr(self._study, name)

    def _get_trials(self, deepcopy: bool = True, states: Container[TrialState] | None = None,
                    use_cache: bool = False) -> list[FrozenTrial]:
        seen = seen_trials(self._study._get_trials(deepcopy=deepcopy, states=None, use_cache=use_cache), self._chosen)
        return seen if states is None else [t for t in seen if t.state in states]

    def get_trials(self, deepcopy: bool = True, states: Container[TrialState] | None = None) -> list[FrozenTrial]:
        return self._get_trials(deepcopy=deepcopy, states=states, use_cache=False)

    @property
    def trials(self) -> list[FrozenTrial]:
        return self.get_trials()


class WindowedTPESampler(TPESampler):
    """:class:`optuna.samplers.TPESampler` fitted on a window of the study's trials (see the module
    docstring); every TPESampler argument works as there, ``window`` (keyword only) adds the window
    (0: none).  Only single-objective studies are windowed (the best trials need one value).  The
    window is chosen once per sampled trial, at its first sampling call."""

    def __init__(self, *args: Any, window: int = 0, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.window = check_window(window)
        self._chosen_for: tuple[int, int, set[int] | None] | None = None  # (study id, trial number, chosen)

    def _chosen(self, study: Any, trial: FrozenTrial) -> set[int] | None:
        if self._chosen_for is None or self._chosen_for[:2] != (study._study_id, trial.number):
            trials = study._get_trials(deepcopy=False, states=None, use_cache=True)
            maximize = study.direction == StudyDirection.MAXIMIZE
            self._chosen_for = (study._study_id, trial.number, chosen_numbers(trials, self.window, maximize))
        return self._chosen_for[2]

    def _seen(self, study: Any, trial: FrozenTrial) -> Any:
        if self.window == 0 or study._is_multi_objective():
            return study
        return _StudyWindow(study, self._chosen(study, trial))

    def infer_relative_search_space(self, study, trial):
        return super().infer_relative_search_space(self._seen(study, trial), trial)

    def sample_relative(self, study, trial, search_space):
        return super().sample_relative(self._seen(study, trial), trial, search_space)

    def sample_independent(self, study, trial, param_name, param_distribution):
        return super().sample_independent(self._seen(study, trial), trial, param_name, param_distribution)

"""The Tune experiment of each study kind, and running a study end to end.

- ``search``: Tuner + OptunaSearch (seeded multivariate TPE over a search space, the base config's
  values tried first, the Optuna study in its journal file), FIFO or ASHA on the detector rounds;
- ``sensitivity``: a grid, one trial per (parameter, value) (:func:`sensitivity_sweeps` builds it);
- ``seeds``: one trial of the fixed config, whose units are every (class, seed).

:func:`run_study` checks a study's whole input (:func:`.preparation.prepare_study`), then runs its
kind's experiment (:func:`.runner.run_experiment`).  Ray, Optuna and the runner are imported only when
an experiment is built, so importing this module stays light.
"""

from __future__ import annotations

import warnings
from typing import Any

from omasgan.config import STAGES, OMASGANConfig
from omasgan.errors import ConfigError

from ..analysis.objective import STUDY_OBJECTIVE
from ..store.study_folder import StudySpec
from .preparation import RunOptions, StudyOutcome, StudyPaths, prepare_study


def search_experiment(spec: StudySpec, options: RunOptions, paths: StudyPaths) -> Any:
    """Tuner + OptunaSearch: seeded multivariate TPE over the space, the base config's values
    (for the defaults: the paper's) tried first, the study persisted in the journal file."""
    import optuna
    from ray.tune.schedulers import ASHAScheduler
    from omasgan.search_spaces import build_space, paper_point
    from omasgan.search_spaces.windowed_tpe import WindowedTPESampler

    from .journal_search import AdoptingConcurrencyLimiter, JournalOptunaSearch, fail_orphaned_optuna_trials
    from .runner import Experiment
    from .trainable import DETECTOR_ROUND, DETECTOR_STAGES

    o = spec.options
    base = OMASGANConfig.from_dict(spec.base_config)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)  # TPE's group=True

    def make_searcher():
        from .control import journal_storage

        storage = journal_storage(spec.name, paths.journal, paths.data_root if paths.remote else None)
        # a study written before the window existed keeps plain TPE ("sampler_window" absent: 0)
        sampler = WindowedTPESampler(seed=o["sampler_seed"], multivariate=True, group=True, constant_liar=True,
                                     n_startup_trials=max(1, min(10, o["trials"] // 3)),
                                     window=o.get("sampler_window", 0))
        searcher = JournalOptunaSearch(
            space=build_space(o["space"], with_optimizer=o["with_optimizer"], with_batch=o["with_batch"], base=base),
            metric=STUDY_OBJECTIVE, mode="max", points_to_evaluate=[paper_point(base, o["space"])], sampler=sampler,
            study_name=spec.name, storage=storage,
        )
        return AdoptingConcurrencyLimiter(searcher, max_concurrent=options.max_concurrent)

    def make_scheduler():
        # rungs on the detector rounds only (Task 1, Task 3, J): at a rung every trial's objective is
        # the same detector's AUROC; Task 2's report carries no detector_round and is never judged
        detector_rounds = len([s for s in STAGES[: STAGES.index(spec.last_stage) + 1] if s in DETECTOR_STAGES])
        return ASHAScheduler(time_attr=DETECTOR_ROUND, max_t=max(1, detector_rounds), grace_period=1,
                             reduction_factor=2)

    def finish():
        fail_orphaned_optuna_trials(str(paths.journal), spec.name)

    return Experiment({}, o["trials"], o["trials"], make_searcher,
                      make_scheduler if o["scheduler"] == "asha" else None, finish)


def sensitivity_experiment(spec: StudySpec, options: RunOptions, paths: StudyPaths) -> Any:
    """A grid: one trial per (parameter, value), every other value as the base config has it."""
    from ray import tune

    from .runner import Experiment

    sweeps = spec.options["sweeps"]
    return Experiment({"_sweep": tune.grid_search(sweeps)}, 1, len(sweeps))


def seeds_experiment(spec: StudySpec, options: RunOptions, paths: StudyPaths) -> Any:
    """One trial of the fixed config; its units are every (class, seed)."""
    from .runner import Experiment

    return Experiment({}, 1, 1)


EXPERIMENTS = {"search": search_experiment, "sensitivity": sensitivity_experiment, "seeds": seeds_experiment}
"""Study kind -> the function that builds its experiment from (spec, options, paths)."""


def sensitivity_sweeps(base: OMASGANConfig, params: list[str], values: list[float] | None,
                       grid: str | None) -> list[dict]:
    """The sensitivity grid: one ``{"param", "value"}`` per value of each of ``params`` (``values``, or
    with ``grid="paper"`` the built-in grid around ``base``'s value); every value is checked against
    ``base`` here (a ConfigError names an unknown key or an inadmissible value)."""
    from omasgan.search_spaces import SENSITIVITY_PARAMS, sensitivity_grid

    sweeps = []
    for param in params:
        if grid == "paper":
            if param not in SENSITIVITY_PARAMS:
                raise ConfigError(f"--grid paper has no grid for {param!r}; it has grids for: "
                                  f"{', '.join(SENSITIVITY_PARAMS)} (or give --values)")
            grid_values = sensitivity_grid(param, base)
        else:
            grid_values = list(values or [])
        for value in grid_values:
            base.with_overrides({param: value})  # unknown key or inadmissible value: a ConfigError here
            sweeps.append({"param": param, "value": float(value)})
    return sweeps


def run_study(kind: str, spec: StudySpec, options: RunOptions) -> StudyOutcome:
    """Check, then run a study of ``kind`` end to end; returns its outcome (rows are in ``outcome.store``)."""
    with prepare_study(spec, options) as study:  # every input check, before Ray starts; the driver lease
        from .runner import run_experiment

        return run_experiment(study.spec, study.options, study.paths,
                              EXPERIMENTS[kind](study.spec, study.options, study.paths), lease=study.lease,
                              shape=study.shape)

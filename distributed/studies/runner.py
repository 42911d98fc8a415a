"""Runs a prepared study as one Ray Tune experiment: Ray start or join, the trial plan (units per trial
from the cluster's maximum, see :mod:`.capacity`), Tuner (or ``Tuner.restore`` on ``--resume``), and
the clean-up of rows no recorded trial owns, which only the holder of the study's driver lease does."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Callable

import ray
from ray import tune

from ..analysis.objective import STUDY_OBJECTIVE
from ..moved_modules import install_for
from ..store.compaction import compact_store
from ..store.compaction_lock import CompactionBusy
from ..store.compaction_scope import OrphanRule
from ..store.result_schema import parse_small_file
from ..store.result_store import ResultStore
from ..store.study_folder import StudySpec
from ..store.trial_record import TrialRecords
from .capacity import ClusterShape, check_fit
from .guards import GuardCallback, GuardStopper, StudyGuard, StudyHalted, install, trial_error_line, uninstall
from .preparation import RunOptions, StudyOutcome, StudyPaths
from .progress import StudyProgress
from .session import cluster_shape, start_ray
from .trainable import TrialPlan, make_study_trainable


@dataclass
class Experiment:
    """What differs between the studies: the trials' parameters and how they are chosen."""

    param_space: dict[str, Any]
    num_samples: int
    total_trials: int
    make_searcher: Callable[[], Any] | None = None
    make_scheduler: Callable[[], Any] | None = None
    finish: Callable[[], None] | None = None
    """Runs after the experiment, only when every one of its trials has ended."""
    name: str | None = None
    """The Tune experiment's name (default: the study's); a study's confirmation runs as ``NAME-confirm``."""
    plan_changes: dict[str, Any] = field(default_factory=dict)
    """TrialPlan fields that differ from the study's (a confirmation: its units, study_kind, records)."""
    row_trial_ids: set[str] = field(default_factory=set)
    """Trial ids the rows carry besides Tune's (a confirmation writes rows under the trial it confirms)."""


def parallel_units(spec: StudySpec, options: RunOptions, shape: ClusterShape) -> int:
    """Units a trial runs at once: ``--parallel-units``, else as many as the cluster can ever hold
    (``shape``: its maximum); a ConfigError with the numbers when the trial's group can never fit."""
    return check_fit(shape, options.cpus_per_unit, options.gpus_per_unit, len(spec.units), options.parallel_units)


def trial_plan(spec: StudySpec, options: RunOptions, paths: StudyPaths, shape: ClusterShape) -> TrialPlan:
    return TrialPlan(
        study=spec.name, study_kind=spec.kind, base_config=spec.base_config, units=[list(u) for u in spec.units],
        last_stage=spec.last_stage, cache_root=options.cache or paths.cache_root, store_root=paths.data_root,
        cpus_per_unit=options.cpus_per_unit, gpus_per_unit=options.gpus_per_unit,
        parallel_units=parallel_units(spec, options, shape), baseline=spec.options.get("baseline"),
        fault=options.fault, objective=spec.options.get("objective", "mean"), stop_on_unit_error=spec.kind == "search",
        scores=spec.options.get("scores", "all"),  # a study.json without it predates --scores: it kept all
    )


def run_experiment(spec: StudySpec, options: RunOptions, paths: StudyPaths, experiment: Experiment,
                   lease: Any = None, shape: ClusterShape | None = None) -> StudyOutcome:
    """Fit (or restore and finish) the study's Tune experiment and return its outcome.

    ``shape``: the cluster's maximum as the placement check read it (:func:`.session.cluster_shape`; read
    here when not given).  Files are deleted (orphan rows, records) only while this driver holds
    ``lease`` (when one is given).  Raises :class:`.guards.StudyHalted` when a guard halted the study
    (it can be resumed)."""
    from .control import bind_journal, placement_grace_s

    grace_s = placement_grace_s()
    if shape is None:
        shape = cluster_shape(options)
        check_fit(shape, options.cpus_per_unit, options.gpus_per_unit, len(spec.units), options.parallel_units)
    start_ray(options)
    plan = replace(trial_plan(spec, options, paths, shape), placement_grace_s=grace_s, **experiment.plan_changes)
    if spec.kind == "search":
        bind_journal(spec.name, paths.journal, paths.data_root if paths.remote else None)
    trainable = make_study_trainable(plan)
    name = experiment.name or spec.name
    progress = StudyProgress(name, experiment.total_trials)
    experiment_path = f"{paths.tune_root}/{name}"
    seeds = sorted({s for _, s in plan.units})
    print(f"[{name}] {plan.study_kind} on {spec.dataset}: classes {spec.classes}, seeds {seeds}, "
          f"{len(plan.units)} units per trial, {plan.parallel_units} at once "
          f"({options.cpus_per_unit} CPU, {options.gpus_per_unit} GPU each, {spec.base_config.get('threads', 1)} "
          f"torch thread(s) per unit); folder {paths.control}", flush=True)
    guard = install(StudyGuard(name, max_failed_trials=options.max_failed_trials,
                               placement_timeout_s=options.placement_timeout_s, lease=lease,
                               say=lambda line: print(line, flush=True)))
    run_config = tune.RunConfig(
        name=name, storage_path=paths.tune_root, verbose=0, callbacks=[progress, GuardCallback(name)],
        stop=GuardStopper(name), failure_config=tune.FailureConfig(max_failures=options.max_failures),
    )
    if options.resume and tune.Tuner.can_restore(experiment_path):
        print(f"[{spec.name}] resuming the Tune experiment at {experiment_path}", flush=True)
        # a search's errored trials stay as they ended: Optuna holds them as FAIL, and a rerun's value
        # would never reach it; the other studies have no searcher, and retry them
        tuner = restore_tuner(spec.name, experiment_path, trainable, resume_errored=spec.kind != "search",
                              param_space=experiment.param_space or None)
    else:
        if options.resume:
            print(f"[{spec.name}] no Tune experiment state was saved before the interruption; starting it anew",
                  flush=True)
        tuner = tune.Tuner(
            trainable,
            param_space=experiment.param_space,
            tune_config=tune.TuneConfig(
                metric=STUDY_OBJECTIVE, mode="max", num_samples=experiment.num_samples,
                search_alg=experiment.make_searcher() if experiment.make_searcher else None,
                scheduler=experiment.make_scheduler() if experiment.make_scheduler else None,
                max_concurrent_trials=None if experiment.make_searcher else options.max_concurrent,
                reuse_actors=True,  # one coordinator process serves many trials
            ),
            run_config=run_config,
        )
    try:
        grid = tuner.fit()
    finally:
        uninstall(name)
    trials = list(getattr(grid, "_experiment_analysis").trials)
    outcome = StudyOutcome(
        spec=spec, paths=paths, trial_ids=[t.trial_id for t in trials],
        trial_configs={t.trial_id: dict(t.config) for t in trials},
        trial_errors={t.trial_id: trial_error_line(t) for t in trials if t.status == "ERROR"},
    )
    if lease is not None and not lease.held():  # taken over, or not renewed within its fence: delete nothing
        from .control import lease_lost

        raise lease_lost(spec.name, lease)
    outcome.removed_files = remove_orphan_files(ResultStore(paths.data_root), spec.name,
                                                set(outcome.trial_ids) | experiment.row_trial_ids, seeds)
    records = TrialRecords(plan.records_root or paths.data_root)
    records.delete(set(records.trial_ids()) - set(outcome.trial_ids))
    ended = guard.halted is None and all(t.status in ("TERMINATED", "ERROR") for t in trials)
    if ended:
        outcome.compaction = compact_study(paths.data_root, spec, set(outcome.trial_ids) | experiment.row_trial_ids,
                                           seeds)
    else:
        print(f"[{name}] not compacted: the experiment was interrupted (its resume, or `omasgan compact`, will)",
              flush=True)
        if guard.halted is None:
            print(f"[{name}] interrupted: continue it with `omasgan {spec.kind} --resume --name {spec.name} "
                  f"--storage {options.storage}`", flush=True)
    if experiment.finish and len(trials) >= experiment.total_trials and ended:
        experiment.finish()
    if spec.kind == "search" and paths.remote:
        from .control import StudyControl

        StudyControl(spec.name, paths.data_root).push_journal(paths.journal)
    if guard.halted is not None:
        raise StudyHalted(f"study {spec.name!r} halted: {guard.halted}; fix the cause, then continue it with "
                          f"`omasgan {spec.kind} --resume --name {spec.name} --storage {options.storage}`")
    return outcome


def restore_tuner(study: str, experiment_path: str, trainable: Any, *, resume_errored: bool,
                  param_space: dict[str, Any] | None) -> tune.Tuner:
    """``Tuner.restore`` of the experiment at ``experiment_path`` (its unfinished trials resumed).  When
    its pickled state names module paths from before ``omasgan.distributed`` was split into rooms, the
    old paths are made importable first (:func:`omasgan.distributed.moved_modules.install_for`), with a
    warning line."""
    warning = install_for(experiment_path)
    if warning:
        print(f"[{study}] warning: {warning}", flush=True)
    return tune.Tuner.restore(experiment_path, trainable=trainable, resume_unfinished=True,
                              resume_errored=resume_errored, param_space=param_space)


def compact_study(root: str, spec: StudySpec, trial_ids: set[str], seeds: list[int]):
    """After an experiment whose trials have all ended: merge the study's small result files into a few
    parts per partition (one Ray task per partition for big stores) and drop the rows, in the
    partitions of ``seeds``, of trials the experiment does not know (as ``remove_orphan_files`` does
    with their files).  Returns the CompactionStats, or None (with a line saying why) when it could
    not run: every row is in the store either way, as small files or parts."""
    try:
        return compact_store(root, orphans=OrphanRule(spec.name, set(trial_ids), list(seeds)), executor=ray_map)
    except CompactionBusy as exc:  # every row is in the store either way; `omasgan compact` finishes it later
        print(f"[{spec.name}] not compacted: {exc}", flush=True)
        return None
    except Exception as exc:  # noqa: BLE001 - a failed compaction leaves every row in place (see compaction)
        print(f"[{spec.name}] not compacted ({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}); "
              "every row is in place; `omasgan compact STUDY_FOLDER` tries again", flush=True)
        return None


RAY_COMPACTION_MIN_FILES = 5_000
"""Below this many small files a compaction runs in the driver: starting Ray workers would cost more."""


def ray_map(function: Callable[[Any], Any], jobs: list[Any]) -> list[Any]:
    """``function`` over the compaction's partition ``jobs``, results in order: as Ray tasks of one CPU
    each, spread over the cluster, when they merge at least ``RAY_COMPACTION_MIN_FILES`` small files,
    else one after another in this process."""
    if sum(len(job.small) for job in jobs) < RAY_COMPACTION_MIN_FILES:
        return [function(job) for job in jobs]
    remote = ray.remote(num_cpus=1, max_retries=0)(function)
    return ray.get([remote.remote(job) for job in jobs])


def remove_orphan_files(store: ResultStore, study: str, trial_ids: set[str], seeds: list[int] | None = None) -> int:
    """Delete this study's result and score files whose trial the experiment does not know, among
    the files of ``seeds`` (default: every seed; the partitions of the experiment's own units).

    Such files come from a trial that was started and killed with the driver before the experiment
    state recorded it; the restored experiment runs its config again as a new trial.  A study's
    confirmation runs on seeds of its own, so the search's and the confirmation's experiments never
    judge each other's files."""
    partitions = None if seeds is None else {f"seed={s}" for s in seeds}
    orphans = []
    for table in ("results", "scores"):
        for path in store.files(table):
            folders, _, name = path.rpartition("/")
            if partitions is not None and folders.rsplit("/", 1)[-1] not in partitions:
                continue
            named = parse_small_file(name)
            if named is not None and named.study == study and named.trial_id not in trial_ids:
                orphans.append(path)
    store.delete(orphans)
    return len(orphans)

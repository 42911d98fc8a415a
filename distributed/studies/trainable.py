"""The Tune trainable of a study trial: its (class, seed) units as Ray tasks, stage by stage.

A trial reserves a placement group of one small bundle for itself (it only waits) and one bundle
per unit it runs at once::

    [{"CPU": 0.01}] + [{"CPU": cpus_per_unit, "GPU": gpus_per_unit}] * parallel_units

Tune captures the trial's child tasks in that group, so a trial over 10 classes with 10 one-GPU
bundles trains its 10 units on 10 GPUs at once, possibly on different nodes.

After every stage round the trial reports the mean over its units of the stage's metrics and saves a
checkpoint (the rounds done and every unit's outcome; the models themselves are in the stage cache),
so a retried trial, or a trial of a restored experiment, resumes with its next stage.  The same state
is also written to the trial's durable record (:mod:`omasgan.distributed.store.trial_record`) before the
report, so a round finished just before the driver died is reported again from the record, not trained
again.

The reported objective (``STUDY_OBJECTIVE``) is the study's aggregate (``mean``, ``iqm`` or
``worst-class``, see :mod:`omasgan.distributed.analysis.objective`) over ALL the trial's (class, seed)
units of the newest detector's validation AUROC (Task 1's until Task 3 is trained, then Task 3's, then
J's): the search maximises the final J's. A unit that fails (a NaN loss, bad data) makes the objective
NaN from then on: a trial is never scored on its surviving, possibly easier, units. In a search the
trial then stops and the searcher tells Optuna it FAILED (:mod:`.journal_search`). ``detector_round`` (1
after Task 1, 2 after Task 3, 3 after J) is reported only after a detector stage: it is the scheduler's
time axis, so ASHA's rungs fall where every trial's objective is the same detector's AUROC.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import ray
from ray import tune
from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

from omasgan.config import STAGES

from omasgan.trainables.function_trainables import trial_device

from ..analysis.objective import STUDY_OBJECTIVE, aggregate
from ..store.trial_record import TrialRecords
from .control import DEFAULT_PLACEMENT_GRACE_S
from .units import UnitOutcome, UnitTask, run_unit, summarize_round

DETECTOR_ROUND = "detector_round"
DETECTOR_STAGES = ("task1", "task3", "j")
"""The stages that train a detector (Task 2 trains the boundary model B only)."""
DRIVER_BUNDLE = {"CPU": 0.01}


@dataclass
class TrialPlan:
    """What every trial of a study shares (captured by the trainable, so plain data)."""

    study: str
    study_kind: str
    base_config: dict[str, Any]
    units: list[tuple[int, int]]
    last_stage: str
    cache_root: str
    store_root: str
    cpus_per_unit: float = 1.0
    gpus_per_unit: float = 0.0
    parallel_units: int = 1
    baseline: dict[str, Any] | None = None
    """A baseline method's settings (omasgan.baselines.BaselineConfig): the units score it instead
    of training OMASGAN, in one round called "baseline"."""
    objective: str = "mean"
    """How the units' validation AUROCs become the trial's objective (statistics.AGGREGATES)."""
    stop_on_unit_error: bool = False
    """Stop the trial at the round a unit fails (a search: its objective is NaN from then on)."""
    records_root: str | None = None
    """Where the trials' durable records live (default: ``store_root``)."""
    scores: str = "all"
    """Which per-sample scores the units store (``--scores``; see ``result_store.score_splits``)."""
    placement_grace_s: float = DEFAULT_PLACEMENT_GRACE_S
    """How long a round waits on a placement group that lost a node (``wait_for_units``); the driver
    sets it from ``OMASGAN_PLACEMENT_GRACE_S`` (``control.placement_grace_s``)."""
    fault: Any = None  # FaultInjection for tests

    @property
    def rounds(self) -> tuple[str, ...]:
        return ("baseline",) if self.baseline else STAGES[: STAGES.index(self.last_stage) + 1]

    def resources(self) -> tune.PlacementGroupFactory:
        unit = {"CPU": self.cpus_per_unit}
        if self.gpus_per_unit:
            unit["GPU"] = self.gpus_per_unit
        return tune.PlacementGroupFactory([dict(DRIVER_BUNDLE)] + [unit] * self.parallel_units, strategy="PACK")


def sweep_of(params: dict[str, Any]) -> tuple[str, float] | None:
    sweep = params.get("_sweep")
    return (sweep["param"], float(sweep["value"])) if sweep else None


def trial_overrides(params: dict[str, Any]) -> dict[str, Any]:
    """A trial's config overrides: its sampled keys (helpers starting with "_" dropped), for a
    sensitivity trial the swept parameter's value, and for a confirmation trial the confirmed
    candidate's config (``_candidate``: its label and overrides)."""
    overrides = {k: v for k, v in params.items() if not k.startswith("_")}
    sweep = sweep_of(params)
    if sweep:
        overrides[sweep[0]] = sweep[1]
    overrides.update(params.get("_candidate", {}).get("overrides", {}))
    return overrides


def row_trial_id(params: dict[str, Any], trial_id: str) -> str:
    """The trial id a trial's rows carry: Tune's, or for a confirmation trial the label of the
    candidate it confirms (the search trial's id, or ``base``), so rows pair across the two."""
    return params.get("_candidate", {}).get("label") or trial_id


def _with_placement(outcome: UnitOutcome) -> UnitOutcome:
    """``outcome`` with where it ran: this worker's pid, the GPUs Ray assigned to the task and the
    CUDA_VISIBLE_DEVICES it ran under (Ray sets it to those GPUs, so cuda:0 in the unit is Ray's GPU)."""
    outcome.pid = os.getpid()
    outcome.gpu_ids = [str(g) for g in ray.get_gpu_ids()]
    outcome.cuda_visible_devices = os.environ.get("CUDA_VISIBLE_DEVICES")
    return outcome


def _unit(task: UnitTask) -> UnitOutcome:
    return _with_placement(run_unit(task, device=trial_device()))


def _baseline(task: UnitTask, baseline: dict[str, Any]) -> UnitOutcome:
    from omasgan.baselines import BaselineConfig

    from .baseline import run_baseline_unit

    device = trial_device()
    summary = run_baseline_unit(task.store_root, task.study, task.config(), BaselineConfig.from_dict(baseline),
                                study_kind=task.study_kind, trial_id=task.trial_id, device=device,
                                scores=task.scores, raise_system_errors=True)
    return _with_placement(UnitOutcome(task.holdout, task.seed, "baseline", summary["status"], error=summary["error"],
                                       detector=summary["method"] if summary["status"] == "ok" else None,
                                       metrics=summary["metrics"] or {}, wall_time_s=summary["wall_time_s"] or 0.0,
                                       device=device))


# A unit given a GPU runs in a fresh worker process that exits after it (``max_calls=1``): a reused
# process would keep its CUDA context and cached memory (packing units by fractional GPUs could then run
# out of GPU memory) and, on a multi-GPU node, stay on the GPU it first had, whatever Ray assigns next.
# Ray applies ``max_calls=1`` by itself only when ``num_gpus`` is in the decorator, never for GPUs given
# through ``.options()``, and ``max_calls`` cannot be set there: hence one remote function per kind.
UNIT_TASKS = {"cpu": ray.remote(max_retries=0)(_unit), "gpu": ray.remote(max_retries=0, max_calls=1)(_unit)}
BASELINE_TASKS = {"cpu": ray.remote(max_retries=0)(_baseline),
                  "gpu": ray.remote(max_retries=0, max_calls=1)(_baseline)}


def _run_round(plan: TrialPlan, trial_id: str, params: dict[str, Any], stage: str,
               units: list[tuple[int, int]]) -> list[UnitOutcome]:
    group = ray.util.get_current_placement_group()
    options: dict[str, Any] = {"num_cpus": plan.cpus_per_unit, "num_gpus": plan.gpus_per_unit}
    if group is not None:
        options["scheduling_strategy"] = PlacementGroupSchedulingStrategy(group, placement_group_capture_child_tasks=True)
    overrides = trial_overrides(params)
    tasks = [
        UnitTask(study=plan.study, study_kind=plan.study_kind, trial_id=trial_id, base_config=plan.base_config,
                 params=overrides, holdout=k, seed=s, stage=stage, cache_root=plan.cache_root,
                 store_root=plan.store_root, sweep=sweep_of(params), scores=plan.scores, fault=plan.fault,
                 records_root=plan.records_root)
        for k, s in units
    ]
    kind = "gpu" if plan.gpus_per_unit else "cpu"
    if plan.baseline:
        refs = [BASELINE_TASKS[kind].options(**options).remote(task, plan.baseline) for task in tasks]
    else:
        refs = [UNIT_TASKS[kind].options(**options).remote(task) for task in tasks]
    return wait_for_units(refs, group, grace_s=plan.placement_grace_s)


class PlacementLost(RuntimeError):
    """The trial's placement group lost a node and could not be placed again in time."""


def wait_for_units(refs: list[Any], group: Any, poll_s: float = 5.0,
                   grace_s: float = DEFAULT_PLACEMENT_GRACE_S) -> list[Any]:
    """The units' outcomes.  A unit lost with its worker or node raises at once; units queued in a
    placement group whose node died wait until Ray places the group again, which never happens while
    other trials hold the remaining resources.  So the wait gives up after ``grace_s`` seconds of a
    group that is not CREATED: the trial fails, releases its group, and Tune retries it (from its
    last finished stage) when resources allow."""
    pending = list(refs)
    lost_since: float | None = None
    while pending:
        _, pending = ray.wait(pending, num_returns=len(pending), timeout=poll_s)
        if not pending or group is None:
            continue
        state = ray.util.placement_group_table(group).get("state")
        if state == "CREATED":
            lost_since = None
            continue
        lost_since = lost_since if lost_since is not None else time.monotonic()
        if time.monotonic() - lost_since > grace_s:
            for ref in pending:
                ray.cancel(ref, force=True)
            raise PlacementLost(f"the trial's placement group has been {state} for over {grace_s:.0f} s "
                                f"(a node of it was lost); {len(pending)} unit(s) could not run")
    return ray.get(refs)  # a unit lost with its worker or node raises here; Tune retries the trial


def make_study_trainable(plan: TrialPlan):
    """The resource-wrapped function trainable of a study's trials."""

    def omasgan_study_trial(params: dict[str, Any]) -> None:
        trial_id = tune.get_context().get_trial_id()
        row_id = row_trial_id(params, trial_id)
        records = TrialRecords(plan.records_root or plan.store_root)
        state, pending = rounds_to_run(plan.rounds, _checkpoint_state(tune.get_checkpoint()), records.read(trial_id))
        for stage, recorded in pending:
            if recorded is not None:
                report = dict(recorded)  # finished before the interruption: reported again, not trained again
            else:
                report = _train_round(plan, row_id, params, stage, state)
                records.write(trial_id, state)
            folder = Path(tempfile.mkdtemp(prefix=f"omasgan-study-{stage}-"))
            try:
                (folder / "study_trial.json").write_text(json.dumps(state))
                tune.report(report, checkpoint=tune.Checkpoint.from_directory(str(folder)))
            finally:
                shutil.rmtree(folder, ignore_errors=True)
            if report.get("units_failed") and plan.stop_on_unit_error:
                break  # its objective is NaN for good: training the other units further tells the search nothing

    return tune.with_resources(omasgan_study_trial, plan.resources())


def empty_state() -> dict[str, Any]:
    return {"rounds": [], "outcomes": {}, "objective": float("nan"), "reports": {}}


def _checkpoint_state(checkpoint: tune.Checkpoint | None) -> dict[str, Any]:
    state = empty_state()
    if checkpoint is not None:
        with checkpoint.as_directory() as folder:
            state.update(json.loads((Path(folder) / "study_trial.json").read_text()))
    return state


def rounds_to_run(rounds: tuple[str, ...], checkpointed: dict[str, Any], record: dict[str, Any] | None
                  ) -> tuple[dict[str, Any], list[tuple[str, dict[str, Any] | None]]]:
    """Where a (re)started trial begins: its state, and each round Tune holds no checkpoint of yet,
    paired with the report to send again (the trial's durable record finished it) or None (train it).

    The record wins over the checkpoint only when it holds every checkpointed round and more."""
    state = checkpointed
    if record is not None and set(record["rounds"]) > set(checkpointed["rounds"]) and "reports" in record:
        state = {**empty_state(), **record}
    pending = [(stage, state["reports"].get(stage) if stage in state["rounds"] else None)
               for stage in rounds if stage not in checkpointed["rounds"]]
    return state, pending


def _train_round(plan: TrialPlan, trial_id: str, params: dict[str, Any], stage: str,
                 state: dict[str, Any]) -> dict[str, Any]:
    """Run one stage round over the trial's units that have not failed; update ``state`` (outcomes,
    objective, rounds, reports) and return the round's report (see the module docstring)."""
    failed = {tuple(u) for u, o in _unit_items(state) if o["status"] != "ok"}
    active = [u for u in plan.units if tuple(u) not in failed]
    outcomes = _run_round(plan, trial_id, params, stage, active)
    for outcome in outcomes:
        state["outcomes"][f"{outcome.holdout},{outcome.seed}"] = asdict(outcome)
    report = summarize_round(stage, outcomes)
    report["units_failed"] += len(failed)
    if stage in DETECTOR_STAGES or stage == "baseline":
        state["objective"] = unit_objective(plan, state, stage)
    if stage in DETECTOR_STAGES:
        report[DETECTOR_ROUND] = DETECTOR_STAGES.index(stage) + 1
    elif report["units_failed"]:
        state["objective"] = float("nan")
    state["rounds"].append(stage)
    report[STUDY_OBJECTIVE] = state["objective"]
    report["pipeline_done"] = stage == plan.rounds[-1]
    state["reports"][stage] = report
    return report


def unit_objective(plan: TrialPlan, state: dict[str, Any], stage: str) -> float:
    """The plan's aggregate over every unit of the trial of ``stage``'s validation AUROC; a unit that
    failed (in this round or before) or has no finite AUROC counts as NaN, so the aggregate is NaN."""
    outcomes = dict(_unit_items(state))
    values = []
    for unit in map(tuple, plan.units):
        outcome = outcomes.get(unit)
        ok = outcome is not None and outcome["status"] == "ok" and outcome["stage"] == stage
        value = outcome["metrics"].get("val", {}).get("auroc", float("nan")) if ok else float("nan")
        values.append(value if value is not None and math.isfinite(value) else float("nan"))
    return aggregate([k for k, _ in plan.units], values, plan.objective)


def _unit_items(state: dict[str, Any]):
    for name, outcome in state["outcomes"].items():
        k, s = name.split(",")
        yield (int(k), int(s)), outcome

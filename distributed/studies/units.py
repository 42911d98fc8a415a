"""One study unit: a trial's config on one (held-out class, seed), trained up to one stage.

A study trial runs its units stage by stage: round ``task1`` trains Task 1 of every unit, round
``task2`` trains Task 2 on top of it, and so on.  Each round's unit takes its upstream stages from
the study's stage cache (they were published by the previous round), trains its own stage, scores
it, and writes that stage's rows to the Parquet store.  So a trial can report after every stage (for
schedulers such as ASHA) and a retried trial resumes at its next stage with nothing retrained.

Errors: a *unit error* (:data:`UNIT_ERRORS`: a bad config value, bad data, a loss that became NaN)
belongs to the config on that unit; it becomes the unit's ``status="error"`` row and the study goes
on.  Any other exception (CUDA out of memory, a storage error, a stage-cache timeout, a GPU that
torch cannot see, a data file missing on this node although the study found it before it started)
is the system's: it propagates, the Ray task fails, and Tune retries the trial from its last
finished stage.

Every unit that trains a stage (rather than taking it from the cache) records that durably in the
trial's training ledger (:meth:`omasgan.distributed.store.trial_record.TrialRecords.record_training`), so how
often each stage of each unit was trained can be read back after failures and retries.

This module is Ray-free; :mod:`.trainable` runs :func:`run_unit` as a Ray task.
"""

from __future__ import annotations

import math
import time
import traceback
from dataclasses import dataclass, field
from typing import Any

import torch

from omasgan.alarm import ALARM_STATISTICS, separability
from omasgan.checkpoint import modules_from_payload
from omasgan.config import STAGES, OMASGANConfig
from omasgan.errors import ConfigError, DataError, DataMissingError, TrainingDivergedError
from omasgan.metrics import METRIC_NAMES
from omasgan.stages.common import latent, samples_without_graph
from omasgan.stages.union import boundary_sampler

from omasgan.trainables.trial import TrialSettings, run_trial, trial_config, trial_splits

from ..store.result_store import DEFAULT_SCORES, ResultStore, UnitKey, score_splits
from ..store.trial_record import TrialRecords

SAMPLES_PER_PLOT = 2000
CACHE_OPTIONS = {"stale_after_s": 30.0}
"""A unit whose stage another unit is training waits for it; an owner whose lock does not change
(heartbeat every 5 s) for 30 s of the waiter's clock is taken for dead (a lost node), and the waiting
unit takes the lock over and trains the stage itself."""

UNIT_ERRORS = (ConfigError, DataError, TrainingDivergedError)
"""Errors of the config on a unit: recorded as the unit's error row.  Everything else is retried,
and so is a :class:`~omasgan.errors.DataMissingError` (the node lacks a file the study found)."""


def is_unit_error(exc: BaseException) -> bool:
    """Whether ``exc`` belongs to the unit's config or data (an error row) rather than to the system."""
    return isinstance(exc, UNIT_ERRORS) and not isinstance(exc, DataMissingError)


class DataMissingOnNode(RuntimeError):
    """A unit's data file is missing on the node that ran it (a system error: the trial is retried)."""


@dataclass
class UnitTask:
    """Everything a unit needs; plain data, so Ray ships it to any node."""

    study: str
    study_kind: str
    trial_id: str
    base_config: dict[str, Any]
    params: dict[str, Any]
    holdout: int
    seed: int
    stage: str
    cache_root: str
    store_root: str
    sweep: tuple[str, float] | None = None
    write_scores: bool = True
    scores: str = DEFAULT_SCORES
    """Which per-sample scores to store (``--scores``, see ``result_store.score_splits``)."""
    fault: Any = None  # a trainables.FaultInjection (tests only)
    records_root: str | None = None
    """Where the trial's records (and training ledger) live; None: ``store_root``."""

    def config(self) -> OMASGANConfig:
        return trial_config(self.base_config, {**self.params, "data.holdout": self.holdout, "seed": self.seed})

    def key(self, config: OMASGANConfig) -> UnitKey:
        return UnitKey(self.study, self.study_kind, self.trial_id, config.data.dataset, self.holdout, self.seed)


@dataclass
class UnitOutcome:
    """What a unit round returns to its trial."""

    holdout: int
    seed: int
    stage: str
    status: str
    error: str | None = None
    detector: str | None = None
    metrics: dict[str, dict[str, float]] = field(default_factory=dict)
    wall_time_s: float = 0.0
    losses: dict[str, float] = field(default_factory=dict)
    trained: int = 0
    cache: dict[str, int] = field(default_factory=dict)
    device: str = "cpu"
    alarm: dict[str, float] = field(default_factory=dict)
    """The stage's shortcut alarm (omasgan.alarm): ink / contrast / nn AUROCs, J's ink correlation."""
    pid: int = 0
    """The worker process that ran the unit (set by the Ray task)."""
    gpu_ids: list[str] = field(default_factory=list)
    """The GPUs Ray assigned to the unit's task, empty on the CPU."""
    cuda_visible_devices: str | None = None
    """CUDA_VISIBLE_DEVICES in the unit's process (Ray sets it to ``gpu_ids``)."""


def _error_text(exc: BaseException) -> str:
    frames = traceback.extract_tb(exc.__traceback__)
    where = f" (at {frames[-1].filename.rsplit('/', 1)[-1]}:{frames[-1].lineno})" if frames else ""
    return f"{type(exc).__name__}: {exc}{where}"


def run_unit(task: UnitTask, device: str = "cpu") -> UnitOutcome:
    """Train ``task.stage`` of one unit (upstream stages from the cache), write its rows, return them.

    A unit error (:data:`UNIT_ERRORS`: bad config, bad data, a NaN loss) is caught: the unit writes an
    error row for the stage and returns ``status="error"`` so the study goes on.  Any other exception
    propagates unchanged and no row is written, so the trial fails and Tune retries it.  When this
    call trained any stage, the counts are in the trial's training ledger before any row is written.
    """
    store = ResultStore(task.store_root)
    config = task.config()
    key = task.key(config)
    outcome = UnitOutcome(task.holdout, task.seed, task.stage, "ok", device=device)
    settings = TrialSettings(
        base=config.to_dict(), last_stage=task.stage, cache_root=task.cache_root, fault=task.fault,
        write_scores=False, evaluate_stages=(task.stage,), cache_options=dict(CACHE_OPTIONS),
    )
    started = time.perf_counter()
    try:
        state = run_trial({}, settings, None,
                          trial_id=f"{task.trial_id}-{task.holdout}-{task.seed}", device=device)
    except UNIT_ERRORS as exc:  # the config's own failure: its error row; system errors propagate
        if not is_unit_error(exc):
            import socket

            raise DataMissingOnNode(f"on node {socket.gethostname()}: {exc} (the study found it when it started: "
                                    "give every node the same --data-root)") from exc
        outcome.status, outcome.error = "error", _error_text(exc)
        outcome.wall_time_s = time.perf_counter() - started
        store.write_stage_rows(key, task.stage, config=config, wall_time_s=outcome.wall_time_s, status="error",
                               error=outcome.error, device=device, sweep=task.sweep)
        return outcome

    if any(state.trained.values()):
        TrialRecords(task.records_root or task.store_root).record_training(task.trial_id, task.holdout, task.seed,
                                                                           state.trained)
    payload = state.payloads[task.stage]
    outcome.wall_time_s = float(payload.get("wall_time_s", 0.0))
    outcome.losses = {name: float(values[-1]) for name, values in payload.get("history", {}).items() if values}
    outcome.trained = state.trained[task.stage]
    outcome.cache = dict(state.cache)
    outcome.alarm = dict(state.alarms.get(task.stage, {}))
    evaluation = state.evaluations.get(task.stage)
    if evaluation is not None:
        outcome.detector = evaluation["detector"]
        outcome.metrics = {split: {m: float(v[m]) for m in METRIC_NAMES} for split, v in evaluation["metrics"].items()}
    kept = score_splits(task.scores, final=evaluation["detector"] == "final") if evaluation is not None else ()
    if kept and task.write_scores:
        splits = trial_splits(config, torch.device(device))
        labels = {"val": splits.val_y.cpu().numpy(), "test": splits.test_y.cpu().numpy()}
        store.write_scores(key, evaluation["detector"], {s: state.scores[task.stage][s] for s in kept},
                           {s: labels[s] for s in kept})
    store.write_stage_rows(key, task.stage, config=config, evaluation=evaluation, wall_time_s=outcome.wall_time_s,
                           device=device, sweep=task.sweep, alarm=outcome.alarm)
    if task.stage == "task2":
        _write_plane_samples(store, key, config, state.payloads, device)
    return outcome


def _write_plane_samples(store: ResultStore, key: UnitKey, config: OMASGANConfig,
                         payloads: dict[str, dict[str, Any]], device: str) -> None:
    """For 2-D data, x, G(z) and B(z) (the paper's Figure 3) next to the results."""
    splits = trial_splits(config, torch.device(device))
    if splits.is_image or splits.sample_shape != (2,):
        return
    z = latent(SAMPLES_PER_PLOT, config.network.latent_dim, torch.device(device))
    generator = modules_from_payload(payloads["task1"], torch.device(device))["generator"].eval()
    boundary = boundary_sampler(modules_from_payload(payloads["task2"], torch.device(device))).eval()
    store.write_samples(key, {
        "x": splits.train_x.cpu().numpy(),
        "generated": samples_without_graph(generator, z).cpu().numpy(),
        "boundary": samples_without_graph(boundary, z).cpu().numpy(),
    })


def summarize_round(stage: str, outcomes: list[UnitOutcome]) -> dict[str, Any]:
    """A trial's report after a round: the mean over its ok units of each metric of the stage's
    detector and of each shortcut-alarm figure (``alarm_ink_auroc``, ...; for the AUROCs also
    ``alarm_<name>_sep``, the mean of max(a, 1 - a)), unit counts, and the round's summed training
    counts and cache counters."""
    ok = [o for o in outcomes if o.status == "ok"]
    report: dict[str, Any] = {
        "stage": stage, "stage_index": STAGES.index(stage) + 1 if stage in STAGES else 1,
        "units_ok": len(ok), "units_failed": len(outcomes) - len(ok),
        f"trained_{stage}": sum(o.trained for o in ok),
        "stage_wall_s_mean": sum(o.wall_time_s for o in ok) / len(ok) if ok else float("nan"),
    }
    for name in {n for o in ok for n in o.cache}:
        report[f"round_{name}"] = sum(o.cache.get(name, 0) for o in ok)
    for name in sorted({n for o in ok for n in o.alarm}):
        values = [o.alarm[name] for o in ok if name in o.alarm and math.isfinite(o.alarm[name])]
        report[f"alarm_{name}"] = sum(values) / len(values) if values else float("nan")
        if name in ALARM_STATISTICS:
            report[f"alarm_{name}_sep"] = sum(map(separability, values)) / len(values) if values else float("nan")
    detectors = {o.detector for o in ok if o.detector}
    for detector in detectors:
        for split in ("val", "test"):
            for metric in METRIC_NAMES:
                values = [o.metrics[split][metric] for o in ok if o.detector == detector and split in o.metrics]
                finite = [v for v in values if math.isfinite(v)]
                report[f"{split}_{detector}_{metric}"] = sum(finite) / len(finite) if finite else float("nan")
    return report

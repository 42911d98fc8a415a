"""One trial: the OMASGAN stages up to ``last_stage`` for one config, stage by stage, with the stage
cache, a checkpoint at every stage boundary and a report after every stage.

This module holds the logic; :mod:`omasgan.trainables.function_trainables` binds it to Ray Tune's
``tune.report`` / ``tune.get_checkpoint``.  The stages run through
:func:`omasgan.stage_runner.run_stages`: the stage cache is its ``obtain`` hook, the checkpoint
and the report its ``on_stage_end``.  A trial's parameters are a flat dict of dotted config
keys (``{"task2.mu": 0.2}``) laid over a base config.

Checkpoint folder (written at every stage boundary)::

    state.json       {"completed": [...], "evaluations": {...}, "alarms": {...}, "trained": {...}, "cache": {...}}
    <stage>.pt       the stage payload (omasgan.checkpoint format) of every completed stage

A restored trial loads its completed stages from there and continues with the next one; because
every stage seeds itself from (seed, stage), the result equals an uninterrupted run's.
"""

from __future__ import annotations

import json
import math
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from omasgan.checkpoint import modules_from_payload, stage_payload
from omasgan.config import STAGES, OMASGANConfig
from omasgan.errors import TrainingDivergedError
from omasgan.metrics import METRIC_NAMES
from omasgan.networks import check_network_shape
from omasgan.run import load_run_data, validate_run
from omasgan.stage_runner import StageOutcome, run_stages
from omasgan.stages import StageResult

from .cache import CacheStats, StageCache, stage_cache_key

OBJECTIVE = "objective"
"""The metric every report carries: the best validation AUROC of any detector trained so far."""

Reporter = Callable[[dict[str, Any], "Path | None"], None]


def trial_config(base: dict[str, Any], params: dict[str, Any]) -> OMASGANConfig:
    """The base config with a trial's dotted-key parameters laid over it (keys starting with "_"
    are trial metadata and are skipped)."""
    overrides = {k: v for k, v in params.items() if not k.startswith("_")}
    return OMASGANConfig.from_dict(base).with_overrides(overrides)


@dataclass
class FaultInjection:
    """Test hook: once per trial, inside ``stage`` after ``epoch`` epochs, either raise (``action =
    "raise"``) or stop for ``pause_s`` seconds (``"pause"``, so a test can kill the driver there).
    ``error`` says what is raised: ``"unit"`` a TrainingDivergedError (the config failed: in a study,
    an error row), ``"system"`` a RuntimeError (the system failed: in a study, Tune retries the trial).
    A marker file in ``marker_dir`` records that the fault fired, so the retry runs through.  With
    ``only``, it fires only in trials whose id ends with that text (a study unit's id ends with
    ``-<class>-<seed>``, so ``only="-1-0"`` picks class 1, seed 0)."""

    stage: str
    epoch: int
    marker_dir: str
    action: str = "raise"
    pause_s: float = 600.0
    only: str | None = None
    error: str = "unit"

    def hook(self, trial_id: str) -> Callable[[str, int, int, dict[str, float]], None]:
        marker = Path(self.marker_dir) / f"fault-{trial_id}"
        chosen = self.only is None or trial_id.endswith(self.only)

        def on_epoch(stage: str, epoch: int, epochs: int, losses: dict[str, float]) -> None:
            if chosen and stage == self.stage and epoch == self.epoch and not marker.exists():
                marker.parent.mkdir(parents=True, exist_ok=True)
                marker.write_text("fired")
                if self.action == "pause":
                    time.sleep(self.pause_s)
                    return
                if self.error == "unit":
                    raise TrainingDivergedError(f"injected fault in {stage} at epoch {epoch}")
                raise RuntimeError(f"injected fault in {stage} at epoch {epoch}")

        return on_epoch


@dataclass
class TrialSettings:
    """What every trial of a trainable shares."""

    base: dict[str, Any]
    last_stage: str = "j"
    cache_root: str | None = None
    cache_options: dict[str, Any] = field(default_factory=dict)
    fault: FaultInjection | None = None
    write_scores: bool = True
    evaluate_stages: tuple[str, ...] | None = None
    """Stages whose detector is scored (None: every stage; a study's unit scores only the stage it
    trains, the upstream ones it takes from the cache were scored when they were trained)."""

    def __post_init__(self) -> None:
        if self.last_stage not in STAGES:
            raise ValueError(f"last_stage={self.last_stage!r}; choose one of: {', '.join(STAGES)}")


@dataclass
class TrialState:
    completed: list[str] = field(default_factory=list)
    evaluations: dict[str, dict[str, Any]] = field(default_factory=dict)
    trained: dict[str, int] = field(default_factory=lambda: {s: 0 for s in STAGES})
    cache: dict[str, int] = field(default_factory=dict)
    payloads: dict[str, dict[str, Any]] = field(default_factory=dict)
    scores: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Per-sample scores of each scored stage ({"val": array, "test": array}); not checkpointed."""
    alarms: dict[str, dict[str, float]] = field(default_factory=dict)
    """stage -> the shortcut alarm's figures (omasgan.evaluation.stage_alarm)."""

    def to_json(self) -> dict[str, Any]:
        return {"completed": self.completed, "evaluations": self.evaluations, "trained": self.trained,
                "cache": self.cache, "alarms": self.alarms}

    @classmethod
    def restore(cls, folder: Path) -> "TrialState":
        document = json.loads((folder / "state.json").read_text())
        state = cls(document["completed"], document["evaluations"], document["trained"], document.get("cache", {}),
                    alarms=document.get("alarms", {}))
        for stage in state.completed:
            state.payloads[stage] = torch.load(folder / f"{stage}.pt", map_location="cpu", weights_only=True)
        return state

    def write(self, folder: Path) -> None:
        for stage in self.completed:
            if not (folder / f"{stage}.pt").exists():
                torch.save(self.payloads[stage], folder / f"{stage}.pt")
        (folder / "state.json").write_text(json.dumps(self.to_json(), indent=2))


_SPLITS_MEMO: dict[tuple[str, str], Any] = {}


def trial_splits(config: OMASGANConfig, device: torch.device):
    """The data splits of a trial, loaded once per worker process for each data request (a reused
    Tune actor runs many trials on the same data)."""
    key = (json.dumps(config.to_dict()["data"], sort_keys=True), str(device))
    if key not in _SPLITS_MEMO:
        validate_run(config)
        _SPLITS_MEMO.clear()  # keep one data set in memory per worker
        _SPLITS_MEMO[key] = load_run_data(config, device)
    return _SPLITS_MEMO[key]


def _result_from_payload(payload: dict[str, Any], device: torch.device) -> StageResult:
    return StageResult(
        payload["stage"], modules_from_payload(payload, device), payload.get("history", {}),
        float(payload.get("wall_time_s", 0.0)), int(payload.get("steps", 0)),
    )


def _flat_metrics(prefix: str, metrics: dict[str, float]) -> dict[str, float]:
    return {f"{prefix}_{name}": float(metrics[name]) for name in METRIC_NAMES}


def build_report(stage: str, state: TrialState, last_stage: str, wall_s: float) -> dict[str, Any]:
    """The metrics reported after ``stage``: the objective, the stage, its validation metrics, its
    shortcut alarm (``alarm_ink_auroc``, ... after Task 2 and J), the
    validation AUROC of every detector so far, cache counters and training counts (both summed
    over every attempt of the trial); after the last
    stage also every detector's test metrics."""
    aurocs = [e["metrics"]["val"]["auroc"] for e in state.evaluations.values()]
    finite = [a for a in aurocs if a is not None and math.isfinite(a)]
    report: dict[str, Any] = {
        OBJECTIVE: max(finite) if finite else float("nan"),
        "stage": stage,
        "stage_index": STAGES.index(stage) + 1,
        "done": stage == last_stage,
        "stage_wall_s": wall_s,
    }
    # the stage's last-epoch mean losses (Task 2 has no detector: these are what it reports)
    history = state.payloads[stage].get("history", {})
    report.update({f"{stage}_{name}": float(values[-1]) for name, values in history.items() if values})
    evaluation = state.evaluations.get(stage)
    if evaluation is not None:
        report.update(_flat_metrics("val", evaluation["metrics"]["val"]))
    report.update({f"alarm_{name}": float(value) for name, value in state.alarms.get(stage, {}).items()})
    for ev in state.evaluations.values():
        report[f"val_{ev['detector']}_auroc"] = float(ev["metrics"]["val"]["auroc"])
    if stage == last_stage:
        for ev in state.evaluations.values():
            report.update(_flat_metrics(f"test_{ev['detector']}", ev["metrics"]["test"]))
    report.update(state.cache)
    report.update({f"trained_{s}": n for s, n in state.trained.items()})
    return report


def run_trial(
    params: dict[str, Any],
    settings: TrialSettings,
    report: Reporter | None,
    *,
    restored: Path | None = None,
    trial_dir: Path | None = None,
    trial_id: str = "trial",
    device: str | torch.device = "cpu",
) -> TrialState:
    """Run (or resume) one trial; ``report(metrics, checkpoint_folder)`` is called after each stage.
    With ``report=None`` (a study's unit: the stage cache and the result store keep what it made)
    no checkpoint folder is written."""
    device = torch.device(device)
    config = trial_config(settings.base, params)
    splits = trial_splits(config, device)
    check_network_shape(config.network.kind, splits.sample_shape)
    state = TrialState.restore(restored) if restored is not None else TrialState()
    cache = StageCache(settings.cache_root, **settings.cache_options) if settings.cache_root else None
    stats = cache.stats if cache is not None else CacheStats()
    earlier_attempts = dict(state.cache)  # counters of the attempts before a restore
    on_epoch = settings.fault.hook(trial_id) if settings.fault is not None else None
    done = {s: _result_from_payload(state.payloads[s], device) for s in state.completed}

    def obtain(stage: str, train: Callable[[], StageResult]) -> StageResult:
        """The stage's payload from the cache, or trained (and published there); its result is
        rebuilt from the payload either way."""

        def build() -> dict[str, Any]:
            trained = train()
            state.trained[stage] += 1
            return stage_payload(trained, config, splits.sample_shape, splits.is_image)

        if cache is not None:
            payload, _ = cache.get_or_build(stage, stage_cache_key(config, stage, device=device), build)
        else:
            payload = build()
            stats.count("misses", stage)
        state.payloads[stage] = payload
        return _result_from_payload(payload, device)

    def stage_end(outcome: StageOutcome) -> None:
        """Record the stage in the state, write its scores, report it with a checkpoint folder."""
        stage, evaluation = outcome.stage, outcome.evaluation
        if outcome.alarm:
            state.alarms[stage] = outcome.alarm
        if evaluation is not None:
            state.scores[stage] = evaluation.scores
            state.evaluations[stage] = {"detector": evaluation.detector, "threshold": evaluation.threshold,
                                        "metrics": evaluation.metrics}
            if trial_dir is not None and settings.write_scores:
                np.savez_compressed(trial_dir / f"scores-{evaluation.detector}.npz",
                                    val_y=splits.val_y.cpu().numpy(), test_y=splits.test_y.cpu().numpy(),
                                    **evaluation.scores)
        state.completed.append(stage)
        state.cache = {k: earlier_attempts.get(k, 0) + v for k, v in stats.as_metrics().items()}
        if report is None:
            return
        wall_s = float(state.payloads[stage].get("wall_time_s", 0.0))
        metrics = build_report(stage, state, settings.last_stage, wall_s)
        folder = Path(tempfile.mkdtemp(prefix=f"omasgan-{stage}-"))
        try:
            state.write(folder)
            report(metrics, folder)
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    run_stages(config, splits, last_stage=settings.last_stage, done=done, obtain=obtain,
               scored=settings.evaluate_stages, on_epoch=on_epoch, on_stage_end=stage_end)
    return state

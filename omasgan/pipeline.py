"""Task 1 -> Task 2 -> Task 3 -> J in order, with each detector stage scored on the splits.

Stage inputs (docs/design.md 3.2-3.5):
    task1: the normal training data
    task2: task1's G and D
    task3: task1's G and D, task2's B
    j:     task2's B, task3's G' (and, for ``j.init`` != scratch, the critic J starts from)
Each detector stage (task1 -> D, task3 -> C, j -> J) is scored on validation and test; the hard-label
threshold is chosen on validation (max F1).  The test split is scored once per finished stage and
never steers anything.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import torch
from torch import nn

from .config import STAGES, OMASGANConfig
from .data import DataSplits
from .divergences import build_divergence
from .metrics import detection_metrics, max_f1_threshold
from .scoring import anomaly_scores
from .stages import StageResult, train_j, train_task1, train_task2, train_task3
from .stages.common import EpochCallback

DETECTOR_OF_STAGE: dict[str, tuple[str, str]] = {
    "task1": ("task1", "discriminator"),
    "task3": ("task3", "critic"),
    "j": ("final", "detector"),
}
"""Training stage -> (name of its scored detector, module that scores)."""


@dataclass
class StageEvaluation:
    """Metrics of one detector on validation and test, its threshold and its per-sample scores."""

    detector: str
    threshold: float
    metrics: dict[str, dict[str, float]]
    scores: dict[str, np.ndarray] = field(repr=False, default_factory=dict)


@dataclass
class PipelineResult:
    config: OMASGANConfig
    stages: dict[str, StageResult]
    evaluations: dict[str, StageEvaluation]

    @property
    def metrics(self) -> dict[str, dict[str, dict[str, float]]]:
        """detector ("task1", "task3", "final") -> split ("val", "test") -> metric -> value."""
        return {e.detector: e.metrics for e in self.evaluations.values()}

    @property
    def wall_time_s(self) -> dict[str, float]:
        return {name: result.wall_time_s for name, result in self.stages.items()}

    def best_validation_auroc(self) -> float:
        """The objective a search maximises: the best validation AUROC of any scored detector."""
        values = [e.metrics["val"]["auroc"] for e in self.evaluations.values()]
        finite = [v for v in values if np.isfinite(v)]
        return max(finite) if finite else float("nan")


def run_stage(
    stage: str,
    config: OMASGANConfig,
    splits: DataSplits,
    upstream: dict[str, StageResult],
    on_epoch: EpochCallback | None = None,
) -> StageResult:
    """Train one stage given the results of the stages before it (see the module docstring), with
    ``config.threads`` torch threads (part of the run's identity, see :class:`OMASGANConfig`)."""
    torch.set_num_threads(config.threads)
    x = splits.train_x
    if stage == "task1":
        return train_task1(config, x, is_image=splits.is_image, on_epoch=on_epoch)
    if stage == "task2":
        t1 = upstream["task1"].modules
        return train_task2(config, t1["generator"], t1["discriminator"], x, on_epoch=on_epoch)
    if stage == "task3":
        t1 = upstream["task1"].modules
        return train_task3(
            config, t1["generator"], t1["discriminator"], upstream["task2"].modules["boundary"], x, on_epoch=on_epoch
        )
    if stage == "j":
        init_from = {"task3": ("task3", "critic"), "task1": ("task1", "discriminator")}.get(config.j.init)
        start = upstream[init_from[0]].modules[init_from[1]] if init_from else None
        return train_j(
            config,
            upstream["task2"].modules["boundary"],
            upstream["task3"].modules["generator"],
            x,
            init_from=start,
            on_epoch=on_epoch,
        )
    raise ValueError(f"unknown stage {stage!r}; choose one of: {', '.join(STAGES)}")


def evaluate_detector(
    detector: str, critic: nn.Module, config: OMASGANConfig, splits: DataSplits, *, score_test: bool = True
) -> StageEvaluation:
    """Score validation (choose the max-F1 threshold there) and, once, test (``config.threads`` threads)."""
    torch.set_num_threads(config.threads)
    divergence = build_divergence(config.divergence)
    val_scores = anomaly_scores(detector, critic, splits.val_x, divergence).cpu().numpy()
    val_labels = splits.val_y.cpu().numpy()
    threshold = max_f1_threshold(val_scores, val_labels)
    metrics = {"val": detection_metrics(val_scores, val_labels, threshold)}
    scores = {"val": val_scores}
    if score_test:
        test_scores = anomaly_scores(detector, critic, splits.test_x, divergence).cpu().numpy()
        metrics["test"] = detection_metrics(test_scores, splits.test_y.cpu().numpy(), threshold)
        scores["test"] = test_scores
    return StageEvaluation(detector, threshold, metrics, scores)


def evaluate_stage(stage: str, result: StageResult, config: OMASGANConfig, splits: DataSplits) -> StageEvaluation | None:
    """The evaluation of a stage's detector, or None for Task 2 (it has no detector)."""
    if stage not in DETECTOR_OF_STAGE:
        return None
    detector, module = DETECTOR_OF_STAGE[stage]
    return evaluate_detector(detector, result.modules[module], config, splits)


StageEndCallback = Callable[[str, StageResult, "StageEvaluation | None"], None]


def run_pipeline(
    config: OMASGANConfig,
    splits: DataSplits,
    *,
    on_epoch: EpochCallback | None = None,
    on_stage_end: StageEndCallback | None = None,
    completed: dict[str, StageResult] | None = None,
) -> PipelineResult:
    """Run every stage in order; ``completed`` holds stages already trained (resume), which are
    evaluated but not retrained.  ``on_stage_end(stage, result, evaluation)`` runs after each."""
    results: dict[str, StageResult] = {}
    evaluations: dict[str, StageEvaluation] = {}
    for stage in STAGES:
        if completed and stage in completed:
            result = completed[stage]
        else:
            result = run_stage(stage, config, splits, results, on_epoch)
        results[stage] = result
        evaluation = evaluate_stage(stage, result, config, splits)
        if evaluation is not None:
            evaluations[stage] = evaluation
        if on_stage_end is not None:
            on_stage_end(stage, result, evaluation)
    return PipelineResult(config, results, evaluations)


def metrics_document(result: PipelineResult, splits: DataSplits, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """The JSON-serialisable summary written as metrics.json."""
    return {
        "config": result.config.to_dict(),
        "data": splits.summary(),
        "metrics": result.metrics,
        "thresholds": {e.detector: e.threshold for e in result.evaluations.values()},
        "wall_time_s": result.wall_time_s,
        "history": {name: stage.history for name, stage in result.stages.items()},
        "objective_val_auroc": result.best_validation_auroc(),
        "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        **(extra or {}),
    }

"""One OMASGAN pipeline: Task 1 -> Task 2 -> Task 3 -> J (:mod:`omasgan.stage_runner`), each
detector stage scored on the splits (:mod:`omasgan.evaluation`), summed up as a
:class:`PipelineResult` and its metrics.json document.

Each detector stage (task1 -> D, task3 -> C, j -> J) is scored on validation and test; the hard-label
threshold is chosen on validation (max F1).  The test split is scored once per finished stage and
never steers anything.  After Task 2 (and after J) the shortcut alarm (:mod:`omasgan.alarm`) is
kept per stage in ``PipelineResult.alarms``.

``run_stage``, ``evaluate_detector``, ``evaluate_stage``, ``final_score``, ``stage_alarm``,
``StageEvaluation`` and ``DETECTOR_OF_STAGE`` still import from here until
:data:`omasgan.deprecation.REMOVED_IN`, with a ``DeprecationWarning`` naming their homes
(:data:`MOVED_NAMES`: :mod:`omasgan.stage_runner` and :mod:`omasgan.evaluation`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from importlib import import_module
from typing import TYPE_CHECKING, Any, Callable

import numpy as np

from .config import OMASGANConfig
from .data import DataSplits
from .deprecation import deprecated
from .stage_runner import StageOutcome, run_stages
from .stages import StageResult
from .stages.common import EpochCallback

if TYPE_CHECKING:
    from .evaluation import StageEvaluation

__all__ = ["PipelineResult", "metrics_document", "run_pipeline"]

MOVED_NAMES = {
    "run_stage": "omasgan.stage_runner", "evaluate_detector": "omasgan.evaluation",
    "evaluate_stage": "omasgan.evaluation", "final_score": "omasgan.evaluation", "stage_alarm": "omasgan.evaluation",
    "StageEvaluation": "omasgan.evaluation", "DETECTOR_OF_STAGE": "omasgan.evaluation",
}
"""Names this module exported before they moved -> their home (imported from there, with a warning)."""


def __getattr__(name: str) -> Any:
    """An old name of :data:`MOVED_NAMES`, from its home, with a ``DeprecationWarning``."""
    if name in MOVED_NAMES:
        home = MOVED_NAMES[name]
        deprecated(f"importing {name} from omasgan.pipeline", f"import it from {home}", stacklevel=2)
        return getattr(import_module(home), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@dataclass
class PipelineResult:
    config: OMASGANConfig
    stages: dict[str, StageResult]
    evaluations: dict[str, StageEvaluation]
    alarms: dict[str, dict[str, float]] = field(default_factory=dict)
    """stage -> the shortcut alarm's figures (see :func:`omasgan.evaluation.stage_alarm`)."""

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
    given = completed or {}

    def obtain(stage: str, train: Callable[[], StageResult]) -> StageResult:
        return given[stage] if stage in given else train()

    def stage_end(outcome: StageOutcome) -> None:
        if on_stage_end is not None:
            on_stage_end(outcome.stage, outcome.result, outcome.evaluation)

    run = run_stages(config, splits, obtain=obtain, on_epoch=on_epoch, on_stage_end=stage_end)
    return PipelineResult(config, run.results, run.evaluations, run.alarms)


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
        "alarm": result.alarms,
        "final_score": result.evaluations["j"].score_spec if "j" in result.evaluations else {},
        "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        **(extra or {}),
    }

"""Scoring a detector on the splits, and what is measured after each stage.

The protocol (docs/design.md 3.6), the same for OMASGAN's detectors and the baselines: the
hard-label threshold t is chosen on validation, t = argmax_t F1(val labels, [s(x) >= t]) (the
largest score when validation holds one class only, :func:`omasgan.metrics.max_f1_threshold`);
AUROC, AUPRC and F1/precision/recall/accuracy at t are reported on validation and on test; the
test split is scored once and never steers anything (:func:`evaluate_scores`).

Each OMASGAN detector stage (task1 -> D, task3 -> C, j -> J) is scored so (:func:`evaluate_stage`);
the final detector scores with ``j.score`` (:mod:`omasgan.final_score`), whose fusion statistics
are fitted on the validation normals.  After Task 2 (and after J) the shortcut alarm
(:mod:`omasgan.alarm`) measures how well trivial statistics separate B(z) from x
(:func:`stage_alarm`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import torch
from torch import nn

from .alarm import alarm_seed, ink_spearman, shortcut_alarm
from .config import OMASGANConfig
from .data import DataSplits
from .divergences import build_divergence
from .final_score import FinalScore
from .metrics import detection_metrics, max_f1_threshold
from .scoring import anomaly_scores
from .stages import StageResult
from .stages.union import boundary_members, boundary_sampler

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
    score_spec: dict[str, Any] = field(default_factory=dict)
    """For the final detector: how it scores (:meth:`omasgan.final_score.FinalScore.to_dict`)."""


def evaluate_scores(
    detector: str, score: Callable[[torch.Tensor], np.ndarray], splits: DataSplits, *, score_test: bool = True,
) -> StageEvaluation:
    """Score validation with ``score(x)`` (higher = more anomalous), choose the max-F1 threshold
    there, then (with ``score_test``) score test once at that threshold."""
    val_scores = score(splits.val_x)
    val_labels = splits.val_y.cpu().numpy()
    threshold = max_f1_threshold(val_scores, val_labels)
    metrics = {"val": detection_metrics(val_scores, val_labels, threshold)}
    scores = {"val": val_scores}
    if score_test:
        test_scores = score(splits.test_x)
        metrics["test"] = detection_metrics(test_scores, splits.test_y.cpu().numpy(), threshold)
        scores["test"] = test_scores
    return StageEvaluation(detector, threshold, metrics, scores)


def evaluate_detector(
    detector: str, critic: nn.Module, config: OMASGANConfig, splits: DataSplits, *, score_test: bool = True,
    score_fn: Callable | None = None,
) -> StageEvaluation:
    """:func:`evaluate_scores` of an OMASGAN detector with ``config.threads`` torch threads;
    ``score_fn(x)`` replaces the stage's own score of ``critic`` when given."""
    torch.set_num_threads(config.threads)
    divergence = build_divergence(config.divergence)
    score = score_fn or (lambda x: anomaly_scores(detector, critic, x, divergence))
    return evaluate_scores(detector, lambda x: score(x).cpu().numpy(), splits, score_test=score_test)


def final_score(result: StageResult, config: OMASGANConfig, splits: DataSplits) -> FinalScore:
    """The J stage's ``j.score``, fitted on the validation normals (validation labels pick only those)."""
    torch.set_num_threads(config.threads)
    return FinalScore.from_modules(config, result.modules).fit(splits.val_x[splits.val_y == 0])


def evaluate_stage(stage: str, result: StageResult, config: OMASGANConfig, splits: DataSplits) -> StageEvaluation | None:
    """The evaluation of a stage's detector, or None for Task 2 (it has no detector)."""
    if stage not in DETECTOR_OF_STAGE:
        return None
    detector, module = DETECTOR_OF_STAGE[stage]
    if stage != "j":
        return evaluate_detector(detector, result.modules[module], config, splits)
    scorer = final_score(result, config, splits)
    evaluation = evaluate_detector(detector, result.modules[module], config, splits, score_fn=scorer)
    evaluation.score_spec = scorer.to_dict()
    return evaluation


def stage_alarm(stage: str, result: StageResult, evaluation: StageEvaluation | None, config: OMASGANConfig,
                splits: DataSplits) -> dict[str, float]:
    """The shortcut alarm after ``stage`` (:mod:`omasgan.alarm`): after Task 2, the AUROCs of ink,
    contrast and nearest-neighbour distance separating B(z) from x; after J, the Spearman correlation
    of the final validation scores with ink and, when J refined B, the three AUROCs of B_r.  Empty
    for the other stages."""
    alarm: dict[str, float] = {}
    if stage in ("task2", "j") and boundary_members(result.modules):
        alarm.update(shortcut_alarm(boundary_sampler(result.modules), splits.train_x, config.network.latent_dim,
                                    alarm_seed(config.seed, stage)))
    if stage == "j" and evaluation is not None:
        alarm["ink_spearman"] = ink_spearman(evaluation.scores["val"], splits.val_x)
    return alarm

"""Task 1 -> Task 2 -> Task 3 -> J in order: the one loop behind ``run_pipeline``,
``OMASGANDetector.fit`` and a study's ``run_trial``.

Stage inputs (docs/design.md 3.2-3.5):
    task1: the normal training data
    task2: task1's G and D
    task3: task1's G and D, task2's B
    j:     task2's B, task3's G' (and, for ``j.init`` != scratch, the critic J starts from)
With K boundary models (``task2.boundaries``) Task 3 and J draw B(z) from their union
(:mod:`omasgan.stages.union`).

:func:`run_stages` takes each stage s of ``STAGES`` up to ``last_stage`` in turn:

1. s in ``done`` (the finished stages of a resumed run): its result is an input of the later
   stages; s is not trained, scored or handed to ``on_stage_end`` again;
2. else its result is ``obtain(s, train)``, where ``train()`` trains s on the results so far
   (:func:`run_stage`); without ``obtain`` it is ``train()``; a stage cache returns a stored result
   and calls ``train`` only on a miss;
3. s in ``scored`` (default: every stage): its detector is evaluated on validation and test and its
   shortcut alarm measured (:func:`omasgan.evaluation.evaluate_stage`, :func:`~omasgan.evaluation.stage_alarm`);
4. ``on_stage_end(outcome)``: a checkpoint, a report.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Callable

import torch

from .config import STAGES, OMASGANConfig
from .data import DataSplits
from .evaluation import StageEvaluation, evaluate_stage, stage_alarm
from .stages import StageResult, train_j, train_task1, train_task2, train_task3
from .stages.common import EpochCallback
from .stages.union import boundary_sampler


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
            config, t1["generator"], t1["discriminator"], boundary_sampler(upstream["task2"].modules), x,
            on_epoch=on_epoch,
        )
    if stage == "j":
        init_from = {"task3": ("task3", "critic"), "task1": ("task1", "discriminator")}.get(config.j.init)
        start = upstream[init_from[0]].modules[init_from[1]] if init_from else None
        return train_j(
            config,
            boundary_sampler(upstream["task2"].modules),
            upstream["task3"].modules["generator"],
            x,
            init_from=start,
            score_critic=upstream["task3"].modules["critic"] if config.j.score != "j" else None,
            on_epoch=on_epoch,
        )
    raise ValueError(f"unknown stage {stage!r}; choose one of: {', '.join(STAGES)}")


@dataclass
class StageOutcome:
    """One stage as :func:`run_stages` hands it to ``on_stage_end``."""

    stage: str
    result: StageResult
    evaluation: StageEvaluation | None
    """None for Task 2 (no detector) and for a stage that is not scored."""
    alarm: dict[str, float]
    """The shortcut alarm's figures (empty unless the stage is scored and is Task 2 or J)."""


@dataclass
class StageRun:
    """What :func:`run_stages` made: every stage's result (``done`` ones included, in stage order),
    the evaluations of the scored detectors and the non-empty alarms."""

    results: dict[str, StageResult]
    evaluations: dict[str, StageEvaluation] = field(default_factory=dict)
    alarms: dict[str, dict[str, float]] = field(default_factory=dict)


Obtain = Callable[[str, Callable[[], StageResult]], StageResult]
"""``obtain(stage, train) -> result``: supplies a stage's result, calling ``train()`` to train it."""


def run_stages(
    config: OMASGANConfig,
    splits: DataSplits,
    *,
    last_stage: str = "j",
    done: dict[str, StageResult] | None = None,
    obtain: Obtain | None = None,
    scored: Collection[str] | None = None,
    on_epoch: EpochCallback | None = None,
    on_stage_end: Callable[[StageOutcome], None] | None = None,
) -> StageRun:
    """Run the stages up to ``last_stage`` in order with the hooks of the module docstring;
    ``scored=None`` scores every stage, ``on_epoch`` is every trained stage's per-epoch callback."""
    if last_stage not in STAGES:
        raise ValueError(f"last_stage={last_stage!r}; choose one of: {', '.join(STAGES)}")
    run = StageRun(dict(done or {}))
    for stage in STAGES[: STAGES.index(last_stage) + 1]:
        if stage in run.results:
            continue

        def train(stage: str = stage) -> StageResult:
            return run_stage(stage, config, splits, run.results, on_epoch)

        result = obtain(stage, train) if obtain is not None else train()
        run.results[stage] = result
        evaluation, alarm = None, {}
        if scored is None or stage in scored:
            evaluation = evaluate_stage(stage, result, config, splits)
            alarm = stage_alarm(stage, result, evaluation, config, splits)
        if evaluation is not None:
            run.evaluations[stage] = evaluation
        if alarm:
            run.alarms[stage] = alarm
        if on_stage_end is not None:
            on_stage_end(StageOutcome(stage, result, evaluation, alarm))
    return run

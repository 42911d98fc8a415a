"""Live progress of a study on the console: a line whenever a trial reports a stage, starts, ends or
fails, with the counts and the best objective so far."""

from __future__ import annotations

import math
import sys
import time
from typing import Any

from ray import tune

from ..analysis.objective import STUDY_OBJECTIVE


def _duration(seconds: float) -> str:
    minutes, seconds = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m{seconds:02d}s" if hours else f"{minutes}m{seconds:02d}s"


class StudyProgress(tune.Callback):
    """Prints ``[study] 3/8 done, 2 running, 0 failed | best 0.8123 (trial ...) | 2m13s`` lines.

    Tune pickles its callbacks with the experiment, so a restored study keeps counting where the
    killed one stopped (this object holds no open stream)."""

    def __init__(self, study: str, total: int | None) -> None:
        self.study = study
        self.total = total
        self.started = time.monotonic()
        self.running: set[str] = set()
        self.done: set[str] = set()
        self.failed: set[str] = set()
        self.best: tuple[float, str] | None = None

    def _line(self, event: str) -> None:
        total = f"/{self.total}" if self.total else ""
        best = f"best {self.best[0]:.4f} ({self.best[1]})" if self.best else "best -"
        print(f"[{self.study}] {len(self.done)}{total} done, {len(self.running)} running, {len(self.failed)} failed"
              f" | {best} | {_duration(time.monotonic() - self.started)} | {event}", file=sys.stdout, flush=True)

    def on_trial_start(self, iteration: int, trials: list, trial: Any, **info) -> None:
        self.running.add(trial.trial_id)
        self.failed.discard(trial.trial_id)
        self._line(f"{trial.trial_id} started")

    def on_trial_result(self, iteration: int, trials: list, trial: Any, result: dict, **info) -> None:
        objective = result.get(STUDY_OBJECTIVE)
        if objective is not None and math.isfinite(objective) and result.get("pipeline_done"):
            if self.best is None or objective > self.best[0]:
                self.best = (float(objective), trial.trial_id)
        self._line(f"{trial.trial_id} finished {result.get('stage')}: objective {objective:.4f}, "
                   f"{result.get('units_ok')} units ok, {result.get('units_failed')} failed")

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info) -> None:
        self.running.discard(trial.trial_id)
        self.done.add(trial.trial_id)
        self._line(f"{trial.trial_id} done")

    def on_trial_recover(self, iteration: int, trials: list, trial: Any, **info) -> None:
        self._line(f"{trial.trial_id} lost a worker or node; retried from its last finished stage "
                   f"(failure {trial.num_failures})")

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info) -> None:
        self.running.discard(trial.trial_id)
        self.failed.add(trial.trial_id)
        self._line(f"{trial.trial_id} failed for good after {trial.num_failures} failure(s)")

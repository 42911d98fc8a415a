"""OptunaSearch whose Optuna study (the journal file) is the record of which trials are finished.

A search driver killed after the searcher told Optuna a trial's value, but before Tune saved its
experiment state, leaves that trial finished in the journal and unfinished in the restored
experiment: the restored trial reports its rounds again (from its durable record, see
:mod:`.trial_record`).  Plain OptunaSearch would pass those reports on to the finished Optuna trial,
which raises ``UpdateFinishedTrialError`` and stops the search.  This searcher drops results and
completions for Optuna trials the journal already holds as finished, and results of steps it already
holds: each value is recorded once, and the study goes on.
"""

from __future__ import annotations

import logging
from typing import Any

from ray.tune.result import TRAINING_ITERATION
from ray.tune.search.optuna import OptunaSearch

logger = logging.getLogger(__name__)


class JournalOptunaSearch(OptunaSearch):
    """OptunaSearch that leaves trials finished in its Optuna storage as they are."""

    def _stored(self, trial_id: str):
        """The Optuna trial of ``trial_id`` as the storage holds it now (None when it has none).

        One look-up by the storage's trial id, O(1) in the number of trials: the journal storage first
        reads only the journal lines written since its last read, so this sees what an earlier driver
        wrote.  (Listing the study's trials instead costs O(trials) per result, O(trials^2) per study.)"""
        ot_trial = self._ot_trials.get(trial_id)
        if ot_trial is None or self._ot_study is None:
            return None
        try:
            return self._ot_study._storage.get_trial(ot_trial._trial_id)
        except KeyError:
            return None

    def on_trial_result(self, trial_id: str, result: dict[str, Any]) -> None:
        stored = self._stored(trial_id)
        if stored is not None and (stored.state.is_finished()
                                   or result.get(TRAINING_ITERATION) in stored.intermediate_values):
            logger.info("trial %s: this result is already in the Optuna study; not reported again", trial_id)
            return
        super().on_trial_result(trial_id, result)

    def on_trial_complete(self, trial_id: str, result: dict[str, Any] | None = None, error: bool = False) -> None:
        stored = self._stored(trial_id)
        if stored is not None and stored.state.is_finished():
            self._completed_trials.add(trial_id)
            return
        super().on_trial_complete(trial_id, result=result, error=error)

def fail_orphaned_optuna_trials(journal: str, study_name: str) -> int:
    """Mark FAIL the Optuna trials still RUNNING in the journal; return how many.

    Call it only once every Tune trial of the search has ended: a trial the killed driver had asked
    Optuna for, but never recorded in Tune's experiment state, is rerun under a new Optuna trial by
    the restored search, and its first one would otherwise stay RUNNING in the journal for ever."""
    import optuna

    storage = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(journal))
    study = optuna.load_study(study_name=study_name, storage=storage)
    running = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,))
    for trial in running:
        study.tell(trial.number, state=optuna.trial.TrialState.FAIL)
    return len(running)

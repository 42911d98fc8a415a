"""OptunaSearch whose Optuna study (the journal file) is the record of which trials are finished.

A search driver killed after the searcher told Optuna a trial's value, but before Tune saved its
experiment state, leaves that trial finished in the journal and unfinished in the restored
experiment: the restored trial reports its rounds again (from its durable record, see
:mod:`omasgan.distributed.store.trial_record`).  Plain OptunaSearch would pass those reports on to the
finished Optuna trial, which raises ``UpdateFinishedTrialError`` and stops the search.  This searcher drops results and
completions for Optuna trials the journal already holds as finished, and results of steps it already
holds: each value is recorded once, and the study goes on.

The opposite order happens too: Tune's experiment state can name a trial that the restored searcher
state has never seen (the driver saved, or uploaded, the experiment state after asking Optuna for a
new trial but before the searcher state caught up).  Plain OptunaSearch then raises ``KeyError`` on
that trial's first result.  This searcher adopts such a trial instead: it takes the Optuna trial the
killed driver asked for (the RUNNING one in the journal whose parameters equal the Tune trial's
config), or, when the journal holds none, records the config as a new Optuna trial, so the trial's
value still reaches the study.

A driver that lost the study's lease writes nothing more to the journal (its appends are refused,
see :mod:`.control`): a result or completion the journal refuses is dropped with a warning (the
driver is stopping; the driver that takes over runs that trial on), and the concurrency limiter
asks for no trial.  The appends of one searcher call (a trial's ask and its parameters, one report,
one tell) are uploaded to the study's journal log as one object.

It also tells Optuna what a trial's end means (plain OptunaSearch tells COMPLETE with the last
reported value whatever happened):

- a trial whose last report says a unit failed, or whose objective is NaN, is FAIL (no value: the
  sampler does not learn from a trial scored on its surviving units);
- a trial that ended before its last round (a scheduler such as ASHA stopped it) is PRUNED: its
  intermediate values (one per detector round) stay, but it is not COMPLETE with Task 1's or Task 3's
  AUROC standing in for J's;
- a trial that errored for good in Tune is FAIL; every other one is COMPLETE with its objective.
"""

from __future__ import annotations

import logging
import math
from contextlib import contextmanager
from typing import Any, Iterator

from ray.tune.result import TRAINING_ITERATION
from ray.tune.search import ConcurrencyLimiter
from ray.tune.search.optuna import OptunaSearch

from ..analysis.objective import STUDY_OBJECTIVE

logger = logging.getLogger(__name__)

CONFIG_PREFIX = "config/"
"""How Tune's flattened results name the trial's config entries (``config/task2.mu``)."""


class JournalOptunaSearch(OptunaSearch):
    """OptunaSearch that leaves trials finished in its Optuna storage as they are."""

    @contextmanager
    def _one_upload(self, what: str, trial_id: str) -> Iterator[None]:
        """Mirror the journal appends of the block as one object.  A LeaseLost inside the block (the
        journal refused them: this driver lost the study's lease and is being stopped) is logged and
        dropped: Tune would turn it into a traceback."""
        from omasgan.trainables.storage.leases import LeaseLost

        from .control import mirrored_once

        try:
            with mirrored_once(self._storage):
                yield
        except LeaseLost as exc:
            logger.warning("trial %s: its %s is not recorded in the Optuna study: %s", trial_id, what, exc)

    def suggest(self, trial_id: str) -> dict[str, Any] | None:
        with self._one_upload("suggestion", trial_id):
            return super().suggest(trial_id)
        return None  # the journal refused the new trial: none is suggested

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

    def _adopted(self, trial_id: str, result: dict[str, Any] | None) -> bool:
        """Whether the searcher now has an Optuna trial for ``trial_id``: one it asked for, or one it
        adopts for a Tune trial it has never seen (see the module docstring).  The Tune trial's
        parameters are read from ``result``'s ``config/<name>`` entries; without them (a completion
        with no result) the trial is left alone, and its journal trial is failed when the search ends
        (:func:`fail_orphaned_optuna_trials`)."""
        if trial_id in self._ot_trials:
            return True
        config = {key[len(CONFIG_PREFIX):]: value for key, value in (result or {}).items()
                  if key.startswith(CONFIG_PREFIX) and isinstance(value, (bool, int, float, str))}
        if not config or self._ot_study is None:
            logger.warning("trial %s is unknown to the restored searcher and its result carries no config; "
                           "its value is not told to Optuna", trial_id)
            return False
        self._ot_trials[trial_id] = self._adopt(config)
        logger.warning("trial %s was unknown to the restored searcher; adopted as Optuna trial %d",
                       trial_id, self._ot_trials[trial_id].number)
        return True

    def _adopt(self, config: dict[str, Any]):
        """The Optuna trial for a Tune trial with ``config``: the journal's RUNNING trial with exactly
        these parameters that no known Tune trial holds, else a new trial with ``config`` fixed."""
        import optuna

        held = {ot_trial._trial_id for ot_trial in self._ot_trials.values()}
        running = self._ot_study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,))
        for stored in running:
            if stored._trial_id not in held and stored.params and all(
                    name in config and config[name] == value for name, value in stored.params.items()):
                return optuna.Trial(self._ot_study, stored._trial_id)
        self._ot_study.enqueue_trial(config)
        if callable(self._space):
            ot_trial = self._ot_study.ask()
            self._suggest_from_define_by_run_func(self._space, ot_trial)  # records the fixed values
        else:
            ot_trial = self._ot_study.ask(fixed_distributions=self._space)
        return ot_trial

    def on_trial_result(self, trial_id: str, result: dict[str, Any]) -> None:
        with self._one_upload("result", trial_id):
            self._record_result(trial_id, result)

    def _record_result(self, trial_id: str, result: dict[str, Any]) -> None:
        if not self._adopted(trial_id, result):
            return
        stored = self._stored(trial_id)
        if stored is not None and (stored.state.is_finished()
                                   or result.get(TRAINING_ITERATION) in stored.intermediate_values):
            logger.info("trial %s: this result is already in the Optuna study; not reported again", trial_id)
            return
        if not _finite(result.get(self.metric)):
            return  # a NaN objective (a failed unit) is no intermediate value; the trial ends as FAIL
        super().on_trial_result(trial_id, result)

    def on_trial_complete(self, trial_id: str, result: dict[str, Any] | None = None, error: bool = False) -> None:
        with self._one_upload("completion", trial_id):
            self._record_completion(trial_id, result, error)

    def _record_completion(self, trial_id: str, result: dict[str, Any] | None, error: bool) -> None:
        from omasgan.trainables.storage.leases import LeaseLost

        stored = self._stored(trial_id)
        if stored is not None and stored.state.is_finished():
            self._completed_trials.add(trial_id)
            return
        if trial_id in self._completed_trials:
            return super().on_trial_complete(trial_id, result=result, error=error)
        if not self._adopted(trial_id, result):
            self._completed_trials.add(trial_id)
            return
        import optuna

        state, value = ending(result, error, self.metric)
        try:
            self._ot_study.tell(self._ot_trials[trial_id], value,
                                state={"complete": optuna.trial.TrialState.COMPLETE,
                                       "pruned": optuna.trial.TrialState.PRUNED,
                                       "fail": optuna.trial.TrialState.FAIL}[state])
        except LeaseLost:
            raise  # not told: the driver that takes the study over tells it
        except Exception as exc:  # noqa: BLE001 - as OptunaSearch: a failed tell must not stop the search
            logger.warning(exc)
        self._completed_trials.add(trial_id)

    def has_finished(self, trial_id: str) -> bool:
        """Whether this searcher has seen ``trial_id`` complete."""
        return trial_id in self._completed_trials


UNGUARDED_AFTER_S = 5.0
"""Seconds after its lease was lost that a driver's searcher, still being asked for trials, ends the run."""


class AdoptingConcurrencyLimiter(ConcurrencyLimiter):
    """ConcurrencyLimiter over a :class:`JournalOptunaSearch` that counts a trial the restored
    searcher never suggested (see the module docstring) as live from its first result.  The plain
    limiter passes such a trial's results on but drops its completion (it completes only trials it
    suggested), so its value would never reach the Optuna study."""

    def suggest(self, trial_id: str) -> dict[str, Any] | None:
        """As ConcurrencyLimiter's, but no trial (None) once this process no longer holds the study's
        driver lease: a driver that lost it asks Optuna for nothing more, and the study's guards
        (:mod:`.guards`) halt its run.  A run still asking ``UNGUARDED_AFTER_S`` seconds after the loss
        has no guard (an experiment whose saved callbacks predate them): LeaseLost then ends its loop."""
        from .control import driver_lease

        lease = driver_lease(getattr(self.searcher, "_study_name", None) or "")
        if lease is not None and not lease.held():
            lost_at = lease.lease.lost_at
            if lost_at is not None and lease.lease.clock() - lost_at > UNGUARDED_AFTER_S:
                lease.check()
            return None
        return super().suggest(trial_id)

    def on_trial_result(self, trial_id: str, result: dict[str, Any]) -> None:
        if self._limit_concurrency and trial_id not in self.live_trials and not self.searcher.has_finished(trial_id):
            self.live_trials.add(trial_id)
            self.num_unfinished_live_trials += 1
        super().on_trial_result(trial_id, result)


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value)


def ending(result: dict[str, Any] | None, error: bool, metric: str = STUDY_OBJECTIVE) -> tuple[str, float | None]:
    """How a trial's end is told to Optuna: ("complete", value), ("pruned", None) or ("fail", None)
    (see the module docstring)."""
    if error or not result or result.get("units_failed"):
        return "fail", None
    if not result.get("pipeline_done"):
        return "pruned", None
    value = result.get(metric)
    return ("complete", float(value)) if _finite(value) else ("fail", None)

def fail_orphaned_optuna_trials(journal: str, study_name: str) -> int:
    """Mark FAIL the Optuna trials still RUNNING in the journal; return how many.

    Call it only once every Tune trial of the search has ended: a trial the killed driver had asked
    Optuna for, but never recorded in Tune's experiment state, is rerun under a new Optuna trial by
    the restored search, and its first one would otherwise stay RUNNING in the journal for ever."""
    import optuna

    from .control import driver_lease

    lease = driver_lease(study_name)
    if lease is not None:
        lease.check()  # the journal is the study's: a driver that lost its lease leaves it alone
    storage = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(journal))
    study = optuna.load_study(study_name=study_name, storage=storage)
    running = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,))
    for trial in running:
        study.tell(trial.number, state=optuna.trial.TrialState.FAIL)
    return len(running)

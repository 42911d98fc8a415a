"""What halts a running study before its trials end, each with one line that says why.

- **A trial that cannot be placed.**  A trial's placement group (see :mod:`.trainable`) that Ray cannot
  place waits silently for ever: instance quota 0, a bad AMI, a worker type that never joins, or more
  units at once than the autoscaler can deliver.  While some trial waits for its group and no trial
  runs, the study prints what the trial waits for and why (the cluster's resources now, Ray's view of
  the group, the autoscaler's failures) after ``NOTICE_AFTER_S`` and then every ``NOTICE_EVERY_S``,
  and halts after ``--placement-timeout`` seconds of it.
- **The failure budget** (``--max-failed-trials N``, as Katib's ``maxFailedTrialCount``): the study
  halts once N trials have failed, a failed trial being one that ended in error (a system error after
  ``--max-failures`` retries) or with a failed unit.  So a systemic failure (denied storage, a broken
  node image, a data set missing everywhere) does not run on through every trial.
- **A lost driver lease**: this driver can no longer prove it holds the study (:mod:`.control`).

A halt interrupts the Tune experiment the way Ctrl+C does (SIGUSR1, which Tune's ``fit`` handles by
saving the experiment state and stopping its trials as interrupted), so ``--resume`` continues the
unfinished trials where they stopped; the driver then fails with the halt's line (:class:`StudyHalted`).

Tune pickles its stopper and callbacks with the experiment, and ``Tuner.restore`` uses the pickled
ones, so :class:`GuardCallback` and :class:`GuardStopper` hold only the study's name: they act on the
live :class:`StudyGuard` this driver registered for it (:func:`install`), never on pickled state.
"""

from __future__ import annotations

import os
import signal
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from ray import tune

from omasgan.errors import OMASGANError

DEFAULT_PLACEMENT_TIMEOUT_S = 1800.0
"""How long a study waits, with nothing running, for a trial's placement group: a new GPU node on AWS
takes 5-10 minutes to launch and pull the node image."""
NOTICE_AFTER_S = 20.0
NOTICE_EVERY_S = 60.0


class StudyHalted(OMASGANError):
    """A running study was halted by one of its guards; the message says which and why.  The CLI
    prints it as one line and exits with status 1 (the study can be resumed)."""

    exit_status = 1


def trial_error_line(trial: Any) -> str:
    """The last line of a Tune trial's error file (what its failure was), at most 300 characters."""
    path = getattr(trial, "error_file", None) or ""
    try:
        with open(path) as handle:
            lines = [line for line in handle.read().strip().splitlines() if line.strip()]
        return lines[-1][:300] if lines else "error"
    except OSError:
        return "error (no error file)"


def failed_trials(trials: list[Any]) -> list[Any]:
    """Trials that ended in error, or ended with a unit that failed (their last report says so)."""
    return [t for t in trials if t.status == "ERROR"
            or (t.status == "TERMINATED" and (getattr(t, "last_result", None) or {}).get("units_failed"))]


def bundles_text(bundles: list[dict[str, float]]) -> str:
    """``1 x {CPU: 0.01} + 3 x {CPU: 1, GPU: 1}``: a placement group's bundles, equal ones counted."""
    counted: list[tuple[dict[str, float], int]] = []
    for bundle in bundles:
        if counted and counted[-1][0] == bundle:
            counted[-1] = (bundle, counted[-1][1] + 1)
        else:
            counted.append((bundle, 1))
    return " + ".join(f"{n} x " + "{" + ", ".join(f"{k}: {v:g}" for k, v in sorted(b.items())) + "}"
                      for b, n in counted)


def _pending_group_states() -> list[str]:
    """Ray's scheduling state of every placement group not yet placed (``INFEASIBLE``: no node can hold
    it now; ``NO_RESOURCES``: the nodes that could are busy; ...)."""
    import ray

    states = []
    for group in ray.util.placement_group_table().values():
        if group.get("state") in ("PENDING", "RESCHEDULING"):
            states.append(str((group.get("stats") or {}).get("scheduling_state") or group["state"]))
    return states


def placement_reasons(bundles: list[dict[str, float]]) -> str:
    """Why a group of ``bundles`` waits, in words: which resources the cluster lacks now, Ray's view of
    the waiting groups, and what the autoscaler reports (pending launches and their failures)."""
    import ray

    total = ray.cluster_resources()
    free = ray.available_resources()
    needed: dict[str, float] = {}
    for bundle in bundles:
        for name, amount in bundle.items():
            needed[name] = needed.get(name, 0.0) + float(amount)
    short = [f"{name} {needed[name]:g} (the cluster has {total.get(name, 0):g} in all, {free.get(name, 0):g} free)"
             for name in sorted(needed) if needed[name] > free.get(name, 0.0) + 1e-9]
    parts = [("it needs " + "; ".join(short)) if short else "the resources are there in sum but no node holds a bundle"]
    states = _pending_group_states()
    if states:
        counts = {s: states.count(s) for s in sorted(set(states))}
        parts.append("Ray: " + ", ".join(f"{n} group(s) {s}" for s, n in counts.items()))
    from .autoscaler_state import autoscaler_summary

    autoscaler = autoscaler_summary()
    if autoscaler:
        parts.append(f"autoscaler: {autoscaler}")
    return "; ".join(parts)


def _clock() -> float:
    """Seconds on a clock that also runs while the machine sleeps (where the platform has one)."""
    return time.clock_gettime(time.CLOCK_BOOTTIME) if hasattr(time, "CLOCK_BOOTTIME") else time.monotonic()


@dataclass
class StudyGuard:
    """The live guards of one running study (see the module docstring); one per driver process."""

    study: str
    max_failed_trials: int | None = None
    placement_timeout_s: float = DEFAULT_PLACEMENT_TIMEOUT_S
    lease: Any = None
    say: Callable[[str], None] = print
    reasons: Callable[[list[dict[str, float]]], str] = placement_reasons
    groups_waiting: Callable[[], list[str]] = field(default=lambda: _pending_group_states())
    """Ray's scheduling state of the placement groups not placed yet; none means a PENDING trial's group
    is placed and its actor is starting (seconds on a busy machine), which is not a wait for placement."""
    halted: str | None = None
    waiting_since: float | None = None
    last_notice: float | None = None
    clock: Callable[[], float] = field(default=_clock)

    def halt(self, reason: str) -> None:
        """Halt the study: the first reason stands; Tune's run loop is interrupted as by Ctrl+C."""
        if self.halted is not None:
            return
        self.halted = reason
        self.say(f"[{self.study}] halting: {reason}")
        handler = signal.getsignal(signal.SIGUSR1)
        if callable(handler) and getattr(handler, "__name__", "") == "signal_interrupt_tune_run":
            os.kill(os.getpid(), signal.SIGUSR1)  # Tune saves its state and stops the trials as interrupted

    def observe(self, trials: list[Any]) -> None:
        """Check every guard against the experiment's trials (called after each step of Tune's loop)."""
        if self.halted is not None:
            return
        self._check_lease()
        self._check_failures(trials)
        self._watch_placement(trials)

    def _check_lease(self) -> None:
        lease = self.lease
        if lease is None:
            return
        held = getattr(lease, "held", None)
        if lease.lost.is_set() or (callable(held) and not held()):
            self.halt("this driver can no longer renew the study's lease (another driver may take the study "
                      "over): no more trials, no journal writes")

    def _check_failures(self, trials: list[Any]) -> None:
        if self.max_failed_trials is None:
            return
        failed = failed_trials(trials)
        if len(failed) >= self.max_failed_trials:
            last = failed[-1]
            why = trial_error_line(last) if last.status == "ERROR" else \
                f"{last.last_result.get('units_failed')} unit(s) failed"
            self.halt(f"{len(failed)} trial(s) failed (--max-failed-trials {self.max_failed_trials}); the last, "
                      f"{last.trial_id}: {why}")

    def _watch_placement(self, trials: list[Any]) -> None:
        waiting = [t for t in trials if t.status == "PENDING"]
        if not waiting or any(t.status == "RUNNING" for t in trials) or not self.groups_waiting():
            self.waiting_since = self.last_notice = None
            return
        now = self.clock()
        if self.waiting_since is None:
            self.waiting_since = now
        waited = now - self.waiting_since
        trial = waiting[0]
        factory = getattr(trial, "placement_group_factory", None)
        bundles = [dict(b) for b in factory.bundles] if factory is not None else []
        if waited > self.placement_timeout_s:
            self.halt(f"trial {trial.trial_id} waited {waited:.0f} s (--placement-timeout "
                      f"{self.placement_timeout_s:g}) for its placement group {bundles_text(bundles)} with no trial "
                      f"running: {self.reasons(bundles)}")
            return
        first = min(NOTICE_AFTER_S, self.placement_timeout_s / 2)
        due = self.last_notice is None and waited >= first
        if due or (self.last_notice is not None and now - self.last_notice >= NOTICE_EVERY_S):
            self.last_notice = now
            self.say(f"[{self.study}] {len(waiting)} trial(s) waiting, none running: trial {trial.trial_id} has "
                     f"waited {waited:.0f} s for its placement group {bundles_text(bundles)}: {self.reasons(bundles)}; "
                     f"the study halts after {self.placement_timeout_s:g} s (--placement-timeout)")


_LIVE: dict[str, StudyGuard] = {}


def install(guard: StudyGuard) -> StudyGuard:
    """Make ``guard`` the one the callbacks of its study act on in this process."""
    _LIVE[guard.study] = guard
    return guard


def uninstall(study: str) -> None:
    _LIVE.pop(study, None)


def live(study: str) -> StudyGuard | None:
    return _LIVE.get(study)


class GuardCallback(tune.Callback):
    """Runs the live guard of its study after every step of Tune's loop (pickled with the experiment:
    it holds only the study's name)."""

    def __init__(self, study: str) -> None:
        self.study = study

    def on_step_end(self, iteration: int, trials: list, **info) -> None:
        guard = live(self.study)
        if guard is not None:
            guard.observe(trials)


class GuardStopper(tune.Stopper):
    """Stops every trial once its study's guard halted (where Tune's Ctrl+C handler could not be used:
    a driver not on the main thread)."""

    def __init__(self, study: str) -> None:
        self.study = study

    def __call__(self, trial_id: str, result: dict[str, Any]) -> bool:
        return False

    def stop_all(self) -> bool:
        guard = live(self.study)
        return guard is not None and guard.halted is not None

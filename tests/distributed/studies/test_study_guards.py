"""The guards that halt a running study (omasgan.distributed.studies.guards), on stand-in trials and a
hand-turned clock: when a placement wait is named and when it halts, what counts as a failed trial,
and a lease that can no longer be renewed."""

import threading
from dataclasses import dataclass, field

import pytest

pytest.importorskip("ray")

from omasgan.distributed.studies.guards import StudyGuard, bundles_text, failed_trials  # noqa: E402


@dataclass
class Factory:
    bundles: list


@dataclass
class Trial:
    trial_id: str
    status: str
    last_result: dict = field(default_factory=dict)
    error_file: str = ""
    placement_group_factory: Factory = field(default_factory=lambda: Factory([{"CPU": 0.01}, {"CPU": 1, "GPU": 1}]))


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _guard(**kwargs):
    lines: list[str] = []
    clock = Clock()
    guard = StudyGuard("s", say=lines.append, reasons=lambda bundles: "it needs GPU 1", clock=clock,
                       groups_waiting=lambda: ["INFEASIBLE"], **kwargs)
    return guard, clock, lines


def test_a_trial_waiting_with_nothing_running_is_named_then_halts_the_study():
    guard, clock, lines = _guard(placement_timeout_s=300)
    trials = [Trial("t1", "PENDING")]
    for now in (0, 10, 19):
        clock.now = now
        guard.observe(trials)
    assert lines == []
    clock.now = 21
    guard.observe(trials)
    assert len(lines) == 1 and "trial t1 has waited 21 s for its placement group 1 x {CPU: 0.01} + 1 x {CPU: 1, GPU: 1}: " \
                               "it needs GPU 1" in lines[0]
    clock.now = 60
    guard.observe(trials)
    assert len(lines) == 1  # the next notice a minute after the first
    clock.now = 82
    guard.observe(trials)
    assert len(lines) == 2 and guard.halted is None
    clock.now = 301
    guard.observe(trials)
    assert guard.halted.startswith("trial t1 waited 301 s (--placement-timeout 300)")


@pytest.mark.parametrize("others, groups", [([Trial("t0", "RUNNING")], ["NO_RESOURCES"]), ([], [])])
def test_a_wait_behind_a_running_trial_or_for_a_starting_actor_is_no_placement_wait(others, groups):
    guard, clock, lines = _guard(placement_timeout_s=30)
    guard.groups_waiting = lambda: groups
    for now in range(0, 120, 5):
        clock.now = now
        guard.observe([*others, Trial("t1", "PENDING")])
    assert lines == [] and guard.halted is None


def test_failed_trials_are_those_in_error_or_with_a_failed_unit():
    trials = [Trial("a", "ERROR"), Trial("b", "TERMINATED", {"units_failed": 1}), Trial("c", "TERMINATED", {}),
              Trial("d", "RUNNING", {"units_failed": 1})]
    assert [t.trial_id for t in failed_trials(trials)] == ["a", "b"]
    guard, _, lines = _guard(max_failed_trials=3)
    guard.observe(trials)
    assert guard.halted is None
    guard.observe([*trials, Trial("e", "TERMINATED", {"units_failed": 2})])
    assert guard.halted.startswith("3 trial(s) failed (--max-failed-trials 3); the last, e: 2 unit(s) failed")
    assert lines == [f"[s] halting: {guard.halted}"]


def test_a_lease_that_is_no_longer_held_halts_the_study():
    class Lease:
        lost = threading.Event()
        held_now = True

        def held(self):
            return self.held_now

    lease = Lease()
    guard, _, _ = _guard(lease=lease)
    guard.observe([])
    assert guard.halted is None
    lease.held_now = False
    guard.observe([])
    assert "can no longer renew the study's lease" in guard.halted


def test_bundles_text_counts_equal_bundles():
    assert bundles_text([{"CPU": 0.01}, {"CPU": 4, "GPU": 1}, {"CPU": 4, "GPU": 1}]) == \
        "1 x {CPU: 0.01} + 2 x {CPU: 4, GPU: 1}"

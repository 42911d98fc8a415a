"""The one stage loop (omasgan.stage_runner.run_stages): stages in order with their hooks; a stage
in ``done`` is neither trained nor handed on, one ``obtain`` supplies is not trained, only
``scored`` stages are evaluated, and ``last_stage`` stops the loop."""

import pytest

from omasgan.config import STAGES
from omasgan.data import load_splits
from omasgan.stage_runner import run_stages

from helpers import tiny_config

CONFIG = tiny_config(n_per_class=80, task1__epochs=3, task2__epochs=2, task3__epochs=2, j__epochs=3)


@pytest.fixture(scope="module")
def splits():
    return load_splits("synthetic", "loo", 4, synthetic_n_per_class=80)


@pytest.fixture(scope="module")
def full_run(splits):
    outcomes, trained = [], []
    run = run_stages(CONFIG, splits, on_epoch=lambda stage, *_: trained.append(stage), on_stage_end=outcomes.append)
    return run, outcomes, trained


def test_every_stage_is_trained_scored_and_handed_on_in_order(full_run):
    run, outcomes, trained = full_run
    assert [o.stage for o in outcomes] == list(STAGES) == list(run.results)
    assert sorted(set(trained), key=STAGES.index) == list(STAGES)
    assert [o.evaluation is None for o in outcomes] == [False, True, False, False]  # Task 2 has no detector
    assert set(run.evaluations) == {"task1", "task3", "j"} and set(run.alarms) == {"task2", "j"}
    assert all(run.evaluations[o.stage] is o.evaluation for o in outcomes if o.evaluation is not None)


def test_done_stages_are_skipped_and_obtained_ones_are_not_trained(splits, full_run):
    first, _, _ = full_run
    outcomes, trained, asked = [], [], []

    def obtain(stage, train):
        asked.append(stage)
        return first.results[stage] if stage == "task2" else train()

    run = run_stages(CONFIG, splits, done={"task1": first.results["task1"]}, obtain=obtain,
                     on_epoch=lambda stage, *_: trained.append(stage), on_stage_end=outcomes.append)
    assert asked == ["task2", "task3", "j"] and [o.stage for o in outcomes] == asked
    assert sorted(set(trained)) == ["j", "task3"]
    assert run.results["task1"] is first.results["task1"] and run.results["task2"] is first.results["task2"]
    # every stage seeds itself: the stages trained again score exactly as before
    for stage in ("task3", "j"):
        assert run.evaluations[stage].metrics == first.evaluations[stage].metrics
    assert "task1" not in run.evaluations


def test_unscored_stages_have_no_evaluation_and_last_stage_stops(splits):
    outcomes = []
    run = run_stages(CONFIG, splits, last_stage="task2", scored=("task2",), on_stage_end=outcomes.append)
    assert list(run.results) == ["task1", "task2"] and run.evaluations == {}
    assert [(o.stage, o.evaluation, bool(o.alarm)) for o in outcomes] == [("task1", None, False), ("task2", None, True)]
    with pytest.raises(ValueError, match="last_stage='task4'"):
        run_stages(CONFIG, splits, last_stage="task4")

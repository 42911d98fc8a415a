"""The trial logic without Ray: a report per stage, checkpoints at stage boundaries, resume after a
fault with Task 1 not retrained and the same final metrics, cache reuse across trials."""

import shutil

import pytest

from omasgan.trainables.trial import OBJECTIVE, FaultInjection, TrialSettings, run_trial

from helpers import tiny_config

SHORT = dict(n_per_class=80, task1__epochs=4, task2__epochs=3, task3__epochs=2, j__epochs=4)


class Recorder:
    def __init__(self, keep_dir):
        self.reports, self.checkpoints, self.keep_dir = [], [], keep_dir

    def __call__(self, metrics, folder):
        self.reports.append(metrics)
        kept = self.keep_dir / f"ckpt-{len(self.reports)}"
        shutil.copytree(folder, kept)
        self.checkpoints.append(kept)


def settings(tmp_path, **kwargs):
    return TrialSettings(base=tiny_config(**SHORT).to_dict(), **kwargs)


def test_reports_every_stage_with_the_objective(tmp_path):
    recorder = Recorder(tmp_path)
    run_trial({"task2.mu": 4.0}, settings(tmp_path, cache_root=str(tmp_path / "cache")), recorder, trial_dir=tmp_path)
    assert [r["stage"] for r in recorder.reports] == ["task1", "task2", "task3", "j"]
    for report in recorder.reports:
        assert OBJECTIVE in report and 0.0 <= report[OBJECTIVE] <= 1.0
    assert "val_auroc" in recorder.reports[0] and "val_auroc" not in recorder.reports[1]
    assert {"task2_loss_b", "task2_d", "task2_s"} <= set(recorder.reports[1])  # Task 2 reports its loss terms
    assert recorder.reports[-1]["done"] and "test_final_auroc" in recorder.reports[-1]
    assert "test_final_auroc" not in recorder.reports[0]  # test metrics only once the pipeline is finished
    objective = [r[OBJECTIVE] for r in recorder.reports]
    assert objective == sorted(objective)  # best so far never decreases
    assert recorder.reports[-1]["cache_misses"] == 4
    assert (tmp_path / "scores-final.npz").exists()
    assert sorted(p.name for p in recorder.checkpoints[-1].iterdir()) == ["j.pt", "state.json", "task1.pt", "task2.pt", "task3.pt"]


def test_a_second_trial_reuses_task1_and_task2_from_the_cache(tmp_path):
    cache = str(tmp_path / "cache")
    run_trial({"task3.gamma": 0.5}, settings(tmp_path, cache_root=cache), Recorder(tmp_path / "a"))
    second = Recorder(tmp_path / "b")
    state = run_trial({"task3.gamma": 0.2}, settings(tmp_path, cache_root=cache), second)
    assert state.trained == {"task1": 0, "task2": 0, "task3": 1, "j": 1}
    assert second.reports[-1]["cache_hits"] == 2 and second.reports[-1]["cache_misses"] == 2


def test_fault_in_task2_resumes_at_task2_with_identical_results(tmp_path):
    params = {"task2.mu": 2.0}
    reference = Recorder(tmp_path / "ref")
    run_trial(params, settings(tmp_path), reference)

    faulty = settings(tmp_path, fault=FaultInjection("task2", 2, str(tmp_path / "markers")))
    first = Recorder(tmp_path / "first")
    with pytest.raises(RuntimeError, match="injected fault in task2 at epoch 2"):
        run_trial(params, faulty, first, trial_id="t0")
    assert [r["stage"] for r in first.reports] == ["task1"]
    resumed = Recorder(tmp_path / "second")
    state = run_trial(params, faulty, resumed, restored=first.checkpoints[-1], trial_id="t0")
    assert [r["stage"] for r in resumed.reports] == ["task2", "task3", "j"]
    assert state.trained == {"task1": 1, "task2": 1, "task3": 1, "j": 1}
    final, expected = resumed.reports[-1], reference.reports[-1]
    for key in expected:
        if key.startswith(("val_", "test_")) or key == OBJECTIVE:
            assert final[key] == expected[key], key


def test_cache_counters_add_up_over_a_resume(tmp_path):
    faulty = settings(tmp_path, cache_root=str(tmp_path / "cache"),
                      fault=FaultInjection("task3", 1, str(tmp_path / "markers")))
    first = Recorder(tmp_path / "first")
    with pytest.raises(RuntimeError, match="injected fault"):
        run_trial({}, faulty, first, trial_id="t1")
    resumed = Recorder(tmp_path / "second")
    run_trial({}, faulty, resumed, restored=first.checkpoints[-1], trial_id="t1")
    assert resumed.reports[-1]["cache_misses"] == 4  # task1 and task2 before the fault, task3 and j after

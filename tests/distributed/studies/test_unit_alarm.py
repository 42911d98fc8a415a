"""The shortcut alarm travels from a study unit to its trial's report and the Parquet rows (without
Ray: run_unit is the body of the unit's Ray task), and into a trainable's stage reports."""

import math

import pytest

from omasgan.distributed import ResultStore
from omasgan.distributed.studies.units import UnitOutcome, UnitTask, run_unit, summarize_round
from omasgan.trainables.trial import TrialSettings, run_trial

from helpers import tiny_config

SHORT = dict(n_per_class=60, task1__epochs=2, task2__epochs=1, task3__epochs=1, j__epochs=2)


def test_task2_and_j_units_write_and_return_their_alarm(tmp_path):
    base = tiny_config(**SHORT).to_dict()
    outcomes = {}
    for stage in ("task1", "task2", "task3", "j"):
        task = UnitTask(study="st", study_kind="seeds", trial_id="t", base_config=base, params={"j.refine_steps": 1},
                        holdout=4, seed=0, stage=stage, cache_root=str(tmp_path / "cache"),
                        store_root=str(tmp_path / "store"))
        outcomes[stage] = run_unit(task)
        assert outcomes[stage].status == "ok", outcomes[stage].error
    assert outcomes["task1"].alarm == {} and outcomes["task3"].alarm == {}
    assert set(outcomes["task2"].alarm) == {"ink_auroc", "contrast_auroc", "nn_auroc"}
    assert set(outcomes["j"].alarm) == {"ink_auroc", "contrast_auroc", "nn_auroc", "ink_spearman"}  # refined B_r
    rows = ResultStore(str(tmp_path / "store")).read().to_pandas()
    task2 = rows[rows.stage == "task2"].iloc[0]
    assert task2.alarm_nn_auroc == pytest.approx(outcomes["task2"].alarm["nn_auroc"])
    assert rows[rows.stage == "task1"].alarm_ink_auroc.isna().all()
    j_rows = rows[rows.stage == "j"]
    assert len(j_rows) == 2 and (j_rows.alarm_ink_spearman == outcomes["j"].alarm["ink_spearman"]).all()


def test_summarize_round_means_the_alarm_over_ok_units():
    outcomes = [
        UnitOutcome(0, 0, "task2", "ok", alarm={"ink_auroc": 0.1, "nn_auroc": 0.9}),
        UnitOutcome(1, 0, "task2", "ok", alarm={"ink_auroc": 0.7, "nn_auroc": float("nan")}),
        UnitOutcome(2, 0, "task2", "error", alarm={"ink_auroc": 0.5}),
    ]
    report = summarize_round("task2", outcomes)
    assert report["alarm_ink_auroc"] == pytest.approx(0.4)
    assert report["alarm_ink_auroc_sep"] == pytest.approx((0.9 + 0.7) / 2)  # max(a, 1 - a) per unit
    assert report["alarm_nn_auroc"] == pytest.approx(0.9) and report["units_ok"] == 2
    assert "alarm_contrast_auroc" not in report
    assert not any(k.startswith("alarm_") for k in summarize_round("task1", [UnitOutcome(0, 0, "task1", "ok")]))


def test_trainable_reports_carry_the_alarm_of_task2_and_j(tmp_path):
    reports = []
    run_trial({}, TrialSettings(base=tiny_config(**SHORT).to_dict()), lambda metrics, folder: reports.append(metrics))
    by_stage = {r["stage"]: r for r in reports}
    assert {"alarm_ink_auroc", "alarm_contrast_auroc", "alarm_nn_auroc"} <= set(by_stage["task2"])
    assert 0.0 <= by_stage["task2"]["alarm_nn_auroc"] <= 1.0
    assert "alarm_ink_spearman" in by_stage["j"] and not math.isnan(by_stage["j"]["alarm_ink_spearman"])
    assert not any(k.startswith("alarm_") for k in by_stage["task1"])

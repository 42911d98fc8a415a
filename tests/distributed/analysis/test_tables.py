"""The CLI's tables: the sensitivity rule is the report's (one definition, analysis.tables.sweep_table)."""

import math

import pandas as pd
import pytest

from omasgan.distributed.analysis.tables import sensitivity_table


def _rows():
    rows = []
    values = {  # (value, seed) -> AUROC of classes 0 and 1 (val; test is val - 0.1)
        (0.2, 0): (0.6, 0.8), (0.2, 1): (0.5, 0.7),
        (0.8, 0): (0.9, 0.9), (0.8, 1): (0.7, 0.9),
    }
    for (value, seed), aurocs in values.items():
        for k, auroc in enumerate(aurocs):
            for split, shift in (("val", 0.0), ("test", -0.1)):
                rows.append({"status": "ok", "detector": "final", "stage": "j", "sweep_param": "j.zeta",
                             "sweep_value": value, "seed": seed, "holdout_class": k, "split": split,
                             "auroc": auroc + shift})
    rows.append({**rows[0], "status": "error", "auroc": float("nan")})  # errors are left out
    return pd.DataFrame(rows)


def test_sensitivity_is_the_mean_and_sd_over_seeds_of_the_per_seed_class_means():
    table = sensitivity_table(_rows()).set_index("value")
    assert list(table.columns[:1]) == ["param"] and set(table["param"]) == {"j.zeta"}
    # value 0.2: per-seed class means 0.7 and 0.6
    assert table.loc[0.2, "val_mean"] == pytest.approx(0.65)
    assert table.loc[0.2, "val_sd"] == pytest.approx(math.sqrt(0.005))
    assert table.loc[0.2, "test_mean"] == pytest.approx(0.55)
    # value 0.8: per-seed class means 0.9 and 0.8
    assert table.loc[0.8, "val_mean"] == pytest.approx(0.85)
    assert table.loc[0.8, "val_sd"] == pytest.approx(math.sqrt(0.005))
    assert table.loc[0.8, "seeds"] == 2 and table.loc[0.8, "units_ok"] == table.loc[0.8, "units_total"] == 4


def test_the_report_uses_the_same_rule(tmp_path):
    """Section 4's CSV is the CLI's table of the same rows, failed units and all."""
    from omasgan.distributed.report.sections import section_sensitivity
    from omasgan.distributed.report.page import Page

    rows = _failed_rows().assign(study="s", study_kind="sensitivity", method="omasgan")
    section_sensitivity(Page(tmp_path / "report"), rows)
    table = pd.read_csv(tmp_path / "report" / "tables" / "sensitivity-s-j.zeta.csv")
    pd.testing.assert_frame_equal(table, sensitivity_table(rows).drop(columns="param"), check_dtype=False)


def test_the_cli_and_the_report_break_ties_and_place_incomplete_trials_alike():
    """Trials b and a tie on the objective (the smaller id first); c's missing unit ranks it last
    although its one unit is the best; d has no J rows (ASHA stopped it) and only the CLI lists it."""
    from omasgan.distributed.analysis.tables import search_table
    from omasgan.distributed.report.tables import Inputs, ranking
    from omasgan.distributed.store.study_folder import StudySpec

    spec = StudySpec(name="s", kind="search", dataset="digits", classes=[0, 1], seeds=[0], base_config={})
    values = {"b": (0.7, 0.9), "a": (0.9, 0.7), "c": (0.99, None), "e": (0.6, 0.6)}
    rows = pd.DataFrame([
        {"study": "s", "study_kind": "search", "trial_id": trial, "stage": "j", "detector": "final", "split": split,
         "status": "ok", "holdout_class": k, "seed": 0, "auroc": auroc}
        for trial, aurocs in values.items() for k, auroc in enumerate(aurocs) if auroc is not None
        for split in ("val", "test")])
    params = {trial: {"task2.mu": 1.0} for trial in ("d", *values)}
    cli = search_table(rows, params, spec)
    report = ranking(Inputs(studies=[], results=rows, stores={}), spec)
    assert list(report["trial_id"]) == ["a", "b", "e", "c"]
    assert list(cli["trial"]) == [*report["trial_id"], "d"]


def _failed_rows():
    """_rows with a third value, 1.4, and failures: at 0.8 the unit (class 1, seed 1) failed in J (an
    error row, no J rows); at 1.4 every unit failed in Task 1."""
    rows = _rows()
    rows = rows[rows.status == "ok"]
    failed = (rows.sweep_value == 0.8) & (rows.holdout_class == 1) & (rows.seed == 1)
    error = {"status": "error", "detector": None, "split": None, "auroc": float("nan"), "sweep_param": "j.zeta"}
    errors = [{**error, "stage": "j", "sweep_value": 0.8, "holdout_class": 1, "seed": 1}]
    errors += [{**error, "stage": "task1", "sweep_value": 1.4, "holdout_class": k, "seed": s} for k in (0, 1) for s in (0, 1)]
    return pd.concat([rows[~failed], pd.DataFrame(errors)], ignore_index=True)


def test_a_swept_value_with_failed_units_says_how_many_it_averages():
    """A value where units failed shows the count of units its mean is over, out of those planned; a
    value where all failed is listed as failed (before, both were left out or averaged silently)."""
    from omasgan.distributed.analysis.tables import UNITS_LEGEND, render

    table = sensitivity_table(_failed_rows()).set_index("value")
    assert list(table.index) == [0.2, 0.8, 1.4]
    assert list(table.units_ok) == [4, 3, 0] and list(table.units_total) == [4, 4, 4]
    # 0.8 on the three units left: seed 0 (0.9 + 0.9) / 2, seed 1 class 0 only (0.7)
    assert table.loc[0.8, "val_mean"] == pytest.approx((0.9 + 0.7) / 2)
    assert math.isnan(table.loc[1.4, "val_mean"]) and math.isnan(table.loc[1.4, "test_mean"])
    text = render(sensitivity_table(_failed_rows())).splitlines()
    assert text[0].split() == ["param", "value", "val_mean", "val_sd", "test_mean", "test_sd", "seeds", "units"]
    row = {float(line.split()[1]): line for line in text[2:5]}
    assert row[0.2].endswith(" 4/4") and "units)" not in row[0.2]
    assert "0.8000 (3/4 units)" in row[0.8] and "0.7000 (3/4 units)" in row[0.8] and row[0.8].endswith(" 3/4")
    assert row[1.4].count("- (0/4 units)") == 2 and row[1.4].endswith(" 0/4")
    assert text[-1] == UNITS_LEGEND and "(k/n units)" in UNITS_LEGEND
    # with every unit ok there is no legend
    assert UNITS_LEGEND not in render(sensitivity_table(_rows()))


def test_the_spec_adds_the_values_and_units_that_wrote_no_row():
    from omasgan.distributed.store.study_folder import StudySpec

    spec = StudySpec(name="s", kind="sensitivity", dataset="synthetic", classes=[0, 1], seeds=[0, 1, 2],
                     base_config={}, options={"sweeps": [{"param": "j.zeta", "value": v} for v in (0.2, 0.8, 2.0)]})
    table = sensitivity_table(_rows(), spec).set_index("value")
    assert list(table.index) == [0.2, 0.8, 2.0]
    assert list(table.units_ok) == [4, 4, 0] and set(table.units_total) == {6}


def _seed_rows():
    """A seeds study of classes 0, 1 x seeds 0, 1, 2: unit (1, 2) failed in Task 3 (Task 1 finished)."""
    rows = []
    for k in (0, 1):
        for s in (0, 1, 2):
            for stage, detector in (("task1", "task1"), ("task3", "task3"), ("j", "final")):
                if (k, s) == (1, 2) and stage != "task1":
                    if stage == "task3":
                        rows.append({"status": "error", "stage": stage, "detector": None, "split": None,
                                     "method": "omasgan", "holdout_class": k, "seed": s, "auroc": float("nan")})
                    continue
                for split in ("val", "test"):
                    rows.append({"status": "ok", "stage": stage, "detector": detector, "split": split,
                                 "method": "omasgan", "holdout_class": k, "seed": s,
                                 "auroc": 0.5 + 0.1 * k + 0.01 * s + {"task1": 0.0, "task3": 0.1, "j": 0.2}[stage]})
    return pd.DataFrame(rows)


def test_a_class_with_a_failed_unit_says_how_many_seeds_it_averages():
    from omasgan.distributed.analysis.tables import UNITS_LEGEND, render, seeds_table

    table = seeds_table(_seed_rows()).set_index("class")
    assert list(table.final_units_ok) == [3, 2, 5] and list(table.task1_units_ok) == [3, 3, 6]
    assert list(table.units_total) == [3, 3, 6]
    assert table.loc["1", "final_mean"] == pytest.approx(0.8 + 0.005)  # seeds 0 and 1 only
    text = render(seeds_table(_seed_rows())).splitlines()
    assert text[0].split() == ["class", "task1_mean", "task1_sd", "task3_mean", "task3_sd", "final_mean", "final_sd",
                               "units"]
    line = {row.split()[0]: row for row in text[2:5]}
    assert "units)" not in line["0"] and line["0"].endswith(" 3")
    assert "0.7050 (2/3 units)" in line["1"] and "0.8050 (2/3 units)" in line["1"] and "0.6100 " in line["1"]
    assert "(5/6 units)" in line["mean"] and line["mean"].endswith(" 6")
    assert text[-1] == UNITS_LEGEND
    # every unit failed in Task 3: J is still a column, of no unit, when the spec says J was planned
    from omasgan.distributed.store.study_folder import StudySpec

    rows = _seed_rows()
    rows = rows[(rows.stage == "task1") | (rows.status == "error")]
    spec = StudySpec(name="s", kind="seeds", dataset="synthetic", classes=[0, 1], seeds=[0, 1, 2], base_config={})
    table = seeds_table(rows, spec).set_index("class")
    assert list(table.final_units_ok) == [0, 0, 0] and math.isnan(table.loc["mean", "final_mean"])
    assert "- (0/6 units)" in render(seeds_table(rows, spec))

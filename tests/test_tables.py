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
    assert table.loc[0.8, "seeds"] == 2 and table.loc[0.8, "units"] == 4


def test_the_report_uses_the_same_rule():
    from omasgan.distributed.report import tables as report_tables

    rows = _rows()
    final = rows[rows.status == "ok"]
    pd.testing.assert_frame_equal(report_tables.sensitivity_table(final),
                                  sensitivity_table(rows).drop(columns="param"))


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

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


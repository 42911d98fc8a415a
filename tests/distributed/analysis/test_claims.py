"""The claims table of ``omasgan reproduce``: each claim's measurement, interval and verdict on hand-made
units (no training), the files it writes, and the budgets it trains at."""

import json
import math

import numpy as np
import pandas as pd
import pytest

from omasgan.distributed.analysis.claims import (
    PAPER_CLAIMS,
    ClaimSpec,
    evaluate_claim,
    evaluate_claims,
    seed_sd_over_units,
    unit_table,
    value_verdict,
)

from helpers import REPO



def _units(values: dict[tuple[int, int], float]) -> pd.Series:
    index = pd.MultiIndex.from_tuples(list(values), names=["holdout_class", "seed"])
    return pd.Series(list(values.values()), index=index, dtype=float).sort_index()


def _rows(part: str, detector: str, values: dict[tuple[int, int], float], status: str = "ok") -> pd.DataFrame:
    return pd.DataFrame([{"part": part, "detector": detector, "split": "test", "status": status, "auroc": v,
                          "holdout_class": k, "seed": s, "stage": "j"} for (k, s), v in values.items()])


@pytest.mark.parametrize("paper, low, high, verdict", [
    (0.85, 0.80, 0.90, "consistent"), (0.85, 0.50, 0.60, "below"), (0.50, 0.60, 0.70, "above"),
    (0.60, 0.60, 0.70, "consistent"), (0.85, float("nan"), 0.9, "untested"),
])
def test_a_claim_is_consistent_when_the_interval_holds_the_papers_number(paper, low, high, verdict):
    assert value_verdict(paper, low, high) == verdict


def test_a_mean_claim_far_above_the_units_is_below():
    rng = np.random.default_rng(0)
    units = _units({(k, s): 0.5 + 0.02 * rng.standard_normal() for k in range(10) for s in range(3)})
    claim = evaluate_claim(PAPER_CLAIMS[0], {("omasgan", "final"): units}, "mnist", n_resamples=999)
    assert claim.verdict == "below" and claim.units == 30
    assert claim.ci_low < claim.measured < claim.ci_high < 0.85
    assert claim.measured == pytest.approx(units.mean())


def test_a_mean_claim_near_the_units_is_consistent():
    rng = np.random.default_rng(1)
    units = _units({(k, s): 0.85 + 0.05 * rng.standard_normal() for k in range(10) for s in range(3)})
    claim = evaluate_claim(PAPER_CLAIMS[0], {("omasgan", "final"): units}, "mnist", n_resamples=999)
    assert claim.verdict == "consistent" and claim.ci_low <= 0.85 <= claim.ci_high


def test_the_seed_sd_is_the_mean_over_digits_of_the_sd_over_seeds():
    units = _units({(0, 0): 0.1, (0, 1): 0.3, (1, 0): 0.5, (1, 1): 0.5, (2, 0): 0.2, (2, 1): 0.6})
    value, low, high = seed_sd_over_units(units, n_resamples=500)
    by_hand = (math.sqrt(0.02) + 0.0 + math.sqrt(0.08)) / 3  # SD (ddof=1) of each digit's two seeds
    assert value == pytest.approx(by_hand) and low <= value <= high
    assert math.isnan(seed_sd_over_units(_units({(0, 0): 0.1, (1, 0): 0.2}))[0])  # one seed: no SD


def test_a_difference_claim_is_paired_per_unit():
    a = _units({(k, s): 0.6 + 0.1 * k + 0.01 * s for k in range(4) for s in range(3)})
    b = a - 0.13 + _units({(k, s): 0.001 * ((k + s) % 3 - 1) for k in range(4) for s in range(3)})
    spec = next(c for c in PAPER_CLAIMS if c.key == "final-over-task3")
    claim = evaluate_claim(spec, {("omasgan", "final"): a, ("omasgan", "task3"): b}, "mnist", n_resamples=999)
    assert claim.measured == pytest.approx((a - b).mean())
    assert claim.verdict == "consistent" and claim.detail["direction"] == "better"


def test_claims_about_data_this_run_lacks_are_untested_with_the_command():
    spec = next(c for c in PAPER_CLAIMS if c.key == "ood-fashion-mnist")
    claim = evaluate_claim(spec, {}, "mnist")
    assert claim.verdict == "untested" and "needs fashion_mnist" in claim.test
    assert claim.detail["command"].startswith("omasgan run --dataset mnist --protocol ood --ood-dataset fashion_mnist")
    missing = evaluate_claim(ClaimSpec("x", "x", 0.5, "here", "mean", ("fgan", "final")), {}, "mnist",
                             missing_command="omasgan reproduce --resume --name r")
    assert missing.verdict == "untested" and "no fgan/final results" in missing.test
    assert missing.detail["command"] == "omasgan reproduce --resume --name r"
    # a claim about data the run lacks keeps its own command, not the run's
    assert evaluate_claim(spec, {}, "mnist", missing_command="omasgan reproduce --resume --name r").detail[
        "command"].startswith("omasgan run --dataset mnist --protocol ood")


def test_a_unit_with_a_failed_stage_is_missing_not_averaged_over_its_survivors():
    rows = pd.concat([_rows("omasgan", "task1", {(0, 0): 0.6, (0, 1): 0.7}),
                      _rows("omasgan", "final", {(0, 0): 0.9}),
                      _rows("omasgan", None, {(0, 1): float("nan")}, status="error")], ignore_index=True)
    units = unit_table(rows)
    assert list(units[("omasgan", "task1")].index) == [(0, 0)]  # unit (0, 1) failed at J: gone from every detector
    assert list(units[("omasgan", "final")].index) == [(0, 0)]


def test_every_claim_is_evaluated_and_the_claims_files_are_written(tmp_path):
    from omasgan.budgets import budget
    from omasgan.distributed.report.claims import write_claims
    from omasgan.distributed.studies.reproduce import ReproductionPlan

    rng = np.random.default_rng(2)
    units = {(k, s): None for k in range(3) for s in range(2)}
    rows = pd.concat([_rows(part, detector, {u: 0.5 + 0.1 * rng.random() for u in units})
                      for part in ("omasgan", "fgan") for detector in ("task1", "task3", "final")]
                     + [_rows("knn", "knn", {u: 0.9 for u in units})], ignore_index=True)
    claims = evaluate_claims(rows, "mnist", n_resamples=499)
    assert [c.key for c in claims] == [c.key for c in PAPER_CLAIMS]
    assert {c.verdict for c in claims if c.key.startswith(("ood", "cifar"))} == {"untested"}
    assert all(c.verdict in ("consistent", "below", "above") for c in claims if not c.key.startswith(("ood", "cifar")))
    plan = ReproductionPlan(name="r", budget="quality", base_config=budget("quality").config().to_dict(),
                            digits=[0, 1, 2], seeds=[0, 1])
    out = write_claims(tmp_path, plan, claims, rows, budget("quality"))
    document = json.loads((out / "claims.json").read_text())  # strict JSON: no NaN
    assert [c["key"] for c in document["claims"]] == [c.key for c in PAPER_CLAIMS]
    markdown = (out / "claims.md").read_text()
    assert "| claim | paper | where | data | measured | interval_95 | units | verdict | test |" in markdown
    assert "omasgan run --dataset mnist --protocol ood" in markdown and "kNN" not in markdown.split("Baselines")[0]
    assert (out / "claims.html").read_text().startswith("<!doctype html>")
    assert (out / "figures" / "claims.png").is_file() and (out / "tables" / "seeds.csv").is_file()
    baselines = pd.read_csv(out / "tables" / "baselines.csv")
    assert baselines.method.tolist() == ["knn"] and baselines.verdict.tolist() == ["worse"]


def test_the_quality_budget_is_bench_configs_mnist_quality_yaml():
    from omasgan.budgets import budget
    from omasgan.config import default_config, read_config_file

    from_file = default_config("mnist").merged(read_config_file(str(REPO / "bench" / "configs" / "mnist_quality.yaml")))
    assert budget("quality").config().to_dict() == from_file.to_dict()


def test_an_unknown_budget_is_one_error_naming_the_budgets():
    from omasgan.budgets import budget
    from omasgan.errors import ConfigError

    with pytest.raises(ConfigError, match=r"--budget 'huge' is not a budget; choose one of: quick, quality"):
        budget("huge")


def test_sklearn_digits_stand_in_for_mnist_and_say_so():
    units = _units({(k, s): 0.6 + 0.01 * s for k in range(3) for s in range(2)})
    claim = evaluate_claim(PAPER_CLAIMS[0], {("omasgan", "final"): units}, "digits", n_resamples=499)
    assert claim.verdict == "below" and claim.data == "digits (stand-in for mnist)"
    cifar = next(c for c in PAPER_CLAIMS if c.key == "cifar10-mean")
    assert evaluate_claim(cifar, {("omasgan", "final"): units}, "digits").verdict == "untested"


def test_the_paper_budget_is_bench_configs_mnist_paper_yaml():
    from omasgan.budgets import budget
    from omasgan.config import default_config, read_config_file

    document = read_config_file(str(REPO / "bench" / "configs" / "mnist_paper.yaml"))
    document.pop("seed", None)  # a reproduction sets each unit's seed
    from_file = default_config("mnist").merged(document)
    assert budget("paper").config().to_dict() == from_file.to_dict()

"""The study statistics on constructed data with known answers (distributed/analysis/statistics.py)."""

import math

import numpy as np
import pandas as pd
import pytest

from omasgan.distributed.analysis.objective import aggregate, iqm
from omasgan.distributed.analysis.statistics import (
    detectable_difference,
    noise_floor,
    paired_comparison,
    per_class_comparisons,
    seed_summary,
    stratified_bootstrap_interval,
    unit_series,
    verdict,
    wilcoxon_p,
)
from omasgan.errors import ConfigError


def units(values_by_class: dict[int, list[float]]) -> pd.Series:
    index = pd.MultiIndex.from_tuples([(k, s) for k, v in values_by_class.items() for s in range(len(v))],
                                      names=["holdout_class", "seed"])
    return pd.Series([x for v in values_by_class.values() for x in v], index=index, dtype=float)


def draw(rng, classes=10, seeds=3, shift=0.0, unit_sd=0.08):
    """Two configs on classes x seeds: class levels that differ a lot, independent seed noise, and
    B = A's level + ``shift``."""
    level = rng.uniform(0.3, 0.9, classes)
    a = {k: list(level[k] + rng.normal(0, unit_sd, seeds)) for k in range(classes)}
    b = {k: list(level[k] - shift + rng.normal(0, unit_sd, seeds)) for k in range(classes)}
    return units(a), units(b)


def test_iqm_is_the_mean_of_the_middle_half():
    assert iqm([1, 2, 3, 4, 5, 6, 7, 8]) == pytest.approx(4.5)
    assert iqm([0.0, 0.5, 0.5, 100.0]) == pytest.approx(0.5)  # the outliers are cut


def test_aggregates_of_constructed_units():
    classes = [0, 0, 1, 1, 2, 2]
    values = [0.9, 0.7, 0.2, 0.4, 0.6, 0.6]
    assert aggregate(classes, values, "mean") == pytest.approx(3.4 / 6)
    assert aggregate(classes, values, "worst-class") == pytest.approx(0.3)  # class 1's mean
    assert aggregate(classes, values, "iqm") == pytest.approx(np.mean([0.4, 0.6, 0.6, 0.7]))
    assert math.isnan(aggregate(classes, [0.9, float("nan"), 0.2, 0.4, 0.6, 0.6], "mean"))
    assert math.isnan(aggregate([], [], "mean"))
    with pytest.raises(ConfigError, match="'median' is not allowed; choose one of: mean, iqm, worst-class"):
        aggregate(classes, values, "median")


def test_a_true_difference_is_found_and_its_interval_covers_it():
    a, b = draw(np.random.default_rng(1), shift=0.1)
    result = paired_comparison(a, b, name_a="A", name_b="B")
    assert result.verdict == "better"
    assert result.n == 30 and result.classes == 10 and result.stratified
    assert result.ci_low > 0 and result.ci_low < 0.1 < result.ci_high
    assert result.mean_diff == pytest.approx((a - b).mean())
    assert result.p_a_better > 0.7 and result.wilcoxon_p < 0.05
    assert "better" in result.line() and "n = 30 units over 10 classes" in result.line()
    assert paired_comparison(b, a).verdict == "worse"


def test_no_difference_gives_not_distinguishable_at_the_nominal_rate():
    rng = np.random.default_rng(7)
    draws = 120
    verdicts = [paired_comparison(*draw(rng), n_resamples=999).verdict for _ in range(draws)]
    false = sum(v != "not distinguishable" for v in verdicts)
    assert false / draws <= 0.05 + 2 * math.sqrt(0.05 * 0.95 / draws)  # at most the nominal 5%, 2 SE of slack


def test_the_interval_covers_the_true_difference_at_about_the_nominal_rate():
    rng = np.random.default_rng(11)
    covered = []
    for _ in range(60):
        a, b = draw(rng, seeds=5, shift=0.05)
        low, high, _ = stratified_bootstrap_interval((a - b).to_numpy(), a.index.get_level_values(0).to_numpy(),
                                                     n_resamples=999)
        covered.append(low <= 0.05 <= high)
    assert 0.85 <= np.mean(covered) <= 1.0


def test_stratification_needs_two_units_per_class():
    a, b = draw(np.random.default_rng(3), seeds=1, shift=0.2)
    result = paired_comparison(a, b)
    assert not result.stratified and result.n == 10
    assert result.verdict == "better"


def test_identical_configs_are_not_distinguishable():
    a, _ = draw(np.random.default_rng(5))
    result = paired_comparison(a, a.copy())
    assert result.mean_diff == 0 and result.ci_low == result.ci_high == 0
    assert result.wilcoxon_p == 1.0 and result.verdict == "not distinguishable"
    assert result.p_a_better == 0.5


def test_verdict_needs_the_interval_and_the_test_to_agree():
    assert verdict(0.01, 0.2, 0.01) == "better"
    assert verdict(0.01, 0.2, 0.2) == "not distinguishable"
    assert verdict(-0.2, -0.01, 0.01) == "worse"
    assert verdict(-0.1, 0.1, 0.001) == "not distinguishable"
    assert verdict(float("nan"), 0.1, 0.001) == "not distinguishable"
    assert wilcoxon_p(np.zeros(5)) == 1.0


def test_pairs_are_matched_by_unit_and_unpaired_units_dropped():
    a = units({0: [0.6, 0.7, 0.8], 1: [0.5, 0.5, 0.5]})
    b = units({0: [0.5, 0.6], 1: [0.4, 0.4, 0.4]})
    result = paired_comparison(a, b)
    assert result.n == 5 and result.mean_diff == pytest.approx(0.1)
    with pytest.raises(ConfigError, match="share no"):
        paired_comparison(units({0: [0.5]}), units({1: [0.5]}))


def test_per_class_comparisons_have_one_row_per_class():
    a, b = draw(np.random.default_rng(2), classes=3, seeds=4, shift=0.3)
    table = per_class_comparisons(a, b, n_resamples=999)
    assert list(table["holdout_class"]) == [0, 1, 2]
    assert (table["n"] == 4).all() and (table["mean_diff"] > 0.1).all()


def test_noise_floor_pools_the_within_class_variance():
    frame = pd.DataFrame({"holdout_class": [0, 0, 1, 1], "seed": [0, 1, 0, 1], "auroc": [0.5, 0.7, 0.1, 0.3]})
    floor = noise_floor(frame)
    assert floor.unit_sd == pytest.approx(math.sqrt(0.02))  # each class: variance 0.02 with 1 dof
    assert floor.degrees_of_freedom == 2 and floor.units == 4 and floor.seeds == 2
    z = 1.959963984540054 + 0.8416212335729143
    assert floor.detectable_difference == pytest.approx(z * math.sqrt(2) * math.sqrt(0.02) / 2)
    assert detectable_difference(0.1, 0) != detectable_difference(0.1, 0)  # NaN: no pairs
    assert math.isnan(noise_floor(frame[frame.seed == 0]).unit_sd)  # one seed: no within-class spread


def test_seed_summary_of_constructed_units():
    frame = pd.DataFrame({"holdout_class": [0, 0, 0, 1, 1, 1], "seed": [0, 1, 2] * 2,
                          "auroc": [0.9, 0.8, 0.85, 0.4, 0.45, 0.6]})
    summary = seed_summary(frame, n_resamples=999)
    assert summary.units == 6 and summary.classes == 2 and summary.below_chance == 2
    assert summary.mean == pytest.approx(frame.auroc.mean()) and summary.sd == pytest.approx(frame.auroc.std())
    assert summary.worst_class == "1" and summary.worst_class_mean == pytest.approx(1.45 / 3)
    assert summary.iqm_low <= summary.iqm <= summary.iqm_high


def test_unit_series_refuses_two_values_for_one_unit():
    rows = pd.DataFrame({"holdout_class": [0, 0], "seed": [1, 1], "auroc": [0.5, 0.6]})
    with pytest.raises(ConfigError, match="more than one value per"):
        unit_series(rows)
    assert unit_series(rows.iloc[:1]).loc[(0, 1)] == 0.5

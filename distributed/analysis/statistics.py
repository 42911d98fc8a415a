"""How sure a study is: aggregates over (held-out class, seed) units, paired comparisons, noise floor.

Every study result is a set of *units*: one AUROC per (held-out class, seed).  Classes differ a
lot in difficulty (the held-out digit 1 is easy for one detector and impossible for another), and
seeds of one class scatter around the class's level.  So:

- a config's score is an aggregate over its units (:func:`.objective.aggregate`): ``mean`` (every unit equal),
  ``iqm`` (the interquartile mean: the mean of the units between the 25th and the 75th percentile,
  robust to a few failed or lucky units) or ``worst-class`` (the lowest per-class mean over seeds);
- two configs are compared on the units both have, *paired* by (class, seed)
  (:func:`paired_comparison`): the difference d_i = A_i - B_i removes the class's difficulty, and
  the interval of mean(d) comes from a bootstrap that resamples seeds *within* each class
  (stratified by held-out class), so every resample keeps the study's mix of classes;
- a study's noise floor (:func:`noise_floor`) is the per-unit SD over seeds within a class, pooled
  over classes, and the smallest paired difference a study of that many units can detect.

The statistics are scipy's (``scipy.stats.bootstrap``, ``wilcoxon``, ``trim_mean``, ``norm``); this
module only chooses and combines them.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import asdict, dataclass
from typing import Iterable

import numpy as np
import pandas as pd
from scipy import stats

from omasgan.errors import ConfigError

from .objective import iqm

VERDICTS = ("better", "not distinguishable", "worse")
CONFIDENCE = 0.95
ALPHA = round(1.0 - CONFIDENCE, 12)  # 0.05, not 0.050000000000000044
N_RESAMPLES = 9999
UNIT_COLUMNS = ("holdout_class", "seed")


def stratified_bootstrap_interval(values: np.ndarray, strata: np.ndarray, confidence: float = CONFIDENCE,
                                  n_resamples: int = N_RESAMPLES, seed: int = 0) -> tuple[float, float, bool]:
    """A ``confidence`` interval of the mean of ``values`` by the BCa bootstrap, resampling within
    each stratum (held-out class) so every resample has the study's class mix.

    Returns (low, high, stratified).  When a stratum has a single unit (one seed per class) there is
    nothing to resample within it, and the units are resampled unstratified instead (stratified =
    False).  With 2-3 units per stratum the bootstrap understates the spread by a factor of about
    sqrt((n-1)/n); :func:`paired_comparison` therefore also asks the Wilcoxon test.
    """
    values = np.asarray(values, dtype=float)
    if len(values) == 0:
        return float("nan"), float("nan"), False
    if np.allclose(values, values[0]):
        return float(values[0]), float(values[0]), True
    strata = np.asarray(strata)
    groups = [values[strata == s] for s in np.unique(strata)]
    stratified = all(len(g) >= 2 for g in groups)
    if stratified and all(np.allclose(g, g[0]) for g in groups):  # no spread within any stratum: nothing varies
        return float(values.mean()), float(values.mean()), True
    samples = groups if stratified else [values]
    total = len(values)

    def mean_of_all(*resampled, axis=-1):
        return sum(r.sum(axis=axis) for r in resampled) / total

    if len(values) < 3:  # BCa's jackknife needs a few values; the percentile interval does not
        method = "percentile"
    else:
        method = "BCa"
    with warnings.catch_warnings():  # BCa on nearly degenerate data: scipy warns and returns NaN, which is said
        warnings.simplefilter("ignore", getattr(stats, "DegenerateDataWarning", RuntimeWarning))
        result = stats.bootstrap(samples, mean_of_all, n_resamples=n_resamples, vectorized=True, paired=False,
                                 confidence_level=confidence, method=method, rng=np.random.default_rng(seed))
    low, high = result.confidence_interval
    return float(low), float(high), stratified


@dataclass
class PairedComparison:
    """A against B over their shared (class, seed) units; d = A - B per unit."""

    a: str
    b: str
    n: int
    mean_a: float
    mean_b: float
    mean_diff: float
    ci_low: float
    ci_high: float
    p_a_better: float
    wilcoxon_p: float
    verdict: str
    stratified: bool
    classes: int
    confidence: float = CONFIDENCE

    def as_dict(self) -> dict:
        return asdict(self)

    def line(self) -> str:
        """One sentence: the verdict with the figures behind it."""
        return (f"{self.a} vs {self.b}: {self.verdict} (mean difference {self.mean_diff:+.4f}, "
                f"{self.confidence:.1%} {'stratified ' if self.stratified else ''}bootstrap interval "
                f"[{self.ci_low:+.4f}, {self.ci_high:+.4f}], P(A > B) = {self.p_a_better:.2f}, "
                f"Wilcoxon p = {self.wilcoxon_p:.3g}, n = {self.n} units over {self.classes} classes)")


def verdict(ci_low: float, ci_high: float, wilcoxon_p: float, alpha: float = ALPHA) -> str:
    """``better`` when the interval of mean(A - B) lies above 0 AND the Wilcoxon signed-rank test
    rejects "no difference" at ``alpha``; ``worse`` when both say the opposite; otherwise ``not
    distinguishable``.  Asking both keeps the rate of a false verdict at most ``alpha`` even where
    the bootstrap interval is too narrow (few seeds per class)."""
    if not (math.isfinite(ci_low) and math.isfinite(ci_high) and math.isfinite(wilcoxon_p)):
        return "not distinguishable"
    if ci_low > 0 and wilcoxon_p < alpha:
        return "better"
    if ci_high < 0 and wilcoxon_p < alpha:
        return "worse"
    return "not distinguishable"


def wilcoxon_p(diffs: np.ndarray) -> float:
    """Two-sided Wilcoxon signed-rank p-value of ``diffs`` (zeros dropped); 1.0 when every
    difference is zero (no evidence of a difference)."""
    diffs = np.asarray(diffs, dtype=float)
    if len(diffs) == 0 or np.all(diffs == 0):
        return 1.0
    return float(stats.wilcoxon(diffs, zero_method="wilcox", alternative="two-sided").pvalue)


def paired_comparison(a: pd.Series, b: pd.Series, *, name_a: str = "A", name_b: str = "B",
                      n_resamples: int = N_RESAMPLES, seed: int = 0, alpha: float = ALPHA) -> PairedComparison:
    """Compare two configs on the units both have, at level ``alpha`` (a 1 - alpha interval and the
    test at alpha; pass alpha / m for m comparisons at once, Bonferroni).

    ``a`` and ``b`` are indexed by (holdout_class, seed) (a MultiIndex; extra leading levels such as
    the data set are allowed and kept in the pairing).  Unpaired units are dropped, NaN units too.
    """
    joined = pd.concat({"a": a, "b": b}, axis=1, join="inner").dropna()
    n = len(joined)
    if n == 0:
        raise ConfigError(f"{name_a} and {name_b} share no (class, seed) unit with a value; nothing to compare")
    diffs = (joined["a"] - joined["b"]).to_numpy(dtype=float)
    strata = _codes([_stratum(i, joined.index) for i in joined.index])
    low, high, stratified = stratified_bootstrap_interval(diffs, strata, confidence=1.0 - alpha,
                                                          n_resamples=n_resamples, seed=seed)
    p = wilcoxon_p(diffs)
    return PairedComparison(
        a=name_a, b=name_b, n=n, mean_a=float(joined["a"].mean()), mean_b=float(joined["b"].mean()),
        mean_diff=float(diffs.mean()), ci_low=low, ci_high=high,
        p_a_better=float(np.mean(diffs > 0) + 0.5 * np.mean(diffs == 0)), wilcoxon_p=p,
        verdict=verdict(low, high, p, alpha), stratified=stratified, classes=len(np.unique(strata)),
        confidence=1.0 - alpha)


def _codes(labels: list) -> np.ndarray:
    """Integer codes of hashable labels (tuples included), in order of first appearance."""
    codes: dict = {}
    return np.asarray([codes.setdefault(label, len(codes)) for label in labels], dtype=int)


def _stratum(index_value, index: pd.Index):
    """The held-out class part of a unit's index (with any leading levels such as the data set)."""
    if isinstance(index, pd.MultiIndex):
        names = list(index.names)
        cut = names.index("seed") if "seed" in names else len(names) - 1
        return tuple(index_value[:cut])
    return index_value


def per_class_comparisons(a: pd.Series, b: pd.Series, *, name_a: str = "A", name_b: str = "B",
                          n_resamples: int = N_RESAMPLES) -> pd.DataFrame:
    """:func:`paired_comparison` within each held-out class (over its seeds), one row per class."""
    joined = pd.concat({"a": a, "b": b}, axis=1, join="inner").dropna()
    rows = []
    for k, group in joined.groupby(level="holdout_class"):
        result = paired_comparison(group["a"], group["b"], name_a=name_a, name_b=name_b, n_resamples=n_resamples)
        rows.append({"holdout_class": k, **{f: getattr(result, f) for f in
                     ("n", "mean_a", "mean_b", "mean_diff", "ci_low", "ci_high", "p_a_better", "wilcoxon_p",
                      "verdict")}})
    return pd.DataFrame(rows)


@dataclass
class SeedSummary:
    """A fixed config's units summarised the way a seeds study reports them."""

    units: int
    classes: int
    mean: float
    sd: float
    iqm: float
    iqm_low: float
    iqm_high: float
    worst_class: str
    worst_class_mean: float
    below_chance: int

    def as_dict(self) -> dict:
        return asdict(self)


def seed_summary(units: pd.DataFrame, value: str = "auroc", n_resamples: int = N_RESAMPLES) -> SeedSummary:
    """Mean and SD over units (ddof=1), the IQM with its stratified bootstrap interval, the worst
    class (lowest mean over seeds) and the count of units below 0.5 (worse than chance)."""
    frame = units.dropna(subset=[value])
    values = frame[value].to_numpy(dtype=float)
    strata = frame["holdout_class"].to_numpy()
    groups = [values[strata == k] for k in pd.unique(strata)]
    if len(values) >= 2 and all(len(g) >= 2 for g in groups) and not np.allclose(values, values[0]):
        result = stats.bootstrap(groups, lambda *s, axis=-1: stats.trim_mean(np.concatenate(s, axis=axis), 0.25,
                                                                              axis=axis),
                                 n_resamples=n_resamples, vectorized=True, paired=False, method="percentile",
                                 rng=np.random.default_rng(0))
        low, high = (float(v) for v in result.confidence_interval)
    else:
        low = high = float("nan")
    per_class = frame.groupby("holdout_class")[value].mean()
    return SeedSummary(
        units=len(values), classes=int(frame["holdout_class"].nunique()),
        mean=float(values.mean()) if len(values) else float("nan"),
        sd=float(values.std(ddof=1)) if len(values) > 1 else float("nan"), iqm=iqm(values), iqm_low=low,
        iqm_high=high, worst_class=str(per_class.idxmin()) if len(per_class) else "-",
        worst_class_mean=float(per_class.min()) if len(per_class) else float("nan"),
        below_chance=int((values < 0.5).sum()))


@dataclass
class NoiseFloor:
    """The spread of one config's units over seeds, and what a paired study can detect under it."""

    unit_sd: float
    """Pooled within-class SD over seeds: sqrt(sum_k (n_k - 1) s_k^2 / sum_k (n_k - 1))."""
    degrees_of_freedom: int
    classes: int
    seeds: int
    units: int
    detectable_difference: float
    """The smallest true mean paired difference a study of ``units`` pairs detects with 80% power at
    a two-sided 5% level, by the normal approximation (z_0.975 + z_0.8) * sqrt(2) * unit_sd / sqrt(n),
    taking the two configs' seed noise as independent."""

    def as_dict(self) -> dict:
        return asdict(self)


def pooled_within_class_sd(units: pd.DataFrame, value: str = "auroc") -> tuple[float, int]:
    """(pooled SD over seeds within classes, its degrees of freedom); NaN and 0 with < 2 seeds."""
    groups = units.dropna(subset=[value]).groupby("holdout_class")[value]
    dof = int(sum(max(len(g) - 1, 0) for _, g in groups))
    if dof == 0:
        return float("nan"), 0
    pooled = sum(((g - g.mean()) ** 2).sum() for _, g in groups) / dof
    return float(math.sqrt(pooled)), dof


def detectable_difference(unit_sd: float, pairs: int, power: float = 0.8, alpha: float = ALPHA) -> float:
    """(z_{1-alpha/2} + z_power) * sqrt(2) * unit_sd / sqrt(pairs): the normal-approximation minimum
    detectable mean paired difference (scipy.stats.norm quantiles)."""
    if pairs < 1 or not math.isfinite(unit_sd):
        return float("nan")
    z = stats.norm.ppf(1 - alpha / 2) + stats.norm.ppf(power)
    return float(z * math.sqrt(2.0) * unit_sd / math.sqrt(pairs))


def noise_floor(units: pd.DataFrame, value: str = "auroc", pairs: int | None = None) -> NoiseFloor:
    """The noise floor of one config's units (columns holdout_class, seed, ``value``); ``pairs``
    (default: the number of units) is the size of the study the detectable difference is for."""
    frame = units.dropna(subset=[value])
    sd, dof = pooled_within_class_sd(frame, value)
    n = len(frame) if pairs is None else pairs
    return NoiseFloor(unit_sd=sd, degrees_of_freedom=dof, classes=int(frame["holdout_class"].nunique()),
                      seeds=int(frame["seed"].nunique()), units=len(frame),
                      detectable_difference=detectable_difference(sd, n))


def unit_series(rows: pd.DataFrame, value: str = "auroc") -> pd.Series:
    """``value`` of result rows as a Series indexed by (holdout_class, seed) (one row per unit)."""
    frame = rows.dropna(subset=[value])
    duplicated = frame.duplicated(list(UNIT_COLUMNS), keep=False)
    if duplicated.any():
        units = sorted(set(map(tuple, frame.loc[duplicated, list(UNIT_COLUMNS)].to_numpy().tolist())))[:3]
        raise ConfigError(f"the rows hold more than one value per (class, seed) unit, e.g. {units}; "
                          f"narrow the selection to one config, detector and split")
    return frame.set_index(list(UNIT_COLUMNS))[value].astype(float).sort_index()

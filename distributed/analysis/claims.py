"""The paper's claims, each measured over (held-out class, seed) units and given a verdict.

A claim is a number the paper states (``paper``) with where it states it.  Its measured counterpart
comes from a study's test AUROCs, one per (held-out digit, seed) unit:

- ``mean``: the mean over units of one detector's AUROC, with a 95% interval from the bootstrap that
  resamples seeds within each digit (:func:`.statistics.stratified_bootstrap_interval`);
- ``seed_sd``: the SD over seeds within each digit, averaged over the digits (the paper's "SD averaged
  over all digits"), with a 95% percentile interval from the same stratified resampling;
- ``difference``: the mean paired difference A - B over the units both have
  (:func:`.statistics.paired_comparison`: its stratified interval, Wilcoxon p and direction verdict).

The verdict compares the paper's number with the interval: ``consistent`` when the interval holds it,
``below`` when the whole interval lies below it, ``above`` when above.  A claim whose data this run
does not have is ``untested`` and says which command would test it.

The functions here take plain rows (pandas) and return plain records; running the studies is
:mod:`omasgan.distributed.studies.reproduce`'s, rendering them :mod:`omasgan.distributed.report.claims`'s.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from .statistics import CONFIDENCE, N_RESAMPLES, paired_comparison, stratified_bootstrap_interval

VERDICT_WORDS = ("consistent", "below", "above", "untested")
STAND_INS = {"mnist": ("digits",)}
"""Data sets a claim about MNIST is still measured on, as a stand-in (sklearn's 8x8 digits: the quick
budget): the claim's ``data`` says so, and its verdict speaks to the machinery, not to the paper."""


@dataclass(frozen=True)
class ClaimSpec:
    """One number the paper states and how to measure it.

    ``measure`` is ``mean`` or ``seed_sd`` of ``a``, or ``difference`` of ``a`` minus ``b``; ``a`` and ``b``
    name a (part, detector) of the reproduction (e.g. ``("omasgan", "final")``).  ``needs`` is the data
    set the claim is about; a claim whose data set the run did not train on is untested, with
    ``command``."""

    key: str
    statement: str
    paper: float
    where: str
    measure: str
    a: tuple[str, str] | None = None
    b: tuple[str, str] | None = None
    needs: str = "mnist"
    command: str = ""


@dataclass
class Claim:
    """A claim with its measurement and verdict (``measured`` is NaN when untested)."""

    key: str
    statement: str
    paper: float
    where: str
    measured: float = float("nan")
    ci_low: float = float("nan")
    ci_high: float = float("nan")
    units: int = 0
    verdict: str = "untested"
    test: str = ""
    data: str = ""
    """The data set it was measured on (with ``(stand-in)`` when not the paper's)."""
    detail: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


PAPER_CLAIMS: tuple[ClaimSpec, ...] = (
    ClaimSpec("final-mean", "leave-one-out mean AUROC of the final model (J)", 0.85,
              "section 5.2 and Figures 4-5 (read from a plot)", "mean", ("omasgan", "final")),
    ClaimSpec("final-seed-sd", "SD over seeds of the final model's AUROC, averaged over all digits", 0.036,
              "section 5.2 ('lowest standard deviation (SD) of 0.036 averaged over all digits')", "seed_sd",
              ("omasgan", "final")),
    ClaimSpec("task1-mean", "ablation: mean AUROC of Task 1's critic (the KL-WGAN base model)", 0.59,
              "section 5.2, 'Benefit of retraining', Figure 8", "mean", ("omasgan", "task1")),
    ClaimSpec("task3-mean", "ablation: mean AUROC of Task 3's critic", 0.71,
              "section 5.2, 'Benefit of retraining', Figure 8", "mean", ("omasgan", "task3")),
    ClaimSpec("final-ablation-mean", "ablation: mean AUROC of the final model", 0.84,
              "section 5.2, 'Benefit of retraining', Figure 8", "mean", ("omasgan", "final")),
    ClaimSpec("task3-over-task1", "Task 3 improves on Task 1 (paired, per unit)", 0.71 - 0.59,
              "section 5.2, Figure 8 (0.59 -> 0.71)", "difference", ("omasgan", "task3"), ("omasgan", "task1")),
    ClaimSpec("final-over-task3", "the final model improves on Task 3 (paired, per unit)", 0.84 - 0.71,
              "section 5.2, Figure 8 (0.71 -> 0.84)", "difference", ("omasgan", "final"), ("omasgan", "task3")),
    ClaimSpec("fgan-task1-mean", "f-GAN base model: mean AUROC of Task 1's critic", 0.51,
              "section 5.2, 'Effect of base model', Figure 9", "mean", ("fgan", "task1")),
    ClaimSpec("fgan-task3-mean", "f-GAN base model: mean AUROC after OMASGAN's Task 3", 0.77,
              "section 5.2, 'Effect of base model', Figure 9", "mean", ("fgan", "task3")),
    ClaimSpec("klwgan-over-fgan", "KL-WGAN as the base model beats the f-GAN: final model, paired per unit",
              0.84 - 0.77, "section 5.2, Figures 8-9 (0.84 against the f-GAN model's 0.77)", "difference",
              ("omasgan", "final"), ("fgan", "final")),
    ClaimSpec("ood-fashion-mnist", "trained on MNIST, tested on Fashion-MNIST: AUROC", 0.83, "section 5.2",
              "mean", needs="fashion_mnist",
              command="omasgan run --dataset mnist --protocol ood --ood-dataset fashion_mnist --data-root DIR "
                      "--config bench/configs/mnist_paper.yaml --seed S  (S = 0, 1, 2; needs DIR/FashionMNIST/raw/)"),
    ClaimSpec("ood-kmnist", "trained on MNIST, tested on KMNIST: AUROC", 0.71, "section 5.2", "mean", needs="kmnist",
              command="omasgan run --dataset mnist --protocol ood --ood-dataset kmnist --data-root DIR "
                      "--config bench/configs/mnist_paper.yaml --seed S  (S = 0, 1, 2; needs DIR/KMNIST/raw/)"),
    ClaimSpec("cifar10-mean", "CIFAR-10 leave-one-out mean AUROC of the final model", 0.71, "section 5.3, Figure 10",
              "mean", needs="cifar10",
              command="omasgan seeds --dataset cifar10 --data-root DIR --classes 0-9 --seeds 0-2 --set task1.epochs=500 "
                      "--set task2.epochs=500 --set task3.epochs=500 --set j.epochs=500 --set task1.batch_size=64 "
                      "--set task1.d_steps=4  (needs DIR/cifar-10-batches-py/)"),
    ClaimSpec("cifar10-seed-sd", "CIFAR-10: SD over seeds, averaged over the classes", 0.06,
              "section 5.3, Figure 11", "seed_sd", needs="cifar10",
              command="the same CIFAR-10 seeds study (its seeds table: the mean of the per-class SD)"),
)

REFERENCE_FIGURES: tuple[dict[str, Any], ...] = (
    {"what": "the paper's public code, its stored scores for digits 0-3 recomputed on its own balanced "
             "subsamples (its J is a plain critic: B(z) reaches J's loss as raw pixels)",
     "per_digit": {0: 0.75, 1: 0.80, 2: 0.86, 3: 0.81}},
    {"what": "ADAE (published MNIST leave-one-out mean)", "mean": 0.858},
    {"what": "a VAE with a 2-d latent space (in ADAE's table)", "mean": 0.855},
    {"what": "IGMM-GAN (in ADAE's table)", "mean": 0.852},
    {"what": "GANomaly (in ADAE's table)", "mean": 0.78},
)
"""Figures to read the measured ones against; none is a claim of the paper, none gets a verdict."""


def value_verdict(paper: float, low: float, high: float) -> str:
    """``consistent`` when [low, high] holds ``paper``, ``below`` / ``above`` when it lies wholly under /
    over it; ``untested`` when the interval is not finite."""
    if not (math.isfinite(low) and math.isfinite(high)):
        return "untested"
    if high < paper:
        return "below"
    if low > paper:
        return "above"
    return "consistent"


def mean_over_units(units: pd.Series, n_resamples: int = N_RESAMPLES) -> tuple[float, float, float]:
    """(mean, 95% low, 95% high) of a unit series indexed by (holdout_class, seed): the interval from
    the bootstrap that resamples seeds within each class."""
    values = units.to_numpy(dtype=float)
    if len(values) == 0:
        return float("nan"), float("nan"), float("nan")
    strata = units.index.get_level_values("holdout_class").to_numpy()
    low, high, _ = stratified_bootstrap_interval(values, strata, n_resamples=n_resamples)
    return float(values.mean()), low, high


def mean_seed_sd(groups: list[np.ndarray]) -> float:
    """The mean over classes of the SD (ddof=1) over seeds within each class."""
    return float(np.mean([np.std(g, ddof=1) for g in groups]))


def seed_sd_over_units(units: pd.Series, n_resamples: int = 2000) -> tuple[float, float, float]:
    """(mean over classes of the SD over seeds, 95% low, 95% high); the interval from the percentile
    bootstrap resampling seeds within each class.  NaN when a class has fewer than 2 seeds."""
    groups = [g.to_numpy(dtype=float) for _, g in units.groupby(level="holdout_class")]
    if not groups or any(len(g) < 2 for g in groups):
        return float("nan"), float("nan"), float("nan")
    value = mean_seed_sd(groups)
    if all(np.allclose(g, g[0]) for g in groups):
        return value, value, value
    result = stats.bootstrap(groups, lambda *resampled: mean_seed_sd(list(resampled)), vectorized=False,
                             paired=False, n_resamples=n_resamples, method="percentile",
                             confidence_level=CONFIDENCE, rng=np.random.default_rng(0))
    low, high = result.confidence_interval
    return value, float(low), float(high)


def evaluate_claim(spec: ClaimSpec, units: dict[tuple[str, str], pd.Series], dataset: str,
                   n_resamples: int = N_RESAMPLES, missing_command: str | None = None) -> Claim:
    """``spec`` measured on ``units`` ((part, detector) -> test AUROC per (holdout_class, seed)) of a run
    on ``dataset``.  ``missing_command``: the command that would finish the run, given with a claim
    whose part has no results yet (a claim about data the run lacks names its own command)."""
    claim = Claim(spec.key, spec.statement, spec.paper, spec.where)
    missing = [side for side in (spec.a, spec.b) if side is not None and side not in units]
    usable = spec.needs == dataset or dataset in STAND_INS.get(spec.needs, ())
    if not usable or spec.a is None or missing:
        claim.test = (f"needs {spec.needs} data; this run trained on {dataset}" if not usable
                      else f"this run has no {' and '.join('/'.join(m) for m in missing)} results")
        command = missing_command if usable and missing_command else spec.command
        if command:
            claim.detail["command"] = command
        return claim
    claim.data = dataset if spec.needs == dataset else f"{dataset} (stand-in for {spec.needs})"
    a = units[spec.a]
    if spec.measure == "mean":
        claim.measured, claim.ci_low, claim.ci_high = mean_over_units(a, n_resamples)
        claim.units = len(a)
        claim.test = "the paper's value against the 95% interval of the mean over (digit, seed) units " \
                     "(bootstrap resampling seeds within each digit)"
    elif spec.measure == "seed_sd":
        claim.measured, claim.ci_low, claim.ci_high = seed_sd_over_units(a)
        claim.units = len(a)
        claim.test = "the paper's value against the 95% percentile-bootstrap interval of the mean over digits " \
                     "of the SD over seeds (seeds resampled within each digit); needs >= 2 seeds per digit"
        per_digit_means = a.groupby(level="holdout_class").mean()
        claim.detail["sd_over_digits_of_digit_means"] = float(per_digit_means.std(ddof=1)) \
            if len(per_digit_means) > 1 else float("nan")
    elif spec.measure == "difference":
        comparison = paired_comparison(a, units[spec.b], name_a="/".join(spec.a), name_b="/".join(spec.b),
                                       n_resamples=n_resamples)
        claim.measured, claim.ci_low, claim.ci_high = comparison.mean_diff, comparison.ci_low, comparison.ci_high
        claim.units = comparison.n
        claim.test = (f"the paper's difference against the 95% interval of the paired mean difference "
                      f"(seeds resampled within each digit); direction by the paired verdict: "
                      f"{comparison.verdict} (Wilcoxon p = {comparison.wilcoxon_p:.3g})")
        claim.detail.update(direction=comparison.verdict, wilcoxon_p=comparison.wilcoxon_p,
                            mean_a=comparison.mean_a, mean_b=comparison.mean_b)
    else:
        raise ValueError(f"unknown measure {spec.measure!r}")
    claim.verdict = value_verdict(spec.paper, claim.ci_low, claim.ci_high)
    return claim


def unit_table(rows: pd.DataFrame, split: str = "test") -> dict[tuple[str, str], pd.Series]:
    """(part, detector) -> AUROC per (holdout_class, seed) from result rows with a ``part`` column (the
    reproduction's part each study plays: omasgan, fgan, knn, ...): ok rows of ``split`` only.  A unit with
    an error row in any stage counts as missing for that part (not averaged over its survivors)."""
    failed = rows[rows.status != "ok"][["part", "holdout_class", "seed"]].drop_duplicates()
    failed_units = {(p, int(k), int(s)) for p, k, s in failed.itertuples(index=False)}
    ok = rows[(rows.status == "ok") & (rows.split == split) & rows.detector.notna()]
    table: dict[tuple[str, str], pd.Series] = {}
    for (part, detector), group in ok.groupby(["part", "detector"]):
        keep = [(part, int(k), int(s)) not in failed_units for k, s in zip(group.holdout_class, group.seed)]
        frame = group[keep]
        series = frame.set_index(["holdout_class", "seed"])["auroc"].astype(float).sort_index()
        table[(str(part), str(detector))] = series[~series.index.duplicated(keep="last")]
    return table


def evaluate_claims(rows: pd.DataFrame, dataset: str, specs: tuple[ClaimSpec, ...] = PAPER_CLAIMS,
                    n_resamples: int = N_RESAMPLES, missing_command: str | None = None) -> list[Claim]:
    """Every claim of ``specs`` on the reproduction's rows (see :func:`unit_table`)."""
    units = unit_table(rows)
    return [evaluate_claim(spec, units, dataset, n_resamples, missing_command) for spec in specs]


def seed_table(rows: pd.DataFrame) -> pd.DataFrame:
    """Per digit and (part, detector): the mean and SD over seeds of the test AUROC, and the seeds counted
    (the paper's Figure 11 layout); a last row ``mean`` averages the digits."""
    records = []
    for (part, detector), units in unit_table(rows).items():
        for digit, group in units.groupby(level="holdout_class"):
            records.append({"digit": int(digit), "column": f"{part}:{detector}", "mean": float(group.mean()),
                            "sd": float(group.std(ddof=1)) if len(group) > 1 else float("nan"), "seeds": len(group)})
    frame = pd.DataFrame(records)
    if frame.empty:
        return frame
    means = frame.groupby("column").agg(mean=("mean", "mean"), sd=("sd", "mean"), seeds=("seeds", "min")).reset_index()
    return pd.concat([frame, means.assign(digit="mean")], ignore_index=True)


def reference_rows(units: dict[tuple[str, str], pd.Series]) -> list[dict[str, Any]]:
    """The reference figures beside what this run measured: for the public code's per-digit scores, this
    run's final J on the same digits (mean over seeds); for the published means, none."""
    final = units.get(("omasgan", "final"))
    out = []
    for figure in REFERENCE_FIGURES:
        row = dict(figure)
        if "per_digit" in figure and final is not None:
            ours = final.groupby(level="holdout_class").mean()
            row["ours_per_digit"] = {int(k): float(ours[k]) for k in figure["per_digit"] if k in ours.index}
        out.append(row)
    return out

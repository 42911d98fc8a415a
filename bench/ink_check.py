"""Is the final discriminator J an ink detector?  A check of the quality benchmark's results.

    python bench/ink_check.py --data-root ../shared/data
    python bench/ink_check.py --data-root ../shared/data --scores-study bench/out/studies/mu-sensitivity
    python bench/ink_check.py --data-root ../shared/data --scores-study bench/out/studies/full-search \
        --trial cb7e1a29 --out bench/results/ink_check-full-search.json

The trivial detector "less ink is more anomalous" scores a test image by minus its mean pixel value.
For every held-out digit this prints its test AUROC next to the mean test AUROC (over the committed
seeds of bench/results/quality/omasgan-paper) of OMASGAN's three detectors, and the Pearson
correlation over the 10 digits between each detector's AUROC and the ink detector's.  With
``--scores-study`` (a study folder that kept per-sample scores) it also prints, per held-out digit of
that study, the Spearman correlation between each detector's per-image score and the image's ink.
Writes bench/results/ink_check.json.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
from scipy.stats import pearsonr, spearmanr
from sklearn.metrics import roc_auc_score

from omasgan.data.registry import load_splits
from omasgan.distributed.store.result_store import ResultStore

HERE = Path(__file__).parent
DETECTORS = ("task1", "task3", "final")


def ink(data_root: str, digit: int) -> tuple[np.ndarray, np.ndarray]:
    """Mean pixel value of every test image of the leave-one-out split holding out ``digit``, and the labels."""
    splits = load_splits("mnist", "loo", digit, data_root=data_root)
    return splits.test_x.flatten(1).mean(1).numpy(), splits.test_y.numpy()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-root", default="../shared/data")
    parser.add_argument("--results", default=str(HERE / "results" / "quality" / "omasgan-paper"))
    parser.add_argument("--scores-study", help="a study folder with a scores/ table (optional)")
    parser.add_argument("--trial", help="the trial of --scores-study to read (default: the first by id)")
    parser.add_argument("--out", default=str(HERE / "results" / "ink_check.json"))
    args = parser.parse_args()

    rows = ResultStore(args.results).read().to_pandas()
    test = rows[(rows.split == "test") & (rows.status == "ok") & rows.detector.isin(DETECTORS)]
    if test.empty:
        print(f"no finished OMASGAN test rows under {args.results}", file=sys.stderr)
        return 2
    means = test.groupby(["holdout_class", "detector"]).auroc.mean().unstack()
    seeds = sorted(int(s) for s in test.seed.unique())
    digits = [int(d) for d in means.index]
    images = {d: ink(args.data_root, d) for d in digits}
    less_ink = {d: float(roc_auc_score(y, -x)) for d, (x, y) in images.items()}

    print(f"test AUROC per held-out digit: OMASGAN (mean over seeds {seeds}) and the 'less ink' detector")
    print(f"{'digit':>5} " + " ".join(f"{d:>7}" for d in DETECTORS) + f" {'-ink':>7}")
    for d in digits:
        print(f"{d:>5} " + " ".join(f"{means.loc[d, k]:7.3f}" for k in DETECTORS) + f" {less_ink[d]:7.3f}")
    correlation = {k: float(pearsonr(means[k].to_numpy(), [less_ink[d] for d in digits]).statistic)
                   for k in DETECTORS}
    print("Pearson r over digits with the '-ink' AUROC: "
          + ", ".join(f"{k} {r:+.2f}" for k, r in correlation.items()))

    per_image: dict[str, dict[str, float]] = {}
    if args.scores_study:
        scores = ResultStore(args.scores_study).read("scores").to_pandas()
        scores = scores[scores.split == "test"]
        trials = sorted(scores.trial_id.unique())
        if args.trial and args.trial not in trials:
            print(f"--trial {args.trial!r} has no test scores in {args.scores_study}; it has: {', '.join(trials)}",
                  file=sys.stderr)
            return 2
        scores_trial = args.trial or trials[0]
        for d in sorted(int(k) for k in scores.holdout_class.unique()):
            x, _ = images.get(d) or ink(args.data_root, d)
            per_image[str(d)] = {}
            for k in DETECTORS:
                unit = scores[(scores.holdout_class == d) & (scores.detector == k) & (scores.trial_id == scores_trial)]
                if len(unit):
                    per_image[str(d)][k] = float(spearmanr(unit.score, x[unit["index"].to_numpy()]).statistic)
            print(f"digit {d} (trial {scores_trial}): Spearman rho(score, ink) "
                  + ", ".join(f"{k} {r:+.2f}" for k, r in per_image[str(d)].items()))

    document = {"seeds": seeds, "less_ink_auroc": less_ink,
                "omasgan_mean_auroc": {k: {str(d): float(means.loc[d, k]) for d in digits} for k in DETECTORS},
                "pearson_r_over_digits": correlation, "spearman_rho_per_image": per_image,
                "results": args.results, "scores_study": args.scores_study,
                "scores_trial": scores_trial if args.scores_study else None}
    Path(args.out).write_text(json.dumps(document, indent=2))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Same config, same seed, another torch thread count: how far apart do the AUROCs end?

    python bench/thread_drift.py \\
        --a bench/results/quality-gap/full-search --a-trial cb7e1a29 \\
        --b bench/results/quality/omasgan-best --b-trial omasgan-best

A search trains each (class, seed) unit with 1 torch thread (``--cpus-per-unit 1``); the quality
benchmark trains with 2.  The thread count changes the order of floating-point reductions (the
gradients differ in the 6th significant digit, see ``--check-gradients``), and GAN training
amplifies that.  This reads two results folders, takes one trial of each, checks that the two ran
the same config (ignoring the data root and the holdout), and prints, per (held-out class, seed)
unit they share, the AUROC of every detector on the validation and test splits, side by side.
Writes ``--out`` (JSON).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import pandas as pd

from omasgan.distributed.store.result_store import ResultStore

HERE = Path(__file__).parent
DETECTORS = ("task1", "task3", "final")


def trial_rows(folder: str, trial: str) -> pd.DataFrame:
    rows = ResultStore(folder).read().to_pandas()
    rows = rows[(rows.trial_id == trial) & (rows.status == "ok") & rows.detector.isin(DETECTORS)]
    if rows.empty:
        raise SystemExit(f"no finished rows of trial {trial!r} under {folder}")
    return rows


def config_of(rows: pd.DataFrame) -> dict:
    """The trial's config without what may differ between two runs of the same experiment."""
    config = json.loads(rows.config_json.iloc[0])
    config["data"].pop("data_root", None)
    config["data"].pop("holdout", None)
    config.pop("seed", None)
    return config


def config_differences(a: dict, b: dict, prefix: str = "") -> list[tuple[str, object, object, bool]]:
    """(dotted key, value in a, value in b, whether the two are floats equal up to 1e-12 relative)."""
    found = []
    for key in sorted(set(a) | set(b)):
        x, y = a.get(key), b.get(key)
        if isinstance(x, dict) and isinstance(y, dict):
            found += config_differences(x, y, f"{prefix}{key}.")
        elif x != y:
            tiny = isinstance(x, float) and isinstance(y, float) and abs(x - y) <= 1e-12 * max(abs(x), abs(y))
            found.append((f"{prefix}{key}", x, y, tiny))
    return found


def gradient_check() -> dict:
    """One forward/backward of the MNIST budget's G and D at 1 and at 2 torch threads."""
    import torch

    from omasgan.networks import build_discriminator, build_generator

    def grads(threads: int) -> torch.Tensor:
        torch.set_num_threads(threads)
        torch.manual_seed(0)
        g = build_generator("dcgan", (1, 28, 28), 64, width=32, depth=3)
        d = build_discriminator("dcgan", (1, 28, 28), width=32, depth=3)
        d(g(torch.randn(64, 64, generator=torch.Generator().manual_seed(1)))).mean().backward()
        return torch.cat([p.grad.flatten() for p in [*g.parameters(), *d.parameters()]])

    one, two = grads(1), grads(2)
    return {"bitwise_equal": bool(torch.equal(one, two)), "max_abs_diff": float((one - two).abs().max()),
            "max_abs_grad": float(one.abs().max())}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--a", required=True, help="a results folder (a study folder)")
    parser.add_argument("--a-trial", required=True)
    parser.add_argument("--b", required=True, help="another results folder")
    parser.add_argument("--b-trial", required=True)
    parser.add_argument("--check-gradients", action="store_true",
                        help="also compare one G/D gradient at 1 and 2 torch threads")
    parser.add_argument("--out", default=str(HERE / "results" / "thread_drift.json"))
    args = parser.parse_args()

    a, b = trial_rows(args.a, args.a_trial), trial_rows(args.b, args.b_trial)
    differences = config_differences(config_of(a), config_of(b))
    if any(not tiny for *_, tiny in differences):
        print(f"the two trials ran different configs ({differences}); nothing to compare", file=sys.stderr)
        return 2
    for key, x, y, _ in differences:  # e.g. delta = 0.7 - 0.3 from the search's parametrisation
        print(f"note: {key} is {x!r} in A and {y!r} in B (equal up to rounding)")
    keys = ["holdout_class", "seed", "detector", "split"]
    both = a[keys + ["auroc"]].merge(b[keys + ["auroc"]], on=keys, suffixes=("_a", "_b"))
    if both.empty:
        print("the two trials share no (held-out class, seed) unit", file=sys.stderr)
        return 2
    both["diff"] = both.auroc_b - both.auroc_a
    both = both.sort_values(keys)
    pd.set_option("display.width", 200)
    print(f"A = {args.a} trial {args.a_trial}; B = {args.b} trial {args.b_trial}; same config")
    print(both.round(3).to_string(index=False))
    summary = both.assign(abs_diff=both["diff"].abs()).groupby(["detector", "split"]).abs_diff.agg(["median", "max"])
    print("|B - A| per detector and split:\n" + summary.round(3).to_string())
    document = {"a": {"folder": args.a, "trial": args.a_trial}, "b": {"folder": args.b, "trial": args.b_trial},
                "config_rounding_differences": [{"key": k, "a": x, "b": y} for k, x, y, _ in differences],
                "units": both.to_dict(orient="records"),
                "abs_diff": {f"{d}/{s}": {"median": float(r["median"]), "max": float(r["max"])}
                             for (d, s), r in summary.iterrows()}}
    if args.check_gradients:
        document["gradient_check"] = gradient_check()
        print(f"one G/D gradient at 1 vs 2 threads: {document['gradient_check']}")
    Path(args.out).write_text(json.dumps(document, indent=2, default=float))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

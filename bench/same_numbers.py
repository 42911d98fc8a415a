"""Do two versions of the code compute the same numbers?  A fixed set of small, seeded runs through the
public entry points, every metric written to one JSON file; ``--compare`` checks two such files for
exact float equality.  Used to show that a restructuring changed no behaviour.

    python bench/same_numbers.py --out /tmp/before.json                 # on the old code
    python bench/same_numbers.py --out /tmp/after.json --compare /tmp/before.json

The runs (one torch thread, short epochs; a few minutes on 2 cores): ``omasgan run`` on sklearn digits
with the paper's defaults and with KL-WGAN, on the 2-D synthetic set with every issue-12 variant switch
on; a seeds study (Ray, the Parquet store) over two digits; the detector API; the kNN and Isolation
Forest baselines.  Wall times and dates are left out: only what the code computes.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
from pathlib import Path

SHORT = ["--set", "task1.epochs=6", "--set", "task2.epochs=3", "--set", "task3.epochs=3", "--set", "j.epochs=4"]
RUNS = {
    "digits-gan-h0-s0": ["--dataset", "digits", "--holdout", "0", "--seed", "0", *SHORT],
    "digits-klwgan-h3-s1": ["--dataset", "digits", "--holdout", "3", "--seed", "1", "--set", "divergence.name=klwgan",
                            *SHORT],
    "synthetic-variants-h0-s0": ["--dataset", "synthetic", "--holdout", "0", "--seed", "0",
                                 "--set", "task2.boundaries=2", "--set", "task2.feature_space=autoencoder",
                                 "--set", "task2.ae_epochs=2", "--set", "j.refine_steps=1",
                                 "--set", "j.score=fusion", *SHORT],
}
SKIP = ("wall", "time", "created", "seconds", "_s")


def numbers(value, prefix: str = "") -> dict[str, float]:
    """Every number in a JSON-like value, flattened to ``path -> float`` (timings left out)."""
    found: dict[str, float] = {}
    if isinstance(value, dict):
        for key, item in value.items():
            if any(word in str(key) for word in SKIP):
                continue
            found.update(numbers(item, f"{prefix}.{key}" if prefix else str(key)))
    elif isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            found.update(numbers(item, f"{prefix}[{i}]"))
    elif isinstance(value, bool):
        found[prefix] = float(value)
    elif isinstance(value, (int, float)):
        found[prefix] = float(value)
    return found


def run_cli(folder: Path) -> dict[str, dict[str, float]]:
    from omasgan.cli import main

    out = {}
    for name, args in RUNS.items():
        target = folder / name
        code = main(["run", *args, "--threads", "1", "--out", str(target)])
        if code != 0:
            raise SystemExit(f"{name}: omasgan run exited {code}")
        metrics = json.loads((target / "metrics.json").read_text())
        out[f"run:{name}"] = numbers({k: v for k, v in metrics.items() if k not in ("versions", "config")})
    return out


def run_study(folder: Path) -> dict[str, dict[str, float]]:
    from omasgan.cli import main
    from omasgan.distributed.store.result_store import ResultStore

    code = main(["seeds", "--dataset", "digits", "--classes", "0,1", "--seeds", "0", *SHORT, "--threads", "1",
                 "--storage", str(folder / "studies"), "--name", "same"])
    if code != 0:
        raise SystemExit(f"the seeds study exited {code}")
    rows = ResultStore(str(folder / "studies" / "same")).read().to_pandas()
    rows = rows.sort_values(["holdout_class", "seed", "stage", "split"], na_position="first")
    out = {}
    for row in rows.itertuples(index=False):
        key = f"{row.holdout_class}/{row.seed}/{row.stage}/{row.split}"
        out[key] = {m: float(getattr(row, m)) for m in ("auroc", "auprc", "f1", "precision", "recall", "accuracy",
                                                          "threshold") if getattr(row, m) is not None}
    return {"study:seeds": {f"{k}.{m}": v for k, ms in out.items() for m, v in ms.items()}}


def run_detector_and_baselines() -> dict[str, dict[str, float]]:
    import numpy as np

    from omasgan.baselines import IsolationForestDetector, KNNDetector
    from omasgan.config import default_config
    from omasgan.detector import OMASGANDetector

    rng = np.random.default_rng(0)
    normal = rng.normal(size=(300, 2)).astype("float32")
    probe = np.concatenate([rng.normal(size=(20, 2)), rng.normal(4.0, 1.0, size=(20, 2))]).astype("float32")
    config = default_config("synthetic").with_overrides({"task1.epochs": 4, "task2.epochs": 2, "task3.epochs": 2,
                                                         "j.epochs": 3})
    detector = OMASGANDetector(config).fit(normal)
    out = {"detector": {f"score[{i}]": float(v) for i, v in enumerate(detector.decision_function(probe))}}
    out["detector"]["threshold"] = float(detector.threshold_)
    for name, model in (("knn", KNNDetector(k=5)), ("iforest", IsolationForestDetector(n_estimators=50))):
        model.fit(normal)
        out[f"baseline:{name}"] = {f"score[{i}]": float(v) for i, v in enumerate(model.decision_function(probe))}
    return out


def compare(a: dict, b: dict) -> list[str]:
    """Every difference between two result files, as lines (NaN equals NaN)."""
    lines = []
    for group in sorted(set(a) | set(b)):
        x, y = a.get(group, {}), b.get(group, {})
        for key in sorted(set(x) | set(y)):
            u, v = x.get(key), y.get(key)
            same = u == v or (isinstance(u, float) and isinstance(v, float) and math.isnan(u) and math.isnan(v))
            if not same:
                lines.append(f"{group} {key}: {u!r} != {v!r}")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True, help="where to write the numbers (JSON)")
    parser.add_argument("--compare", help="an earlier run's JSON: print every difference, exit 1 if any")
    args = parser.parse_args(argv)
    import torch

    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as folder:
        result = {**run_cli(Path(folder)), **run_detector_and_baselines(), **run_study(Path(folder))}
    Path(args.out).write_text(json.dumps(result, indent=1, sort_keys=True))
    count = sum(len(v) for v in result.values())
    print(f"{count} numbers in {len(result)} groups written to {args.out}")
    if args.compare:
        differences = compare(json.loads(Path(args.compare).read_text()), result)
        print(f"compared with {args.compare}: {len(differences)} difference(s) in {count} numbers")
        for line in differences[:20]:
            print("  " + line)
        return 1 if differences else 0
    return 0


if __name__ == "__main__":
    sys.exit(main())

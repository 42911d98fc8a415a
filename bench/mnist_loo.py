"""MNIST leave-one-out: per-stage validation/test AUROC and wall time per held-out digit.

    python bench/mnist_loo.py --data-root ../shared/data --classes 0,1
    python bench/mnist_loo.py --data-root ../shared/data --classes 3 --seeds 0,1 --set task1.epochs=20

The budget config (bench/configs/mnist_budget.yaml) takes about 10-12 minutes per digit on 2 CPU
cores.  Results accumulate in a JSON file (default bench/results/mnist_loo.json), one entry per
(digit, seed); rerunning a digit replaces its entry.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import torch

from omasgan.config import default_config, read_config_file
from omasgan.provenance import library_versions
from omasgan.run import load_run_data, validate_run
from omasgan.pipeline import run_pipeline

HERE = Path(__file__).parent
PAPER = {"task1": 0.59, "task3": 0.71, "final": 0.84}


def parse_ints(text: str) -> list[int]:
    values: list[int] = []
    for part in text.split(","):
        if "-" in part:
            low, high = part.split("-")
            values.extend(range(int(low), int(high) + 1))
        elif part:
            values.append(int(part))
    return values


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-root", default="../shared/data")
    parser.add_argument("--classes", default="0,1", help="held-out digits, e.g. 0,1 or 0-9")
    parser.add_argument("--seeds", default="0")
    parser.add_argument("--config", default=str(HERE / "configs" / "mnist_budget.yaml"))
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", default=str(HERE / "results" / "mnist_loo.json"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    base = default_config("mnist").merged(read_config_file(args.config)).with_overrides(
        {"data.data_root": args.data_root}
    ).with_overrides(args.set)
    out = Path(args.out)
    document = json.loads(out.read_text()) if out.exists() else {"runs": []}
    document.update({"config_file": args.config, "overrides": args.set, "threads": args.threads,
                     "machine": platform.platform(), "versions": library_versions()})
    for digit in parse_ints(args.classes):
        for seed in parse_ints(args.seeds):
            config = base.with_overrides({"data.holdout": digit, "seed": seed})
            validate_run(config)
            started = time.perf_counter()
            splits = load_run_data(config, torch.device("cpu"))
            print(f"== {splits.description} seed={seed}", flush=True)

            def on_epoch(stage, epoch, epochs, losses):
                text = " ".join(f"{k}={v:.4f}" for k, v in losses.items())
                print(f"  [{stage}] epoch {epoch}/{epochs} {text} ({time.perf_counter() - started:.0f}s)", flush=True)

            result = run_pipeline(config, splits, on_epoch=on_epoch)
            entry = {
                "holdout": digit,
                "seed": seed,
                "auroc": {d: {s: m["auroc"] for s, m in by.items()} for d, by in result.metrics.items()},
                "metrics": result.metrics,
                "wall_time_s": result.wall_time_s,
                "total_s": time.perf_counter() - started,
                "data": splits.summary(),
                "config": config.to_dict(),
            }
            document["runs"] = [r for r in document["runs"] if (r["holdout"], r["seed"]) != (digit, seed)] + [entry]
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(json.dumps(document, indent=2))
            walls = " ".join(f"{k}={v:.0f}s" for k, v in result.wall_time_s.items())
            aurocs = " ".join(f"{d}: val {m['val']['auroc']:.3f} test {m['test']['auroc']:.3f}"
                              for d, m in result.metrics.items())
            print(f"digit {digit} seed {seed}: {aurocs} | {walls} | total {entry['total_s']:.0f}s", flush=True)

    runs = sorted(document["runs"], key=lambda r: (r["holdout"], r["seed"]))
    print("\nheld-out  seed   task1 test  task3 test  final test   total s")
    for r in runs:
        a = r["auroc"]
        print(f"{r['holdout']:>8}  {r['seed']:>4}  {a['task1']['test']:>10.3f}  {a['task3']['test']:>10.3f}"
              f"  {a['final']['test']:>10.3f}  {r['total_s']:>8.0f}")
    if runs:
        means = {d: sum(r["auroc"][d]["test"] for r in runs) / len(runs) for d in PAPER}
        print("mean      " + "      ".join(f"{means[d]:>10.3f}" for d in PAPER))
        print("paper     " + "      ".join(f"{PAPER[d]:>10.3f}" for d in PAPER))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

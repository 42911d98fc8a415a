"""What the stage cache buys: a 12-trial search on digits that varies only Task 2 / Task 3 / J
parameters, run with and without the cache in one invocation (same Ray, same trials).

    python bench/cache_speedup.py              # 12 trials, 2 concurrent trials of 1 CPU each
    python bench/cache_speedup.py --quick      # 4 trials, shorter stages

Reports the wall time of each search and their ratio (target >= 2.5x on 2 cores), and Tune's
overhead: wall time / (sum of the trials' own run time / concurrency) (target <= 1.15).
Writes bench/results/cache_speedup.json.
"""

from __future__ import annotations

import argparse
import itertools
import json
import platform
import tempfile
import time
from pathlib import Path

import ray
from ray import tune

from omasgan.config import default_config
from omasgan.trainables import pipeline_trainable


def search(base, grid, storage: Path, name: str, cache_root: str | None, concurrency: int):
    trainable = pipeline_trainable(base, cache_root=cache_root, cpus_per_trial=1)
    tuner = tune.Tuner(
        trainable,
        param_space={
            "task2.mu": tune.grid_search(sorted({g["task2.mu"] for g in grid})),
            "j.zeta": tune.grid_search(sorted({g["j.zeta"] for g in grid})),
        },
        tune_config=tune.TuneConfig(metric="objective", mode="max", max_concurrent_trials=concurrency,
                                    reuse_actors=True),
        run_config=tune.RunConfig(name=name, storage_path=str(storage), verbose=0),
    )
    start = time.perf_counter()
    results = tuner.fit()
    wall = time.perf_counter() - start
    if results.errors:
        raise RuntimeError(f"{name}: {results.errors}")
    compute = [r.metrics["time_total_s"] for r in results]
    trained_task1 = sum(r.metrics["trained_task1"] for r in results)
    return {
        "wall_s": wall,
        "trials": len(compute),
        "sum_trial_s": sum(compute),
        "tune_overhead": wall / (sum(compute) / concurrency),
        "trained_task1": trained_task1,
        "best_objective": max(r.metrics["objective"] for r in results),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--concurrency", type=int, default=2)
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "cache_speedup.json"))
    args = parser.parse_args()
    mus, zetas = ([0.2, 1.0], [0.3, 0.7]) if args.quick else ([0.1, 0.2, 0.5, 1.0], [0.3, 0.5, 0.7])
    epochs = {"task1.epochs": 60, "task2.epochs": 10, "task3.epochs": 15, "j.epochs": 15}
    if args.quick:
        epochs = {k: max(2, v // 5) for k, v in epochs.items()}
    base = default_config("digits", holdout=0).with_overrides(epochs)
    grid = [{"task2.mu": m, "j.zeta": z} for m, z in itertools.product(mus, zetas)]
    ray.init(num_cpus=args.concurrency, include_dashboard=False, log_to_driver=False, configure_logging=False)
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        print(f"{len(grid)} trials on digits (held-out 0), varying task2.mu x j.zeta; {args.concurrency} concurrent "
              f"trials of 1 CPU; epochs {epochs}", flush=True)
        without = search(base, grid, root / "results", "no_cache", None, args.concurrency)
        print(f"without cache: {without['wall_s']:.0f} s wall, Task 1 trained {without['trained_task1']}x, "
              f"Tune overhead {without['tune_overhead']:.3f}", flush=True)
        with_cache = search(base, grid, root / "results", "cache", str(root / "cache"), args.concurrency)
        print(f"with cache:    {with_cache['wall_s']:.0f} s wall, Task 1 trained {with_cache['trained_task1']}x, "
              f"Tune overhead {with_cache['tune_overhead']:.3f}", flush=True)
    ray.shutdown()
    speedup = without["wall_s"] / with_cache["wall_s"]
    print(f"speed-up {speedup:.2f}x (target >= 2.5x); Tune overhead {without['tune_overhead']:.3f} / "
          f"{with_cache['tune_overhead']:.3f} (target <= 1.15)")
    report = {"grid": grid, "epochs": epochs, "concurrency": args.concurrency, "machine": platform.platform(),
              "ray": ray.__version__, "without_cache": without, "with_cache": with_cache, "speedup": speedup}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()

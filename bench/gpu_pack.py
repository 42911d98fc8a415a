"""How many OMASGAN trials to pack on one GPU: trials/hour for k = 1, 2, 4, 8 trials per GPU.

    python bench/gpu_pack.py --data-root /work/shared/data                       # MNIST, needs a GPU
    python bench/gpu_pack.py --data-root /work/shared/data --packings 1,4 --rounds 2 --max-train 3000
    python bench/gpu_pack.py --dry-run                                           # CPU smoke test on digits

For each packing k, one Tune run of the full pipeline (Task 1 -> 2 -> 3 -> J) on the budget MNIST
config (bench/configs/mnist_budget.yaml), with ``pipeline_trainable(base, gpus_per_trial=1/k,
cpus_per_trial=C)``, ``max_concurrent_trials=k`` and ``rounds x k`` trials (``--trials-per-packing``
fixes the count instead).  Trials differ by seed and use no stage cache, so every trial trains all
four stages.  Ray is started with ``--num-gpus`` GPUs (default 1, so the figures are for one GPU;
with more, ``trials_per_hour_per_gpu`` divides by their number).
C (``--cpus-per-trial``) is the same for every k: the machine's CPUs / (max k x GPUs) by default.

Prints, per packing: trials per GPU, trials, wall s, trials/hour, speed-up vs k=1 and the devices
the trials reported (each trial report carries ``device``, the device its tensors lived on: "cuda"
for the GPU Ray assigned, else "cpu").  A GPU run where any trial reports "cpu" is marked invalid.
Writes bench/results/gpu_pack.json.  Without a visible CUDA GPU it writes ``"status":
"unmeasured"`` and no figures.  ``--dry-run`` (= ``--device cpu`` on digits with tiny epochs,
packings 1,2, one round) checks that the script works on a CPU machine; it writes
bench/out/gpu_pack-dry-run.json, never the results file, and its figures say nothing about GPUs.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

HERE = Path(__file__).resolve().parent
DRY_EPOCHS = {"task1.epochs": 2, "task2.epochs": 1, "task3.epochs": 1, "j.epochs": 1}


def parse_ints(text: str) -> list[int]:
    values = [int(part) for part in text.split(",") if part.strip()]
    if not values or any(v < 1 for v in values):
        raise argparse.ArgumentTypeError(f"{text!r}: give positive integers, e.g. 1,2,4,8")
    return values


def arguments(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default="mnist")
    parser.add_argument("--data-root", default="../shared/data")
    parser.add_argument("--config", default=str(HERE / "configs" / "mnist_budget.yaml"),
                        help="config file laid over the data set's defaults (ignored by --dry-run)")
    parser.add_argument("--holdout", type=int, default=0, help="the held-out class (leave-one-out)")
    parser.add_argument("--packings", type=parse_ints, default=[1, 2, 4, 8], help="trials per GPU, e.g. 1,2,4,8")
    parser.add_argument("--rounds", type=int, default=None,
                        help="trials per packing = rounds x k x GPUs (default 3; 1 with --dry-run)")
    parser.add_argument("--trials-per-packing", type=int, default=None,
                        help="a fixed number of trials per packing instead of rounds x k")
    parser.add_argument("--max-train", type=int, default=None, help="cap the training images (data.max_train)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="config override")
    parser.add_argument("--device", choices=("gpu", "cpu"), default="gpu")
    parser.add_argument("--num-gpus", type=int, default=1, help="GPUs Ray may use (figures are per GPU)")
    parser.add_argument("--cpus", type=int, default=None, help="CPUs Ray may use (default: all)")
    parser.add_argument("--cpus-per-trial", type=float, default=None,
                        help="CPUs per trial, the same for every k (default: CPUs / (max k x GPUs), at least 1)")
    parser.add_argument("--dry-run", action="store_true",
                        help="CPU smoke test: digits, tiny epochs, packings 1,2, one round")
    parser.add_argument("--out", default=None,
                        help="JSON output (default bench/results/gpu_pack.json; bench/out/gpu_pack-dry-run.json "
                             "for --dry-run)")
    args = parser.parse_args(argv)
    if args.dry_run:
        args.device, args.dataset = "cpu", "digits"
        if args.packings == [1, 2, 4, 8]:
            args.packings = [1, 2]
        if args.rounds is None:
            args.rounds = 1
    if args.rounds is None:
        args.rounds = 3
    if args.out is None:
        folder, name = ("out", "gpu_pack-dry-run.json") if args.dry_run else ("results", "gpu_pack.json")
        args.out = str(HERE / folder / name)
    if args.rounds < 1 or (args.trials_per_packing is not None and args.trials_per_packing < 1):
        parser.error("--rounds and --trials-per-packing must be >= 1")
    return args


def base_config(args):
    from omasgan.config import default_config, read_config_file

    if args.dry_run:
        config = default_config(args.dataset, holdout=args.holdout).with_overrides(DRY_EPOCHS)
    else:
        config = default_config(args.dataset, holdout=args.holdout)
        if args.config:
            config = config.merged(read_config_file(args.config))
        config = config.with_overrides({"data.data_root": args.data_root, "data.holdout": args.holdout})
    if args.max_train is not None:
        config = config.with_overrides({"data.max_train": args.max_train})
    return config.with_overrides(args.set)


def write(path: str, document: dict) -> None:
    from omasgan.atomic_write import write_file_atomic

    out = Path(path)
    write_file_atomic(out, lambda handle: handle.write((json.dumps(document, indent=2) + "\n").encode()))
    print(f"wrote {out}")


def shown_path(path: str) -> str:
    """A path relative to the repository when it lies inside it (portable in the results file)."""
    try:
        return str(Path(path).resolve().relative_to(HERE.parent))
    except ValueError:
        return path


def gpu_name() -> str | None:
    import torch

    return torch.cuda.get_device_name(0) if torch.cuda.is_available() else None


def run_packing(base, k: int, concurrency: int, seeds: list[int], args, storage: Path) -> dict:
    """One Tune run: len(seeds) trials, k per GPU (1/k GPU each), at most ``concurrency`` at once."""
    from ray import tune

    from omasgan.trainables import pipeline_trainable

    gpus_per_trial = 1.0 / k if args.device == "gpu" else 0.0
    trainable = pipeline_trainable(base, cache_root=None, cpus_per_trial=args.cpus_per_trial,
                                   gpus_per_trial=gpus_per_trial)
    tuner = tune.Tuner(
        trainable,
        param_space={"seed": tune.grid_search(seeds)},
        tune_config=tune.TuneConfig(metric="objective", mode="max", max_concurrent_trials=concurrency,
                                    reuse_actors=True),
        run_config=tune.RunConfig(name=f"pack{k}", storage_path=str(storage), verbose=0),
    )
    started = time.perf_counter()
    grid = tuner.fit()
    wall = time.perf_counter() - started
    if grid.errors:
        raise RuntimeError(f"packing {k}: {len(grid.errors)} trial(s) failed: {grid.errors[0]}")
    per_trial = [
        {"seed": r.config["seed"], "device": r.metrics.get("device"), "torch_threads": r.metrics.get("torch_threads"),
         "time_total_s": r.metrics.get("time_total_s"), "objective": r.metrics.get("objective")}
        for r in grid
    ]
    return {
        "trials_per_gpu": k,
        "gpus_per_trial": gpus_per_trial,
        "cpus_per_trial": args.cpus_per_trial,
        "max_concurrent_trials": concurrency,
        "trials": len(seeds),
        "wall_s": wall,
        "trials_per_hour": len(seeds) / wall * 3600.0,
        "mean_trial_s": sum(t["time_total_s"] for t in per_trial) / len(per_trial),
        "devices": dict(Counter(str(t["device"]) for t in per_trial)),
        "per_trial": sorted(per_trial, key=lambda t: t["seed"]),
    }


def table(rows: list[dict]) -> str:
    lines = [f"{'trials/GPU':>10} {'trials':>6} {'wall s':>8} {'trials/hour':>11} {'speed-up vs 1':>13}  devices"]
    for row in rows:
        speedup = "-" if row.get("speedup_vs_1") is None else f"{row['speedup_vs_1']:.2f}x"
        devices = ", ".join(f"{d} x{n}" for d, n in sorted(row["devices"].items()))
        lines.append(f"{row['trials_per_gpu']:>10} {row['trials']:>6} {row['wall_s']:>8.1f} "
                     f"{row['trials_per_hour']:>11.1f} {speedup:>13}  {devices}")
    return "\n".join(lines)


def main(argv=None) -> int:
    args = arguments(argv)
    import ray
    import torch

    from omasgan.provenance import library_versions

    document = {
        "benchmark": "gpu_pack",
        "command": " ".join([Path(sys.argv[0]).name, *(argv if argv is not None else sys.argv[1:])]),
        "dataset": args.dataset,
        "config_file": None if args.dry_run else shown_path(args.config),
        "overrides": args.set + ([f"data.max_train={args.max_train}"] if args.max_train else []),
        "holdout": args.holdout,
        "device": args.device,
        "machine": platform.platform(),
        "versions": library_versions(),
        "date": time.strftime("%Y-%m-%d"),
    }
    if args.device == "gpu" and not torch.cuda.is_available():
        document.update(status="unmeasured", reason="no CUDA GPU visible to torch on this machine; "
                        "run bench/gpu_pack.py on a GPU machine to fill in the figures", packings=[])
        print("no CUDA GPU visible: nothing measured (use --dry-run to check the script on a CPU)")
        write(args.out, document)
        return 2

    base = base_config(args)
    ray.init(num_cpus=args.cpus, num_gpus=args.num_gpus if args.device == "gpu" else 0,
             include_dashboard=False, log_to_driver=False, configure_logging=False)
    cpus = int(ray.cluster_resources().get("CPU", 1))
    gpus = int(ray.cluster_resources().get("GPU", 0)) if args.device == "gpu" else 1
    if args.cpus_per_trial is None:
        args.cpus_per_trial = float(max(1, cpus // (max(args.packings) * gpus)))
    document.update(status="dry-run" if args.dry_run else "measured", gpu=gpu_name() if args.device == "gpu" else None,
                    ray_cpus=cpus, ray_gpus=gpus if args.device == "gpu" else 0, cpus_per_trial=args.cpus_per_trial,
                    epochs={s: base.to_dict()[s]["epochs"] for s in ("task1", "task2", "task3", "j")},
                    max_train=base.to_dict()["data"].get("max_train"))
    if args.dry_run:
        document["note"] = "CPU smoke test of the script; these figures say nothing about GPU packing"
    print(f"{args.dataset} (held-out {args.holdout}), device {args.device}"
          f"{' (' + str(document['gpu']) + ')' if document.get('gpu') else ''}, {gpus if args.device == 'gpu' else 0} "
          f"GPU(s), {args.cpus_per_trial:g} CPU(s) per trial, epochs {document['epochs']}", flush=True)

    rows: list[dict] = []
    next_seed = 0
    with tempfile.TemporaryDirectory() as scratch:
        for k in args.packings:
            n_trials = args.trials_per_packing or args.rounds * k * gpus
            seeds = list(range(next_seed, next_seed + n_trials))  # distinct everywhere: nothing is shared
            next_seed += n_trials
            print(f"packing {k} trial(s) per GPU: {n_trials} trials ...", flush=True)
            row = run_packing(base, k, k * gpus, seeds, args, Path(scratch))
            rows.append(row)
            print(f"  {row['wall_s']:.1f} s wall, {row['trials_per_hour']:.1f} trials/hour, devices {row['devices']}",
                  flush=True)
    ray.shutdown()

    reference = next((r for r in rows if r["trials_per_gpu"] == 1), None)
    for row in rows:
        row["trials_per_hour_per_gpu"] = row["trials_per_hour"] / gpus
        row["speedup_vs_1"] = row["trials_per_hour"] / reference["trials_per_hour"] if reference else None
    expected = "cuda" if args.device == "gpu" else "cpu"
    wrong = {d: n for row in rows for d, n in row["devices"].items() if d != expected}
    if wrong:
        document["status"] = "invalid"
        document["reason"] = f"trials reported devices {wrong}, expected only {expected!r}"
    document["packings"] = rows
    print(table(rows))
    if wrong:
        print(f"INVALID: {document['reason']}")
    write(args.out, document)
    return 1 if wrong else 0


if __name__ == "__main__":
    sys.exit(main())

"""An estimate of the paper budget's GPU-hours from step costs measured on this CPU.

For each stage (Task 1, 2, 3 and J) of a config, the library's own stage function trains on
synthetic images of the config's shape (uniform in [-1, 1]: a step's cost does not depend on the
pixel values) with an epoch cut to a few steps, on one torch thread.  The first epoch is a warm-up
(it also holds the stage's setup) and counts the epoch's floating-point operations
(:class:`FlopCount`, with ``torch.utils.flop_counter``'s formulas: matrix products and
convolutions, forward and backward); the median CPU time (process time, which other processes on the machine inflate far
less than wall time) of the following ``--repeats`` epochs is the cost of that unit of work:

    task1  d_steps critic steps and one generator step (the loop's G step after every d_steps-th)
    task2  bank_refresh steps (each: d_steps D_m steps and one B step), one bank refresh among them
    task3  d_steps critic steps and one G' step
    j      two J steps

The steps of a (digit, seed) unit are counted as the stage loops count them (omasgan/stages/):
n = the training normals of the held-out digit after the validation split (``validation_count``)
and ``max_train``; Task 1, 3 and J take n // batch_size steps per epoch (``epoch_batches``), Task 2
max(1, n // N) (``steps_per_epoch``); the generator steps of Task 1 and 3 are one per d_steps
critic steps.  n comes from the MNIST labels under ``--data-root`` when given, else from MNIST's
published training class counts (below).

GPU-hours are an ESTIMATE, never measured here: FLOPs / ``--gpu-tflops`` (the sustained rate
assumed for these steps on one GPU), or CPU seconds / ``--speedup`` when that is given.  The default
25 TFLOP/s: an H100/H200-class GPU peaks at 67 TFLOP/s in FP32 and 495 in TF32 on tensor cores
(dense; NVIDIA's data sheets), and PyTorch lets cuDNN run convolutions, nearly all of these FLOPs,
in TF32 by default; a batch-64 step of a 32x32, 256-channel ResNet GAN also runs BatchNorm, ReLU,
spectral-norm power iterations and Adam (memory-bound) and one kernel launch per operation, so 25 is
about 5% of the TF32 peak and 37% of the FP32 peak.  The estimate is printed at 10 and 100 TFLOP/s
too.  The implied speed-up over this CPU's one thread is printed per stage.

The reproduce command's f-GAN part (the paper's Figure 9 base model: the paper config with
``--fgan-set`` overrides, by default the Pearson chi-squared divergence with an R1 penalty of 0.01, as
omasgan/budgets.py has it) is measured too: R1's double backward makes its critic steps dearer.  The
quality budget (bench/configs/mnist_quality.yaml) is measured the same way, so the ratio of the
paper's budget to it is measured, not assumed.

    python bench/paper_budget.py --data-root /work/shared/data     # writes bench/results/paper_budget.json
    python bench/paper_budget.py --quick                            # one repeat: checks the script
    python bench/paper_budget.py --show --digits-spec 0-9 --seeds-spec 0-2   # the stored estimate, scaled
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import statistics
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import flop_registry

from omasgan.config import OMASGANConfig
from omasgan.data.splits import validation_count
from omasgan.stages import train_j, train_task1, train_task2, train_task3
from omasgan.stages.common import new_critic, new_generator

ROOT = Path(__file__).resolve().parent.parent
PAPER = ROOT / "bench/configs/mnist_paper.yaml"
QUALITY = ROOT / "bench/configs/mnist_quality.yaml"
OUT = ROOT / "bench/results/paper_budget.json"
QUALITY_STORE = ROOT / "bench/results/quality/omasgan-paper"
"""The quality benchmark's study at the quality budget: its stage wall times check this model."""
STAGES = ("task1", "task2", "task3", "j")
MNIST_TRAIN_COUNTS = (5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949)
"""Images per digit 0-9 in MNIST's 60,000 training images (the published class counts)."""
FGAN_SETS = ("divergence.name=pearson", "divergence.r1_gamma=0.01")
"""The reproduce command's f-GAN part over its OMASGAN config (omasgan/budgets.py, FGAN_OVERRIDES)."""
DEFAULT_GPU_TFLOPS = 25.0
BAND_TFLOPS = (10.0, 100.0)
MIN_EPOCH_S = 0.5
"""An epoch of a cheap config is lengthened (more steps) until it takes at least this many CPU seconds."""


class FlopCount(TorchDispatchMode):
    """The FLOPs of the operations run under it, by ``torch.utils.flop_counter``'s formulas (matrix
    products and convolutions, forward and backward; composite operations are decomposed first, as
    FlopCounterMode does).  FlopCounterMode itself is not used: its module hooks break
    ``autograd.grad(create_graph=True)``, which the R1 penalty of the f-GAN part runs."""

    def __init__(self) -> None:
        super().__init__()
        self.total = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func is not torch.ops.prim.device.default:
            with self:
                decomposed = func.decompose(*args, **kwargs)
            if decomposed is not NotImplemented:
                return decomposed
        out = func(*args, **kwargs)
        formula = flop_registry.get(func._overloadpacket)
        if formula is not None:
            self.total += formula(*args, **kwargs, out_val=out)
        return out


@dataclass
class StageCost:
    """The measured cost of one unit of work of a stage (see the module docstring)."""

    stage: str
    steps_per_work: int          # critic / J / Task-2 steps in one unit of work
    cpu_s: float                 # median CPU seconds of one unit of work
    cpu_s_repeats: list[float]
    wall_s_repeats: list[float]
    flops: float                 # FLOPs of one unit of work (counted in the warm-up epoch)

    def to_json(self) -> dict:
        return {"steps_per_work": self.steps_per_work, "cpu_s": self.cpu_s, "cpu_s_repeats": self.cpu_s_repeats,
                "wall_s_repeats": self.wall_s_repeats, "tflop": self.flops / 1e12,
                "cpu_tflops": self.flops / 1e12 / self.cpu_s}


def work_size(config: OMASGANConfig, stage: str) -> tuple[int, int]:
    """(training images, steps) of one unit of work of ``stage``: an epoch of exactly that work."""
    if stage == "task1":
        return config.task1.batch_size * config.task1.d_steps, config.task1.d_steps
    if stage == "task2":
        return config.task2.batch_size * config.task2.bank_refresh, config.task2.bank_refresh
    if stage == "task3":
        return config.task3.batch_size * config.task3.d_steps, config.task3.d_steps
    return config.j.batch_size * 2, 2


def run_epochs(config: OMASGANConfig, stage: str, train_x: torch.Tensor, epochs: int,
               on_epoch) -> None:
    """Train ``stage`` for ``epochs`` epochs on ``train_x`` from untrained upstream networks."""
    shape = tuple(train_x.shape[1:])
    config = config.with_overrides({f"{stage}.epochs": epochs})
    if stage == "task1":
        train_task1(config, train_x, is_image=True, on_epoch=on_epoch)
        return
    generator = new_generator(config.network, shape, True).eval()
    critic = new_critic(config.network, shape).eval()
    if stage == "task2":
        train_task2(config, generator, critic, train_x, on_epoch=on_epoch)
    elif stage == "task3":
        train_task3(config, generator, critic, new_generator(config.network, shape, True).eval(), train_x,
                    on_epoch=on_epoch)
    else:
        train_j(config, new_generator(config.network, shape, True).eval(), generator, train_x, on_epoch=on_epoch)


def measure_stage(config: OMASGANConfig, stage: str, shape: tuple[int, ...], repeats: int) -> StageCost:
    """Time ``repeats`` epochs of one unit of work (after a warm-up epoch that counts the FLOPs);
    a unit of work shorter than MIN_EPOCH_S is repeated within the epoch until it is not."""
    images, steps = work_size(config, stage)
    multiple = 1
    while True:
        torch.manual_seed(0)
        train_x = torch.rand((images * multiple, *shape)) * 2 - 1
        stamps: list[tuple[float, float]] = []
        counter = FlopCount()
        flops: list[float] = []

        def on_epoch(_stage, epoch, _epochs, _losses):
            if epoch == 1:
                counter.__exit__(None, None, None)
                flops.append(float(counter.total))
            stamps.append((time.process_time(), time.perf_counter()))

        counter.__enter__()
        try:
            run_epochs(config, stage, train_x, 1 + repeats, on_epoch)
        finally:
            if not flops:
                counter.__exit__(None, None, None)
        cpu = [(b[0] - a[0]) / multiple for a, b in zip(stamps, stamps[1:])]
        wall = [(b[1] - a[1]) / multiple for a, b in zip(stamps, stamps[1:])]
        median = statistics.median(cpu)
        if median * multiple >= MIN_EPOCH_S or multiple >= 256:
            return StageCost(stage, steps, median, cpu, wall, flops[0] / multiple)
        multiple = min(256, max(2 * multiple, math.ceil(MIN_EPOCH_S / max(median, 1e-6))))


def training_normals(config: OMASGANConfig, digit: int, counts: tuple[int, ...]) -> int:
    """The training normals of a leave-one-out unit holding ``digit`` out, as make_splits cuts them."""
    normals = sum(c for k, c in enumerate(counts) if k != digit)
    n = normals - validation_count(normals, config.data.val_fraction)
    return n if config.data.max_train is None else min(n, config.data.max_train)


def unit_steps(config: OMASGANConfig, n: int) -> dict[str, int]:
    """Steps of each stage for n training normals, as the stage loops take them."""
    def batches(batch_size: int) -> int:  # epoch_batches: n // batch, or one short batch
        return max(1, n // batch_size)
    return {
        "task1": config.task1.epochs * batches(config.task1.batch_size),
        "task2": config.task2.epochs * max(1, n // config.task2.batch_size),
        "task3": config.task3.epochs * batches(config.task3.batch_size),
        "j": config.j.epochs * batches(config.j.batch_size),
    }


def unit_cost(costs: dict[str, StageCost], steps: dict[str, int]) -> dict[str, dict[str, float]]:
    """CPU seconds and FLOPs of each stage of a unit: its steps / steps per unit of work x the cost."""
    out = {}
    for stage in STAGES:
        works = steps[stage] / costs[stage].steps_per_work
        out[stage] = {"steps": steps[stage], "cpu_s": works * costs[stage].cpu_s, "flops": works * costs[stage].flops}
    return out


def class_counts(data_root: str | None) -> tuple[tuple[int, ...], str]:
    """MNIST's training images per digit: from the labels under ``data_root``, else the published counts."""
    if data_root is None:
        return MNIST_TRAIN_COUNTS, "MNIST's published training class counts"
    import numpy as np

    from omasgan.data.images import required_files
    from omasgan.data.idx import read_idx

    labels = read_idx(required_files("mnist", data_root)[1], ndim=1)
    counts = tuple(int(c) for c in np.bincount(labels, minlength=10))
    return counts, f"the MNIST training labels under {data_root}"


def stored_stage_walls(folder: Path) -> dict[str, float]:
    """Median wall seconds of each detector stage over the units of a stored study (the validation
    rows; Task 2 leaves no row), or {} when the folder has no results."""
    if not (folder / "results").is_dir():
        return {}
    from omasgan.distributed.store.result_store import ResultStore

    table = ResultStore(str(folder)).read(columns=["stage", "split", "wall_time_s"]).to_pandas()
    rows = table[table["split"] == "val"]
    return {str(stage): float(group["wall_time_s"].median()) for stage, group in rows.groupby("stage")}


def gpu_hours(flops: float, cpu_s: float, tflops: float, speedup: float | None) -> float:
    """The GPU-hours ESTIMATE: FLOPs at ``tflops`` sustained, or CPU seconds / ``speedup``."""
    return (cpu_s / speedup if speedup else flops / (tflops * 1e12)) / 3600.0


def spec_count(spec: str) -> int:
    """How many values a digits / seeds spec such as ``0-9``, ``0,3,8`` or ``0-2,5`` names."""
    values: set[int] = set()
    for part in spec.split(","):
        low, _, high = part.strip().partition("-")
        values.update(range(int(low), int(high or low) + 1))
    return len(values)


def show(path: Path, digits_spec: str, seeds_spec: str | None) -> None:
    """Print the stored estimate for ``digits_spec`` x ``seeds_spec`` units (no measuring)."""
    if not path.is_file():
        raise SystemExit(f"{path} does not exist: run python bench/paper_budget.py first")
    document = json.loads(path.read_text())
    summary, assumption = document["summary"], document["assumption"]
    seeds = spec_count(seeds_spec) if seeds_spec else 3
    units = spec_count(digits_spec) * seeds
    basis = (f"--speedup {assumption['speedup']:g}" if assumption.get("speedup")
             else f"{assumption['gpu_tflops']:g} TFLOP/s sustained per GPU")
    print(f"measured on {document['machine']['cpu']} (1 thread): {document['command']}")
    print(f"{units} (digit, seed) units ({digits_spec} x {seeds_spec or '3 seeds, assumed the budget default'}); "
          f"GPU-hours are an ESTIMATE at {basis} (unmeasured on any GPU):")
    total = 0.0
    for name, label in (("paper", "OMASGAN, KL-WGAN"), ("paper-fgan", "f-GAN part")):
        unit = summary[name]
        total += units * unit["unit_gpu_hours_estimate"]
        print(f"  {label:17s} {unit['unit_gpu_hours_estimate']:6.1f} GPU-hours per unit, "
              f"{units * unit['unit_gpu_hours_estimate']:8.0f} for {units} units "
              f"({unit['unit_cpu_hours']:.0f} CPU-hours per unit on one thread here)")
    band = ", ".join(f"{units * sum(summary[n]['unit_tflop'] for n in ('paper', 'paper-fgan')) / float(t) / 3600:.0f} "
                     f"at {t:g} TFLOP/s" for t in document["assumption"]["band_tflops"])
    print(f"  together         {total:8.0f} GPU-hours ({band}); the baselines run on CPUs")


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default=str(PAPER), help="the paper budget's config (default: %(default)s)")
    parser.add_argument("--quality-config", default=str(QUALITY), help="the quality budget's config")
    parser.add_argument("--data-root", default=None, help="MNIST here gives the exact training normals per digit")
    parser.add_argument("--repeats", type=int, default=3, help="timed epochs per stage after the warm-up")
    parser.add_argument("--gpu-tflops", type=float, default=DEFAULT_GPU_TFLOPS,
                        help="assumed sustained TFLOP/s of one GPU on these steps (see the module docstring)")
    parser.add_argument("--speedup", type=float, default=None,
                        help="instead of --gpu-tflops: assume a GPU step takes this CPU's step time / SPEEDUP")
    parser.add_argument("--digits", type=int, default=10, help="held-out digits of the study (the first K)")
    parser.add_argument("--seeds", type=int, default=3, help="seeds per digit")
    parser.add_argument("--fgan-set", action="append", metavar="KEY=VALUE",
                        help="the f-GAN part's overrides of --config (default: " + ", ".join(FGAN_SETS) + ")")
    parser.add_argument("--check-store", default=str(QUALITY_STORE),
                        help="a study at the quality budget whose stored stage wall times check the model "
                             "(default: %(default)s)")
    parser.add_argument("--quick", action="store_true", help="one repeat per stage: checks the script")
    parser.add_argument("--show", action="store_true", help="print the estimate stored in --out; measure nothing")
    parser.add_argument("--digits-spec", default="0-9", help="with --show: the held-out digits (default 0-9)")
    parser.add_argument("--seeds-spec", default=None, help="with --show: the seeds (default: 3 assumed)")
    parser.add_argument("--out", default=str(OUT))
    args = parser.parse_args()
    if args.show:
        show(Path(args.out), args.digits_spec, args.seeds_spec)
        return
    repeats = 1 if args.quick else args.repeats
    torch.set_num_threads(1)

    counts, counts_source = class_counts(args.data_root)
    digits = list(range(args.digits))
    document = {
        "what": "ESTIMATE of the GPU-hours of the paper's MNIST budget from step costs measured on this CPU",
        "command": "python bench/paper_budget.py" + ("" if args.config == str(PAPER) else f" --config {args.config}")
                   + (f" --data-root {args.data_root}" if args.data_root else "")
                   + ("" if args.repeats == 3 else f" --repeats {args.repeats}") + (" --quick" if args.quick else ""),
        "machine": {"cpu": cpu_name(), "torch": torch.__version__, "torch_threads": 1, "python": platform.python_version()},
        "assumption": {"gpu_tflops": args.gpu_tflops, "speedup": args.speedup, "band_tflops": list(BAND_TFLOPS),
                       "basis": "CPU seconds / speedup" if args.speedup else "counted FLOPs / sustained GPU TFLOP/s",
                       "source": "module docstring of bench/paper_budget.py: H100/H200 peaks 67 TFLOP/s FP32, "
                                 "495 TFLOP/s TF32 dense; 25 assumed sustained (unmeasured: no GPU here)"},
        "class_counts": {"values": list(counts), "source": counts_source},
        "budgets": {},
    }
    fgan_sets = args.fgan_set or list(FGAN_SETS)
    budgets = (("paper", args.config, []), ("paper-fgan", args.config, fgan_sets), ("quality", args.quality_config, []))
    for name, path, sets in budgets:
        config = OMASGANConfig.load(path).with_overrides(["threads=1", *sets])
        side = config.data.image_size or 28
        shape = (1, side, side)
        print(f"[{name}] {Path(path).name} {' '.join(sets)}: {config.network.kind} g_width={config.network.g_width} "
              f"d_width={config.network.d_width} on {shape}, divergence {config.divergence.name}", flush=True)
        costs = {}
        for stage in STAGES:
            costs[stage] = measure_stage(config, stage, shape, repeats)
            c = costs[stage]
            print(f"  {stage:6s} {c.steps_per_work} steps: {c.cpu_s:9.3f} CPU s (repeats "
                  f"{', '.join(f'{v:.3f}' for v in c.cpu_s_repeats)}), {c.flops / 1e12:8.3f} TFLOP, "
                  f"{c.flops / 1e9 / c.cpu_s:6.1f} GFLOP/s", flush=True)
        units = {}
        for digit in digits:
            n = training_normals(config, digit, counts)
            units[digit] = {"n_train": n, "stages": unit_cost(costs, unit_steps(config, n))}
        mean_unit = {stage: {key: statistics.fmean(u["stages"][stage][key] for u in units.values())
                             for key in ("steps", "cpu_s", "flops")} for stage in STAGES}
        document["budgets"][name] = {
            "config": str(Path(path).resolve().relative_to(ROOT)) if Path(path).resolve().is_relative_to(ROOT) else path,
            "overrides": sets,
            "sample_shape": list(shape),
            "measured": {stage: costs[stage].to_json() for stage in STAGES},
            "units": {str(d): u for d, u in units.items()},
            "mean_unit": mean_unit,
        }

    quality = document["budgets"]["quality"]
    summary = {}
    for name, budget in document["budgets"].items():
        unit = budget["mean_unit"]
        cpu_s = sum(unit[s]["cpu_s"] for s in STAGES)
        flops = sum(unit[s]["flops"] for s in STAGES)
        summary[name] = {
            "unit_cpu_hours": cpu_s / 3600,
            "unit_tflop": flops / 1e12,
            "unit_gpu_hours_estimate": gpu_hours(flops, cpu_s, args.gpu_tflops, args.speedup),
            "stage_gpu_hours_estimate": {s: gpu_hours(unit[s]["flops"], unit[s]["cpu_s"], args.gpu_tflops,
                                                      args.speedup) for s in STAGES},
            "stage_implied_speedup": {s: (args.speedup or args.gpu_tflops * 1e12 * unit[s]["cpu_s"] / unit[s]["flops"])
                                      for s in STAGES},
        }
    ratio = {"cpu": summary["paper"]["unit_cpu_hours"] / summary["quality"]["unit_cpu_hours"],
             "flops": summary["paper"]["unit_tflop"] / summary["quality"]["unit_tflop"]}
    units = len(digits) * args.seeds
    studies = {
        f"OMASGAN (KL-WGAN), {args.digits} digits x {args.seeds} seeds": ("paper",),
        f"reproduce's full set: OMASGAN and its f-GAN part, {args.digits} digits x {args.seeds} seeds "
        "(the baselines run on CPUs, not counted)": ("paper", "paper-fgan"),
    }

    def per_unit(names, key):
        return sum(summary[n][key] for n in names)

    document["summary"] = summary
    document["ratio_paper_over_quality"] = ratio
    document["studies"] = {
        label: {"units": units * len(names), "cpu_hours": units * per_unit(names, "unit_cpu_hours"),
                "gpu_hours_estimate": units * per_unit(names, "unit_gpu_hours_estimate"),
                "gpu_hours_estimate_band": {f"{t:g}": units * per_unit(names, "unit_tflop") * 1e12 / (t * 1e12) / 3600
                                            for t in BAND_TFLOPS}}
        for label, names in studies.items()
    }

    print("\nper (digit, seed) unit, mean over digits:")
    for name in document["budgets"]:
        s = summary[name]
        print(f"  {name:10s} {s['unit_cpu_hours']:10.2f} CPU-hours (1 thread, this CPU)  {s['unit_tflop']:12.1f} TFLOP  "
              f"GPU-hours ESTIMATE {s['unit_gpu_hours_estimate']:.3g}")
    for name in ("paper", "paper-fgan"):
        print(f"  {name}, by stage (GPU-hours ESTIMATE; implied speed-up over one CPU thread): " + ", ".join(
            f"{s} {summary[name]['stage_gpu_hours_estimate'][s]:.2f} ({summary[name]['stage_implied_speedup'][s]:.0f}x)"
            for s in STAGES))
    print(f"  paper / quality: {ratio['cpu']:.0f}x the CPU time, {ratio['flops']:.0f}x the FLOPs (measured)")
    stored = stored_stage_walls(Path(args.check_store))
    if stored:
        modelled = quality["mean_unit"]
        check = {s: {"stored_wall_s": stored[s], "modelled_cpu_s": modelled[s]["cpu_s"]} for s in STAGES if s in stored}
        document["quality_check"] = {"store": args.check_store, "stages": check}
        print("  check: the quality budget's stages as modelled here against the stored study's median wall "
              "times: " + ", ".join(f"{s} {v['modelled_cpu_s']:.1f} s vs {v['stored_wall_s']:.1f} s"
                                     for s, v in check.items()))
    basis = f"--speedup {args.speedup:g}" if args.speedup else f"{args.gpu_tflops:g} TFLOP/s sustained"
    for label, entry in document["studies"].items():
        print(f"{label}: {entry['units']} units, {entry['cpu_hours']:.0f} CPU-hours; GPU-hours ESTIMATE "
              f"{entry['gpu_hours_estimate']:.0f} at {basis} (" + ", ".join(
                  f"{h:.0f} at {t} TFLOP/s" for t, h in entry["gpu_hours_estimate_band"].items()) + ")")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(document, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()

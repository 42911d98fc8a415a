"""The budget study: does OMASGAN get better with the training budget, and what does the trend say about
the paper's budget?

    python bench/budget_study.py run --data-root ../shared/data          # resumable; one study per point
    python bench/budget_study.py table                                    # the table, figure and JSON

A budget point is (training normals, Task 1 epochs) laid over bench/configs/mnist_quality.yaml (the
quality budget, 4,000 normals x 8 Task 1 epochs); the other stages keep that config's epochs, so their
steps grow with the normals too.  Each point runs as one ``omasgan seeds`` study over the held-out
digits x seeds (OMASGAN's three detectors: Task 1's critic, Task 3's critic and J), beside an
``omasgan seeds --method knn`` study on the same normals; every point shares one stage cache, so a
point that repeats another's upstream settings takes them from it.  Compute is measured as
normals x Task 1 epochs relative to the quality budget (Task 1 dominates a unit's time).

``run`` starts the points in order, resuming any study that an earlier run left unfinished (``--resume``)
and skipping the finished ones, so the study can be completed across sessions.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
QUALITY = HERE / "configs" / "mnist_quality.yaml"
DEFAULT_POINTS = "4000x8,8000x16,20000x16"
QUALITY_POINT = (4000, 8)


def parse_points(text: str) -> list[tuple[int, int]]:
    """``"4000x8,16000x16"`` -> [(4000, 8), (16000, 16)]."""
    points = []
    for item in (p.strip() for p in text.split(",") if p.strip()):
        normals, _, epochs = item.partition("x")
        try:
            points.append((int(normals), int(epochs)))
        except ValueError:
            raise SystemExit(f"--points {text!r}: {item!r} is not NORMALSxEPOCHS, e.g. 16000x16") from None
    return points


def point_name(normals: int, epochs: int) -> str:
    return f"budget-{normals // 1000}k-e{epochs}" if normals % 1000 == 0 else f"budget-{normals}-e{epochs}"


def relative_compute(normals: int, epochs: int) -> float:
    return normals * epochs / (QUALITY_POINT[0] * QUALITY_POINT[1])


def study_done(folder: Path) -> bool:
    return (folder / "results" / "_manifest.json").is_file()


def run_study(out: Path, name: str, arguments: list[str]) -> None:
    folder = out / name
    if study_done(folder):
        print(f"{name}: finished earlier", flush=True)
        return
    resume = (folder / "study.json").is_file()
    command = [sys.executable, "-m", "omasgan.cli", "seeds", *(["--resume", "--name", name, "--storage", str(out)]
                                                              if resume else [*arguments, "--name", name,
                                                                              "--storage", str(out)])]
    print("$ " + " ".join(command), flush=True)
    subprocess.run(command, check=True)


def cmd_run(args: argparse.Namespace) -> None:
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    common = ["--dataset", "mnist", "--data-root", args.data_root, "--classes", args.digits, "--seeds", args.seeds,
              "--threads", "1", "--parallel-units", str(args.parallel_units), "--cpus-per-unit", "1"]
    for normals, epochs in parse_points(args.points):
        name = point_name(normals, epochs)
        run_study(out, name, [*common, "--config", str(QUALITY), "--set", f"data.max_train={normals}",
                              "--set", f"task1.epochs={epochs}", "--cache", str(out / "cache")])
        run_study(out, f"knn-{normals // 1000}k" if normals % 1000 == 0 else f"knn-{normals}",
                  [*common, "--method", "knn", "--max-train", str(normals)])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run (or resume) every budget point")
    run.add_argument("--data-root", required=True)
    run.add_argument("--points", default=DEFAULT_POINTS, help=f"NORMALSxEPOCHS,... (default {DEFAULT_POINTS})")
    run.add_argument("--digits", default="0,3,8")
    run.add_argument("--seeds", default="0,1")
    run.add_argument("--parallel-units", type=int, default=1)
    run.add_argument("--out", default=str(HERE / "out" / "budget"))
    run.set_defaults(handler=cmd_run)
    args = parser.parse_args(argv)
    args.handler(args)


if __name__ == "__main__":
    main()

"""The budget study: does OMASGAN get better with the training budget, and what does the trend say about
the paper's budget?

    python bench/budget_study.py run --data-root ../shared/data          # resumable; one study per point
    python bench/budget_study.py table                                    # the table, figure and JSON
    python bench/budget_study.py table --out bench/results/budget         # the committed copy

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
import json
import math
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
QUALITY = HERE / "configs" / "mnist_quality.yaml"
DEFAULT_POINTS = "4000x8,8000x16,20000x16"
QUALITY_POINT = (4000, 8)
PAPER_POINT = (54000, 500)
"""The paper's budget in the same units: about 54k normals x 500 Task 1 epochs (843.75 x the quality budget)."""
DETECTORS = ("task1", "task3", "final")
ALARMS = {"task2": ("alarm_ink_auroc", "alarm_contrast_auroc", "alarm_nn_auroc"), "j": ("alarm_ink_spearman",)}


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
        run_study(out, knn_name(normals), [*common, "--method", "knn", "--max-train", str(normals)])


def knn_name(normals: int) -> str:
    return f"knn-{normals // 1000}k" if normals % 1000 == 0 else f"knn-{normals}"


def read_units(folder: Path):
    """Per (digit, seed) unit of a finished study: test AUROC per detector and the alarm figures."""
    import pandas as pd

    from omasgan.distributed.store.result_store import ResultStore

    columns = ["detector", "split", "status", "auroc", "holdout_class", "seed", "stage", "wall_time_s",
               *ALARMS["task2"], *ALARMS["j"]]
    rows = ResultStore(str(folder)).read(columns=columns).to_pandas()
    failed = set(zip(rows[rows.status != "ok"].holdout_class, rows[rows.status != "ok"].seed))
    rows = rows[[(k, s) not in failed for k, s in zip(rows.holdout_class, rows.seed)]]
    test = rows[(rows.split == "test") & rows.detector.notna() & (rows.status == "ok")]
    frame = test.pivot_table(index=["holdout_class", "seed"], columns="detector", values="auroc")
    for stage, names in ALARMS.items():
        stage_rows = rows[(rows.stage == stage) & (rows.status == "ok")].drop_duplicates(["holdout_class", "seed"])
        for name in names:
            frame = frame.join(stage_rows.set_index(["holdout_class", "seed"])[name])
    walls = rows[rows.split != "val"].drop_duplicates(["holdout_class", "seed", "stage"])
    frame = frame.join(walls.groupby(["holdout_class", "seed"]).wall_time_s.sum().rename("unit_wall_s"))
    return frame.sort_index() if len(frame) else pd.DataFrame()


def interval(series) -> dict:
    """Mean with its 95% interval (bootstrap resampling seeds within each digit) of a unit series."""
    from omasgan.distributed.analysis.claims import mean_over_units

    series = series.dropna()
    mean, low, high = mean_over_units(series) if len(series) else (math.nan, math.nan, math.nan)
    return {"mean": mean, "low": low, "high": high, "units": int(len(series))}


def log_fit(points: list[dict], detector: str, target: float, resamples: int = 4000) -> dict:
    """AUROC = a + b log10(compute) fitted by least squares on every unit of every point; the slope and
    the value at ``target`` compute with 95% intervals from a bootstrap that resamples the (digit, seed)
    units (each unit keeps its values at every point: they are paired)."""
    import numpy as np

    units = sorted({u for p in points for u in p["units"][detector]})
    x = np.log10([p["compute"] for p in points])
    table = np.array([[p["units"][detector].get(u, np.nan) for p in points] for u in units], dtype=float)
    keep = ~np.isnan(table).any(axis=1)
    table = table[keep]
    if len(table) < 2 or len(points) < 2:
        return {}

    def fit(rows):
        y = rows.reshape(-1)
        xs = np.tile(x, len(rows))
        slope, intercept = np.polyfit(xs, y, 1)
        return slope, intercept + slope * math.log10(target)

    slope, at_target = fit(table)
    rng = np.random.default_rng(0)
    draws = np.array([fit(table[rng.integers(0, len(table), len(table))]) for _ in range(resamples)])
    return {"slope_per_decade": float(slope), "slope_low": float(np.percentile(draws[:, 0], 2.5)),
            "slope_high": float(np.percentile(draws[:, 0], 97.5)), "at_target": float(at_target),
            "at_target_low": float(np.percentile(draws[:, 1], 2.5)),
            "at_target_high": float(np.percentile(draws[:, 1], 97.5)), "units": int(len(table))}


def _compute_axis(ax, points: list[dict]) -> None:
    """A log axis of relative compute, ticked at the points themselves."""
    ax.set_xscale("log")
    ticks = sorted({p["compute"] for p in points})
    ax.set_xticks(ticks, [f"{t:g}x" for t in ticks])
    ax.minorticks_off()
    ax.set_xlabel("compute: normals x Task 1 epochs, relative to the quality budget (4k x 8)")


def figure(points: list[dict], path: Path) -> None:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6.4, 4.0), dpi=100)
    ax = fig.subplots()
    labels = {"task1": "Task 1 critic", "task3": "Task 3 critic", "final": "J (final)", "knn": "kNN"}
    for i, detector in enumerate(("task1", "task3", "final", "knn")):
        xs = [p["compute"] * (1 + 0.03 * (i - 1.5)) for p in points if detector in p["auroc"]]
        stats = [p["auroc"][detector] for p in points if detector in p["auroc"]]
        if not stats:
            continue
        means = [s["mean"] for s in stats]
        ax.errorbar(xs, means, yerr=[[m - s["low"] for m, s in zip(means, stats)],
                                     [s["high"] - m for m, s in zip(means, stats)]],
                    marker="o", capsize=3, label=labels[detector])
    ax.axhline(0.85, color="tab:red", linestyle="--", linewidth=1, label="paper's J (0.85, at 844x)")
    ax.axhline(0.5, color="gray", linestyle=":", linewidth=1)
    _compute_axis(ax, points)
    ax.set_ylabel("test AUROC (mean, 95% interval)")
    ax.set_ylim(0.2, 1.0)
    ax.set_title("OMASGAN on MNIST held-out digits against the training budget")
    ax.legend(fontsize=8, loc="lower right")
    fig.subplots_adjust(left=0.1, right=0.97, bottom=0.13, top=0.92)
    fig.savefig(path, format="png")


def alarm_figure(points: list[dict], path: Path) -> None:
    """The shortcut alarm along the budget: AUROC of ink, contrast and nearest-neighbour distance alone
    separating B(z) from the training normals (0.5: no shortcut), and Spearman's rho of J's score with ink."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6.4, 4.0), dpi=100)
    ax = fig.subplots()
    names = {"alarm_ink_auroc": "ink AUROC (B vs x)", "alarm_contrast_auroc": "contrast AUROC (B vs x)",
             "alarm_nn_auroc": "NN-distance AUROC (B vs x)", "alarm_ink_spearman": "rho(J score, ink)"}
    for name, label in names.items():
        stats = [p["alarm"][name] for p in points if name in p["alarm"]]
        xs = [p["compute"] for p in points if name in p["alarm"]]
        if not stats:
            continue
        means = [s["mean"] for s in stats]
        ax.errorbar(xs, means, yerr=[[m - s["low"] for m, s in zip(means, stats)],
                                     [s["high"] - m for m, s in zip(means, stats)]], marker="o", capsize=3, label=label)
    ax.axhline(0.5, color="gray", linestyle=":", linewidth=1)
    ax.axhline(0.0, color="gray", linestyle="-", linewidth=0.5)
    _compute_axis(ax, points)
    ax.set_ylabel("mean over units, 95% interval")
    ax.set_ylim(-1.0, 1.0)
    ax.set_title("the ink shortcut along the budget (AUROC far from 0.5: a shortcut)")
    ax.legend(fontsize=8, loc="lower left")
    fig.subplots_adjust(left=0.12, right=0.97, bottom=0.13, top=0.92)
    fig.savefig(path, format="png")


def cmd_table(args: argparse.Namespace) -> None:
    """Per point: each detector's mean test AUROC with its interval, the alarm's figures and the unit time;
    paired comparisons of the largest point with the smallest (detectors and alarm figures); the log-compute fit and what it says at
    the paper's compute; a figure and a JSON file."""
    from omasgan.distributed.analysis.statistics import paired_comparison

    root = Path(args.studies)
    points = []
    for normals, epochs in parse_points(args.points):
        folder = root / point_name(normals, epochs)
        if not study_done(folder):
            print(f"{folder.name}: not finished; left out")
            continue
        frame = read_units(folder)
        point = {"name": folder.name, "normals": normals, "task1_epochs": epochs,
                 "compute": relative_compute(normals, epochs), "auroc": {}, "alarm": {}, "units": {},
                 "unit_wall_s_median": float(frame["unit_wall_s"].median())}
        for detector in DETECTORS:
            if detector in frame:
                point["auroc"][detector] = interval(frame[detector])
                point["units"][detector] = {f"{k},{s}": float(v) for (k, s), v in frame[detector].dropna().items()}
        knn = root / knn_name(normals)
        if study_done(knn):
            knn_frame = read_units(knn)
            point["auroc"]["knn"] = interval(knn_frame["knn"])
            point["units"]["knn"] = {f"{k},{s}": float(v) for (k, s), v in knn_frame["knn"].dropna().items()}
        for names in ALARMS.values():
            for name in names:
                if name in frame:
                    point["alarm"][name] = interval(frame[name])
                    point["units"][name] = {f"{k},{s}": float(v) for (k, s), v in frame[name].dropna().items()}
        points.append(point)
    if not points:
        raise SystemExit(f"no finished budget point under {root}")
    print(f"{'point':>16} {'compute':>8} " + " ".join(f"{d:>22}" for d in (*DETECTORS, "knn")))
    for p in points:
        cells = [f"{p['auroc'][d]['mean']:.3f} [{p['auroc'][d]['low']:.3f}, {p['auroc'][d]['high']:.3f}]"
                 if d in p["auroc"] else "-" for d in (*DETECTORS, "knn")]
        print(f"{p['name']:>16} {p['compute']:>7.1f}x " + " ".join(f"{c:>22}" for c in cells))
    print("shortcut alarm (mean over units): " + "; ".join(
        f"{p['name']}: ink {p['alarm'].get('alarm_ink_auroc', {}).get('mean', math.nan):.3f}, contrast "
        f"{p['alarm'].get('alarm_contrast_auroc', {}).get('mean', math.nan):.3f}, nn "
        f"{p['alarm'].get('alarm_nn_auroc', {}).get('mean', math.nan):.3f}, J-ink rho "
        f"{p['alarm'].get('alarm_ink_spearman', {}).get('mean', math.nan):+.3f}" for p in points))
    document = {"command": "python bench/budget_study.py run --data-root DATA && python bench/budget_study.py table",
                "compute_unit": "normals x Task 1 epochs / (4000 x 8)", "paper_compute": relative_compute(*PAPER_POINT),
                "points": points, "comparisons": {}, "fits": {}}
    import pandas as pd

    first, last = points[0], points[-1]
    alarm_names = [name for names in ALARMS.values() for name in names]
    for detector in (*DETECTORS, "knn", *alarm_names):
        if first is not last and detector in first["units"] and detector in last["units"]:
            def series(p):
                items = {tuple(int(v) for v in k.split(",")): x for k, x in p["units"][detector].items()}
                return pd.Series(items).rename_axis(["holdout_class", "seed"]).sort_index()
            c = paired_comparison(series(last), series(first), name_a=last["name"], name_b=first["name"])
            document["comparisons"][detector] = c.as_dict()
            print(f"{detector}: {c.line()}")
        if len(points) >= 2 and detector in DETECTORS:
            fit = log_fit([p for p in points if detector in p["units"]], detector, relative_compute(*PAPER_POINT))
            document["fits"][detector] = fit
            if fit:
                print(f"{detector}: slope {fit['slope_per_decade']:+.3f} per 10x compute "
                      f"[{fit['slope_low']:+.3f}, {fit['slope_high']:+.3f}]; the line at the paper's "
                      f"{relative_compute(*PAPER_POINT):.0f}x: {fit['at_target']:.3f} "
                      f"[{fit['at_target_low']:.3f}, {fit['at_target_high']:.3f}] (an extrapolation)")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    figure(points, out / "budget.png")
    alarm_figure(points, out / "budget-alarm.png")
    (out / "budget.json").write_text(json.dumps(document, indent=2))
    print(f"wrote {out / 'budget.json'}, {out / 'budget.png'} and {out / 'budget-alarm.png'}")


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
    table = sub.add_parser("table", help="the table, the figure and the JSON of the finished points")
    table.add_argument("--points", default=DEFAULT_POINTS)
    table.add_argument("--studies", default=str(HERE / "out" / "budget"), help="where `run` put the studies")
    table.add_argument("--out", default=str(HERE / "out" / "budget"), help="where budget.json and budget.png go")
    table.set_defaults(handler=cmd_table)
    args = parser.parse_args(argv)
    args.handler(args)


if __name__ == "__main__":
    main()

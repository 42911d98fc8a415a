"""Quality benchmark: MNIST leave-one-out, OMASGAN against baselines under one protocol.

    python bench/quality.py --data-root ../shared/data                  # 10 digits x seeds 0-2, resumable
    python bench/quality.py --data-root ../shared/data --quick          # digits 0,1 x seed 0 (< 20 min)
    python bench/quality.py --data-root ../shared/data --best-config studies/S/report/best-config.json
    python bench/quality.py --table-only                                # print the table of what is there

Every (method, digit, seed) unit is trained on the same 4,000 normal training images
(bench/configs/mnist_quality.yaml), its threshold chosen on the validation split, and the test
split scored once.  Methods:

- ``omasgan-paper``: OMASGAN with the paper's mu, nu, alpha..delta, zeta (the budget config);
- ``omasgan-best``: the config a search chose on the validation split (``--best-config``, from
  ``omasgan report``'s best-config.json), when given;
- ``knn``, ``iforest``, ``ae``: the baselines of ``omasgan.baselines``.

Results accumulate as Parquet rows under ``--out`` (default bench/results/quality/, one study folder
per method, readable by ``omasgan results`` and ``omasgan report``); a unit whose rows are there
with status ok is skipped, so an interrupted run continues where it stopped and the table can be
completed across sessions.  OMASGAN units go stage by stage through a stage cache (bench/out/,
ignored by git), so a unit interrupted mid-way resumes at its next stage.  Per-sample scores are
not kept (they would make the committed set large).  At the end it prints, per digit and on
average, the test AUROC of each method and OMASGAN stage (mean +/- SD over seeds), writes
quality.json and the report next to the results.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import pandas as pd
import pyarrow.dataset as ds
from omasgan.atomic_write import write_file_atomic
from omasgan.baselines import BaselineConfig
from omasgan.config import STAGES, default_config, read_config_file
from omasgan.distributed.studies.baseline import run_baseline_unit
from omasgan.distributed.store.result_store import ResultStore
from omasgan.distributed.studies.preparation import NAME_PATTERN, parse_int_list
from omasgan.distributed.store.study_folder import STUDY_FILE, StudySpec
from omasgan.distributed.studies.units import UnitTask, run_unit
from omasgan.provenance import library_versions

HERE = Path(__file__).parent
BASELINES = ("knn", "iforest", "ae")
PAPER = {"task1": 0.59, "task3": 0.71, "final": 0.85}
# the autoencoder's budget: 20 epochs of a width-16 conv AE on the 4,000 images (about a minute)
AE_SETTINGS = ["baseline.epochs=20", "baseline.width=16"]


def study(out: Path, name: str, kind: str, base: dict, digits: list[int], seeds: list[int]) -> Path:
    """The study folder of one method (created, or its class / seed lists extended)."""
    folder = out / name
    if (folder / STUDY_FILE).is_file():
        spec = StudySpec.read(folder)
        spec.classes = sorted(set(spec.classes) | set(digits))
        spec.seeds = sorted(set(spec.seeds) | set(seeds))
    else:
        spec = StudySpec(name=name, kind=kind, dataset="mnist", classes=digits, seeds=seeds, base_config=base,
                         options={"benchmark": "bench/quality.py"})
    spec.write(folder)
    return folder


def done_units(folder: Path, field: str, value: str) -> set[tuple[int, int]]:
    """(digit, seed) units with an ok row whose ``field`` is ``value`` (OMASGAN: stage j; a baseline:
    its method)."""
    if not (folder / "results").is_dir():
        return set()
    rows = ResultStore(str(folder)).read(filter=(ds.field(field) == value) & (ds.field("status") == "ok"))
    frame = rows.select(["holdout_class", "seed"]).to_pandas()
    return {(int(k), int(s)) for k, s in frame.itertuples(index=False)}


def run_omasgan_unit(folder: Path, name: str, base: dict, digit: int, seed: int, cache: Path) -> float:
    """All four stages of one unit through the stage cache ``cache``, shared by the columns: its keys
    hash everything a stage depends on, so a variant column takes the paper column's Task 1 (and Task 2
    when its variant leaves Task 2 alone) for the same digit, seed and thread count."""
    started = time.perf_counter()
    for stage in STAGES:
        task = UnitTask(study=name, study_kind="seeds", trial_id=name, base_config=base, params={}, holdout=digit,
                        seed=seed, stage=stage, cache_root=str(cache), store_root=str(folder),
                        write_scores=False)
        outcome = run_unit(task)
        if outcome.status != "ok":
            print(f"  {name} digit {digit} seed {seed}: {stage} failed: {outcome.error}", flush=True)
            break
    return time.perf_counter() - started


def run_baseline(folder: Path, method: str, base: dict, digit: int, seed: int) -> float:
    from omasgan.config import OMASGANConfig

    config = OMASGANConfig.from_dict(base).with_overrides({"data.holdout": digit, "seed": seed})
    baseline = BaselineConfig(method=method).with_overrides(AE_SETTINGS if method == "ae" else [])
    started = time.perf_counter()
    summary = run_baseline_unit(str(folder), "baselines", config, baseline, study_kind="baseline",
                                trial_id=method, write_scores=False)
    if summary["status"] != "ok":
        print(f"  {method} digit {digit} seed {seed} failed: {summary['error']}", flush=True)
    return time.perf_counter() - started


def table(out: Path, seeds: list[int] | None = None) -> pd.DataFrame:
    """Test AUROC per digit and column (OMASGAN stages and baselines): mean +/- SD over seeds
    (over ``seeds`` only, when given)."""
    frames = [ResultStore(str(f)).read().to_pandas() for f in sorted(out.iterdir()) if (f / STUDY_FILE).is_file()]
    rows = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    if rows.empty:
        return rows
    ok = rows[rows.status == "ok"]
    finished = set(zip(*[ok[ok.stage.isin(["j", "baseline"])][c] for c in ("study", "holdout_class", "seed")]))
    unit = list(zip(ok.study, ok.holdout_class, ok.seed))
    ok = ok[[u in finished for u in unit]]  # a unit interrupted mid-way enters once it is finished
    test = ok[(ok.split == "test") & ok.detector.notna()]
    if seeds is not None:
        test = test[test.seed.isin(seeds)]
    test = test.assign(column=[m if m != "omasgan" else f"{s}:{d}" for m, s, d in
                               zip(test.method, test.study, test.detector)])
    stats = test.groupby(["holdout_class", "column"]).auroc.agg(["mean", "std", "count"]).reset_index()
    return stats


def print_table(stats: pd.DataFrame) -> dict:
    if stats.empty:
        print("no results yet")
        return {}
    order = sorted(stats.column.unique(), key=lambda c: (not c.startswith("omasgan"), c))
    print("test AUROC, mean +/- SD over seeds (n = seeds); columns: OMASGAN study:detector, then the baselines")
    print(f"{'digit':>6}  " + "  ".join(f"{c:>22}" for c in order))
    summary: dict = {"per_digit": {}, "mean": {}}
    for digit in sorted(stats.holdout_class.unique()):
        cells = []
        for column in order:
            row = stats[(stats.holdout_class == digit) & (stats.column == column)]
            if row.empty:
                cells.append("-")
                continue
            mean, sd, n = row["mean"].iloc[0], row["std"].iloc[0], int(row["count"].iloc[0])
            summary["per_digit"].setdefault(str(digit), {})[column] = {"mean": mean, "sd": sd, "n": n}
            cells.append(f"{mean:.3f} +/- {sd:.3f} ({n})" if n > 1 else f"{mean:.3f} (1 seed)")
        print(f"{digit:>6}  " + "  ".join(f"{c:>22}" for c in cells))
    means = []
    for column in order:
        per_digit = stats[stats.column == column]
        summary["mean"][column] = {"mean": float(per_digit["mean"].mean()), "digits": int(len(per_digit)),
                                   "mean_sd": float(per_digit["std"].mean())}
        means.append(f"{per_digit['mean'].mean():>12.3f} ({len(per_digit)} digits)")
    print(f"{'mean':>6}  " + "  ".join(f"{m:>22}" for m in means))
    print(f"paper (10 digits, 500 epochs on 54k images): Task 1 {PAPER['task1']}, Task 3 {PAPER['task3']}, "
          f"final J {PAPER['final']}")
    return summary


def read_json(path: Path) -> dict:
    """The JSON object in ``path``, or {} when there is none."""
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, ValueError):
        return {}


def merge_timings(earlier: list[dict], latest: list[dict]) -> list[dict]:
    """Unit timings of every run so far: one entry per (method, digit, seed), the latest run's wins
    (a later run times only the units it trained, so earlier runs' timings must be kept)."""
    merged = {(t["method"], t["digit"], t["seed"]): t for t in earlier}
    merged.update({(t["method"], t["digit"], t["seed"]): t for t in latest})
    return [merged[k] for k in sorted(merged)]


def stored_timings(document: dict) -> list[dict]:
    """The unit timings a quality.json holds (``timings_this_run`` in files of older runs)."""
    return document.get("timings", document.get("timings_this_run", []))


def record_timing(path: Path, timing: dict) -> None:
    """Add one unit's timing to the ``timings`` of quality.json, leaving the rest as it is."""
    document = read_json(path)
    document["timings"] = merge_timings(stored_timings(document), [timing])
    write_json(path, document)


def write_json(path: Path, document: dict) -> None:
    """Replace ``path`` with ``document`` as indented JSON, atomically (:func:`omasgan.atomic_write.write_file_atomic`)."""
    text = json.dumps(document, indent=2, default=float)
    write_file_atomic(path, lambda handle: handle.write(text.encode()))


def omasgan_columns(args: argparse.Namespace, base) -> dict[str, dict]:
    """The OMASGAN columns: ``omasgan-paper`` (the benchmark config), ``omasgan-best`` (--best-config)
    and every ``--column NAME=FILE``: a partial config laid over the benchmark config, with its data
    root, training-set size and thread count forced to the benchmark's (same images, same identity)."""
    files = {"omasgan-best": args.best_config} if args.best_config else {}
    for item in args.column or []:
        name, _, path = item.partition("=")
        if not name or not path or not NAME_PATTERN.match(name) or name in ("omasgan-paper", *BASELINES):
            raise SystemExit(f"bad --column {item!r}: give NAME=CONFIG_FILE with a new name of letters, digits, -, _")
        files[name] = path
    columns = {"omasgan-paper": base.to_dict()}
    for name, path in files.items():
        config = base.merged(read_config_file(path)).with_overrides(
            {"data.data_root": base.data.data_root, "data.max_train": base.data.max_train, "threads": base.threads})
        columns[name] = config.to_dict()
    return columns


def folder_name(column: str, threads: int) -> str:
    """The study folder of an OMASGAN column.  The runs before a unit's thread count was part of its
    identity used 2 threads and live in folders named after the column alone; a run at another thread
    count gets its own folder (``omasgan-paper-t1``), so it never overwrites or skips their units."""
    return column if threads == 2 else f"{column}-t{threads}"


def run_job(job: tuple) -> tuple[tuple, float]:
    """One (method, digit, seed) unit in a worker process; returns the job and its seconds."""
    kind, folder, name, base, digit, seed, cache = job
    if kind == "omasgan":
        seconds = run_omasgan_unit(Path(folder), name, base, digit, seed, Path(cache))
    else:
        seconds = run_baseline(Path(folder), name, base, digit, seed)
    return job, seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-root", default="../shared/data")
    parser.add_argument("--digits", default="0-9")
    parser.add_argument("--seeds", default="0-2")
    parser.add_argument("--methods", default="omasgan-paper,knn,iforest,ae",
                        help="comma list of omasgan-paper, omasgan-best, knn, iforest, ae and --column names")
    parser.add_argument("--best-config", help="a search's best-config.json (adds the omasgan-best method)")
    parser.add_argument("--column", action="append", metavar="NAME=FILE",
                        help="an OMASGAN column of a (partial) config file over the benchmark config (repeatable)")
    parser.add_argument("--config", default=str(HERE / "configs" / "mnist_quality.yaml"))
    parser.add_argument("--quick", action="store_true", help="digits 0,1 x seed 0")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads of every unit (default 1; part of a unit's identity)")
    parser.add_argument("--jobs", type=int, default=1, help="units trained at once, one process each (default 1)")
    parser.add_argument("--out", default=str(HERE / "results" / "quality"))
    parser.add_argument("--cache", default=str(HERE / "out" / "quality-cache" / "shared"),
                        help="the stage cache every OMASGAN column shares (default bench/out/quality-cache/shared)")
    parser.add_argument("--table-only", action="store_true",
                        help="print the table (of --seeds only) and write the report, training nothing")
    parser.add_argument("--no-report", action="store_true")
    args = parser.parse_args()

    digits, seeds = ([0, 1], [0]) if args.quick else (parse_int_list(args.digits, "--digits"), parse_int_list(args.seeds, "--seeds"))
    if args.threads < 1 or args.jobs < 1:
        print(f"bad --threads {args.threads} / --jobs {args.jobs}: both must be >= 1", file=sys.stderr)
        return 2
    base = default_config("mnist").merged(read_config_file(args.config)).with_overrides(
        {"data.data_root": args.data_root, "threads": args.threads})
    columns = omasgan_columns(args, base)
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    methods += [c for c in columns if c not in methods and c != "omasgan-paper"]
    unknown = [m for m in methods if m not in (*columns, *BASELINES)]
    if unknown:
        print(f"bad --methods {unknown}: choose among {', '.join([*columns, *BASELINES])} "
              "(omasgan-best needs --best-config, others --column NAME=FILE)", file=sys.stderr)
        return 2
    out, cache = Path(args.out), Path(args.cache)
    out.mkdir(parents=True, exist_ok=True)

    timings: list[dict] = []
    if not args.table_only:
        folders = {m: study(out, folder_name(m, args.threads), "seeds", columns[m], digits, seeds)
                   for m in methods if m in columns}
        if any(m in BASELINES for m in methods):
            folders["baselines"] = study(out, "baselines", "baseline", columns["omasgan-paper"], digits, seeds)
        jobs = []
        for seed in seeds:  # seed-major: a complete one-seed table comes first
            for digit in digits:
                for method in methods:
                    folder = folders["baselines" if method in BASELINES else method]
                    done = done_units(folder, "method", method) if method in BASELINES else done_units(folder, "stage", "j")
                    if (digit, seed) in done:
                        continue
                    if method in BASELINES:
                        jobs.append(("baseline", str(folder), method, columns["omasgan-paper"], digit, seed, str(cache)))
                    else:
                        jobs.append(("omasgan", str(folder), folder.name, columns[method], digit, seed, str(cache)))
        print(f"{len(jobs)} unit(s) to train, {args.jobs} at once, {args.threads} thread(s) each", flush=True)
        for job, seconds in run_jobs(jobs, args.jobs):
            method = job[2] if job[0] == "baseline" else next(m for m in folders if str(folders[m]) == job[1])
            timings.append({"method": method, "digit": job[4], "seed": job[5], "seconds": round(seconds, 1),
                            "threads": args.threads, "jobs": args.jobs})
            record_timing(out / "quality.json", timings[-1])  # kept even if the run is stopped
            print(f"  {method} digit {job[4]} seed {job[5]}: {seconds:.0f} s", flush=True)

    summary = print_table(table(out, seeds if args.table_only else None))
    previous = read_json(out / "quality.json")
    document = {
        "benchmark": "MNIST leave-one-out quality (bench/quality.py)",
        "config": args.config, "best_config": args.best_config or previous.get("best_config"),
        "columns": {**previous.get("columns", {}), **{c: f for c, f in (i.partition("=")[::2] for i in args.column or [])}},
        "threads": args.threads, "jobs": args.jobs,
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count()},
        "versions": library_versions(), "summary": summary,
        "timings": stored_timings(previous),  # this run's units were recorded as each one finished
        "timings_this_run": timings,
    }
    write_json(out / "quality.json", document)
    if not args.no_report and summary:
        from omasgan.distributed.report.sections import write_report

        print(f"report: {write_report(out, out=out / 'report')}")
    return 0


def run_jobs(jobs: list[tuple], parallel: int):
    """Yield (job, seconds) as units finish: in this process for one job at a time, else in a pool
    of ``parallel`` spawned processes (each unit sets its own torch thread count)."""
    if parallel == 1:
        for job in jobs:
            print(f"{job[2]} digit {job[4]} seed {job[5]} ...", flush=True)
            yield run_job(job)
        return
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed

    with ProcessPoolExecutor(parallel, mp_context=multiprocessing.get_context("spawn")) as pool:
        for future in as_completed([pool.submit(run_job, job) for job in jobs]):
            yield future.result()


if __name__ == "__main__":
    sys.exit(main())

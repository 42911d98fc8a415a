"""How the study system's driver-side cost grows with the number of trials.

    nice -n 10 python bench/study_scale.py --label after --sizes 100,1000,5000
    python bench/study_scale.py --label quick --sizes 20,60        # a smoke run (about a minute)

For each size N this runs a real ``omasgan search`` (digits, classes 0-9 x seeds 0-2 = 30 units per
trial, ``--space full``: the real JournalOptunaSearch with seeded multivariate TPE, the real Tune
controller, the real trial coordinator with its durable records and checkpoints, the real result
store, the end-of-study clean-up and the final table) in a fresh driver process.  Only the units are
synthetic: instead of training, each (class, seed) unit of a round draws its metrics from a seeded
generator and writes its rows and per-sample scores (digits' 119 validation and 540 test samples) of
the real schema through ``ResultStore``, inline in the trial's process, so a trial costs the driver
what a real one does and next to no compute.  Afterwards it times ``omasgan results`` and ``omasgan
report`` on the study folder, each in its own process.

Per size it records: driver wall time and CPU time (the driver process only, not Ray's workers) per
trial, the TPE sampler's share of it, the driver's peak resident memory, the wall time of the
end-of-study compaction (always as Ray tasks here, as a big study runs it, so its CPU is the
workers'), the store files written and the files left for readers, and the wall time and peak
memory of ``omasgan results`` and ``omasgan report``.  It prints a table
and the growth exponent of each figure with the trial count (the log-log slope: 1.0 = linear total
cost, i.e. flat per trial; 2.0 = quadratic), and writes ``bench/results/study_scale-<label>.json``.
Study folders go to ``bench/out/study_scale/<label>/`` and are deleted after each size unless
``--keep``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
SCORE_SIZES = {"val": (119, 6), "test": (540, 54)}
"""(samples, anomalies) of digits' validation and test splits, with one class held out."""
STAGE_DETECTORS = {"task1": "task1", "task2": None, "task3": "task3", "j": "final"}


# ---- the synthetic unit (runs in the trial's process) ----------------------------------------------

_CONFIGS: dict = {}


def synthetic_unit(task):
    """One unit round with made-up metrics: the rows and scores a real unit writes, of the real schema,
    through the real ResultStore; returns the UnitOutcome a real unit returns.  A unit's config is
    built once per trial process and reused by its later rounds (a real unit builds it every round:
    a few ms of the unit's, not the driver's, time)."""
    import random
    import zlib

    import numpy as np

    from omasgan.distributed.store import result_store as rs
    from omasgan.distributed.studies.units import UnitOutcome
    from omasgan.metrics import METRIC_NAMES

    identity = (task.trial_id, task.holdout, task.seed)
    if identity not in _CONFIGS:
        if len(_CONFIGS) > 1000:
            _CONFIGS.clear()
        _CONFIGS[identity] = task.config()
    config = _CONFIGS[identity]
    key = task.key(config)
    store = rs.ResultStore(task.store_root)
    seed = zlib.crc32(f"{json.dumps(task.params, sort_keys=True)}|{task.holdout}|{task.seed}|{task.stage}".encode())
    rng = random.Random(seed)
    detector = STAGE_DETECTORS[task.stage]
    outcome = UnitOutcome(task.holdout, task.seed, task.stage, "ok", wall_time_s=rng.uniform(5.0, 60.0), trained=1,
                          cache={"cache_hits": 0, "cache_misses": 1, "cache_waits": 0},
                          losses={f"{task.stage}_loss": rng.random()})
    evaluation = None
    if detector is not None:
        metrics = {split: {m: rng.uniform(0.3, 0.95) for m in METRIC_NAMES} for split in ("val", "test")}
        evaluation = {"detector": detector, "threshold": rng.gauss(0.0, 1.0), "metrics": metrics}
        outcome.detector, outcome.metrics = detector, metrics
        if hasattr(rs, "score_splits"):  # the store decides what a unit keeps (--scores)
            splits = rs.score_splits(task.scores, final=detector == "final")
        else:  # the code before --scores kept validation and test scores of every detector
            splits = ("val", "test") if task.write_scores else ()
        if splits:
            generator = np.random.default_rng(seed)
            scores = {s: generator.normal(size=SCORE_SIZES[s][0]) for s in splits}
            labels = {s: (np.arange(SCORE_SIZES[s][0]) < SCORE_SIZES[s][1]).astype(int) for s in splits}
            store.write_scores(key, detector, scores, labels)
    store.write_stage_rows(key, task.stage, config=config, evaluation=evaluation, wall_time_s=outcome.wall_time_s,
                           device="cpu", sweep=task.sweep)
    return outcome


def install_synthetic_units():
    """Make the study trainable run its units inline with :func:`synthetic_unit` instead of training
    them as Ray tasks (a Ray worker_process_setup_hook, so every trial process has it)."""
    import ray

    from omasgan.distributed.studies import trainable as study_trainable

    class Inline:
        def options(self, **_):
            return self

        def remote(self, task, *_):
            return ray.put(synthetic_unit(task))

    study_trainable.UNIT_TASKS = {"cpu": Inline(), "gpu": Inline()}


# ---- one study in a fresh driver process -----------------------------------------------------------

def driver(args: argparse.Namespace) -> None:
    """Run the search in this process and write its driver figures to ``args.stats``."""
    import logging

    import ray

    os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    started = time.perf_counter()
    ray.init(num_cpus=(os.cpu_count() or 1) + 1, include_dashboard=False, log_to_driver=False,
             logging_level=logging.WARNING, runtime_env={"worker_process_setup_hook": install_synthetic_units})
    from omasgan.cli import main as omasgan_main
    from omasgan.distributed.studies import runner as study_runner

    timings: dict[str, float] = {"sampler_s": 0.0, "sampler_cpu_s": 0.0}
    from omasgan.distributed.studies.journal_search import JournalOptunaSearch

    suggest = JournalOptunaSearch.suggest

    def timed_suggest(self, trial_id):  # the sampler's share of the driver (TPE grows with the trials)
        wall, cpu = time.perf_counter(), time.process_time()
        try:
            return suggest(self, trial_id)
        finally:
            timings["sampler_s"] += time.perf_counter() - wall
            timings["sampler_cpu_s"] += time.process_time() - cpu
    JournalOptunaSearch.suggest = timed_suggest
    if hasattr(study_runner, "RAY_COMPACTION_MIN_FILES"):
        study_runner.RAY_COMPACTION_MIN_FILES = 0  # every size compacts as Ray tasks, as a big study does
    compact = getattr(study_runner, "compact_study", None)
    if compact is not None:  # time the end-of-study compaction on its own (its work runs in Ray workers)
        def timed_compact(*a, **k):
            begin = time.perf_counter()
            try:
                return compact(*a, **k)
            finally:
                timings["compaction_s"] = time.perf_counter() - begin
        study_runner.compact_study = timed_compact
    command = ["search", "--dataset", "digits", "--classes", args.classes, "--seeds", args.seeds, "--space", "full",
               "--trials", str(args.trials), "--storage", args.storage, "--name", args.name,
               "--parallel-units", "1", "--max-concurrent", str(args.max_concurrent)] + args.extra
    profiler = None
    if args.profile:
        import cProfile

        profiler = cProfile.Profile()
        profiler.enable()
    code = omasgan_main(command)
    if profiler is not None:
        profiler.disable()
        profiler.dump_stats(args.profile)
    wall = time.perf_counter() - started
    usage = resource.getrusage(resource.RUSAGE_SELF)
    stats = {"exit_code": code, "wall_s": wall, "cpu_s": usage.ru_utime + usage.ru_stime,
             "peak_rss_mib": usage.ru_maxrss / 1024, **timings}
    Path(args.stats).write_text(json.dumps(stats))
    ray.shutdown()


# ---- the searcher alone, in a fresh process ------------------------------------------------------------

def searcher_driver(args: argparse.Namespace) -> None:
    """Drive the study's real searcher (ConcurrencyLimiter(JournalOptunaSearch), seeded multivariate
    TPE over ``--space full``, the Optuna journal on disk) the way Tune does, without Tune: per trial
    one suggest, four results and a completion.  Writes the time spent in suggest (the sampler) and
    in results and completions (the wrapper and the journal) to ``args.stats``."""
    from omasgan.config import default_config
    from omasgan.distributed.studies.preparation import RunOptions, prepare_study
    from omasgan.distributed.studies.experiments import search_experiment
    from omasgan.distributed.store.study_folder import StudySpec
    from omasgan.distributed.analysis.objective import STUDY_OBJECTIVE

    trials = int(args.trials)
    spec = StudySpec(name=args.name, kind="search", dataset="digits", classes=expand(args.classes),
                     seeds=expand(args.seeds), base_config=default_config("digits", holdout=0).to_dict(),
                     options={"space": "full", "trials": trials, "scheduler": "fifo", "sampler_seed": 0,
                              "sampler_window": int(args.window), "with_optimizer": False, "with_batch": False,
                              "scores": "test", "objective": "mean"})
    options = RunOptions(storage=args.storage, max_concurrent=int(args.max_concurrent))
    study = prepare_study(spec, options)  # holds the study's driver lease until the process ends
    searcher = search_experiment(StudySpec.read(study.paths.control), study.options, study.paths).make_searcher()
    searcher.set_search_properties(STUDY_OBJECTIVE, "max", {})
    spent = {"suggest_s": 0.0, "result_s": 0.0, "complete_s": 0.0, "suggest_cpu_s": 0.0, "result_cpu_s": 0.0}
    suggested = open(Path(args.storage) / "suggested.jsonl", "w")  # each trial's config, for _synthesize
    blocks = []  # seconds of results + completions per tenth of the trials
    suggest_blocks = []  # CPU seconds of suggest per tenth of the trials
    block_start = time.perf_counter()
    block_spent = block_suggest = 0.0
    cpu_start = time.process_time()
    for i in range(trials):
        trial_id = f"t{i:06d}"
        begin, cpu = time.perf_counter(), time.process_time()
        config = searcher.suggest(trial_id)
        spent["suggest_s"] += time.perf_counter() - begin
        spent["suggest_cpu_s"] += time.process_time() - cpu
        block_suggest += time.process_time() - cpu
        assert config is not None, f"the searcher gave no config for trial {i}"
        value = 0.5 + 0.4 * math.sin(i)
        suggested.write(json.dumps({"trial_id": trial_id, "params": config, "objective": value}) + "\n")
        begin, cpu = time.perf_counter(), time.process_time()
        for step in range(1, 5):
            searcher.on_trial_result(trial_id, {STUDY_OBJECTIVE: value, "training_iteration": step})
        middle = time.perf_counter()
        searcher.on_trial_complete(trial_id, {STUDY_OBJECTIVE: value, "training_iteration": 4})
        end = time.perf_counter()
        spent["result_cpu_s"] += time.process_time() - cpu
        spent["result_s"] += middle - begin
        spent["complete_s"] += end - middle
        block_spent += end - begin
        if (i + 1) % max(1, trials // 10) == 0:
            blocks.append(block_spent)
            suggest_blocks.append(block_suggest)
            block_spent = block_suggest = 0.0
    suggested.close()
    usage = resource.getrusage(resource.RUSAGE_SELF)
    stats = {"trials": trials, "sampler_window": int(args.window), **spent, "cpu_s": time.process_time() - cpu_start,
             "wall_s": time.perf_counter() - block_start, "peak_rss_mib": usage.ru_maxrss / 1024,
             "result_and_complete_ms_per_trial_by_tenth": [1e3 * b / max(1, trials // 10) for b in blocks],
             "suggest_cpu_ms_per_trial_by_tenth": [1e3 * b / max(1, trials // 10) for b in suggest_blocks]}
    Path(args.stats).write_text(json.dumps(stats))


def run_searcher_size(trials: int, args: argparse.Namespace, root: Path, keep: bool = False) -> dict:
    """The searcher alone for ``trials`` trials; with ``keep`` its study folder (study.json and the
    Optuna journal of ``trials`` told trials) stays at ``root/searcher-n<trials>/searcher<trials>``."""
    storage = root / f"searcher-n{trials}"
    shutil.rmtree(storage, ignore_errors=True)
    stats_file = root / f"searcher-{trials}.json"
    print(f"[searcher, {trials} trials] ...", flush=True)
    measured([sys.executable, str(Path(__file__).resolve()), "_searcher", "--trials", str(trials), "--storage",
              str(storage), "--name", f"searcher{trials}", "--max-concurrent", str(args.max_concurrent),
              "--classes", args.classes, "--seeds", args.seeds, "--window", str(args.sampler_window),
              "--stats", str(stats_file)], root / f"searcher-{trials}.log")
    if not keep:
        shutil.rmtree(storage, ignore_errors=True)
    record = json.loads(stats_file.read_text())
    print(json.dumps(record), flush=True)
    return record


SEARCHER_FIGURES = {
    "searcher suggest (TPE)": lambda r: r["suggest_s"],
    "searcher results+completions": lambda r: r["result_s"] + r["complete_s"],
    "searcher results+completions CPU": lambda r: r.get("result_cpu_s", float("nan")),
}


# ---- the readers on a big study: its store synthesised in compacted form ------------------------------

def synthesize_store(args: argparse.Namespace) -> None:
    """Fill the store of the searcher's study ``args.folder`` with the rows and scores its trials would
    have written (every trial x the spec's classes x seeds: Task 1, Task 3 and J rows per split, a Task 2
    row, J's test scores as ``--scores test`` keeps them), in the form the compaction leaves: one part
    per partition and table and a committed manifest.  The rows come from the real ``ResultStore`` row
    builder with each trial's suggested config; only the metric values and scores are made up.
    (Writing the same rows as the units do, a small file per unit and stage, and compacting them,
    would take hours at 5,000 trials on this machine; the readers see the same tables either way.)"""
    import uuid

    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    from omasgan.distributed.store.manifest import MANIFEST_FORMAT
    from omasgan.distributed.store.result_schema import table_schema
    from omasgan.distributed.store.result_store import ResultStore, UnitKey
    from omasgan.distributed.store.study_folder import StudySpec
    from omasgan.metrics import METRIC_NAMES
    from omasgan.trainables import trial_config

    folder = Path(args.folder)
    spec = StudySpec.read(folder)
    store = ResultStore(str(folder))
    suggested = [json.loads(line) for line in (folder.parent / "suggested.jsonl").read_text().splitlines()]
    started, cpu = time.perf_counter(), time.process_time()
    token, rng = uuid.uuid4().hex[:8], np.random.default_rng(0)
    units = [(k, s) for k in spec.classes for s in spec.seeds]
    n_test, n_anomalies = SCORE_SIZES["test"]
    constant = {  # the scores columns that do not depend on the trial or the unit
        "schema_version": pa.array(np.full(n_test, 2, dtype=np.int32)), "study": pa.array([spec.name] * n_test),
        "method": pa.array(["omasgan"] * n_test), "detector": pa.array(["final"] * n_test),
        "split": pa.array(["test"] * n_test), "index": pa.array(np.arange(n_test, dtype=np.int64)),
        "label": pa.array((np.arange(n_test) < n_anomalies).astype(np.int8))}
    score_names = table_schema("scores").names
    writers: dict[tuple[str, int, int], pq.ParquetWriter] = {}
    pending: dict[tuple[str, int, int], list[pa.Table]] = {}
    parts: dict[str, list[str]] = {"results": [], "scores": []}
    rows = {"results": 0, "scores": 0}

    pending_rows: dict[tuple[str, int, int], int] = {}

    def add(table_name: str, holdout: int, seed: int, table: pa.Table) -> None:
        slot = (table_name, holdout, seed)
        pending.setdefault(slot, []).append(table)
        pending_rows[slot] = pending_rows.get(slot, 0) + table.num_rows
        if pending_rows[slot] >= 65_536:
            pending_rows[slot] = 0
            flush(slot)

    def flush(slot) -> None:
        table_name, holdout, seed = slot
        if not pending.get(slot):
            return
        if slot not in writers:
            relative = f"dataset={spec.dataset}/holdout_class={holdout}/seed={seed}/part-g000001-{token}-0000.parquet"
            (folder / table_name / relative).parent.mkdir(parents=True, exist_ok=True)
            writers[slot] = pq.ParquetWriter(folder / table_name / relative, table_schema(table_name))
            parts[table_name].append(relative)
        block = pa.concat_tables(pending.pop(slot))
        writers[slot].write_table(block, row_group_size=65_536)
        rows[table_name] += block.num_rows

    captured: list[pa.Table] = []
    store._write = lambda table, folder_name, stem: captured.append(table)  # the row builder, not the file
    metric_columns = [*METRIC_NAMES, "threshold"]
    for entry in suggested:
        key = UnitKey(spec.name, spec.kind, entry["trial_id"], spec.dataset, units[0][0], units[0][1])
        config = trial_config(spec.base_config, entry["params"])
        captured.clear()
        for stage, detector in STAGE_DETECTORS.items():
            evaluation = None
            if detector is not None:
                evaluation = {"detector": detector, "threshold": 0.0,
                              "metrics": {split: {m: 0.5 for m in METRIC_NAMES} for split in ("val", "test")}}
            store.write_stage_rows(key, stage, config=config, evaluation=evaluation, wall_time_s=30.0)
        template = pa.concat_tables(captured)
        positions = [template.schema.get_field_index(name) for name in metric_columns]
        trial_column = pa.array([entry["trial_id"]] * n_test)
        for holdout, seed in units:
            table = template
            for position, name in zip(positions, metric_columns):
                table = table.set_column(position, name, pa.array(rng.uniform(0.3, 0.95, template.num_rows)))
            add("results", holdout, seed, table)
            columns = {**constant, "trial_id": trial_column, "score": pa.array(rng.normal(size=n_test))}
            add("scores", holdout, seed, pa.Table.from_arrays([columns[n] for n in score_names],
                                                               schema=table_schema("scores")))
    for slot in list(pending):
        flush(slot)
    for writer in writers.values():
        writer.close()
    for table_name, listed in parts.items():
        manifest = {"format": MANIFEST_FORMAT, "table": table_name, "generation": 1, "token": token,
                    "parts": sorted(listed), "committed_at": time.time()}
        (folder / table_name / "_manifest.json").write_text(json.dumps(manifest, indent=1))
    read_back = {name: ResultStore(str(folder)).read(name, columns=["trial_id"]).num_rows for name in rows}
    assert read_back == rows, f"the store reads {read_back} rows, {rows} were written"
    usage = resource.getrusage(resource.RUSAGE_SELF)
    Path(args.stats).write_text(json.dumps({
        "rows": rows, "wall_s": time.perf_counter() - started, "cpu_s": time.process_time() - cpu,
        "peak_rss_mib": usage.ru_maxrss / 1024, "store_mib": sum(
            p.stat().st_size for p in folder.rglob("*.parquet")) / 2 ** 20}))


def run_reader_size(trials: int, args: argparse.Namespace, root: Path) -> tuple[dict, dict]:
    """The searcher for ``trials`` trials (its study kept), the store synthesised, then ``omasgan
    results`` and ``omasgan report`` on it, each in its own process."""
    searcher_record = run_searcher_size(trials, args, root, keep=True)
    folder = root / f"searcher-n{trials}" / f"searcher{trials}"
    stats_file = root / f"synthesize-{trials}.json"
    print(f"[readers, {trials} trials] synthesising the store ...", flush=True)
    measured([sys.executable, str(Path(__file__).resolve()), "_synthesize", "--folder", str(folder),
              "--stats", str(stats_file)], root / f"synthesize-{trials}.log")
    record = {"trials": trials, "units_per_trial": len(expand(args.classes)) * len(expand(args.seeds)),
              "store": json.loads(stats_file.read_text())}
    record.update(measure_readers(folder, root, trials, "readers, "))
    if not args.keep:
        shutil.rmtree(folder.parent, ignore_errors=True)
    print(json.dumps(record), flush=True)
    return searcher_record, record


READER_FIGURES = {
    "results wall": lambda r: r["results"]["wall_s"],
    "results peak RSS": lambda r: r["results"]["peak_rss_mib"],
    "report wall": lambda r: r["report"]["wall_s"],
    "report peak RSS": lambda r: r["report"]["peak_rss_mib"],
}


def print_reader_table(records: list[dict], slopes: dict) -> None:
    print("readers on a synthesised compacted store: trials, rows (results / scores), store MiB, "
          "omasgan results s / MiB, omasgan report s / MiB")
    for r in records:
        print(f"  {r['trials']:>6}  {r['store']['rows']['results']:>9} / {r['store']['rows']['scores']:>10}  "
              f"{r['store']['store_mib']:8.0f} MiB  results {r['results']['wall_s']:6.1f} s / "
              f"{r['results']['peak_rss_mib']:6.0f} MiB  report {r['report']['wall_s']:6.1f} s / "
              f"{r['report']['peak_rss_mib']:6.0f} MiB")
    for name, entry in slopes.items():
        print(f"  {name:20s} " + "  ".join(f"{k}: {v:.2f}" for k, v in entry.items()))


# ---- measuring commands ------------------------------------------------------------------------------

def measured(command: list[str], log: Path) -> dict[str, float]:
    """Run ``command`` to completion; its wall time, CPU time and peak memory (from wait4)."""
    started = time.perf_counter()
    with open(log, "w") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - started
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        tail = log.read_text()[-3000:]
        raise RuntimeError(f"{' '.join(command[:4])} ... exited with {code}; end of {log}:\n{tail}")
    return {"wall_s": wall, "cpu_s": usage.ru_utime + usage.ru_stime, "peak_rss_mib": usage.ru_maxrss / 1024}


def measure_readers(folder: Path, root: Path, trials: int, tag: str = "") -> dict[str, dict[str, float]]:
    """``omasgan results`` and ``omasgan report`` on the study ``folder``, each in its own process."""
    figures = {}
    for command, extra in (("results", []), ("report", ["--out", str(root / f"report-{trials}")])):
        print(f"[{tag}{trials} trials] omasgan {command} ...", flush=True)
        figures[command] = measured([sys.executable, "-m", "omasgan.cli", command, str(folder), *extra],
                                    root / f"{command}-{trials}.log")
    return figures


def count_files(folder: Path) -> int:
    return sum(1 for p in folder.rglob("*") if p.is_file() and not p.name.startswith(".")) if folder.is_dir() else 0


def run_size(trials: int, args: argparse.Namespace, root: Path) -> dict:
    name = f"scale{trials}"
    storage = root / f"n{trials}"
    shutil.rmtree(storage, ignore_errors=True)
    storage.mkdir(parents=True)
    folder = storage / name
    stats_file = root / f"driver-{trials}.json"
    command = [sys.executable, str(Path(__file__).resolve()), "_driver", "--trials", str(trials),
               "--storage", str(storage), "--name", name, "--classes", args.classes, "--seeds", args.seeds,
               "--max-concurrent", str(args.max_concurrent), "--stats", str(stats_file)]
    if args.profile:
        command += ["--profile", str(root / f"driver-{trials}.prof")]
    command += ["--extra", json.dumps(args.extra)]
    print(f"[{trials} trials] driver ...", flush=True)
    outer = measured(command, root / f"driver-{trials}.log")
    driver_stats = json.loads(stats_file.read_text())
    units = len(expand(args.classes)) * len(expand(args.seeds))
    record = {
        "trials": trials, "units_per_trial": units,
        "driver_wall_s": driver_stats["wall_s"], "driver_cpu_s": driver_stats["cpu_s"],
        "driver_peak_rss_mib": driver_stats["peak_rss_mib"], "driver_process_total_s": outer["wall_s"],
        "compaction_s": driver_stats.get("compaction_s"),
        "sampler_s": driver_stats.get("sampler_s"), "sampler_cpu_s": driver_stats.get("sampler_cpu_s"),
        "store_files": {table: count_files(folder / table) for table in ("results", "scores")},
        "study_files": count_files(folder),
    }
    record["driver_wall_per_trial_ms"] = 1e3 * record["driver_wall_s"] / trials
    record["driver_cpu_per_trial_ms"] = 1e3 * record["driver_cpu_s"] / trials
    record["files_written"] = files_written(trials, units, args)
    record.update(measure_readers(folder, root, trials))
    if not args.keep:
        shutil.rmtree(storage, ignore_errors=True)
    print(json.dumps(record), flush=True)
    return record


def files_written(trials: int, units: int, args: argparse.Namespace) -> dict[str, int]:
    """Store files the units wrote: one results file per unit and stage, one scores file per unit
    and detector whose scores are kept."""
    from omasgan.distributed.store import result_store as rs

    scores_choice = next((args.extra[i + 1] for i, a in enumerate(args.extra[:-1]) if a == "--scores"), None)
    if hasattr(rs, "score_splits"):
        kept = sum(1 for d in ("task1", "task3", "final")
                   if rs.score_splits(scores_choice or rs.DEFAULT_SCORES, final=d == "final"))
    else:
        kept = 3
    return {"results": trials * units * 4, "scores": trials * units * kept}


def expand(text: str) -> list[int]:
    values = []
    for part in text.split(","):
        low, _, high = part.partition("-")
        values += list(range(int(low), int(high or low) + 1))
    return values


# ---- growth exponents --------------------------------------------------------------------------------

FIGURES = {
    "driver wall (total)": lambda r: r["driver_wall_s"],
    "driver CPU (total)": lambda r: r["driver_cpu_s"],
    "driver CPU less TPE": lambda r: r["driver_cpu_s"] - (r.get("sampler_cpu_s") or 0.0),
    "TPE suggest CPU": lambda r: r.get("sampler_cpu_s") or float("nan"),
    "driver peak RSS": lambda r: r["driver_peak_rss_mib"],
    "compaction wall": lambda r: r["compaction_s"] if r.get("compaction_s") else float("nan"),
    "store files left": lambda r: sum(r["store_files"].values()),
    "results wall": lambda r: r["results"]["wall_s"],
    "results peak RSS": lambda r: r["results"]["peak_rss_mib"],
    "report wall": lambda r: r["report"]["wall_s"],
    "report peak RSS": lambda r: r["report"]["peak_rss_mib"],
}


def slope(xs: list[float], ys: list[float]) -> float:
    """Least-squares slope of log(y) against log(x)."""
    if any(not math.isfinite(y) for y in ys):
        return float("nan")
    lx, ly = [math.log(x) for x in xs], [math.log(max(y, 1e-9)) for y in ys]
    mx, my = sum(lx) / len(lx), sum(ly) / len(ly)
    return sum((a - mx) * (b - my) for a, b in zip(lx, ly)) / sum((a - mx) ** 2 for a in lx)


def exponents(records: list[dict], figures: dict = FIGURES) -> dict[str, dict[str, float]]:
    """Per figure: the slope over all sizes and between each pair of consecutive sizes."""
    out: dict[str, dict[str, float]] = {}
    if len(records) < 2:
        return out
    xs = [r["trials"] for r in records]
    for name, get in figures.items():
        ys = [get(r) for r in records]
        entry = {"all": slope(xs, ys)}
        for a, b in zip(records, records[1:]):
            entry[f"{a['trials']}->{b['trials']}"] = slope([a["trials"], b["trials"]], [get(a), get(b)])
        out[name] = entry
    return out


def print_searcher_table(records: list[dict], slopes: dict) -> None:
    print("searcher alone: trials, seconds in suggest (TPE), in results + completions, and ms per trial of "
          "results + completions in the first and last tenth of the trials")
    for r in records:
        tenths = r["result_and_complete_ms_per_trial_by_tenth"]
        print(f"  {r['trials']:>6}  suggest {r['suggest_s']:8.1f} s  results+completions "
              f"{r['result_s'] + r['complete_s']:8.1f} s  first tenth {tenths[0]:7.2f} ms/trial  "
              f"last tenth {tenths[-1]:7.2f} ms/trial")
    for name, entry in slopes.items():
        print(f"  {name:30s} " + "  ".join(f"{k}: {v:.2f}" for k, v in entry.items()))


def print_table(records: list[dict], slopes: dict) -> None:
    head = ["trials", "driver s", "ms/trial", "CPU ms/trial", "driver MiB", "files written", "files left",
            "results s", "results MiB", "report s", "report MiB"]
    rows = [[r["trials"], f"{r['driver_wall_s']:.0f}", f"{r['driver_wall_per_trial_ms']:.0f}",
             f"{r['driver_cpu_per_trial_ms']:.0f}", f"{r['driver_peak_rss_mib']:.0f}",
             sum(r["files_written"].values()), sum(r["store_files"].values()),
             f"{r['results']['wall_s']:.1f}", f"{r['results']['peak_rss_mib']:.0f}",
             f"{r['report']['wall_s']:.1f}", f"{r['report']['peak_rss_mib']:.0f}"] for r in records]
    widths = [max(len(str(x)) for x in column) for column in zip(head, *rows)]
    for line in [head, *rows]:
        print("  ".join(str(x).rjust(w) for x, w in zip(line, widths)))
    if slopes:
        print("\ngrowth exponents (log-log slope with the trial count; 1 = linear total):")
        for name, entry in slopes.items():
            print(f"  {name:20s} " + "  ".join(f"{k}: {v:.2f}" for k, v in entry.items()))


def main() -> None:
    internal = {  # the child processes this script starts: (function, required options)
        "_searcher": (searcher_driver, ("--trials", "--storage", "--name", "--max-concurrent", "--stats", "--classes",
                                        "--seeds", "--window")),
        "_synthesize": (synthesize_store, ("--folder", "--stats")),
        "_driver": (driver, ("--trials", "--storage", "--name", "--classes", "--seeds", "--max-concurrent", "--stats")),
    }
    if len(sys.argv) > 1 and sys.argv[1] in internal:
        function, options = internal[sys.argv[1]]
        parser = argparse.ArgumentParser()
        parser.add_argument("_command")
        for option in options:
            parser.add_argument(option, required=True)
        if function is driver:
            parser.add_argument("--profile")
            parser.add_argument("--extra", type=json.loads, default=[])
        function(parser.parse_args())
        return
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--label", required=True, help="names the JSON file (e.g. before, after)")
    parser.add_argument("--sizes", default="100,1000,5000",
                        help="trial counts of the whole-study runs (default 100,1000,5000; '' for none)")
    parser.add_argument("--searcher-sizes", default="",
                        help="trial counts of the searcher-alone runs, e.g. 100,1000,5000 (default none)")
    parser.add_argument("--report-sizes", default="",
                        help="trial counts of the reader runs, e.g. 1000,5000: the searcher's study of that size "
                        "with a store synthesised in its compacted form, then results and report (default none)")
    parser.add_argument("--sampler-window", type=int, default=None,
                        help="the TPE window of the searcher runs (default: omasgan search's default)")
    parser.add_argument("--classes", default="0-9", help="held-out digits (default 0-9)")
    parser.add_argument("--seeds", default="0-2", help="seeds (default 0-2)")
    parser.add_argument("--max-concurrent", type=int, default=2, help="trials at once (default 2)")
    parser.add_argument("--out", default=str(HERE / "out" / "study_scale"), help="scratch folder")
    parser.add_argument("--json", help="result file (default bench/results/study_scale-<label>.json)")
    parser.add_argument("--keep", action="store_true", help="keep each size's study folder")
    parser.add_argument("--profile", action="store_true", help="cProfile the driver (driver-N.prof)")
    parser.add_argument("extra", nargs="*", help="after --: more options for omasgan search")
    args = parser.parse_args()
    if args.sampler_window is None:
        from omasgan.search_spaces import DEFAULT_WINDOW

        args.sampler_window = DEFAULT_WINDOW
    root = Path(args.out) / args.label
    root.mkdir(parents=True, exist_ok=True)
    target = Path(args.json) if args.json else HERE / "results" / f"study_scale-{args.label}.json"
    records, searcher, readers = [], [], []

    def save() -> None:  # after every size, so a long run keeps what it measured
        result = {"label": args.label, "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
                  "git": git_revision(), "search_options": args.extra,
                  "sizes": records, "exponents": exponents(records),
                  "searcher": searcher, "searcher_exponents": exponents(searcher, SEARCHER_FIGURES),
                  "readers": readers, "reader_exponents": exponents(readers, READER_FIGURES)}
        target.write_text(json.dumps(result, indent=2) + "\n")

    for trials in [int(v) for v in args.searcher_sizes.split(",") if v.strip()]:
        searcher.append(run_searcher_size(trials, args, root))
        save()
    for trials in [int(v) for v in args.sizes.split(",") if v.strip()]:
        records.append(run_size(trials, args, root))
        save()
    for trials in [int(v) for v in args.report_sizes.split(",") if v.strip()]:
        searcher_record, reader_record = run_reader_size(trials, args, root)
        searcher.append(searcher_record)
        readers.append(reader_record)
        save()
    print()
    if searcher:
        print_searcher_table(searcher, exponents(searcher, SEARCHER_FIGURES))
    if records:
        print_table(records, exponents(records))
    if readers:
        print_reader_table(readers, exponents(readers, READER_FIGURES))
    print(f"\nwrote {target}")


def git_revision() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=HERE, capture_output=True, text=True,
                              check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


if __name__ == "__main__":
    main()

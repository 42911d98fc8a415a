"""Bytes and objects a search's journal mirror uploads per trial, and what a resume reads, before and
after the journal became an append-only log of objects (distributed/studies/journal_mirror.py).

An Optuna study is driven through the study's mirrored journal storage (``control.journal_storage``)
as a search driver drives it, without Ray or training: per trial one ask that samples the ``full``
space (its define-by-run parameters: about ten), four intermediate values (one per round) and one
tell, each searcher call mirrored as one object (``control.mirrored_once``, as JournalOptunaSearch
does).  The sampler is Optuna's RandomSampler (seeded): TPE writes the same records plus one
attribute per trial, and costs minutes per thousand asks.  The storage is a local folder (``--s3``:
an S3 server of moto on the loopback, started and stopped here).

Before: the old mirror uploaded the whole journal after every ``append_logs`` call (one PUT of the
file that grows with the study); its bytes are computed from the journal's size after every call.
After: the objects the log writes (chunks, segments, snapshots), counted as they are created.

At 100, 500 and 1,000 trials it records the bytes per trial (over the study so far, and over its
last tenth), the objects, and a resume's read of the log (objects, bytes, seconds).

    python bench/journal_mirror.py                        # writes bench/results/journal_mirror.json
    python bench/journal_mirror.py --s3 --out bench/results/journal_mirror-s3.json
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

import optuna

from omasgan.config import default_config
from omasgan.distributed.studies.control import StudyControl, journal_storage, mirrored_once
from omasgan.search_spaces import build_space

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from s3_helpers import client, environment, moto_server  # noqa: E402 (the S3 stand-in the tests use)

ROUNDS = 4  # intermediate values per trial: Task 1, Task 2, Task 3 and J report


@contextmanager
def moto_s3(folder: Path):
    """An S3 server (moto) on a free loopback port (the tests' ``s3_helpers.moto_server``), with the
    environment boto3 and pyarrow read pointing at it and one bucket; yields the storage URI."""
    with moto_server(folder / "moto.log") as env, environment(env):
        client(env).create_bucket(Bucket="journal-bench")
        yield "s3://journal-bench/studies"


def measure(trials: list[int], storage: str, work: Path) -> list[dict]:
    """Drive one study to ``max(trials)`` trials; the figures at each count in ``trials``."""
    name = "journal-bench"
    data_root = f"{storage.rstrip('/')}/{name}"
    local = work / name / "optuna-journal.log"
    control = StudyControl(name, data_root)
    lease = control.acquire_lease(stale_after_s=30)
    storage_ = journal_storage(name, local, data_root)
    backend = storage_._backend
    old = {"objects": 0, "bytes": 0}
    append = backend.append_logs

    def counted_append(logs):
        append(logs)
        old["objects"] += 1
        old["bytes"] += os.path.getsize(local)  # the old mirror uploaded the whole file after every call

    backend.append_logs = counted_append
    space = build_space("full", base=default_config("synthetic"))
    with mirrored_once(storage_):
        study = optuna.create_study(study_name=name, storage=storage_, direction="maximize",
                                    sampler=optuna.samplers.RandomSampler(seed=0))
    mirror = control.mirror()
    figures = []
    cumulative = [(0, 0)]  # (before, after) bytes uploaded once each trial ended
    started = time.perf_counter()
    for number in range(1, max(trials) + 1):
        with mirrored_once(storage_):
            trial = study.ask()
            space(trial)
        for step in range(1, ROUNDS + 1):
            with mirrored_once(storage_):
                trial.report(0.5 + 0.01 * step, step)
        with mirrored_once(storage_):
            study.tell(trial, 0.5 + (number % 97) / 1000)
        cumulative.append((old["bytes"], mirror.traffic.bytes))
        if number not in trials:
            continue
        traffic, tenth = mirror.traffic, max(1, number // 10)
        reader = control.new_mirror()
        read_started = time.perf_counter()
        journal, _ = reader.read()
        read_s = time.perf_counter() - read_started
        assert journal == local.read_bytes(), "the log does not rebuild the journal"
        size = local.stat().st_size
        figures.append({
            "trials": number, "journal_bytes": size, "append_calls": old["objects"],
            "before": {"objects_written": old["objects"], "bytes": old["bytes"],
                       "bytes_per_trial": round(old["bytes"] / number),
                       "bytes_per_trial_last_tenth": round((old["bytes"] - cumulative[number - tenth][0]) / tenth),
                       "resume_objects": 1, "resume_bytes": size},
            "after": {"objects_written": traffic.objects, "chunks": traffic.chunks.objects,
                      "segments": traffic.segments.objects, "snapshots": traffic.snapshots.objects,
                      "bytes": traffic.bytes, "chunk_bytes": traffic.chunks.bytes,
                      "segment_bytes": traffic.segments.bytes, "snapshot_bytes": traffic.snapshots.bytes,
                      "bytes_per_trial": round(traffic.bytes / number),
                      "bytes_per_trial_last_tenth": round((traffic.bytes - cumulative[number - tenth][1]) / tenth),
                      "resume_objects": reader.traffic.reads.objects, "resume_bytes": reader.traffic.reads.bytes,
                      "resume_read_s": round(read_s, 3)},
            "elapsed_s": round(time.perf_counter() - started, 1),
        })
        print(json.dumps(figures[-1]), flush=True)
    lease.release()
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", default="100,500,1000", help="trial counts to report at (default 100,500,1000)")
    parser.add_argument("--s3", action="store_true", help="mirror to a moto S3 server on the loopback")
    parser.add_argument("--out", default="bench/results/journal_mirror.json")
    args = parser.parse_args()
    trials = sorted(int(t) for t in args.trials.split(","))
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    work = Path(tempfile.mkdtemp(prefix="journal-bench-"))
    try:
        if args.s3:
            with moto_s3(work) as storage:
                figures = measure(trials, storage, work / "work")
        else:
            figures = measure(trials, str(work / "storage"), work / "work")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    result = {"storage": "s3 (moto_server on the loopback)" if args.s3 else "local folder",
              "sampler": "RandomSampler(seed=0)", "space": "full", "rounds_per_trial": ROUNDS, "figures": figures}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print("trials  before B/trial (last tenth)  after B/trial (last tenth)  objects after  resume reads")
    for f in figures:
        b, a = f["before"], f["after"]
        print(f"{f['trials']:>6}  {b['bytes_per_trial']:>10,} ({b['bytes_per_trial_last_tenth']:>9,})  "
              f"{a['bytes_per_trial']:>10,} ({a['bytes_per_trial_last_tenth']:>7,})  {a['objects_written']:>13,}  "
              f"{a['resume_objects']} objects, {a['resume_bytes']:,} B, {a['resume_read_s']} s")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()

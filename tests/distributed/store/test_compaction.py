"""Compaction of the result store: every row is kept exactly once (also when a compaction is killed at
any step and run again, when a unit is rerun after it, and while a reader races it), rows of unknown
trials are dropped, only settled rounds of a running study are merged, and `omasgan compact` gives
one-line errors.  No Ray: the store is filled directly."""

import json
import multiprocessing
import os
import time

import numpy as np
import pandas as pd
import pyarrow.dataset as ds
import pytest

from omasgan.cli import main
from omasgan.distributed import ResultStore, UnitKey
from omasgan.distributed.store import compaction as C
from omasgan.distributed.store import compaction_lock as L
from omasgan.distributed.store import compaction_scope as S
from omasgan.distributed.studies.baseline import run_baseline_unit
from omasgan.distributed.store.manifest import MANIFEST_FILE, PART_NAME
from omasgan.distributed.store.study_folder import StudySpec
from omasgan.distributed.studies.runner import remove_orphan_files
from omasgan.distributed.store.trial_record import TrialRecords

from helpers import tiny_config

KEYS = {"results": ["study", "trial_id", "dataset", "holdout_class", "seed", "method", "stage", "split"],
        "scores": ["study", "trial_id", "dataset", "holdout_class", "seed", "method", "detector", "split", "index"]}
STAGES = (("task1", "task1"), ("task2", None), ("task3", "task3"), ("j", "final"))
CONFIG = tiny_config()


def _evaluation(detector, auroc):
    metrics = {s: {"auroc": auroc, "auprc": 0.5, "f1": 0.4, "precision": 0.3, "recall": 0.2, "accuracy": 0.9}
               for s in ("val", "test")}
    return {"detector": detector, "threshold": 0.1, "metrics": metrics}


def _unit(store, trial, k, s, stages=STAGES, auroc=0.6, study="st"):
    key = UnitKey(study, "search", trial, "synthetic", k, s)
    for stage, detector in stages:
        evaluation = _evaluation(detector, auroc) if detector else None
        store.write_stage_rows(key, stage, config=CONFIG, evaluation=evaluation, wall_time_s=1.5)
        if detector == "final":
            store.write_scores(key, detector, {"test": np.linspace(0, 1, 5) + auroc}, {"test": [0, 0, 0, 1, 1]})


def _fill(store, trials, classes=(0, 1), seeds=(0, 1), auroc=0.6):
    for trial in trials:
        for k in classes:
            for s in seeds:
                _unit(store, trial, k, s, auroc=auroc)


def _frame(store, table="results"):
    return store.read(table).to_pandas().sort_values(KEYS[table]).reset_index(drop=True)


def _state(store):
    return {table: _frame(store, table) for table in ("results", "scores")}


def _assert_same(store, expected):
    for table, frame in expected.items():
        got = _frame(store, table)
        assert not got.duplicated(KEYS[table]).any(), f"duplicate rows in {table}"
        pd.testing.assert_frame_equal(got, frame)


def _layout(root, table="results"):
    """(small files, parts, hidden files) under the table's folder."""
    files = [p for p in (root / table).rglob("*") if p.is_file()]
    parts = [p for p in files if PART_NAME.match(p.name)]
    hidden = [p for p in files if p.name.startswith(".")]
    small = [p for p in files if p not in parts and p not in hidden and p.name != MANIFEST_FILE]
    return small, parts, hidden


def test_compaction_keeps_every_row_once_in_one_part_per_partition(tmp_path):
    store = ResultStore(str(tmp_path))
    _fill(store, ["t0", "t1", "t2"])
    expected = _state(store)
    assert len(expected["results"]) == 3 * 4 * 7 and len(expected["scores"]) == 3 * 4 * 5
    stats = C.compact_store(str(tmp_path), orphans=S.OrphanRule("st", {"t0", "t1", "t2"}))
    assert stats.tables["results"].merged_files == 3 * 4 * 4 and stats.tables["scores"].merged_files == 3 * 4
    _assert_same(store, expected)
    for table in ("results", "scores"):
        small, parts, hidden = _layout(tmp_path, table)
        assert not small and not hidden and len(parts) == 4  # one part per (class, seed) partition
        manifest = json.loads((tmp_path / table / MANIFEST_FILE).read_text())
        assert manifest["generation"] == 1 and len(manifest["parts"]) == 4
        # a plain reader, with no project code, reads the same rows from the compacted layout
        plain = ds.dataset(str(tmp_path / table), format="parquet", partitioning="hive").to_table()
        assert plain.num_rows == len(expected[table])
    # a second compaction with nothing new changes nothing
    again = C.compact_store(str(tmp_path))
    assert again.tables["results"].merged_files == 0 and again.tables["results"].generation == 1
    _assert_same(store, expected)


def test_a_unit_rerun_after_compaction_replaces_its_rows_exactly_once(tmp_path):
    store = ResultStore(str(tmp_path))
    _fill(store, ["t0", "t1"])
    C.compact_store(str(tmp_path))
    # t1's unit (1, 0) runs its J round again: new values; and its Task 3 round fails this time
    key = UnitKey("st", "search", "t1", "synthetic", 1, 0)
    store.write_stage_rows(key, "j", config=CONFIG, evaluation=_evaluation("final", 0.99), wall_time_s=9.0)
    store.write_scores(key, "final", {"test": [0.5, 0.6]}, {"test": [0, 1]})
    store.write_stage_rows(key, "task3", config=CONFIG, status="error", error="loss became nan")
    for _ in range(2):  # read before and after a second compaction
        rows = _frame(store)
        mine = rows[(rows.trial_id == "t1") & (rows.holdout_class == 1) & (rows.seed == 0)]
        assert sorted(mine[mine.stage == "j"].auroc) == [0.99, 0.99]
        assert list(mine[mine.stage == "task3"].status) == ["error"]
        assert len(rows) == 2 * 4 * 7 - 1 and not rows.duplicated(KEYS["results"]).any()
        scores = _frame(store, "scores")
        assert list(scores[(scores.trial_id == "t1") & (scores.holdout_class == 1) & (scores.seed == 0)].score) \
            == [0.5, 0.6]
        assert len(scores) == 2 * 4 * 5 - 5 + 2
        C.compact_store(str(tmp_path))
    assert not _layout(tmp_path)[0] and not _layout(tmp_path, "scores")[0]


STEPS = ["part-written", "committed", "part-deleted", "small-deleted"]


def _compact_and_die_at(root, step):
    def fault(done):
        if done == step:
            os._exit(3)  # no clean-up of any kind, like a killed process

    C.compact_store(root, fault=fault)
    os._exit(0)


@pytest.mark.slow
@pytest.mark.parametrize("step", STEPS)
def test_a_compaction_killed_at_any_step_and_run_again_keeps_every_row_once(tmp_path, step, monkeypatch):
    monkeypatch.setattr(L, "LOCK_STALE_S", 0.5)  # how long the next compaction watches the dead one's lock
    monkeypatch.setattr(L, "LOCK_POLL_S", 0.05)
    store = ResultStore(str(tmp_path))
    _fill(store, ["t0", "t1"])
    C.compact_store(str(tmp_path))  # generation 1
    _fill(store, ["t2"])  # new small files next to the parts
    _unit(store, "t0", 0, 1, auroc=0.9)  # and a rerun of a compacted unit
    expected = _state(store)
    child = multiprocessing.get_context("fork").Process(target=_compact_and_die_at, args=(str(tmp_path), step))
    child.start()
    child.join(120)
    assert child.exitcode == 3, f"the compaction never reached step {step!r}"
    # what any reader sees now: the old generation (killed before its commit) or the new one
    _assert_same(store, expected)
    manifest = json.loads((tmp_path / "results" / MANIFEST_FILE).read_text())
    assert manifest["generation"] == (1 if step == "part-written" else 2)
    C.compact_store(str(tmp_path))  # the killed process's lock does not change: it is taken over
    _assert_same(store, expected)
    for table in ("results", "scores"):
        small, parts, hidden = _layout(tmp_path, table)
        assert not small and not hidden and len(parts) == 4
    assert not (tmp_path / L.LOCK_FILE).exists()


def _race(tmp_path, monkeypatch, method):
    """Read the store while a compaction runs inside ``ResultStore.<method>`` of the reader's first call:
    the rows read must be every row, once."""
    store = ResultStore(str(tmp_path))
    _fill(store, ["t0", "t1"])
    C.compact_store(str(tmp_path))
    _fill(store, ["t2"])  # for the racing compaction to merge (and delete once merged)
    expected = _frame(store)
    original = getattr(ResultStore, method)
    raced, started = [], []

    def racing(self, *args, **kwargs):
        if method == "_list":
            out = original(self, *args, **kwargs)  # the reader has listed ...
        if not started:
            started.append(True)
            raced.append(C.compact_store(str(tmp_path)))  # ... and a compaction commits and cleans up
        return out if method == "_list" else original(self, *args, **kwargs)

    monkeypatch.setattr(ResultStore, method, racing)
    got = store.read().to_pandas().sort_values(KEYS["results"]).reset_index(drop=True)
    monkeypatch.setattr(ResultStore, method, original)
    assert raced and raced[0].tables["results"].merged_files == 4 * 4
    pd.testing.assert_frame_equal(got, expected)


def test_a_compaction_committing_between_a_readers_listing_and_its_manifest_read(tmp_path, monkeypatch):
    _race(tmp_path, monkeypatch, "_list")


def test_a_compaction_deleting_files_a_reader_listed_before_it_opens_them(tmp_path, monkeypatch):
    _race(tmp_path, monkeypatch, "_read_snapshot")


def test_rows_of_trials_the_experiment_does_not_know_are_dropped_in_its_own_seeds_only(tmp_path):
    store = ResultStore(str(tmp_path))
    _fill(store, ["t0", "t1", "orphan"])
    _fill(store, ["t0", "base"], seeds=(100,))  # a confirmation's rows on fresh seeds, under labels
    C.compact_store(str(tmp_path))  # e.g. `omasgan compact` after the driver died
    _unit(store, "orphan", 0, 0, auroc=0.1)  # a small file of the orphan written after that
    assert remove_orphan_files(store, "st", {"t0", "t1"}, [0, 1]) == 5  # its 4 results files and 1 scores file
    stats = C.compact_store(str(tmp_path), orphans=S.OrphanRule("st", {"t0", "t1"}, [0, 1]))
    assert stats.tables["results"].rows_dropped == 4 * 7 and stats.tables["scores"].rows_dropped == 4 * 5
    for table in ("results", "scores"):
        frame = _frame(store, table)
        assert set(frame[frame.seed < 100].trial_id) == {"t0", "t1"}
        assert set(frame[frame.seed == 100].trial_id) == {"t0", "base"}  # the other experiment's rows stay
    assert len(_frame(store)) == 2 * 4 * 7 + 2 * 2 * 7


def test_a_running_study_merges_only_the_rounds_its_trials_finished(tmp_path):
    store = ResultStore(str(tmp_path))
    _fill(store, ["t0", "t1"])
    _unit(store, "t0", 0, 100)  # a confirmation of t0 on a fresh seed, running now
    records = TrialRecords(str(tmp_path))
    records.write("t0", {"rounds": ["task1", "task2", "task3", "j"]})
    records.write("t1", {"rounds": ["task1", "task2"]})  # t1 is training its Task 3 round now
    expected = _state(store)
    spec = StudySpec(name="st", kind="search", dataset="synthetic", classes=[0, 1], seeds=[0, 1],
                     base_config=CONFIG.to_dict())
    stats = C.compact_store(str(tmp_path), settled=S.settled_by_records(str(tmp_path), spec))
    _assert_same(store, expected)
    small, _, _ = _layout(tmp_path)
    assert sorted({p.name for p in small if "seed=100" not in str(p)}) == [
        "st.t1.omasgan.j.parquet", "st.t1.omasgan.task3.parquet"]
    assert len([p for p in small if "seed=100" in str(p)]) == 4
    assert stats.tables["results"].unsettled_files == 8 + 4
    scores_small, _, _ = _layout(tmp_path, "scores")
    assert {p.name for p in scores_small} == {"st.t1.omasgan.final.parquet", "st.t0.omasgan.final.parquet"}
    # the confirmation has finished: its files are final too
    C.compact_store(str(tmp_path), settled=S.settled_by_records(str(tmp_path), spec, confirmed=True))
    _assert_same(store, expected)
    assert not [p for p in _layout(tmp_path)[0] if "seed=100" in str(p)]
    baseline = StudySpec(name="b", kind="baseline", dataset="synthetic", classes=[0], seeds=[0],
                         base_config=CONFIG.to_dict())
    assert S.settled_by_records(str(tmp_path), baseline) is None  # baselines: every file is final


def test_a_failing_baseline_rerun_hides_its_compacted_scores(tmp_path):
    config = tiny_config(n_per_class=60)
    from omasgan.baselines import BaselineConfig

    root = str(tmp_path)
    assert run_baseline_unit(root, "b", config, BaselineConfig(method="knn"), trial_id="t")["status"] == "ok"
    C.compact_store(root)
    assert len(ResultStore(root).read("scores")) > 0
    failed = run_baseline_unit(root, "b", config, BaselineConfig(method="knn", k=10_000), trial_id="t")
    assert failed["status"] == "error"
    assert len(ResultStore(root).read("scores")) == 0  # the empty file in its place hides the compacted copy
    rows = ResultStore(root).read().to_pandas()
    assert list(rows.status) == ["error"]
    C.compact_store(root)
    assert len(ResultStore(root).read("scores")) == 0 and list(ResultStore(root).read().to_pandas().status) == ["error"]


def _study_folder(root, name="st"):
    StudySpec(name=name, kind="search", dataset="synthetic", classes=[0, 1], seeds=[0, 1],
              base_config=CONFIG.to_dict()).write(root)
    return root


def test_omasgan_compact_merges_a_study_and_reports_what_it_did(tmp_path, capsys):
    folder = _study_folder(tmp_path / "st")
    store = ResultStore(str(folder))
    _fill(store, ["t0"])
    for trial in ["t0"]:
        TrialRecords(str(folder)).write(trial, {"rounds": ["task1", "task2", "task3", "j"]})
    expected = _state(store)
    assert main(["compact", str(tmp_path)]) == 0  # a folder of study folders
    out = capsys.readouterr().out
    assert "omasgan compact: st: results: merged 16 small file(s) into 4 part(s) of generation 1" in out
    _assert_same(store, expected)


@pytest.mark.parametrize("make, needle", [
    (lambda p: p / "missing", "does not exist or is not a folder"),
    (lambda p: p, "holds no study"),
])
def test_omasgan_compact_bad_input_is_one_line(tmp_path, capsys, make, needle):
    assert main(["compact", str(make(tmp_path))]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("omasgan: error:") and needle in err[0]


def test_a_second_compaction_is_refused_while_one_holds_the_lock(tmp_path, capsys):
    folder = _study_folder(tmp_path / "st")
    _fill(ResultStore(str(folder)), ["t0"], classes=(0,), seeds=(0,))
    with L.StoreLock(str(folder), heartbeat_s=0.1):  # renewed while the second compaction watches it
        assert main(["compact", str(folder)]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "is being compacted by" in err[0] and L.LOCK_FILE in err[0]
        assert main(["compact", str(folder), "--threads", "0"]) == 2
        assert "--threads 0 is out of range" in capsys.readouterr().err
    assert not (folder / L.LOCK_FILE).exists()
    assert main(["compact", str(folder)]) == 0


def test_the_lock_is_judged_on_the_watchers_clock_never_on_the_owners(tmp_path, capsys, monkeypatch):
    """A compaction that finds another's lock watches it on its own clock: a lock that is renewed is never
    broken, however old its owner's clock says it is (a machine whose clock is an hour behind), and a lock
    that stops changing is taken over after LOCK_STALE_S, however fresh its owner's clock says it is."""
    from omasgan.trainables.storage.conditional import LocalConditionalStore
    from omasgan.trainables.storage.leases import Lease

    folder = _study_folder(tmp_path / "st")
    _fill(ResultStore(str(folder)), ["t0"], classes=(0,), seeds=(0,))
    behind = Lease(LocalConditionalStore(), str(folder / L.LOCK_FILE), heartbeat_s=0.1,
                   info={"since": time.time() - 3600})
    assert behind.acquire()
    try:
        assert main(["compact", str(folder)]) == 2
        assert "is being compacted by" in capsys.readouterr().err
    finally:
        assert behind.release()
    monkeypatch.setattr(L, "LOCK_STALE_S", 0.5)
    monkeypatch.setattr(L, "LOCK_POLL_S", 0.05)
    (folder / L.LOCK_FILE).write_text(json.dumps({"owner": "gone", "host": "elsewhere", "pid": 1, "beat": 7,
                                                  "since": time.time() + 3600}))
    started = time.monotonic()
    assert main(["compact", str(folder)]) == 0
    assert time.monotonic() - started >= 0.5
    assert "took over the compaction lock of gone (host elsewhere, pid 1)" in capsys.readouterr().out
    assert not (folder / L.LOCK_FILE).exists()

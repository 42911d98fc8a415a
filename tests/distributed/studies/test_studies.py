"""The studies under a local Ray: a 4-trial search writes exactly the expected rows, a search killed
with SIGKILL resumes to the requested trials with no duplicate or partial rows, sensitivity and seeds
write their rows and tables, a unit whose config fails writes an error row while the study goes on,
and a unit whose system fails (not its config) makes Tune retry the trial, with no error row.  What
was trained is read from the trials' training ledgers (how often each unit trained each stage)."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest

ray = pytest.importorskip("ray")

from omasgan.cli import main  # noqa: E402
from omasgan.distributed import ResultStore  # noqa: E402
from omasgan.distributed.studies.preparation import RunOptions  # noqa: E402
from omasgan.distributed.commands.studies import run_study, spec_from_args  # noqa: E402
from omasgan.distributed.store.study_folder import StudySpec  # noqa: E402
from omasgan.distributed.analysis.tables import seeds_table  # noqa: E402
from omasgan.distributed.store.trial_record import TrialRecords  # noqa: E402
from omasgan.trainables import FaultInjection  # noqa: E402

from helpers import tiny_config  # noqa: E402

ROWS_PER_UNIT = 7  # task1: val+test, task2: one row (no detector), task3: val+test, j: val+test
KEY = ["trial_id", "holdout_class", "seed", "stage", "split"]


def study_config():
    return tiny_config(n_per_class=150, task1__epochs=8, task2__epochs=3, task3__epochs=3, j__epochs=10)


@pytest.fixture(scope="module")
def local_ray():
    ray.init(num_cpus=3, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield
    ray.shutdown()


@pytest.fixture
def config_file(tmp_path):
    path = tmp_path / "base.json"
    path.write_text(json.dumps(study_config().to_dict()))
    return path


def _rows(folder: Path):
    return ResultStore(str(folder)).read().to_pandas()


def _trained(folder: Path, stage: str) -> dict:
    """``{(trial, class, seed): times trained}`` of ``stage`` from the training ledgers (zeros left out)."""
    counts = TrialRecords(str(folder)).training_counts()
    return {unit: c[stage] for unit, c in counts.items() if c.get(stage)}


def _trained_per_class(folder: Path, stage: str) -> dict:
    per_class: dict = {}
    for (_, k, _), n in _trained(folder, stage).items():
        per_class[k] = per_class.get(k, 0) + n
    return per_class


def _assert_complete(rows, trials: int, units: int):
    assert rows.duplicated(KEY).sum() == 0
    assert rows.trial_id.nunique() == trials
    assert len(rows) == trials * units * ROWS_PER_UNIT
    assert set(rows.status) == {"ok"}
    per_trial = rows.groupby("trial_id").size()
    assert set(per_trial) == {units * ROWS_PER_UNIT}


def test_search_of_four_trials_over_two_classes_writes_exactly_the_expected_rows(local_ray, config_file, tmp_path, capsys):
    import optuna

    code = main(["search", "--config", str(config_file), "--classes", "0,1", "--seeds", "0", "--space", "task2",
                 "--trials", "4", "--storage", str(tmp_path / "studies"), "--name", "s4"])
    assert code == 0
    folder = tmp_path / "studies" / "s4"
    rows = _rows(folder)
    _assert_complete(rows, trials=4, units=2)
    assert set(rows.holdout_class) == {0, 1} and set(rows.study_kind) == {"search"}
    # the first trial is the base config's (paper) point; the others were sampled
    base = study_config()
    assert (rows.cfg_task2_mu == base.task2.mu).any() and rows.cfg_task2_mu.nunique() == 4
    # Task 1 was trained once per class for all four trials; each trial trained its own Task 2, 3, J once per unit
    assert _trained_per_class(folder, "task1") == {0: 1, 1: 1}
    for stage in ("task2", "task3", "j"):
        assert _trained(folder, stage) == {(t, k, 0): 1 for t in set(rows.trial_id) for k in (0, 1)}, stage
    study = optuna.load_study(study_name="s4", storage=optuna.storages.JournalStorage(
        optuna.storages.journal.JournalFileBackend(str(folder / "optuna-journal.log"))))
    complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert len(complete) == 4
    # the Optuna objective equals the mean validation AUROC of the final J read back from Parquet
    final_val = rows[(rows.detector == "final") & (rows.split == "val")]
    assert sorted(round(v, 9) for v in final_val.groupby("trial_id").auroc.mean()) == sorted(
        round(t.value, 9) for t in complete)
    out = capsys.readouterr().out
    assert "4/4 done" in out and "val_auroc" in out and str(folder) in out
    # the study compacted its files when it ended: one part per (class, seed) and table; and it kept
    # the default scores only (--scores test): J's test split
    assert "compacted the results: results: merged 32 small file(s) into 2 part(s)" in out
    assert sorted(p.name[:8] for p in (folder / "results").rglob("*.parquet")) == ["part-g00", "part-g00"]
    scores = ResultStore(str(folder)).read("scores").to_pandas()
    assert set(scores.detector) == {"final"} and set(scores.split) == {"test"}
    assert scores.groupby(["trial_id", "holdout_class"]).size().nunique() == 1 and scores.trial_id.nunique() == 4


DRIVER_ENV = {"TUNE_GLOBAL_CHECKPOINT_S": "1"}


def test_search_killed_with_sigkill_resumes_without_rerunning_or_duplicating(local_ray, config_file, tmp_path,
                                                                             monkeypatch):
    storage = tmp_path / "studies"
    folder = storage / "killed"
    command = [sys.executable, "-m", "omasgan.cli", "search", "--config", str(config_file), "--classes", "0,1",
               "--seeds", "0", "--space", "j", "--trials", "4", "--max-concurrent", "1", "--storage", str(storage),
               "--name", "killed"]
    records = TrialRecords(str(folder))
    driver = subprocess.Popen(command, env=dict(os.environ, **DRIVER_ENV), start_new_session=True,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 300
        while True:  # kill once one trial has finished its last round and the next one has written rows
            assert driver.poll() is None, "the driver exited before it could be killed"
            assert time.time() < deadline, "the search made no progress"
            rows = _rows(folder) if (folder / "results").exists() else None
            if rows is not None and len(rows):
                done = [t for t in records.trial_ids() if "j" in records.read(t)["rounds"]]
                if len(done) >= 1 and rows.trial_id.nunique() >= 2:
                    break
            time.sleep(0.2)
        # killed at once: Tune's experiment snapshot may or may not hold the finished trial yet, and the
        # Optuna journal may already hold its value; the resume must be right either way
    finally:
        os.killpg(driver.pid, signal.SIGKILL)
        driver.wait()
    finished = set(done)
    before = _rows(folder).query("trial_id in @finished").set_index(KEY).created_at

    monkeypatch.setenv("OMASGAN_DRIVER_LEASE_STALE_S", "6")  # the killed driver's lease: taken over after 6 s
    spec = spec_from_args("search", _resume_args("killed"))
    outcome = run_study("search", spec, RunOptions(storage=str(storage), resume=True, max_concurrent=1))
    rows = _rows(folder)
    _assert_complete(rows, trials=4, units=2)
    assert set(rows.trial_id) == set(outcome.trial_ids)
    # the trials finished before the kill (one, or more on a machine where the poll was slow) were not run
    # again: their rows are the ones written before the kill (the study compacted its files when it ended,
    # keeping every row as it was)
    assert finished and len(before) == len(finished) * 2 * ROWS_PER_UNIT
    assert rows.set_index(KEY).created_at.loc[before.index].equals(before)
    assert not list(folder.rglob("*.tmp"))
    # the stages all trials share were trained once per class, across the kill; no unit trained J twice
    for stage in ("task1", "task2", "task3"):
        assert _trained_per_class(folder, stage) == {0: 1, 1: 1}, stage
    assert set(_trained(folder, "j").values()) == {1}
    assert {(t, k, 0) for t in finished for k in (0, 1)} <= set(_trained(folder, "j"))
    assert not [p for p in (folder / "results").rglob("*.parquet") if not p.name.startswith("part-")]
    # one durable record per recorded trial, each with every round; no Optuna trial left RUNNING
    assert records.trial_ids() == sorted(outcome.trial_ids)
    assert all(records.read(t)["rounds"] == ["task1", "task2", "task3", "j"] for t in outcome.trial_ids)
    study = optuna.load_study(study_name="killed", storage=optuna.storages.JournalStorage(
        optuna.storages.journal.JournalFileBackend(str(folder / "optuna-journal.log"))))
    states = [t.state.name for t in study.trials]
    assert states.count("COMPLETE") == 4 and set(states) <= {"COMPLETE", "FAIL"}


def _resume_args(name):
    import argparse

    return argparse.Namespace(resume=True, name=name)


def test_sensitivity_and_seeds_write_their_rows_and_tables(local_ray, config_file, tmp_path, capsys, monkeypatch):
    storage = str(tmp_path / "studies")
    assert main(["sensitivity", "--config", str(config_file), "--classes", "0", "--seeds", "0,1",
                 "--param", "j.zeta", "--values", "0.2,0.8", "--storage", storage, "--name", "sens",
                 "--scores", "none", "--cache", str(tmp_path / "shared-cache")]) == 0
    rows = _rows(tmp_path / "studies" / "sens")
    _assert_complete(rows, trials=2, units=2)
    assert ResultStore(storage + "/sens").read("scores").num_rows == 0
    assert set(rows.sweep_param) == {"j.zeta"} and set(rows.sweep_value) == {0.2, 0.8}
    assert set(rows.cfg_j_zeta) == {0.2, 0.8}
    assert "sensitivity" in capsys.readouterr().out
    assert not (tmp_path / "studies" / "sens" / "cache").exists()

    from omasgan.distributed.studies import runner as study_runner

    monkeypatch.setattr(study_runner, "RAY_COMPACTION_MIN_FILES", 1)  # compact as Ray tasks, as a big study does
    assert main(["seeds", "--config", str(config_file), "--classes", "0,1", "--seeds", "0,1",
                 "--storage", storage, "--name", "seeds", "--scores", "all", "--cache", str(tmp_path / "shared-cache")]) == 0
    # given the sensitivity study's --cache, the seeds study trains no stage the two share: class 0's
    # Task 1..3 (the sweep varied only J)
    assert StudySpec.read(tmp_path / "studies" / "seeds").options["run"]["cache"] == str(tmp_path / "shared-cache")
    for stage in ("task1", "task2", "task3"):
        assert _trained_per_class(tmp_path / "studies" / "seeds", stage) == {1: 2}, stage
    assert sorted(p.name[:10] for p in (tmp_path / "studies" / "seeds").rglob("*.parquet")) == ["part-g0000"] * 8
    rows = _rows(tmp_path / "studies" / "seeds")
    _assert_complete(rows, trials=1, units=4)
    scores = ResultStore(storage + "/seeds").read("scores").to_pandas()
    assert set(scores.detector) == {"task1", "task3", "final"} and set(scores.split) == {"val", "test"}
    assert StudySpec.read(tmp_path / "studies" / "seeds").options["scores"] == "all"
    table = seeds_table(rows)
    test_final = rows[(rows.detector == "final") & (rows.split == "test")]
    for k in (0, 1):
        line = table[table["class"] == str(k)].iloc[0]
        values = test_final[test_final.holdout_class == k].auroc
        assert line.final_mean == pytest.approx(values.mean()) and line.final_sd == pytest.approx(values.std())
    out = capsys.readouterr().out
    assert "mean and SD over seeds" in out and "final_sd" in out


def test_a_failing_unit_writes_an_error_row_and_the_study_goes_on(local_ray, tmp_path):
    spec = StudySpec(name="faulty", kind="seeds", dataset="synthetic", classes=[0], seeds=[0, 1],
                     base_config=study_config().to_dict())
    options = RunOptions(storage=str(tmp_path / "studies"),
                         fault=FaultInjection("task3", 1, str(tmp_path / "markers"), action="raise", error="unit"))
    outcome = run_study("seeds", spec, options)
    rows = _rows(tmp_path / "studies" / "faulty")
    errors = rows[rows.status == "error"]
    assert len(errors) == 2 and set(errors.stage) == {"task3"}
    assert all("injected fault in task3" in e for e in errors.error)
    assert set(rows[rows.status == "ok"].stage) == {"task1", "task2"} and "j" not in set(rows.stage)
    assert not outcome.trial_errors  # the trial itself ended normally


def test_a_system_error_in_a_unit_is_retried_by_tune_not_recorded_as_the_configs(local_ray, tmp_path, capsys):
    spec = StudySpec(name="flaky", kind="seeds", dataset="synthetic", classes=[0], seeds=[0],
                     base_config=study_config().to_dict())
    options = RunOptions(storage=str(tmp_path / "studies"), max_failures=1,
                         fault=FaultInjection("task2", 1, str(tmp_path / "markers"), action="raise", error="system"))
    outcome = run_study("seeds", spec, options)
    folder = tmp_path / "studies" / "flaky"
    rows = _rows(folder)
    _assert_complete(rows, trials=1, units=1)  # no error row: the failure was the system's
    assert not outcome.trial_errors
    assert "retried from its last finished stage" in capsys.readouterr().out
    # the retry resumed at Task 2: Task 1 was trained once, Task 2 once after the failed attempt, and so on
    trial = outcome.trial_ids[0]
    assert TrialRecords(str(folder)).training_counts() == {(trial, 0, 0): {"task1": 1, "task2": 1, "task3": 1, "j": 1}}


def test_seeds_of_a_baseline_method_in_the_same_store(local_ray, config_file, tmp_path, capsys):
    storage = str(tmp_path / "studies")
    assert main(["seeds", "--config", str(config_file), "--classes", "0,1", "--seeds", "0,1", "--method", "knn",
                 "--set", "baseline.k=3", "--storage", storage, "--name", "knn"]) == 0
    rows = _rows(tmp_path / "studies" / "knn")
    assert len(rows) == 2 * 2 * 2 and rows.duplicated(KEY).sum() == 0  # classes x seeds x (val, test)
    assert set(rows.method) == {"knn"} and set(rows.stage) == {"baseline"} and set(rows.status) == {"ok"}
    table = seeds_table(rows)
    assert "knn_mean" in table.columns and "knn_sd" in table.columns
    assert "knn_mean" in capsys.readouterr().out


def test_the_failure_budget_halts_a_study_after_n_failed_trials(local_ray, tmp_path):
    """--max-failed-trials 2: a fault that fails every trial's unit (a systemic failure) halts the
    study after its second failed trial instead of running on through every value."""
    from omasgan.distributed.studies.guards import StudyHalted

    sweeps = [{"param": "task2.mu", "value": v} for v in (0.1, 0.2, 0.3, 0.4, 0.5)]
    spec = StudySpec(name="doomed", kind="sensitivity", dataset="synthetic", classes=[0], seeds=[0],
                     base_config=study_config().to_dict(), options={"sweeps": sweeps})
    options = RunOptions(storage=str(tmp_path / "studies"), max_concurrent=1, max_failed_trials=2,
                         fault=FaultInjection("task1", 1, str(tmp_path / "markers"), action="raise", error="unit"))
    with pytest.raises(StudyHalted, match=r"2 trial\(s\) failed \(--max-failed-trials 2\); the last, .*: 1 unit\(s\) "
                                          r"failed; fix the cause, then continue it with `omasgan sensitivity --resume"):
        run_study("sensitivity", spec, options)
    rows = _rows(tmp_path / "studies" / "doomed")
    assert set(rows.status) == {"error"} and set(rows.stage) == {"task1"}
    assert rows.trial_id.nunique() == 2  # the other three values never ran


def test_resuming_a_search_leaves_its_failed_trials_as_optuna_holds_them(local_ray, config_file, tmp_path):
    """A search whose trials errored for good (a system error, no retries left) is resumed: Optuna holds
    those trials as FAIL, so they are not trained again and the rows they wrote stay."""
    storage = tmp_path / "studies"
    folder = storage / "erred"
    spec = spec_from_args("search", _search_args(config_file, "erred", trials=2))
    fault = FaultInjection("task3", 1, str(tmp_path / "markers"), action="raise", error="system")
    outcome = run_study("search", spec, RunOptions(storage=str(storage), max_concurrent=1, max_failures=0,
                                                   fault=fault))
    assert len(outcome.trial_errors) == 2
    before = _rows(folder).set_index(KEY).created_at
    ledger = TrialRecords(str(folder)).training_counts()
    assert set(before.index.get_level_values("stage")) == {"task1", "task2"}

    outcome = run_study("search", spec_from_args("search", _resume_args("erred")),
                        RunOptions(storage=str(storage), resume=True))
    assert len(outcome.trial_errors) == 2  # still in error: not trained again
    assert TrialRecords(str(folder)).training_counts() == ledger
    assert _rows(folder).set_index(KEY).created_at.sort_index().equals(before.sort_index())
    study = optuna.load_study(study_name="erred", storage=optuna.storages.JournalStorage(
        optuna.storages.journal.JournalFileBackend(str(folder / "optuna-journal.log"))))
    assert [t.state.name for t in study.trials] == ["FAIL", "FAIL"]


def _search_args(config_file, name, trials):
    from omasgan.cli import build_parser

    return build_parser().parse_args(["search", "--config", str(config_file), "--classes", "0", "--seeds", "0",
                                      "--space", "j", "--trials", str(trials), "--name", name])


def test_a_placement_that_can_never_fit_is_refused_before_anything_is_written(local_ray, config_file, tmp_path,
                                                                             capsys):
    storage = tmp_path / "studies"
    code = main(["seeds", "--config", str(config_file), "--classes", "0-3", "--seeds", "0-9", "--parallel-units", "40",
                 "--storage", str(storage), "--name", "toobig"])
    err = capsys.readouterr().err
    assert code == 2 and "--parallel-units 40: a trial's placement group" in err and "can never fit" in err
    assert not (storage / "toobig").exists()  # no study.json, no driver lease


def test_data_missing_on_a_node_is_the_systems_failure_not_the_configs(tmp_path):
    """The study found the data when it started; a unit that cannot find it on its node raises (Tune
    retries the trial, maybe elsewhere) instead of recording the config as failed."""
    import numpy as np

    from omasgan.config import default_config
    from omasgan.distributed.studies.units import DataMissingOnNode, UnitTask, run_unit

    table = tmp_path / "table.npy"
    rng = np.random.default_rng(0)
    np.save(table, np.column_stack([rng.normal(size=(200, 3)), np.repeat([0, 1], 100)]))
    config = default_config("tabular", tabular_path=str(table), label_column=3).with_overrides(
        {"task1.epochs": 1, "task2.epochs": 1, "task3.epochs": 1, "j.epochs": 1})
    table.unlink()  # gone on this node
    task = UnitTask(study="s", study_kind="seeds", trial_id="t", base_config=config.to_dict(), params={}, holdout=0,
                    seed=0, stage="task1", cache_root=str(tmp_path / "cache"), store_root=str(tmp_path / "store"))
    with pytest.raises(DataMissingOnNode, match=r"on node .*table.npy is missing .*same --data-root"):
        run_unit(task)
    assert not (tmp_path / "store" / "results").exists()  # no error row


def test_reproduce_runs_its_parts_as_seeds_studies_resumes_and_writes_the_claims(local_ray, tmp_path, capsys):
    storage = str(tmp_path / "studies")
    short = ["--set", "task1.epochs=2", "--set", "task2.epochs=1", "--set", "task3.epochs=1", "--set", "j.epochs=2"]
    assert main(["reproduce", "--budget", "quick", "--digits", "0", "--seeds", "0,1", "--parts", "knn,omasgan",
                 "--storage", storage, *short]) == 0
    out = capsys.readouterr().out
    folder = tmp_path / "studies" / "reproduce-quick"
    assert {p.name for p in folder.iterdir()} >= {"reproduce.json", "knn", "omasgan", "cache", "claims"}
    assert "below" in out or "consistent" in out or "above" in out
    assert "on digits (stand-in for mnist)" in out
    rows = _rows(folder / "omasgan")
    assert set(rows.stage) == {"task1", "task2", "task3", "j"} and rows.seed.nunique() == 2
    ledger = TrialRecords(str(folder / "omasgan")).training_counts()
    document = json.loads((folder / "claims" / "claims.json").read_text())
    assert document["budget"] == "quick" and document["parts"] == ["knn", "omasgan"]
    # a second run of the same name is refused; --resume continues (nothing is left: nothing is retrained)
    assert main(["reproduce", "--budget", "quick", "--storage", storage]) == 2
    assert "already holds a reproduction; pass --resume" in capsys.readouterr().err
    assert main(["reproduce", "--resume", "--name", "reproduce-quick", "--storage", storage]) == 0
    assert TrialRecords(str(folder / "omasgan")).training_counts() == ledger
    assert main(["reproduce", "--table-only", "--name", "reproduce-quick", "--storage", storage]) == 0
    assert json.loads((folder / "claims" / "claims.json").read_text())["claims"] == document["claims"]

"""Studies that say how sure they are, under a local Ray: the same unit gives the same numbers through
`omasgan run` and through a study; a search objective never scores a trial on its surviving units
(Optuna is told FAIL); a search's top trial and the base config are confirmed on fresh seeds, paired,
with a verdict; `omasgan compare` reads any two of them.  Without Ray: how a trial's end is told to
Optuna and where the ASHA rungs fall."""

import json
from pathlib import Path
from types import SimpleNamespace

import optuna
import pandas as pd
import pytest

ray = pytest.importorskip("ray")

from omasgan.cli import main  # noqa: E402
from omasgan.distributed.store.study_folder import CONFIRMATION_FILE  # noqa: E402
from omasgan.distributed.studies.journal_search import ending  # noqa: E402
from omasgan.distributed.studies.preparation import RunOptions  # noqa: E402
from omasgan.distributed.commands.studies import run_study, spec_from_args  # noqa: E402
from omasgan.distributed.store.study_folder import StudySpec  # noqa: E402
from omasgan.distributed.studies.trainable import TrialPlan, unit_objective  # noqa: E402
from omasgan.errors import ConfigError  # noqa: E402
from omasgan.trainables import FaultInjection  # noqa: E402

from helpers import tiny_config  # noqa: E402

DIGITS_UNIT = ["--dataset", "digits", "--seed", "0", "--threads", "1", "--set", "task1.epochs=3",
               "--set", "task2.epochs=1", "--set", "task3.epochs=2", "--set", "j.epochs=2"]


@pytest.fixture(scope="module")
def local_ray():
    ray.init(num_cpus=3, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield
    ray.shutdown()


def _config_file(tmp_path: Path) -> Path:
    path = tmp_path / "base.json"
    config = tiny_config(n_per_class=150, task1__epochs=8, task2__epochs=3, task3__epochs=3, j__epochs=10)
    path.write_text(json.dumps(config.to_dict()))
    return path


def _rows(folder: Path) -> pd.DataFrame:
    from omasgan.distributed import ResultStore

    return ResultStore(str(folder)).read().to_pandas()


def _journal(folder: Path, name: str):
    storage = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(folder / "optuna-journal.log")))
    return optuna.load_study(study_name=name, storage=storage)


def test_one_digits_unit_gives_the_same_numbers_through_run_and_through_a_study(local_ray, tmp_path):
    out = tmp_path / "run"
    assert main(["run", *DIGITS_UNIT, "--holdout", "3", "--out", str(out), "--quiet"]) == 0
    metrics = json.loads((out / "metrics.json").read_text())["metrics"]
    assert main(["seeds", *DIGITS_UNIT, "--classes", "3", "--seeds", "0", "--storage", str(tmp_path / "studies"),
                 "--name", "same"]) == 0
    rows = _rows(tmp_path / "studies" / "same")
    assert set(rows.cfg_threads) == {1}
    compared = 0
    for row in rows[rows.detector.notna()].itertuples():
        assert row.auroc == metrics[row.detector][row.split]["auroc"], (row.detector, row.split)
        assert row.threshold == pytest.approx(metrics[row.detector][row.split].get("threshold", row.threshold))
        compared += 1
    assert compared == 6  # task1, task3, final x val, test


def test_a_search_trial_with_a_failed_unit_is_told_to_optuna_as_failed(local_ray, tmp_path):
    spec = spec_from_args("search", SimpleNamespace(
        resume=False, config=str(_config_file(tmp_path)), dataset=None, classes="0,1", seeds="0", last_stage="j",
        name="failing", space="j", trials=2, scheduler="fifo", sampler_seed=0, sampler_window=0, with_optimizer=False,
        with_batch=False, objective="mean", confirm=None, confirm_seeds=None, set=None, protocol=None,
        holdout=None, data_root=None, ood_dataset=None, tabular_path=None, label_column=None, max_train=None,
        seed=None, threads=None, download=False))
    options = RunOptions(storage=str(tmp_path / "studies"), max_concurrent=1,
                         fault=FaultInjection("task3", 1, str(tmp_path / "markers"), only="-1-0"))
    outcome = run_study("search", spec, options)
    rows = _rows(tmp_path / "studies" / "failing")
    errors = rows[rows.status == "error"]
    assert set(errors.stage) == {"task3"} and set(errors.holdout_class) == {1}
    assert "j" not in set(rows.stage)  # the trial stopped at the failed round: nothing more is trained
    states = [t.state.name for t in _journal(tmp_path / "studies" / "failing", "failing").trials]
    assert states == ["FAIL", "FAIL"]
    assert not outcome.trial_errors


def test_a_search_confirmed_on_fresh_seeds_pairs_its_winner_with_the_base(local_ray, tmp_path, capsys):
    storage = tmp_path / "studies"
    folder = storage / "conf"
    assert main(["search", "--config", str(_config_file(tmp_path)), "--classes", "0,1", "--seeds", "0",
                 "--space", "j", "--trials", "3", "--objective", "iqm", "--storage", str(storage), "--name", "conf",
                 "--confirm", "1", "--confirm-seeds", "100,101", "--report"]) == 0
    out = capsys.readouterr().out
    assert "confirmation on fresh seeds [100, 101]" in out and "confirmed winner:" in out
    spec = StudySpec.read(folder)
    assert spec.options["objective"] == "iqm" and spec.options["confirm"]["seeds"] == [100, 101]
    labels = [c["label"] for c in spec.options["confirm"]["candidates"]]
    assert labels[0] == "base" and len(labels) == 2
    rows = _rows(folder)
    search, confirm = rows[rows.study_kind == "search"], rows[rows.study_kind == "confirm"]
    assert set(search.seed) == {0} and len(search) == 3 * 2 * 7  # untouched by the confirmation
    assert set(confirm.seed) == {100, 101} and set(confirm.trial_id) == set(labels)
    assert len(confirm) == 2 * 4 * 7 and set(confirm.status) == {"ok"}
    summary = json.loads((folder / CONFIRMATION_FILE).read_text())
    val = [c for c in summary["comparisons"] if c["split"] == "val"]
    assert len(val) == 1 and val[0]["n"] == 4 and val[0]["verdict"] in ("better", "not distinguishable", "worse")
    j_val = confirm[(confirm.stage == "j") & (confirm.split == "val")].set_index(["trial_id", "holdout_class", "seed"]).auroc
    diff = (j_val.loc[labels[1]] - j_val.loc["base"]).mean()
    assert val[0]["mean_diff"] == pytest.approx(diff)
    best = json.loads((folder / "report" / "best-config.json").read_text())
    assert best["chosen_by"]["confirmed"] is True and best["chosen_by"]["trial"] == summary["winner"]
    assert "Confirmation on fresh seeds \\[100, 101\\]" in (folder / "report" / "report.md").read_text()

    # rerunning the confirmation reads it again (nothing retrained); another --top is refused
    before = {p: p.stat().st_mtime_ns for p in (folder / "results").rglob("seed=10*/*.parquet")}
    assert main(["confirm", str(folder), "--top", "1", "--seeds", "100,101"]) == 0
    assert json.loads((folder / CONFIRMATION_FILE).read_text())["comparisons"] == summary["comparisons"]
    assert before == {p: p.stat().st_mtime_ns for p in (folder / "results").rglob("seed=10*/*.parquet")}
    assert main(["confirm", str(folder), "--top", "2"]) == 2
    assert "was confirmed with --confirm 1" in capsys.readouterr().err

    # any two configs of the folder, paired by (class, seed)
    assert main(["compare", str(storage), "--a", f"conf:{labels[1]}", "--b", "conf:base", "--split", "val",
                 "--json", str(tmp_path / "cmp.json")]) == 0
    compared = json.loads((tmp_path / "cmp.json").read_text())
    assert compared["overall"]["n"] == 4 and compared["overall"]["mean_diff"] == pytest.approx(diff)
    assert main(["compare", str(storage), "--a", "conf", "--b", "conf:base@task1", "--split", "val"]) == 0
    assert "the confirmed winner of search 'conf'" in capsys.readouterr().out


def test_confirm_seeds_must_be_fresh(tmp_path):
    assert main(["search", "--config", str(_config_file(tmp_path)), "--classes", "0", "--seeds", "0,100",
                 "--confirm", "1", "--confirm-seeds", "100,101", "--storage", str(tmp_path / "s")]) == 2
    assert not (tmp_path / "s").exists() or not any((tmp_path / "s").iterdir())


# ---- without Ray ------------------------------------------------------------------------------------

def test_how_a_trial_end_is_told_to_optuna():
    assert ending({"objective": 0.7, "pipeline_done": True, "units_failed": 0}, False) == ("complete", 0.7)
    assert ending({"objective": 0.6, "pipeline_done": False, "units_failed": 0}, False) == ("pruned", None)
    assert ending({"objective": float("nan"), "pipeline_done": False, "units_failed": 1}, False) == ("fail", None)
    assert ending({"objective": float("nan"), "pipeline_done": True, "units_failed": 0}, False) == ("fail", None)
    assert ending({"objective": 0.7, "pipeline_done": True}, True) == ("fail", None)
    assert ending(None, False) == ("fail", None)


def _state(values: dict[tuple[int, int], float | None], stage: str = "j") -> dict:
    outcomes = {}
    for (k, s), v in values.items():
        outcomes[f"{k},{s}"] = {"stage": stage, "status": "ok" if v is not None else "error",
                                "metrics": {"val": {"auroc": v}} if v is not None else {}}
    return {"outcomes": outcomes}


def test_the_objective_aggregates_every_unit_and_a_failed_one_makes_it_nan():
    units = [[0, 0], [0, 1], [1, 0], [1, 1]]
    plan = TrialPlan(study="s", study_kind="search", base_config={}, units=units, last_stage="j",
                     cache_root="c", store_root="r")
    values = {(0, 0): 0.9, (0, 1): 0.7, (1, 0): 0.2, (1, 1): 0.4}
    assert unit_objective(plan, _state(values), "j") == pytest.approx(0.55)
    plan.objective = "worst-class"
    assert unit_objective(plan, _state(values), "j") == pytest.approx(0.3)
    assert unit_objective(plan, _state({**values, (1, 1): None}), "j") != unit_objective(plan, _state(values), "j")
    import math

    assert math.isnan(unit_objective(plan, _state({**values, (1, 1): None}), "j"))
    assert math.isnan(unit_objective(plan, _state(values, stage="task3"), "j"))  # an earlier stage's value is no J


def test_asha_rungs_fall_on_the_detector_rounds_only(tmp_path):
    from ray.tune.schedulers import TrialScheduler

    from omasgan.distributed.studies.experiments import search_experiment
    from omasgan.distributed.studies.preparation import study_paths

    spec = StudySpec(name="asha", kind="search", dataset="synthetic", classes=[0], seeds=[0],
                     base_config=tiny_config().to_dict(), options={"trials": 4, "scheduler": "asha",
                                                                   "space": "j", "sampler_seed": 0,
                                                                   "with_optimizer": False, "with_batch": False})
    scheduler = search_experiment(spec, RunOptions(), study_paths(str(tmp_path), "asha")).make_scheduler()
    scheduler.set_search_properties("objective", "max")
    trials = [SimpleNamespace(trial_id=f"t{i}") for i in range(3)]
    for trial in trials:
        scheduler.on_trial_add(None, trial)
    result = lambda value, **extra: {"objective": value, **extra}  # noqa: E731
    # Task 2's report carries no detector_round: never judged, whatever its value
    assert scheduler.on_trial_result(None, trials[0], result(0.9, detector_round=1)) == TrialScheduler.CONTINUE
    assert scheduler.on_trial_result(None, trials[1], result(0.1)) == TrialScheduler.CONTINUE
    assert scheduler.on_trial_result(None, trials[1], result(0.1, detector_round=1)) == TrialScheduler.STOP
    assert scheduler.on_trial_result(None, trials[2], result(0.95, detector_round=1)) == TrialScheduler.CONTINUE
    assert scheduler.on_trial_result(None, trials[2], result(0.8, detector_round=3)) == TrialScheduler.STOP  # max_t


def test_compare_refuses_a_name_it_cannot_resolve(tmp_path):
    with pytest.raises(ConfigError, match="holds no study"):
        from omasgan.distributed.report.compare import compare

        compare(tmp_path, "a", "b")


def test_the_base_is_recognised_in_a_trial_whose_floats_differ_by_rounding():
    from omasgan.distributed.studies.confirmation import same_config

    base = {"task3.delta": 0.4, "task3.alpha": 0.3, "j.score": "j", "task1.epochs": 8}
    assert same_config(base, {**base, "task3.delta": 0.7 - 0.3})  # 0.39999999999999997
    assert same_config(base, {**base, "task1.epochs": 8.0})
    assert not same_config(base, {**base, "task3.delta": 0.41})
    assert not same_config(base, {**base, "j.score": "critic"})
    assert not same_config(base, {k: v for k, v in base.items() if k != "j.score"})

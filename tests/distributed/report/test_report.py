"""`omasgan report` on small synthetic results: every figure is a valid PNG of the stated size, the
tables equal what pandas computes from the Parquet rows, missing inputs leave sections out with a
reason, the best config is chosen on validation rows only and runs with `omasgan run --config`, and a
failed report leaves the previous one intact."""

import argparse
import json
import re

import numpy as np
import optuna
import pandas as pd
import pytest
from PIL import Image

from omasgan.cli import main
from omasgan.distributed import ResultStore, UnitKey
from omasgan.distributed.report import sections as report_module
from omasgan.distributed.commands.report import add_report_parser
from omasgan.distributed.report.sections import write_report
from omasgan.distributed.store.study_folder import JOURNAL_FILE, StudySpec
from omasgan.errors import ConfigError

from helpers import tiny_config

CLASSES, DATASET = [0, 1], "synthetic"
# the search's validation AUROC of J per trial and class: t1 is best over both units; t0 is higher on
# the one unit it finished (its J failed on class 1) and t2 is best on test, never on validation
SEARCH_VAL = {"t0": [0.99, None], "t1": [0.90, 0.80], "t2": [0.70, 0.72]}
SEARCH_TEST = {"t0": [0.50, None], "t1": [0.60, 0.65], "t2": [0.95, 0.97]}
SEARCH_MU = {"t0": 1.0, "t1": 4.0, "t2": 16.0}


def _config(holdout, seed, **overrides):
    return tiny_config(holdout=holdout, n_per_class=60, seed=seed, task1__epochs=2, task2__epochs=1,
                       task3__epochs=1, j__epochs=2, network__g_width=16, network__d_width=16,
                       task2__bank_size=128, **overrides)


def _evaluation(detector, val, test, rng):
    metrics = {}
    for split, auroc in (("val", val), ("test", test)):
        metrics[split] = {"auroc": auroc, **{m: float(rng.uniform(0.1, 0.9)) for m in
                                             ("auprc", "f1", "precision", "recall", "accuracy")}}
    return {"detector": detector, "threshold": 0.5, "metrics": metrics}


ALARM_RNG = np.random.default_rng(5)  # the shortcut alarm's figures, apart from the metrics' generator


def _pipeline(store, key, config, rng, val, test, *, sweep=None, fail_j=False, alarm=True):
    """Rows of the four stages of one unit; Task 1 and Task 3 a little below J."""
    for stage, detector, drop in (("task1", "task1", 0.2), ("task3", "task3", 0.1)):
        store.write_stage_rows(key, stage, config=config, wall_time_s=float(rng.uniform(1, 5)), sweep=sweep,
                               evaluation=_evaluation(detector, val - drop, test - drop, rng))
    task2_alarm = dict(zip(("ink_auroc", "contrast_auroc", "nn_auroc"), ALARM_RNG.uniform(0, 1, 3))) if alarm else None
    store.write_stage_rows(key, "task2", config=config, wall_time_s=float(rng.uniform(1, 5)), sweep=sweep,
                           alarm=task2_alarm)
    if fail_j:
        store.write_stage_rows(key, "j", config=config, status="error", error="loss became nan\nat step 3", sweep=sweep)
    else:
        store.write_stage_rows(key, "j", config=config, wall_time_s=float(rng.uniform(1, 5)), sweep=sweep,
                               evaluation=_evaluation("final", val, test, rng),
                               alarm={"ink_spearman": float(ALARM_RNG.uniform(-1, 1))} if alarm else None)


def _journal(folder, name, values):
    storage = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(folder / JOURNAL_FILE)))
    study = optuna.create_study(study_name=name, storage=storage, direction="maximize",
                                sampler=optuna.samplers.RandomSampler(seed=0))
    for value in values:
        trial = study.ask()
        trial.suggest_float("task2.mu", 0.1, 20.0, log=True)
        trial.suggest_float("j.zeta", 0.0, 1.0)
        if value is None:
            study.tell(trial, state=optuna.trial.TrialState.FAIL)
        else:
            study.tell(trial, value)


def _spec(folder, name, kind, seeds, **options):
    StudySpec(name=name, kind=kind, dataset=DATASET, classes=CLASSES, seeds=seeds,
              base_config=_config(0, 0).to_dict(), options=options).write(folder)


def _search(folder, name, rng, *, scores=False, samples=False):
    _spec(folder, name, "search", [0])
    store = ResultStore(str(folder))
    for trial, mu in SEARCH_MU.items():
        for i, k in enumerate(CLASSES):
            key = UnitKey(name, "search", trial, DATASET, k, 0)
            config = _config(k, 0, task2__mu=mu)
            _pipeline(store, key, config, rng, SEARCH_VAL[trial][i] or 0.5, SEARCH_TEST[trial][i] or 0.5,
                      fail_j=SEARCH_VAL[trial][i] is None)
            if scores and trial == "t1":
                labels = np.r_[np.zeros(80, int), np.ones(20, int)]
                values = rng.normal(size=100) + 2 * labels
                store.write_scores(key, "final", {"val": values, "test": values}, {"val": labels, "test": labels})
            if samples and trial == "t1":
                store.write_samples(key, {"x": rng.normal(size=(200, 2)), "generated": rng.normal(size=(100, 2)),
                                          "boundary": 2 * rng.normal(size=(50, 2))})


@pytest.fixture(scope="module")
def studies(tmp_path_factory):
    """A folder of four studies: search (with journal, scores, samples), seeds, sensitivity, baseline."""
    root = tmp_path_factory.mktemp("studies")
    rng = np.random.default_rng(0)
    _search(root / "srch", "srch", rng, scores=True, samples=True)
    _journal(root / "srch", "srch", [0.6, 0.8, 0.7, None, 0.9])

    _spec(root / "sds", "sds", "seeds", [0, 1, 2])
    store = ResultStore(str(root / "sds"))
    for k in CLASSES:
        for s in (0, 1, 2):
            auroc = float(rng.uniform(0.6, 0.95))
            key = UnitKey("sds", "seeds", f"k{k}s{s}", DATASET, k, s)
            _pipeline(store, key, _config(k, s), rng, auroc, auroc - 0.05)

    _spec(root / "sens", "sens", "sensitivity", [0, 1])
    store = ResultStore(str(root / "sens"))
    for param, values in (("task2.mu", (1.0, 4.0, 16.0)), ("j.zeta", (0.0, 0.5))):
        for v in values:
            for k in CLASSES:
                for s in (0, 1):
                    key = UnitKey("sens", "sensitivity", f"{param}={v}", DATASET, k, s)
                    store.write_stage_rows(key, "j", config=_config(k, s, **{param.replace(".", "__"): v}),
                                           evaluation=_evaluation("final", *rng.uniform(0.5, 1.0, 2), rng),
                                           sweep=(param, v), wall_time_s=1.0)

    _spec(root / "base", "base", "baseline", [0])
    store = ResultStore(str(root / "base"))
    for method in ("knn", "iforest"):
        for k in CLASSES:
            key = UnitKey("base", "baseline", method, DATASET, k, 0, method=method)
            store.write_stage_rows(key, "baseline", config=_config(k, 0), wall_time_s=0.5,
                                   evaluation=_evaluation(method, *rng.uniform(0.5, 1.0, 2), rng))
    page = write_report(root)
    return root, page


def _rows(root, study):
    return ResultStore(str(root / study)).read("results").to_pandas().query("status == 'ok'")


def _csv(page, name):
    return pd.read_csv(page.parent / "tables" / f"{name}.csv")


EXPECTED_FIGURES = (
    [f"auroc-synthetic-{s}-{d}" for s in ("sds", "srch") for d in ("task1", "task3", "final")]
    + ["ablation-synthetic-sds", "ablation-synthetic-srch", "seeds-synthetic-sds",
       "sensitivity-sens-j.zeta", "sensitivity-sens-task2.mu", "search-history-srch", "importance-srch",
       "scores-synthetic-srch-class0", "scores-synthetic-srch-class1",
       "boundary-synthetic-srch-class0", "boundary-synthetic-srch-class1"])


def test_every_figure_is_a_png_of_the_stated_size(studies):
    root, page = studies
    assert page == root / "report" / "report.md"
    figures = page.parent / "figures"
    assert sorted(p.stem for p in figures.glob("*.png")) == sorted(EXPECTED_FIGURES)
    text = page.read_text()
    for name in EXPECTED_FIGURES:
        path = figures / f"{name}.png"
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 2000, name
        with Image.open(path) as image:
            assert image.format == "PNG" and image.size == (640, 400), name
        assert f"](figures/{name}.png)" in text
    assert "Left out" not in text
    assert not [p for p in root.iterdir() if p.name.startswith(".")]  # no temporary folder left


def test_per_class_ablation_and_metrics_tables_equal_pandas(studies):
    root, page = studies
    text = page.read_text()
    seeds = _rows(root, "sds").query("split == 'test'")
    table = _csv(page, "auroc-synthetic-sds").set_index("holdout_class")
    for detector in ("task1", "task3", "final"):
        expected = seeds[seeds.detector == detector].groupby("holdout_class").auroc.mean()
        for k in CLASSES:
            assert table.loc[str(k), detector] == pytest.approx(expected[k])
            assert f"{expected[k]:.4f}" in text
        assert table.loc["mean", detector] == pytest.approx(expected.mean())
    base = _rows(root, "base").query("split == 'test'")
    for method in ("knn", "iforest"):  # baselines sit next to the OMASGAN detectors
        expected = base[base.method == method].groupby("holdout_class").auroc.mean()
        assert list(table.loc[["0", "1"], method]) == pytest.approx(list(expected))
    ablation = _csv(page, "ablation-synthetic-sds").set_index("holdout_class")
    assert list(ablation.columns) == ["task1", "task3", "final", "final - task1", "final - task3"]
    assert list(ablation["final - task1"]) == pytest.approx(list(ablation["final"] - ablation["task1"]))
    # the search is reported through its best trial (t1) only
    search = _csv(page, "auroc-synthetic-srch").set_index("holdout_class")
    assert list(search.loc[["0", "1"], "final"]) == pytest.approx(SEARCH_TEST["t1"])
    metrics = _csv(page, "metrics-synthetic-sds")
    for metric in ("auroc", "auprc", "f1"):
        expected = seeds.groupby(["detector", "holdout_class"])[metric].mean()
        for (detector, k), value in expected.items():
            row = metrics[(metrics.model == detector) & (metrics.holdout_class == str(k))]
            assert row[metric].item() == pytest.approx(value)
            assert row["seeds"].item() == 3


def test_seed_sensitivity_and_wall_time_tables_equal_pandas(studies):
    root, page = studies
    final = _rows(root, "sds").query("split == 'test' and stage == 'j'")
    expected = final.groupby("holdout_class").auroc.agg(["mean", "std", "min", "max"])
    table = _csv(page, "seeds-synthetic-sds").set_index("holdout_class")
    for column in ("mean", "min", "max"):
        assert list(table[column]) == pytest.approx(list(expected[column]))
    assert list(table["sd"]) == pytest.approx(list(expected["std"])) and set(table["units_ok"]) == {3}
    assert set(table["units_total"]) == {3}
    assert f"Average SD over classes (classes with >= 2 seeds): {expected['std'].mean():.4f}." in page.read_text()

    sens = _rows(root, "sens").query("sweep_param == 'task2.mu'")
    per_seed = sens.groupby(["sweep_value", "split", "seed"]).auroc.mean()
    spread = per_seed.groupby(["sweep_value", "split"]).agg(["mean", "std"])
    table = _csv(page, "sensitivity-sens-task2.mu").set_index("value")
    assert list(table.index) == [1.0, 4.0, 16.0] and set(table["seeds"]) == {2}
    assert set(table["units_ok"]) == set(table["units_total"]) == {4}
    assert "(k/n units)" not in page.read_text()  # every unit finished: no legend
    for (value, split), row in spread.iterrows():
        assert table.loc[value, f"{split}_mean"] == pytest.approx(row["mean"])
        assert table.loc[value, f"{split}_sd"] == pytest.approx(row["std"])

    everything = pd.concat([_rows(root, s) for s in ("srch", "sds", "sens", "base")])
    once = everything.drop_duplicates(["study", "trial_id", "holdout_class", "seed", "method", "stage"])
    stages = _csv(page, "wall-time-stages").set_index(["study", "method", "stage"])
    for key, total in once.groupby(["study", "method", "stage"]).wall_time_s.sum().items():
        assert stages.loc[key, "total_s"] == pytest.approx(total)
    trials = _csv(page, "wall-time-trials").set_index(["study", "trial_id"])
    assert trials.loc[("srch", "t1"), "units"] == 2
    assert trials.loc[("srch", "t1"), "total_s"] == pytest.approx(
        once.query("study == 'srch' and trial_id == 't1'").wall_time_s.sum())
    assert "| knn | iforest |" not in page.read_text()  # baselines are ordered after the detectors
    assert "| final | iforest | knn |" in page.read_text()


def test_search_section_importance_and_ranking(studies):
    root, page = studies
    text = page.read_text()
    assert "5 trials (4 complete, 1 fail); direction maximize." in text
    importance = _csv(page, "importance-srch")
    assert set(importance["param"]) == {"task2.mu", "j.zeta"} and importance["importance"].sum() == pytest.approx(1.0)
    assert "fANOVA importance of each parameter for the objective (sums to 1)." in text  # all 4 trials
    ranking = _csv(page, "ranking-srch")
    assert list(ranking["trial_id"]) == ["t1", "t2", "t0"] and list(ranking["units"]) == [2, 2, 1]
    assert ranking["objective"][0] == pytest.approx(np.mean(SEARCH_VAL["t1"]))
    assert list(ranking["complete"]) == [True, True, False]  # t0 has a failed unit: not scored on the other
    assert "split=val (validation split only)" in text
    assert "Search study `srch`: trial `t1` is shown" in text
    assert "| srch | t0 | 1 | 0 | omasgan | j | loss became nan |" in text  # the error row, first line


def test_the_cli_search_table_and_the_report_rank_the_trials_the_same(studies):
    """t0 is best on the one unit it finished and t2 on test; both rank by the one rule: t1, t2, t0."""
    from omasgan.distributed.analysis.tables import search_table
    from omasgan.distributed.report.tables import load_inputs, ranking

    root, page = studies
    spec = StudySpec.read(root / "srch")
    rows = ResultStore(str(root / "srch")).read("results").to_pandas()
    cli = search_table(rows, {trial: {"task2.mu": mu} for trial, mu in SEARCH_MU.items()}, spec)
    report = ranking(load_inputs(root), spec)  # ranked in the report's pushed-down scan
    assert list(cli["trial"]) == list(report["trial_id"]) == list(_csv(page, "ranking-srch")["trial_id"])
    assert list(cli["trial"]) == ["t1", "t2", "t0"]
    assert cli["objective"].tolist()[:2] == pytest.approx(report["objective"].tolist()[:2])


def test_best_config_is_chosen_on_validation_and_runs(studies, tmp_path):
    root, page = studies
    path = page.parent / "best-config.json"
    document = json.loads(path.read_text())
    config = document["config"]
    assert document["chosen_by"]["confirmed"] is False and document["chosen_by"]["trial"] == "t1"
    assert "seed" not in config and "holdout" not in config["data"]
    assert config["task2"]["mu"] == SEARCH_MU["t1"]  # t1: best validation AUROC; t2 is best on test
    stored = json.loads(_rows(root, "srch").query("trial_id == 't1' and stage == 'j'").config_json.iloc[0])
    stored["data"].pop("holdout"), stored.pop("seed")
    assert config == stored
    out = tmp_path / "rerun"
    assert main(["run", "--config", str(path), "--dataset", "synthetic", "--holdout", "1", "--seed", "2",
                 "--out", str(out), "--quiet"]) == 0
    ran = json.loads((out / "config.json").read_text())
    assert ran["data"]["holdout"] == 1 and ran["seed"] == 2
    ran["data"].pop("holdout"), ran.pop("seed")
    assert ran == config


def test_importance_of_a_study_past_the_cap_is_fitted_on_a_seeded_sample(tmp_path, monkeypatch, caplog):
    monkeypatch.setattr(report_module, "IMPORTANCE_MAX_TRIALS", 5)
    _search(tmp_path / "b", "b", np.random.default_rng(1))
    _journal(tmp_path / "b", "b", [0.5 + 0.03 * i for i in range(12)])
    optuna.logging.enable_propagation()  # Optuna's log lines reach caplog
    try:
        with caplog.at_level("INFO", logger="optuna"):
            page = write_report(tmp_path, out=tmp_path / "rep")
    finally:
        optuna.logging.disable_propagation()
    assert not [r for r in caplog.records if "created in memory" in r.getMessage()]  # the sample is made quietly
    assert "(sums to 1; fitted on a seeded random sample of 5 of its 12 completed trials)." in page.read_text()
    study = optuna.load_study(study_name="b", storage=optuna.storages.JournalStorage(
        optuna.storages.journal.JournalFileBackend(str(tmp_path / "b" / JOURNAL_FILE))))
    complete = study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))
    fitted, sampled = report_module._importance_trials(study, complete)
    again, _ = report_module._importance_trials(study, complete)
    assert sampled and len(fitted.trials) == 5
    assert [t.params for t in again.trials] == [t.params for t in fitted.trials]  # the same sample each time
    assert {repr(t.params) for t in fitted.trials} < {repr(t.params) for t in complete}
    assert [t.value for t in fitted.trials] == sorted(t.value for t in fitted.trials)  # kept in trial order
    expected = optuna.importance.get_param_importances(fitted, evaluator=optuna.importance.FanovaImportanceEvaluator(seed=0))
    table = _csv(page, "importance-b").set_index("param").importance
    assert table.to_dict() == pytest.approx(expected)
    assert report_module._importance_trials(study, complete[:5]) == (study, False)  # at the cap: the study itself


def test_missing_inputs_leave_sections_out_with_a_reason(tmp_path):
    rng = np.random.default_rng(1)
    _search(tmp_path / "a", "a", rng)  # no journal, one seed, no scores, no samples
    _search(tmp_path / "b", "b", rng)
    _journal(tmp_path / "b", "b", [0.7, None])  # one completed trial: no importance
    page = write_report(tmp_path, out=tmp_path / "rep", fmt="html")
    assert page == tmp_path / "rep" / "report.html"
    text = page.read_text()
    for reason in (
        "Left out: no study has more than one seed for a held-out class",
        "Left out: no ok rows of a sensitivity study",
        "Left out: search history and importance of <code>a</code>: no Optuna journal (optuna-journal.log)",
        "Left out: parameter importance of <code>b</code>: needs &gt;= 2 completed trials whose parameters vary "
        "(1 completed)",
        "Left out: no per-sample test scores",
        "Left out: no 2-D samples",
    ):
        assert reason in text, reason
    # two searches: one best config each
    assert {p.name for p in page.parent.glob("best-config*.json")} == {"best-config-a.json", "best-config-b.json"}
    figures = sorted(p.stem for p in (page.parent / "figures").glob("*.png"))
    assert "search-history-b" in figures and "importance-b" not in figures and "search-history-a" not in figures
    assert '<img src="figures/search-history-b.png"' in text


def test_bad_input_raises_one_line_errors(tmp_path):
    with pytest.raises(ConfigError, match="'.*nowhere' does not exist"):
        write_report(tmp_path / "nowhere")
    with pytest.raises(ConfigError, match="holds no study"):
        write_report(tmp_path)
    _spec(tmp_path / "s", "s", "seeds", [0])
    with pytest.raises(ConfigError, match="report format 'pdf'"):
        write_report(tmp_path / "s", fmt="pdf")
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    with pytest.raises(ConfigError, match="is not a report folder"):
        write_report(tmp_path / "s", out=tmp_path / "mine")
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep me"
    (tmp_path / "s" / "study.json").write_text("{not json")
    with pytest.raises(ConfigError, match="study.json' is not a valid study file"):
        write_report(tmp_path / "s")


def test_empty_study_and_cli_parser(tmp_path, capsys):
    _spec(tmp_path / "s", "s", "seeds", [0])  # a study that wrote no rows yet
    parser = argparse.ArgumentParser(prog="omasgan")
    add_report_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["report", str(tmp_path / "s"), "--format", "md"])
    assert args.handler(args) == 0
    assert "omasgan report: wrote" in capsys.readouterr().out
    text = (tmp_path / "s" / "report" / "report.md").read_text()
    assert text.count("*Left out:") >= 7 and "Read 1 study folder(s)" in text


def test_failed_report_keeps_the_previous_one(studies, tmp_path, monkeypatch):
    root, _ = studies
    first = write_report(root / "sds", out=tmp_path / "rep")
    before = first.read_text()

    def boom(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(report_module, "section_tables", boom)
    with pytest.raises(RuntimeError, match="disk full"):
        write_report(root / "sds", out=tmp_path / "rep")
    assert first.read_text() == before and sorted(p.name for p in tmp_path.iterdir()) == ["rep"]


def test_error_bars_seed_summary_and_noise_floor_equal_pandas_and_scipy(studies):
    from scipy import stats

    root, page = studies
    rows = _rows(root, "sds")
    test = rows[(rows.status == "ok") & (rows.split == "test") & (rows.detector == "final")]
    sd = _csv(page, "auroc-sd-synthetic-sds").set_index("holdout_class")
    for k in CLASSES:
        assert sd.loc[str(k), "final"] == pytest.approx(test[test.holdout_class == k].auroc.std(ddof=1))
    per_seed = test.groupby("seed").auroc.mean()
    assert sd.loc["mean", "final"] == pytest.approx(per_seed.std(ddof=1))  # SD over seeds of the class mean
    summary = _csv(page, "seed-summary").set_index(["source", "model"]).loc[("sds", "final")]
    assert summary["mean"] == pytest.approx(test.auroc.mean()) and summary["units_ok"] == summary["units_total"] == 6
    assert summary["iqm"] == pytest.approx(stats.trim_mean(test.auroc, 0.25))
    assert summary["iqm_low"] <= summary["iqm"] <= summary["iqm_high"]
    assert summary["below_chance"] == int((test.auroc < 0.5).sum())
    floor = _csv(page, "noise-floor").set_index(["source", "model"]).loc[("sds", "final")]
    within = test.groupby("holdout_class").auroc.var(ddof=1)
    assert floor["unit_sd"] == pytest.approx(np.sqrt(within.mean()))  # equal seeds per class: the mean variance
    assert floor["dof"] == 4 and floor["detectable_3_seeds"] == pytest.approx(floor["detectable_here"])
    text = page.read_text()
    assert "error bars: SD over seeds" in text and "3.1 Noise floor" in text


def test_shortcut_alarm_table_equals_pandas(studies):
    root, page = studies
    text = page.read_text()
    assert "## 9. Shortcut alarm" in text
    table = _csv(page, "shortcut-alarm").set_index(["study", "trial_id"])
    for study in ("sds", "srch"):
        rows = _rows(root, study)
        task2 = rows[rows.stage == "task2"]
        for trial, mine in task2.groupby("trial_id"):
            row = table.loc[(study, trial)]
            assert row["units"] == len(mine)
            for name in ("ink_auroc", "contrast_auroc", "nn_auroc"):
                values = mine[f"alarm_{name}"]
                assert row[name] == pytest.approx(values.mean())
                assert row[f"{name}_sep"] == pytest.approx(np.maximum(values, 1 - values).mean())
            j_val = rows[(rows.stage == "j") & (rows.split == "val") & (rows.trial_id == trial)]
            assert row["j_ink_spearman"] == pytest.approx(j_val.alarm_ink_spearman.mean())
    assert ("sens", "task2.mu=1.0") not in table.index  # no task2 rows, no j alarm in the sensitivity study


def test_rows_without_the_alarm_leave_section_9_out(tmp_path):
    _spec(tmp_path / "old", "old", "seeds", [0])
    store = ResultStore(str(tmp_path / "old"))
    rng = np.random.default_rng(2)
    for k in CLASSES:
        _pipeline(store, UnitKey("old", "seeds", "t", DATASET, k, 0), _config(k, 0), rng, 0.8, 0.7, alarm=False)
    text = write_report(tmp_path / "old").read_text()
    assert "Left out: no ok OMASGAN row holds the alarm's figures" in text


@pytest.mark.slow
def test_the_report_is_the_same_after_compaction(studies, tmp_path):
    """Every table (CSV), the best config and the page, from the same rows in small files and then in
    compacted parts."""
    import shutil

    from omasgan.distributed.store.compaction import compact_store

    root, page = studies
    copy = tmp_path / "studies"
    shutil.copytree(root, copy, ignore=shutil.ignore_patterns("report"))
    before = write_report(copy, out=tmp_path / "before")
    for study in ("srch", "sds", "sens", "base"):
        stats = compact_store(str(copy / study))
        assert stats.tables["results"].merged_files > 0
        assert not [p for p in (copy / study / "results").rglob("*.parquet") if not p.name.startswith("part-")]
    after = write_report(copy, out=tmp_path / "after")
    tables = sorted(p.name for p in (before.parent / "tables").glob("*.csv"))
    assert tables == sorted(p.name for p in (after.parent / "tables").glob("*.csv")) and len(tables) >= 15
    for name in tables:
        pd.testing.assert_frame_equal(pd.read_csv(before.parent / "tables" / name),
                                      pd.read_csv(after.parent / "tables" / name), check_exact=False, rtol=1e-12)
    assert (before.parent / "best-config.json").read_text() == (after.parent / "best-config.json").read_text()
    assert before.read_text() == after.read_text()
    assert sorted(p.stem for p in (after.parent / "figures").glob("*.png")) == sorted(EXPECTED_FIGURES)


def test_a_cell_where_units_failed_shows_how_many_it_averages(tmp_path):
    """Sections 3 and 4 with failed units: the CSV counts them (units_ok of units_total), the page shows
    such a mean as `0.xxxx (k/n units)` with the legend, the figures' captions say what a hollow
    marker is, and a swept value where every unit failed is listed (before: averaged silently, or
    left out)."""
    from omasgan.distributed.analysis.tables import UNITS_LEGEND

    rng = np.random.default_rng(3)
    _spec(tmp_path / "sds", "sds", "seeds", [0, 1, 2])
    store = ResultStore(str(tmp_path / "sds"))
    for k in CLASSES:
        for s in (0, 1, 2):
            _pipeline(store, UnitKey("sds", "seeds", f"k{k}s{s}", DATASET, k, s), _config(k, s), rng,
                      0.8 + 0.05 * k, 0.7 + 0.01 * s, fail_j=(k, s) == (1, 2), alarm=False)
    _spec(tmp_path / "sens", "sens", "sensitivity", [0, 1], sweeps=[{"param": "j.zeta", "value": v} for v in (0.0, 0.5, 1.0)])
    store = ResultStore(str(tmp_path / "sens"))
    for v in (0.0, 0.5, 1.0):
        for k in CLASSES:
            for s in (0, 1):
                key = UnitKey("sens", "sensitivity", f"j.zeta={v}", DATASET, k, s)
                if v == 1.0 or (v == 0.5 and (k, s) == (0, 1)):
                    store.write_stage_rows(key, "j", config=_config(k, s), status="error", error="nan",
                                           sweep=("j.zeta", v))
                    continue
                store.write_stage_rows(key, "j", config=_config(k, s), sweep=("j.zeta", v), wall_time_s=1.0,
                                       evaluation=_evaluation("final", 0.6 + 0.1 * k + v / 10, 0.5 + 0.1 * k, rng))
    page = write_report(tmp_path, out=tmp_path / "rep")
    text = page.read_text()
    seeds = _csv(page, "seeds-synthetic-sds").set_index("holdout_class")
    assert list(seeds.units_ok) == [3, 2] and list(seeds.units_total) == [3, 3]
    assert seeds.loc[1, "mean"] == pytest.approx(0.705)  # class 1's two finished seeds: 0.70, 0.71
    assert "| 1 | 0.7050 (2/3 units) |" in text and "| 0 | 0.7100 |" in text
    summary = _csv(page, "seed-summary").set_index("model").loc["final"]
    assert summary["units_ok"] == 5 and summary["units_total"] == 6
    sens = _csv(page, "sensitivity-sens-j.zeta").set_index("value")
    assert list(sens.index) == [0.0, 0.5, 1.0]
    assert list(sens.units_ok) == [4, 3, 0] and list(sens.units_total) == [4, 4, 4] and np.isnan(sens.loc[1.0, "val_mean"])
    assert "| 0.5 | " in text and "(3/4 units) |" in text and "| - (0/4 units) | - | - (0/4 units) | - | 0 | 0/4 |" in text
    assert text.count(UNITS_LEGEND) == 3  # seed summary, the seeds table, the sensitivity table
    assert "![seed robustness; a hollow dot, its class labelled k/n, is the mean of only the k seeds" in text
    assert "![sensitivity to j.zeta; a hollow point is the mean of fewer units than planned" in text
    assert "| synthetic | sds | final | 2 | 0.7080 (5/6 units) |" in text and "| 1 | 0.7050 | 0 | 5/6 |" in text


HOSTILE = "`<img src=x onerror=alert(1)>[c](javascript:alert(1))<javascript:alert(1)>"
"""Markup a study name, a trial id, an error message or a config value can hold."""
LINKS = " https://evil.example/p www.evil.example ![i](https://evil.example/i.png) [d](data:text/html,x) *em*"


def _markdown_outside_code(text):
    """``text`` (Markdown) without its code spans and escaped characters: what a viewer reads as markup."""
    out, i = [], 0
    while i < len(text):
        if text[i] == "\\":
            i += 2
            continue
        if text[i] == "`":
            run = len(text[i:]) - len(text[i:].lstrip("`"))
            close = text.find("`" * run, i + run)
            while close != -1 and text[close + run:close + run + 1] == "`":
                close = text.find("`" * run, close + run + 1)
            if close != -1:
                i = close + run
                continue
        out.append(text[i])
        i += 1
    return "".join(out)


@pytest.mark.slow
def test_hostile_strings_from_the_data_are_inert_in_both_pages(tmp_path):
    """A study name, trial ids, an error message, a swept parameter and an Optuna parameter holding HTML,
    scripts, javascript: links and autolinks: report.md has no raw HTML, no link but the report's own, no
    autolink; report.html no tag or attribute but the page's own and no link but the report's own (before,
    the Markdown page passed raw HTML in table cells and the HTML page took `/\\host` as a link)."""
    from html.parser import HTMLParser

    rng = np.random.default_rng(4)
    name, trial = f"s{HOSTILE}", f"t{HOSTILE}"
    folder = tmp_path / "evil"
    _spec(folder, name, "seeds", [0, 1])
    store = ResultStore(str(folder))
    for k in CLASSES:
        for s in (0, 1):
            config = _config(k, s, data__tabular_path=HOSTILE)
            _pipeline(store, UnitKey(name, "seeds", f"{trial}{k}{s}", DATASET, k, s), config, rng, 0.8, 0.7,
                      alarm=False)
    store.write_stage_rows(UnitKey(name, "seeds", trial, DATASET, 0, 2), "task1", config=_config(0, 2),
                           status="error", error=f"boom <script>alert(1)</script>{HOSTILE}{LINKS}\n# heading\n[r]: javascript:alert(1)")
    param = f"j.zeta{HOSTILE}"
    _spec(tmp_path / "sens", "sens", "sensitivity", [0])
    store = ResultStore(str(tmp_path / "sens"))
    for v in (0.0, 0.5):
        for k in CLASSES:
            store.write_stage_rows(UnitKey("sens", "sensitivity", f"{trial}={v}", DATASET, k, 0), "j",
                                   config=_config(k, 0), sweep=(param, v), wall_time_s=1.0,
                                   evaluation=_evaluation("final", 0.7, 0.6, rng))
    _spec(tmp_path / "srch", "srch", "search", [0])
    store = ResultStore(str(tmp_path / "srch"))
    for i, trial_id in enumerate((trial, "plain")):
        for k in CLASSES:
            _pipeline(store, UnitKey("srch", "search", trial_id, DATASET, k, 0), _config(k, 0), rng, 0.9 - i / 10,
                      0.6, alarm=False)
    storage = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(tmp_path / "srch" / JOURNAL_FILE)))
    study = optuna.create_study(study_name="srch", storage=storage, direction="maximize",
                                sampler=optuna.samplers.RandomSampler(seed=0))
    for value in (0.5, 0.7, 0.6):
        trial_ = study.ask()
        trial_.suggest_float(f"p{HOSTILE}", 0.0, 1.0)
        trial_.suggest_float("j.zeta", 0.0, 1.0)
        study.tell(trial_, value)

    md = write_report(tmp_path, out=tmp_path / "md").read_text()
    outside = _markdown_outside_code(md)
    assert "<" not in outside  # no raw HTML, no <scheme:...> autolink
    assert "https://" not in outside and "www.evil" not in outside  # no autolink either
    links = re.findall(r"!?\[[^\]]*\]\(([^)]*)\)", outside)
    assert links and all(re.match(r"^(tables/[\w.\-]+\.csv|figures/[\w.\-]+\.png|best-config\.json)$", t) for t in links), links
    assert "\n# heading" not in md and "\n[r]:" not in md
    assert f"`` s{HOSTILE} ``" in md or f"``s{HOSTILE}``" in md  # the name itself, literal in a code span
    html_page = write_report(tmp_path, out=tmp_path / "html", fmt="html").read_text()

    class Tags(HTMLParser):
        def __init__(self):
            super().__init__()
            self.tags, self.attrs, self.text = set(), [], []

        def handle_starttag(self, tag, attrs):
            self.tags.add(tag)
            self.attrs += [(tag, key, value) for key, value in attrs]

        def handle_data(self, data):
            self.text.append(data)

    parsed = Tags()
    parsed.feed(html_page)
    assert parsed.tags <= {"html", "head", "meta", "title", "style", "body", "h1", "h2", "h3", "p", "table", "tr", "th",
                           "td", "code", "em", "a", "img"}
    assert {key for _, key, _ in parsed.attrs} <= {"charset", "href", "src", "alt", "width", "height"}
    targets = [value for tag, key, value in parsed.attrs if key in ("href", "src")]
    assert targets and all(re.match(r"^(tables/[\w.\-]+\.csv|figures/[\w.\-]+\.png|best-config\.json)$", t)
                           for t in targets), targets
    assert f"s{HOSTILE}" in "".join(parsed.text)  # shown as text, every character of it


@pytest.mark.parametrize("target", [
    "/\\evil.example/x", "\\\\evil.example\\x", "//evil.example", "///evil.example", "\\/evil.example",
    "https:/\\evil.example", "https:evil.example", "https://user@evil.example", "java&#x73;cript:alert(1)",
    "jav&#9;ascript:alert(1)", "\u200bjavascript:alert(1)", "javascript\n:alert(1)", "JaVaScRiPt:alert(1)",
    "data:text/html,x", "vbscript:x", "/etc/passwd", "../outside.csv", "tables/../../x", "file:///etc/passwd",
    "tables/a.csv#x\u202e", "mailto:a@b.example",
])
def test_a_link_target_outside_the_report_is_never_a_link(target):
    from omasgan.distributed.report.page import html_text, markdown_text, safe_link_target

    assert not safe_link_target(target)
    assert "<a " not in html_text(f"see [x]({target})")
    assert "[x](" not in markdown_text(f"see [x]({target})")


def test_the_reports_own_links_still_work():
    from omasgan.distributed.report.page import Page, code, html_text, markdown_text

    text = f"see [CSV](tables/a-b_c.1.csv), [best-config-x.json](best-config-x.json) and [docs](https://example.org/a?b=1) {code('x[y](z)')}"
    assert markdown_text(text) == ("see [CSV](tables/a-b_c.1.csv), [best-config-x.json](best-config-x.json) and "
                                   "[docs](https://example.org/a?b=1) `x[y](z)`")
    assert html_text(text) == ('see <a href="tables/a-b_c.1.csv">CSV</a>, <a href="best-config-x.json">'
                               'best-config-x.json</a> and <a href="https://example.org/a?b=1">docs</a> <code>x[y](z)</code>')
    assert Page._inline("*Left out: " + code("a`b") + "*") == "<em>Left out: <code>a`b</code></em>"
    assert markdown_text("*Left out: " + code("a`b") + "*") == "*Left out: ``a`b``*"

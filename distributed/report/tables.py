"""The numbers of ``omasgan report``: reading every study's tables, choosing which rows each section
shows, and the tables themselves (pandas DataFrames that :mod:`.sections` renders and saves as CSV).

What is reported (``reported_rows``):
- a seeds study: all its OMASGAN rows (one fixed config over classes x seeds);
- a search study with a confirmation (``confirmation.json``): the confirmed winner's rows on the
  confirmation's fresh seeds, which the search never saw;
- a search study without one: the rows of its best trial only, the trial with the best objective on
  VALIDATION rows of the final detector J (``search_ranking``, the study's aggregate over all its
  units);
  its test rows are shown, never used to choose;
- baselines (``method`` other than ``omasgan``, from any study): all their rows, shown next to each
  OMASGAN source on the same data set.
Sensitivity studies only feed the sensitivity curves (``analysis.tables.sensitivity_table``, the CLI's).
A "source" is one seeds or search study on one data set; "model" is the OMASGAN detector (task1,
task3, final) or the baseline's method name.  Only rows with ``status == "ok"`` enter any number; the
seed and sensitivity tables also count the units planned (``planned_units_of``), so a mean of fewer
units than planned says so (``units_ok`` / ``units_total``, see :mod:`..analysis.tables`).
"""

from __future__ import annotations

import io
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.dataset as ds

from omasgan.errors import ConfigError
from omasgan.vocabulary import DETECTORS

from ..analysis.ranking import RANK_COLUMNS, ranking_filter, search_ranking
from ..analysis.tables import planned_units
from ..store.result_schema import ALARM_COLUMNS, safe_name
from ..store.result_store import ResultStore
from ..store.study_folder import JOURNAL_FILE, StudySpec, result_root, study_folders

OMASGAN = "omasgan"
BASELINE_SOURCE = "baselines"
STAGE_ORDER = ("task1", "task2", "task3", "j", "baseline")


@dataclass
class StudyInput:
    """One study folder: its ``study.json`` and the store holding its Parquet tables."""

    folder: Path
    spec: StudySpec
    store: ResultStore

    @property
    def journal(self) -> Path:
        return self.folder / JOURNAL_FILE


@dataclass
class Inputs:
    """What the sections read, taken from the Parquet stores with filters, projections and group-bys
    pushed down to the scan, so a search of thousands of trials is never loaded whole."""

    studies: list[StudyInput]
    results: pd.DataFrame
    """Every column of the rows the sections show in full, plus a ``model`` column: every row of a
    seeds, sensitivity or baseline study, the rows of each search study's best trial (the first of
    ``rankings``), and every error row."""
    stores: dict[str, ResultStore]  # study name (as in the rows) -> the store its rows came from
    rankings: dict[str, pd.DataFrame] = field(default_factory=dict)
    """Per search study (by its ``study.json``): ``search_ranking`` over all its trials (see :func:`ranking`)."""
    counts: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=["study", "rows", "ok", "error"]))
    """Per study: its rows, ok rows and error rows, over all rows."""
    stage_runs: pd.DataFrame = field(default_factory=pd.DataFrame)
    """One row per ok (study, trial, unit, method, stage) with a wall time, over all rows: what the
    wall-time tables read (see ``_stage_runs``)."""
    alarm_rows: pd.DataFrame = field(default_factory=pd.DataFrame)
    """The shortcut alarm's columns of every ok OMASGAN task2 row and j validation row, over all
    trials (what section 9 reads; see ``_alarm_rows``)."""

    @property
    def total_rows(self) -> int:
        return int(self.counts["rows"].sum()) if len(self.counts) else 0


RUN_KEYS = ["study", "trial_id", "dataset", "holdout_class", "seed", "method", "stage"]
ALARM_KEYS = RUN_KEYS + ["split", "status"]


def _counts(store: ResultStore) -> pd.DataFrame:
    """Per study of the store: rows, ok and error rows (one group-by over two columns)."""
    table = store.read("results", columns=["study", "study_kind", "status"])
    grouped = table.group_by(["study", "study_kind", "status"], use_threads=False).aggregate([("status", "count")])
    frame = grouped.to_pandas()
    records = []
    for study, mine in frame.groupby("study", sort=True):
        by_status = mine.groupby("status")["status_count"].sum()
        records.append({"study": str(study), "rows": int(mine["status_count"].sum()),
                        "ok": int(by_status.get("ok", 0)), "error": int(by_status.get("error", 0))})
    return pd.DataFrame.from_records(records, columns=["study", "rows", "ok", "error"])


def _ranking(store: ResultStore, spec: StudySpec) -> pd.DataFrame:
    """``search_ranking`` of one search study, over only the rows it reads (the search's ok validation rows
    of J, a pushed-down filter) and only the columns it reads."""
    return search_ranking(store.read("results", filter=ranking_filter(spec), columns=RANK_COLUMNS).to_pandas(), spec)


def _shown_in_full(rankings: dict[str, pd.DataFrame]) -> ds.Expression:
    """Rows read whole: not of a search study, an error, or of a search study's best trial."""
    where = (ds.field("study_kind") != "search") | (ds.field("status") == "error")
    for study, ranked in rankings.items():
        if len(ranked):
            where = where | ((ds.field("study") == study) & (ds.field("trial_id") == ranked["trial_id"].iloc[0]))
    return where


def _stage_run_rows(store: ResultStore) -> pd.DataFrame:
    """``_stage_runs`` computed in the scan: ok rows with a wall time, one per stage run."""
    where = (ds.field("status") == "ok") & ds.field("wall_time_s").is_valid()
    table = store.read("results", filter=where, columns=RUN_KEYS + ["wall_time_s"])
    runs = table.group_by(RUN_KEYS, use_threads=False).aggregate([("wall_time_s", "min")])
    return runs.to_pandas().rename(columns={"wall_time_s_min": "wall_time_s"}).assign(status="ok")


def _alarm_rows(store: ResultStore) -> pd.DataFrame:
    """The ok OMASGAN task2 rows and j validation rows, with only their keys and alarm columns: a few
    columns of three rows per unit, so section 9 covers every trial of a big search."""
    where = ((ds.field("status") == "ok") & (ds.field("method") == OMASGAN)
             & ((ds.field("stage") == "task2") | ((ds.field("stage") == "j") & (ds.field("split") == "val"))))
    columns = ALARM_KEYS + list(ALARM_COLUMNS)
    return store.read("results", filter=where, columns=columns).to_pandas()


def load_inputs(results_dir: str | Path) -> Inputs:
    """Every study under ``results_dir`` (a study folder or a folder of them) and what the sections
    read of their rows (see :class:`Inputs`); rows of a store are sorted by study, trial, unit,
    method, stage and split, so the report does not depend on how the store's files are laid out."""
    folder = Path(results_dir)
    if not folder.is_dir():
        raise ConfigError(f"results folder {str(folder)!r} does not exist or is not a folder")
    folders = study_folders(folder)
    if not folders:
        raise ConfigError(f"{str(folder)!r} holds no study (no study.json in it or in any folder directly "
                          "inside it); give a folder that `omasgan search/sensitivity/seeds` wrote")
    studies, frames, stores, unique = [], [], {}, {}
    rankings: dict[str, pd.DataFrame] = {}
    counts, runs, alarms = [], [], []
    for path in folders:
        try:
            spec = StudySpec.read(path)
        except (json.JSONDecodeError, TypeError) as exc:
            raise ConfigError(f"{str(path / 'study.json')!r} is not a valid study file: {exc}") from None
        store = ResultStore(result_root(path))
        studies.append(StudyInput(path, spec, store))
        unique.setdefault(store.root, store)  # two folders pointing at one storage root are read once
        if spec.kind == "search":
            rankings[spec.name] = _ranking(store, spec)
    for store in unique.values():
        store_counts = _counts(store)
        frame = store.read("results", filter=_shown_in_full(rankings)).to_pandas()
        frame = frame.sort_values(SORT_KEYS, kind="stable", na_position="first").reset_index(drop=True)
        stores.update({name: store for name in store_counts["study"]})
        frames.append(frame)
        counts.append(store_counts)
        runs.append(_stage_run_rows(store))
        alarms.append(_alarm_rows(store))
    results = pd.concat([f for f in frames if len(f)] or frames[:1], ignore_index=True)
    results["model"] = results["detector"].where(results["method"] == OMASGAN, results["method"])
    stage_runs = pd.concat([r for r in runs if len(r)] or runs[:1], ignore_index=True)
    alarm_rows = pd.concat([a for a in alarms if len(a)] or alarms[:1], ignore_index=True)
    return Inputs(studies, results, stores, rankings, pd.concat(counts, ignore_index=True), stage_runs, alarm_rows)


SORT_KEYS = ["study", "trial_id", "dataset", "holdout_class", "seed", "method", "stage", "split"]


def read_rows(inputs: Inputs, where: ds.Expression, columns: list[str]) -> pd.DataFrame:
    """``columns`` of every row matching ``where`` in the stores of ``inputs`` (each read once), from a
    scan that reads only those columns of the matching row groups."""
    unique = {item.store.root: item.store for item in inputs.studies}
    frames = [store.read("results", filter=where, columns=columns).to_pandas() for store in unique.values()]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=columns)


def ok(results: pd.DataFrame) -> pd.DataFrame:
    return results[results["status"] == "ok"]


def model_order(models) -> list[str]:
    """OMASGAN detectors in pipeline order, then the baselines by name."""
    models = set(models)
    return [d for d in DETECTORS if d in models] + sorted(m for m in models if m not in DETECTORS)


# ---- choosing what to report ------------------------------------------------------------------------

def confirmation_of(inputs: "Inputs", study: str) -> dict[str, Any] | None:
    """The confirmation summary of a search study, when it has one."""
    from ..store.study_folder import read_confirmation

    item = next((i for i in inputs.studies if i.spec.name == study), None)
    return read_confirmation(item.folder) if item is not None else None


def best_config(results: pd.DataFrame, study: str, trial_id: str) -> dict[str, Any] | None:
    """The nested config of ``trial_id`` (its first validation row's ``config_json``) without
    ``data.holdout`` and ``seed``, so ``omasgan run/seeds --config`` take it for any class and seed."""
    rows = results[(results["study"] == study) & (results["trial_id"] == trial_id) & results["config_json"].notna()]
    if rows.empty:
        return None
    config = json.loads(rows.sort_values(["holdout_class", "seed"]).iloc[0]["config_json"])
    config.get("data", {}).pop("holdout", None)
    config.pop("seed", None)
    return config


def ranking(inputs: "Inputs", spec: StudySpec) -> pd.DataFrame:
    """The trials of the search ``spec`` ranked by ``search_ranking`` over all its rows (computed in the
    scan by ``load_inputs``; from ``inputs.results`` for Inputs built by hand)."""
    if spec.name in inputs.rankings:
        return inputs.rankings[spec.name]
    return search_ranking(inputs.results, spec)


def reported_rows(inputs: "Inputs") -> pd.DataFrame:
    """The ok rows sections 1-3 and 6-8 show, with a ``source`` column (see the module docstring);
    baseline rows get ``source = "baselines"``."""
    results = inputs.results
    rows = ok(results)
    specs = {i.spec.name: i.spec for i in inputs.studies}
    parts = []
    for study, kind in rows[["study", "study_kind"]].drop_duplicates().itertuples(index=False):
        mine = rows[(rows["study"] == study) & (rows["method"] == OMASGAN) & (rows["study_kind"] == kind)]
        if kind == "search":
            confirmed = confirmation_of(inputs, study)
            if confirmed is not None:
                continue  # shown through its confirmation rows
            ranked = ranking(inputs, specs[study]) if study in specs else pd.DataFrame()
            mine = mine[mine["trial_id"] == ranked["trial_id"].iloc[0]] if len(ranked) else mine.iloc[:0]
        elif kind == "confirm":
            confirmed = confirmation_of(inputs, study)
            mine = mine[mine["trial_id"] == confirmed["winner"]] if confirmed else mine.iloc[:0]
        elif kind != "seeds":
            continue
        parts.append(mine.assign(source=study))
    parts.append(rows[rows["method"] != OMASGAN].assign(source=BASELINE_SOURCE))
    return pd.concat(parts, ignore_index=True)


def planned_units_of(inputs: "Inputs", dataset: str, source: str, model: str) -> list[tuple[int, int]]:
    """The (held-out class, seed) units planned for ``model`` of ``source`` on ``dataset``: for an OMASGAN
    detector of a study, the study's classes x its seeds (a confirmed search: x the confirmation's
    seeds); for a baseline method, or a study without its ``study.json``, every class seen in its rows
    of any status x every seed seen there (:func:`..analysis.tables.planned_units`)."""
    results = inputs.results[inputs.results["dataset"] == dataset]
    if model not in DETECTORS:
        return planned_units(results[results["method"] == model])
    spec = next((i.spec for i in inputs.studies if i.spec.name == source and i.spec.dataset == dataset), None)
    if spec is None:
        return planned_units(results[(results["study"] == source) & (results["method"] == OMASGAN)])
    confirmed = confirmation_of(inputs, source) if spec.kind == "search" else None
    seeds = confirmed["seeds"] if confirmed else spec.seeds
    return [(int(k), int(s)) for k in spec.classes for s in seeds]


def sources(reported: pd.DataFrame) -> list[tuple[str, str]]:
    """(data set, source) pairs with test rows; a data set with baselines only gets (data set, "baselines")."""
    pairs, test = [], reported[reported["split"] == "test"]
    for dataset in sorted(test["dataset"].dropna().unique()):
        names = sorted(set(test.loc[test["dataset"] == dataset, "source"]) - {BASELINE_SOURCE})
        pairs += [(dataset, name) for name in names] or [(dataset, BASELINE_SOURCE)]
    return pairs


def source_test_rows(reported: pd.DataFrame, dataset: str, source: str) -> pd.DataFrame:
    """Test rows of one source plus the baselines' test rows on the same data set."""
    rows = reported[(reported["dataset"] == dataset) & (reported["split"] == "test")]
    return rows[rows["source"].isin([source, BASELINE_SOURCE])]


# ---- tables -------------------------------------------------------------------------------------------

def per_class(rows: pd.DataFrame, metrics=("auroc",)) -> pd.DataFrame:
    """Per (model, held-out class): the number of seeds, the mean over them of each metric and the SD
    over seeds of AUROC (``auroc_sd``, ddof=1), then a row per model with ``holdout_class = "mean"``:
    the mean over classes of the per-class means, taken over the classes every model of the table has
    (so the mean row compares like with like); its ``auroc_sd`` is the SD over seeds of the mean over
    those classes (the seeds every class has)."""
    table = rows.groupby(["model", "holdout_class"]).agg(
        seeds=("seed", "nunique"), **{m: (m, "mean") for m in metrics},
        auroc_sd=("auroc", lambda v: v.std(ddof=1) if len(v) > 1 else np.nan)).reset_index()
    shared = set.intersection(*(set(g) for _, g in table.groupby("model")["holdout_class"])) if len(table) else set()
    common = table[table["holdout_class"].isin(shared)]
    means = common.groupby("model")[list(metrics)].mean().reset_index().assign(holdout_class="mean", seeds=np.nan)
    means["auroc_sd"] = [_sd_of_class_mean(rows[(rows["model"] == m) & rows["holdout_class"].isin(shared)])
                         for m in means["model"]]
    table = pd.concat([table.astype({"holdout_class": object}), means], ignore_index=True)
    table["seeds"] = table["seeds"].astype("Int64")
    order = {m: i for i, m in enumerate(model_order(table["model"]))}
    table["_m"] = table["model"].map(order)
    table["_c"] = table["holdout_class"].map(lambda c: (1, 0) if c == "mean" else (0, c))
    return table.sort_values(["_m", "_c"]).drop(columns=["_m", "_c"]).reset_index(drop=True)[
        ["holdout_class", "model", "seeds", *metrics, "auroc_sd"]]


def _sd_of_class_mean(rows: pd.DataFrame) -> float:
    """The SD over seeds (ddof=1) of the mean AUROC over classes, over the seeds every class has."""
    per_seed = rows.pivot_table(index="seed", columns="holdout_class", values="auroc", aggfunc="mean").dropna()
    return float(per_seed.mean(axis=1).std(ddof=1)) if len(per_seed) > 1 else float("nan")


def seed_summaries(reported: pd.DataFrame, inputs: "Inputs | None" = None) -> pd.DataFrame:
    """Per (data set, source, model) with at least two seeds of a class: the test-AUROC summary of
    :func:`omasgan.distributed.analysis.statistics.seed_summary` (mean, SD, IQM with its stratified bootstrap
    95% interval, worst class, units below 0.5), over its ``units_ok`` units of ``units_total`` planned
    (:func:`planned_units_of`; the units with a result when ``inputs`` is not given)."""
    from ..analysis.statistics import seed_summary

    test = reported[reported["split"] == "test"]
    records = []
    for (dataset, source, model), rows in test.groupby(["dataset", "source", "model"], sort=True):
        if rows.groupby("holdout_class")["seed"].nunique().max() < 2:
            continue
        summary = seed_summary(rows).as_dict()
        summary["units_ok"] = summary.pop("units")
        planned = planned_units_of(inputs, dataset, source, model) if inputs is not None else []
        records.append({"dataset": dataset, "source": source, "model": model, **summary,
                        "units_total": max(len(planned), summary["units_ok"])})
    return pd.DataFrame(records)


def noise_floor_table(reported: pd.DataFrame, seeds_per_class=(1, 3, 5, 10)) -> pd.DataFrame:
    """Per (data set, source, model) with repeated seeds: the pooled within-class SD of test AUROC over
    seeds (the per-unit noise), and the smallest paired difference a study of the same classes with
    1, 3, 5, 10 seeds per class detects (80% power, 5% two-sided;
    :func:`omasgan.distributed.analysis.statistics.noise_floor`)."""
    from ..analysis.statistics import detectable_difference, noise_floor

    test = reported[reported["split"] == "test"]
    records = []
    for (dataset, source, model), rows in test.groupby(["dataset", "source", "model"], sort=True):
        floor = noise_floor(rows)
        if not np.isfinite(floor.unit_sd):
            continue
        record = {"dataset": dataset, "source": source, "model": model, "classes": floor.classes,
                  "seeds": floor.seeds, "unit_sd": floor.unit_sd, "dof": floor.degrees_of_freedom,
                  "detectable_here": floor.detectable_difference}
        record.update({f"detectable_{n}_seeds": detectable_difference(floor.unit_sd, n * floor.classes)
                       for n in seeds_per_class})
        records.append(record)
    return pd.DataFrame(records)


def wide(table: pd.DataFrame, metric: str = "auroc") -> pd.DataFrame:
    """``per_class`` output as held-out class x model (classes first, then ``mean``)."""
    frame = table.pivot(index="holdout_class", columns="model", values=metric)
    classes = [c for c in frame.index if c != "mean"]
    frame = frame.loc[sorted(classes) + (["mean"] if "mean" in frame.index else [])]
    frame = frame[model_order(frame.columns)]
    frame.columns.name = None
    return frame.reset_index()


def ablation(rows: pd.DataFrame) -> pd.DataFrame:
    """Test AUROC of the Task 1 critic, the Task 3 critic and the final J per class (mean over seeds)
    and on average, with the gains of J over each critic."""
    frame = wide(per_class(rows[rows["model"].isin(DETECTORS)]))
    if {"final", "task1"} <= set(frame.columns):
        frame["final - task1"] = frame["final"] - frame["task1"]
    if {"final", "task3"} <= set(frame.columns):
        frame["final - task3"] = frame["final"] - frame["task3"]
    return frame


def seed_table(rows: pd.DataFrame, planned: list[tuple[int, int]] | None = None) -> pd.DataFrame:
    """Per held-out class, over seeds: mean, sample SD (ddof=1), min and max of test AUROC, over the
    ``units_ok`` seeds with a result of the ``units_total`` planned (``planned``; default: those with a
    result).  A class planned but with no result is a row of NaN and 0 units."""
    table = rows.groupby("holdout_class")["auroc"].agg(["mean", "std", "min", "max", "count"])
    total = pd.Series([k for k, _ in planned or []], dtype="int64").value_counts()
    table = table.reindex(sorted(set(table.index) | set(total.index)))
    table["count"] = table["count"].fillna(0).astype(int)
    table["units_total"] = np.maximum(table["count"], total.reindex(table.index).fillna(0).astype(int))
    table = table.rename_axis("holdout_class").reset_index()
    return table.rename(columns={"count": "units_ok", "std": "sd"})


def metrics_table(rows: pd.DataFrame) -> pd.DataFrame:
    """AUROC, AUPRC and F1 (F1 at the validation threshold) per held-out class and model on the test
    split, each the mean over seeds; ``mean`` rows average the per-class means."""
    return per_class(rows, ("auroc", "auprc", "f1"))


def _stage_runs(results: pd.DataFrame) -> pd.DataFrame:
    """One row per (study, trial, unit, method, stage): its wall time (stored on every split's row)."""
    rows = ok(results)
    keys = ["study", "trial_id", "dataset", "holdout_class", "seed", "method", "stage"]
    return rows.dropna(subset=["wall_time_s"]).drop_duplicates(subset=keys)


def wall_stage_table(results: pd.DataFrame) -> pd.DataFrame:
    """Per (study, method, stage): units run, mean and total wall time in seconds."""
    runs = _stage_runs(results)
    table = runs.groupby(["study", "method", "stage"])["wall_time_s"].agg(["size", "mean", "sum"]).reset_index()
    order = table["stage"].map({s: i for i, s in enumerate(STAGE_ORDER)}).fillna(len(STAGE_ORDER))
    table = table.assign(_o=order).sort_values(["study", "method", "_o", "stage"]).drop(columns="_o")
    return table.rename(columns={"size": "units", "mean": "mean_s", "sum": "total_s"}).reset_index(drop=True)


def wall_trial_table(results: pd.DataFrame) -> pd.DataFrame:
    """Per (study, trial, method): units, total wall time over all its stages and units, and per unit."""
    runs = _stage_runs(results)
    runs = runs.assign(unit=runs["dataset"] + "/" + runs["holdout_class"].astype(str) + "/" + runs["seed"].astype(str))
    table = runs.groupby(["study", "trial_id", "method"]).agg(
        units=("unit", "nunique"), total_s=("wall_time_s", "sum")).reset_index()
    table["per_unit_s"] = table["total_s"] / table["units"]
    return table


def study_overview(inputs: Inputs) -> pd.DataFrame:
    """Per study folder read: kind, data set, classes, seeds and its result rows (ok / error)."""
    counts = inputs.counts.set_index("study") if len(inputs.counts) else None
    records = []
    for item in inputs.studies:
        mine = counts.loc[item.spec.name] if counts is not None and item.spec.name in counts.index else None
        records.append({
            "study": item.spec.name, "kind": item.spec.kind, "dataset": item.spec.dataset,
            "classes": " ".join(map(str, item.spec.classes)), "seeds": " ".join(map(str, item.spec.seeds)),
            "rows": int(mine["rows"]) if mine is not None else 0, "ok": int(mine["ok"]) if mine is not None else 0,
            "error": int(mine["error"]) if mine is not None else 0, "folder": str(item.folder)})
    return pd.DataFrame.from_records(records)


# ---- per-sample inputs -----------------------------------------------------------------------------

def read_scores(store: ResultStore, study: str, trials: list[str], detector: str = "final") -> pd.DataFrame:
    """Test-split scores of ``detector`` for the given OMASGAN trials of ``study``."""
    where = ((ds.field("study") == study) & ds.field("trial_id").isin(trials) & (ds.field("method") == OMASGAN)
             & (ds.field("detector") == detector) & (ds.field("split") == "test"))
    return store.read("scores", filter=where).to_pandas()


_SAMPLE_PATH = re.compile(r"dataset=([^/]+)/holdout_class=(-?\d+)/seed=(-?\d+)/([^/]+)\.npz$")


def find_samples(store: ResultStore, study: str, trials: list[str]) -> pd.DataFrame:
    """Sample files of the given trials: columns dataset, holdout_class, seed, trial_id, path."""
    stems = {safe_name(f"{study}.{t}"): t for t in trials}
    records = []
    for path in store.files("samples"):
        match = _SAMPLE_PATH.search(path.replace("\\", "/"))
        if match and match.group(4) in stems:
            records.append({"dataset": match.group(1), "holdout_class": int(match.group(2)),
                            "seed": int(match.group(3)), "trial_id": stems[match.group(4)], "path": path})
    return pd.DataFrame.from_records(records, columns=["dataset", "holdout_class", "seed", "trial_id", "path"])


def load_samples(store: ResultStore, path: str) -> dict[str, np.ndarray]:
    with store.fs.open_input_file(path) as stream:
        with np.load(io.BytesIO(stream.read()), allow_pickle=False) as archive:
            return {name: archive[name] for name in archive.files}

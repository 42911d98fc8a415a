"""The numbers of ``omasgan report``: reading every study's tables, choosing which rows each section
shows, and the tables themselves (pandas DataFrames that :mod:`.report` renders and saves as CSV).

What is reported (``reported_rows``):
- a seeds study: all its OMASGAN rows (one fixed config over classes x seeds);
- a search study: the rows of its best trial only, the trial with the highest mean VALIDATION AUROC
  of the final detector J (``rank_trials``); its test rows are shown, never used to choose;
- baselines (``method`` other than ``omasgan``, from any study): all their rows, shown next to each
  OMASGAN source on the same data set.
Sensitivity studies only feed the sensitivity curves (``sensitivity_table``).
A "source" is one seeds or search study on one data set; "model" is the OMASGAN detector (task1,
task3, final) or the baseline's method name.  Only rows with ``status == "ok"`` enter any number.
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

from .result_store import ResultStore, _safe
from .study_folder import JOURNAL_FILE, StudySpec, result_root, study_folders

OMASGAN = "omasgan"
DETECTORS = ("task1", "task3", "final")
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
    """Per search study (``study_kind == "search"`` in its rows): ``rank_trials`` over all its trials."""
    counts: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=["study", "rows", "ok", "error"]))
    """Per study: its rows, ok rows and error rows, over all rows."""
    stage_runs: pd.DataFrame = field(default_factory=pd.DataFrame)
    """One row per ok (study, trial, unit, method, stage) with a wall time, over all rows: what the
    wall-time tables read (see ``_stage_runs``)."""

    @property
    def total_rows(self) -> int:
        return int(self.counts["rows"].sum()) if len(self.counts) else 0


RANK_COLUMNS = ["study", "trial_id", "method", "stage", "split", "status", "auroc"]
RUN_KEYS = ["study", "trial_id", "dataset", "holdout_class", "seed", "method", "stage"]


def _search_studies(store: ResultStore) -> tuple[pd.DataFrame, list[str]]:
    """Per study of the store: rows, ok and error rows (one group-by over two columns); and which
    studies are searches."""
    table = store.read("results", columns=["study", "study_kind", "status"])
    grouped = table.group_by(["study", "study_kind", "status"], use_threads=False).aggregate([("status", "count")])
    frame = grouped.to_pandas()
    records = []
    for study, mine in frame.groupby("study", sort=True):
        by_status = mine.groupby("status")["status_count"].sum()
        records.append({"study": str(study), "rows": int(mine["status_count"].sum()),
                        "ok": int(by_status.get("ok", 0)), "error": int(by_status.get("error", 0))})
    counts = pd.DataFrame.from_records(records, columns=["study", "rows", "ok", "error"])
    searches = sorted(frame.loc[frame["study_kind"] == "search", "study"].unique())
    return counts, searches


def _ranking(store: ResultStore, study: str) -> pd.DataFrame:
    """``rank_trials`` of one search study over only its ok validation rows of J (pushed-down filter)."""
    where = ((ds.field("study") == study) & (ds.field("method") == OMASGAN) & (ds.field("stage") == "j")
             & (ds.field("split") == "val") & (ds.field("status") == "ok") & ds.field("auroc").is_valid())
    return rank_trials(store.read("results", filter=where, columns=RANK_COLUMNS).to_pandas(), study)


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
    studies, frames, stores, seen = [], [], {}, set()
    rankings: dict[str, pd.DataFrame] = {}
    counts, runs = [], []
    for path in folders:
        try:
            spec = StudySpec.read(path)
        except (json.JSONDecodeError, TypeError) as exc:
            raise ConfigError(f"{str(path / 'study.json')!r} is not a valid study file: {exc}") from None
        store = ResultStore(result_root(path))
        studies.append(StudyInput(path, spec, store))
        if store.root in seen:
            continue  # two folders pointing at one storage root are read once
        seen.add(store.root)
        store_counts, searches = _search_studies(store)
        mine = {study: _ranking(store, study) for study in searches}
        rankings.update(mine)
        frame = store.read("results", filter=_shown_in_full(mine)).to_pandas()
        frame = frame.sort_values(SORT_KEYS, kind="stable", na_position="first").reset_index(drop=True)
        stores.update({name: store for name in store_counts["study"]})
        frames.append(frame)
        counts.append(store_counts)
        runs.append(_stage_run_rows(store))
    results = pd.concat([f for f in frames if len(f)] or frames[:1], ignore_index=True)
    results["model"] = results["detector"].where(results["method"] == OMASGAN, results["method"])
    stage_runs = pd.concat([r for r in runs if len(r)] or runs[:1], ignore_index=True)
    return Inputs(studies, results, stores, rankings, pd.concat(counts, ignore_index=True), stage_runs)


SORT_KEYS = ["study", "trial_id", "dataset", "holdout_class", "seed", "method", "stage", "split"]


def ok(results: pd.DataFrame) -> pd.DataFrame:
    return results[results["status"] == "ok"]


def model_order(models) -> list[str]:
    """OMASGAN detectors in pipeline order, then the baselines by name."""
    models = set(models)
    return [d for d in DETECTORS if d in models] + sorted(m for m in models if m not in DETECTORS)


# ---- choosing what to report ------------------------------------------------------------------------

def rank_trials(results: pd.DataFrame, study: str) -> pd.DataFrame:
    """The trials of ``study`` ranked on VALIDATION rows only (stage=j, split=val, status=ok, method
    omasgan): per trial the number of (class, seed) units with a validation AUROC and their mean.
    Trials covering the most units rank first (a trial that failed on some units is not compared on
    fewer, easier units), then the highest mean, then the trial id."""
    rows = ok(results)
    rows = rows[(rows["study"] == study) & (rows["method"] == OMASGAN) & (rows["stage"] == "j")
                & (rows["split"] == "val") & rows["auroc"].notna()]
    ranked = rows.groupby("trial_id").agg(units=("auroc", "size"), val_auroc=("auroc", "mean")).reset_index()
    ranked = ranked.sort_values(["units", "val_auroc", "trial_id"], ascending=[False, False, True])
    return ranked.reset_index(drop=True)


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


def reported_rows(results: pd.DataFrame, rankings: dict[str, pd.DataFrame] | None = None) -> pd.DataFrame:
    """The ok rows sections 1-3 and 6-8 show, with a ``source`` column (see the module docstring);
    baseline rows get ``source = "baselines"``.  A search study's best trial is the first of its
    ``rankings`` entry (default: ``rank_trials`` over ``results``)."""
    rows = ok(results)
    parts = []
    for study, kind in rows[["study", "study_kind"]].drop_duplicates().itertuples(index=False):
        mine = rows[(rows["study"] == study) & (rows["method"] == OMASGAN)]
        if kind == "search":
            ranked = rankings[study] if rankings is not None and study in rankings else rank_trials(results, study)
            mine = mine[mine["trial_id"] == ranked["trial_id"].iloc[0]] if len(ranked) else mine.iloc[:0]
        elif kind != "seeds":
            continue
        parts.append(mine.assign(source=study))
    parts.append(rows[rows["method"] != OMASGAN].assign(source=BASELINE_SOURCE))
    return pd.concat(parts, ignore_index=True)


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
    """Per (model, held-out class): the number of seeds and the mean over them of each metric, then a
    row per model with ``holdout_class = "mean"``: the mean over classes of the per-class means, taken
    over the classes every model of the table has (so the mean row compares like with like)."""
    table = rows.groupby(["model", "holdout_class"]).agg(
        seeds=("seed", "nunique"), **{m: (m, "mean") for m in metrics}).reset_index()
    shared = set.intersection(*(set(g) for _, g in table.groupby("model")["holdout_class"])) if len(table) else set()
    common = table[table["holdout_class"].isin(shared)]
    means = common.groupby("model")[list(metrics)].mean().reset_index().assign(holdout_class="mean", seeds=np.nan)
    table = pd.concat([table.astype({"holdout_class": object}), means], ignore_index=True)
    table["seeds"] = table["seeds"].astype("Int64")
    order = {m: i for i, m in enumerate(model_order(table["model"]))}
    table["_m"] = table["model"].map(order)
    table["_c"] = table["holdout_class"].map(lambda c: (1, 0) if c == "mean" else (0, c))
    return table.sort_values(["_m", "_c"]).drop(columns=["_m", "_c"]).reset_index(drop=True)[
        ["holdout_class", "model", "seeds", *metrics]]


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


def seed_table(rows: pd.DataFrame) -> pd.DataFrame:
    """Per held-out class, over seeds: count, mean, sample SD (ddof=1), min and max of test AUROC."""
    table = rows.groupby("holdout_class")["auroc"].agg(["count", "mean", "std", "min", "max"]).reset_index()
    return table.rename(columns={"count": "seeds", "std": "sd"})


def sensitivity_table(rows: pd.DataFrame) -> pd.DataFrame:
    """One swept parameter of one study (final J rows): per value and split, the mean over classes for
    each seed, then the mean and SD (ddof=1) of those over seeds; ``units`` counts the test rows."""
    per_seed = rows.groupby(["sweep_value", "split", "seed"])["auroc"].mean()
    spread = per_seed.groupby(["sweep_value", "split"]).agg(["mean", "std"]).unstack("split")
    table = pd.DataFrame(index=spread.index)
    for split in ("val", "test"):
        for stat in ("mean", "std"):
            column = (stat, split)
            table[f"{split}_{'sd' if stat == 'std' else stat}"] = spread[column] if column in spread else np.nan
    table["seeds"] = rows.groupby("sweep_value")["seed"].nunique()
    table["units"] = rows[rows["split"] == "test"].groupby("sweep_value").size()
    table["units"] = table["units"].fillna(0).astype(int)
    return table.reset_index().rename(columns={"sweep_value": "value"})


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
    stems = {_safe(f"{study}.{t}"): t for t in trials}
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

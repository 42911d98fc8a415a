"""Plain-text tables of study results, computed from the Parquet rows (a pandas DataFrame of the
result store), so what a study prints is what it stored."""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from omasgan.vocabulary import DETECTORS, STAGES

from .ranking import search_ranking

STAGE_ORDER = STAGES


def _ok(rows: pd.DataFrame) -> pd.DataFrame:
    return rows[rows.status == "ok"]


def _fmt(value: Any, digits: int = 4) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def render(frame: pd.DataFrame) -> str:
    """A DataFrame as an aligned text table (NaN as "-")."""
    if frame.empty:
        return "(no rows)"
    cells = [[str(c) for c in frame.columns]] + [[_fmt(v) for v in row] for row in frame.itertuples(index=False)]
    widths = [max(len(r[i]) for r in cells) for i in range(len(cells[0]))]
    lines = ["  ".join(c.rjust(w) for c, w in zip(row, widths)) for row in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def search_table(rows: pd.DataFrame, trial_params: dict[str, dict[str, Any]], spec, top: int = 20) -> pd.DataFrame:
    """One line per trial, best first (the ranking of :func:`.ranking.search_ranking`, the same
    as the report's): the stage it reached, the objective (the study's aggregate of the final
    detector's validation AUROC over ALL the trial's units; "-" when a unit failed or is missing), the
    mean validation and test AUROC of its finished units (test: reported, never used to choose),
    units, params.  Each figure is one group-by over the rows, so the table costs O(rows + trials)."""
    ok = _ok(rows[rows.study_kind == "search"])
    final = ok[ok.detector == "final"]
    ranking = search_ranking(rows, spec).set_index("trial_id")
    order = {t: i for i, t in enumerate(ranking.index)}
    objective = ranking["objective"].to_dict()
    val = final[final.split == "val"].groupby("trial_id").auroc
    val_mean, units_ok = val.mean().to_dict(), val.size().to_dict()
    test_mean = final[final.split == "test"].groupby("trial_id").auroc.mean().to_dict()
    errors = rows[rows.status == "error"][["trial_id", "holdout_class", "seed"]].drop_duplicates()
    units_err = errors.groupby("trial_id").size().to_dict()
    stage_order = {s: i for i, s in enumerate(STAGE_ORDER)}
    reached_index = ok.stage.map(stage_order).dropna().groupby(ok.trial_id).max().to_dict()
    records = []
    for trial_id, params in trial_params.items():
        index = reached_index.get(trial_id)
        record = {
            "trial": trial_id,
            "reached": STAGE_ORDER[int(index)] if index is not None else "-",  # ASHA may stop a trial early
            "objective": objective.get(trial_id, float("nan")),
            "val_auroc": val_mean.get(trial_id, float("nan")),
            "test_auroc": test_mean.get(trial_id, float("nan")),
            "units_ok": units_ok.get(trial_id, 0),
            "units_err": units_err.get(trial_id, 0),
        }
        record.update({k: v for k, v in params.items() if not k.startswith("_") and not isinstance(v, dict)})
        records.append((order.get(trial_id, len(order)), trial_id, record))
    frame = pd.DataFrame([r for _, _, r in sorted(records, key=lambda item: item[:2])])
    return frame.head(top).reset_index(drop=True)


def seeds_table(rows: pd.DataFrame) -> pd.DataFrame:
    """Per held-out class and detector: mean and SD over seeds of test AUROC, plus the overall mean
    and the mean of the per-class SDs (the paper's Figure 11)."""
    ok = _ok(rows)
    test = ok[(ok.split == "test") & ok.detector.notna()]
    if test.empty:
        return pd.DataFrame()
    test = test.assign(column=test.method.where(test.method != "omasgan", test.detector))
    grouped = test.groupby(["holdout_class", "column"]).auroc.agg(["mean", "std", "count"]).reset_index()
    wide = grouped.pivot(index="holdout_class", columns="column", values=["mean", "std"])
    columns = [c for c in (*DETECTORS, *sorted(set(test.column) - set(DETECTORS))) if c in set(test.column)]
    frame = pd.DataFrame({"class": [str(k) for k in wide.index]})
    for c in columns:
        frame[f"{c}_mean"] = wide[("mean", c)].to_numpy()
        frame[f"{c}_sd"] = wide[("std", c)].to_numpy()
    summary = {"class": "mean"}
    for c in columns:
        summary[f"{c}_mean"] = frame[f"{c}_mean"].mean()
        summary[f"{c}_sd"] = frame[f"{c}_sd"].mean()
    frame = pd.concat([frame, pd.DataFrame([summary])], ignore_index=True)
    frame["seeds"] = [int(grouped[grouped.holdout_class == int(k)]["count"].max()) if k != "mean" else
                      int(grouped["count"].max()) for k in frame["class"]]
    return frame


def sweep_table(rows: pd.DataFrame) -> pd.DataFrame:
    """One swept parameter (the final J's rows of a sensitivity study): per value, for each split the
    mean over held-out classes within each seed, then the mean and SD (ddof=1; NaN with one seed) of
    those per-seed means over seeds; ``seeds``, and ``units`` (the test rows).  The one rule of the
    CLI's table and the report's section 4."""
    per_seed = rows.groupby(["sweep_value", "split", "seed"])["auroc"].mean()
    spread = per_seed.groupby(["sweep_value", "split"]).agg(["mean", "std"]).unstack("split")
    table = pd.DataFrame(index=spread.index)
    for split in ("val", "test"):
        for stat in ("mean", "std"):
            column = (stat, split)
            table[f"{split}_{'sd' if stat == 'std' else stat}"] = spread[column] if column in spread else math.nan
    table["seeds"] = rows.groupby("sweep_value")["seed"].nunique()
    table["units"] = rows[rows["split"] == "test"].groupby("sweep_value").size()
    table["units"] = table["units"].fillna(0).astype(int)
    return table.reset_index().rename(columns={"sweep_value": "value"})


def sensitivity_table(rows: pd.DataFrame) -> pd.DataFrame:
    """Per swept (parameter, value): :func:`sweep_table` of the final detector's ok rows."""
    ok = _ok(rows)
    final = ok[(ok.detector == "final") & ok.sweep_param.notna() & ok.split.isin(["val", "test"])]
    if final.empty:
        return pd.DataFrame()
    tables = [sweep_table(group).assign(param=param) for param, group in final.groupby("sweep_param", sort=True)]
    table = pd.concat(tables, ignore_index=True)
    return table[["param", *[c for c in table.columns if c != "param"]]]


def summary_table(rows: pd.DataFrame, by: list[str] | None = None) -> pd.DataFrame:
    """``omasgan results``: per study, method, detector and split (and ``by``): rows, the mean and SD
    of AUROC, mean AUPRC and F1, errors."""
    keys = ["study", "study_kind", "method", "detector", "split", *(by or [])]
    ok = _ok(rows)
    ok = ok[ok.split.notna()]
    if ok.empty:
        frame = pd.DataFrame()
    else:
        frame = ok.groupby(keys, dropna=False).agg(
            rows=("auroc", "size"), auroc=("auroc", "mean"), auroc_sd=("auroc", "std"),
            auprc=("auprc", "mean"), f1=("f1", "mean"), wall_s=("wall_time_s", "mean"),
        ).reset_index()
    errors = rows[rows.status == "error"]
    if len(errors):
        counts = errors.groupby(["study", "stage"]).size().reset_index(name="errors")
        frame = pd.concat([frame, counts.rename(columns={"stage": "detector"})], ignore_index=True)
    return frame

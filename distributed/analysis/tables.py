"""Plain-text tables of study results, computed from the Parquet rows (a pandas DataFrame of the
result store), so what a study prints is what it stored.

**Units that failed.**  A cell of the seeds and sensitivity tables (a held-out class, a swept value)
averages the (class, seed) units that finished.  When some of the units planned for it failed (an error
row) or wrote no result, it is never shown as a plain number: the numeric table carries the counts
(``units_ok`` or ``<column>_units_ok``, and ``units_total``), and :func:`units_view` shows such a mean
as ``0.7340 (2/3 units)``, or ``- (0/3 units)`` when none finished, with :data:`UNITS_LEGEND` under
the table.  The CLI's :func:`render` and the report's pages both show tables through it.  (The search
ranking does not average a part: a trial with a failed unit is not scored, see :mod:`.ranking`.)
"""

from __future__ import annotations

import math
from collections import Counter
from typing import Any

import pandas as pd

from omasgan.vocabulary import DETECTORS, STAGES

from .ranking import search_ranking

STAGE_ORDER = STAGES
STAGE_DETECTORS = {"task1": "task1", "task3": "task3", "j": "final"}
"""The OMASGAN detector each stage leaves behind (task2 leaves none)."""
UNITS_LEGEND = ("(k/n units): the mean of only the k (class, seed) units that finished, of the n planned; "
                "the other n - k failed (an error row) or wrote no result and are left out, not counted; "
                "'- (0/n units)': none finished. The failures: omasgan results FOLDER --where \"status == 'error'\"")
"""The line under a table that shows a mean of fewer units than planned."""


def _ok(rows: pd.DataFrame) -> pd.DataFrame:
    return rows[rows.status == "ok"]


def _fmt(value: Any, digits: int = 4) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def render(frame: pd.DataFrame) -> str:
    """A DataFrame as an aligned text table (NaN as "-"), its unit counts shown by :func:`units_view`
    (with :data:`UNITS_LEGEND` under it when a mean is of fewer units than planned)."""
    if frame.empty:
        return "(no rows)"
    frame, partial = units_view(frame)
    cells = [[str(c) for c in frame.columns]] + [[_fmt(v) for v in row] for row in frame.itertuples(index=False)]
    widths = [max(len(r[i]) for r in cells) for i in range(len(cells[0]))]
    lines = ["  ".join(c.rjust(w) for c, w in zip(row, widths)) for row in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    if partial:
        lines.append(UNITS_LEGEND)
    return "\n".join(lines)


# ---- unit counts ---------------------------------------------------------------------------------

def planned_units(rows: pd.DataFrame, spec: Any = None) -> list[tuple[int, int]]:
    """The (held-out class, seed) units a study planned for each of its cells: ``spec.units`` when the
    study's spec is given, else every held-out class seen in ``rows`` times every seed seen there (rows
    of any status, so a failed unit counts; a study's units are its classes x its seeds)."""
    if spec is not None:
        return [(int(k), int(s)) for k, s in spec.units]
    if rows.empty:
        return []
    return [(int(k), int(s)) for k in sorted(rows["holdout_class"].dropna().unique())
            for s in sorted(rows["seed"].dropna().unique())]


def units_cell(value: Any, units_ok: Any, units_total: Any, digits: int = 4) -> Any:
    """A mean of ``units_ok`` of ``units_total`` planned units, for display: the number itself when
    every unit finished, else ``"0.7340 (2/3 units)"``, or ``"- (0/3 units)"`` when none did."""
    ok = 0 if units_ok is None or pd.isna(units_ok) else int(units_ok)
    if units_total is None or pd.isna(units_total) or ok >= int(units_total):
        return value
    shown = _fmt(float(value), digits) if value is not None and not pd.isna(value) else "-"
    return f"{shown} ({ok}/{int(units_total)} units)"


def _is_mean(column: str, columns) -> bool:
    """Whether ``column`` is a mean over a cell's units: ``mean``, ``iqm``, a split's ``val_mean`` /
    ``test_mean``, or ``<name>_mean`` next to its own ``<name>_units_ok`` (not, e.g., the mean of the
    worst class)."""
    if column in ("mean", "iqm", "val_mean", "test_mean"):
        return True
    return column.endswith("_mean") and f"{column[: -len('_mean')]}_units_ok" in columns


def units_view(frame: pd.DataFrame) -> tuple[pd.DataFrame, bool]:
    """``frame`` for display, and whether a mean in it is of fewer units than planned.

    A table with ``units_total`` counts its units: per row (``units_ok``) or per mean column
    (``<name>_units_ok`` for ``<name>_mean``).  Every mean column (see :func:`_is_mean`) of a row with
    fewer ok units than planned becomes text (:func:`units_cell`); the count columns become one
    ``units`` column, ``k/n`` for per-row counts, ``n`` (the planned units) for per-column ones.
    A table without ``units_total`` is returned as it is."""
    if "units_total" not in frame.columns:
        return frame, False
    shown = frame.copy()
    partial = False
    counts = [c for c in frame.columns if c == "units_ok" or c.endswith("_units_ok")]
    for column in [c for c in frame.columns if _is_mean(str(c), frame.columns)]:
        own = f"{column[: -len('_mean')]}_units_ok" if column.endswith("_mean") else None
        count = own if own in frame.columns else "units_ok" if "units_ok" in frame.columns else None
        if count is None:
            continue
        short = frame[count].fillna(0) < frame["units_total"]
        if short.any():
            partial = True
            shown[column] = [units_cell(v, k, n) if is_short else v for v, k, n, is_short
                             in zip(frame[column], frame[count], frame["units_total"], short)]
    total = [int(n) if not pd.isna(n) else "-" for n in frame["units_total"]]
    if "units_ok" in frame.columns:
        total = [f"{0 if pd.isna(k) else int(k)}/{n}" for k, n in zip(frame["units_ok"], total)]
    shown = shown.drop(columns=counts + ["units_total"])
    shown.insert(len(shown.columns), "units", total)
    return shown, partial


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


def _omasgan_detectors(rows: pd.DataFrame, spec: Any) -> list[str]:
    """The OMASGAN detectors a seeds table shows: those of the stages up to ``spec.last_stage``, or up
    to the furthest stage any OMASGAN row reached or failed at (so a detector every unit failed before
    is shown as failed, not left out)."""
    omasgan = rows[rows["method"].fillna("omasgan") == "omasgan"] if "method" in rows.columns else rows
    if spec is not None and getattr(spec, "last_stage", None) in STAGE_ORDER and not omasgan.empty:
        last = STAGE_ORDER.index(spec.last_stage)
    else:
        reached = omasgan["stage"].map({s: i for i, s in enumerate(STAGE_ORDER)}).dropna()
        if reached.empty:
            return []
        last = int(reached.max())
    return [STAGE_DETECTORS[s] for s in STAGE_ORDER[: last + 1] if s in STAGE_DETECTORS]


def seeds_table(rows: pd.DataFrame, spec: Any = None) -> pd.DataFrame:
    """Per held-out class and detector (or baseline method): mean and SD over seeds of test AUROC and
    the number of its units that finished (``<column>_units_ok``), of ``units_total`` planned
    (:func:`planned_units`); then a ``mean`` row: the mean over classes of the class means (the paper's
    Figure 11), the mean of the per-class SDs, and the units summed over classes.  ``rows`` are every
    row of the study, of any status: a failed unit is counted as planned, never averaged."""
    planned = planned_units(rows, spec)
    ok = _ok(rows)
    test = ok[(ok.split == "test") & ok.detector.notna()]
    if test.empty and not planned:
        return pd.DataFrame()
    test = test.assign(column=test.method.where(test.method != "omasgan", test.detector))
    methods = set(rows.method.dropna()) - {"omasgan"} if "method" in rows.columns else set()
    seen = set(test.column) | set(_omasgan_detectors(rows, spec)) | methods
    columns = [c for c in (*DETECTORS, *sorted(seen - set(DETECTORS))) if c in seen]
    if not columns:
        return pd.DataFrame()
    grouped = test.groupby(["holdout_class", "column"]).agg(
        mean=("auroc", "mean"), std=("auroc", "std"), ok=("seed", "nunique"))
    total = Counter(k for k, _ in planned)
    classes = sorted(set(total) | set(test.holdout_class.astype(int)))
    records = []
    for k in classes:
        record: dict[str, Any] = {"class": str(k)}
        for c in columns:
            found = (k, c) in grouped.index
            record[f"{c}_mean"] = float(grouped.loc[(k, c), "mean"]) if found else math.nan
            record[f"{c}_sd"] = float(grouped.loc[(k, c), "std"]) if found else math.nan
            record[f"{c}_units_ok"] = int(grouped.loc[(k, c), "ok"]) if found else 0
        record["units_total"] = max([total.get(k, 0)] + [record[f"{c}_units_ok"] for c in columns])
        records.append(record)
    frame = pd.DataFrame(records)
    summary: dict[str, Any] = {"class": "mean"}
    for c in columns:
        summary[f"{c}_mean"] = frame[f"{c}_mean"].mean()
        summary[f"{c}_sd"] = frame[f"{c}_sd"].mean()
        summary[f"{c}_units_ok"] = int(frame[f"{c}_units_ok"].sum())
    summary["units_total"] = int(frame["units_total"].sum())
    frame = pd.concat([frame, pd.DataFrame([summary])], ignore_index=True)
    ordered = ["class", *[f"{c}_{x}" for c in columns for x in ("mean", "sd")],
               *[f"{c}_units_ok" for c in columns], "units_total"]
    return frame[ordered]


def sweep_table(rows: pd.DataFrame, values: list[float] | None = None, units_total: int | None = None) -> pd.DataFrame:
    """One swept parameter (the final J's ok rows of a sensitivity study): per value, for each split the
    mean over held-out classes within each seed, then the mean and SD (ddof=1; NaN with one seed) of
    those per-seed means over seeds; ``seeds``; ``units_ok``, the (class, seed) units with a result,
    and ``units_total``, the units planned per value (default: those with a result).  ``values`` adds
    the swept values no unit finished (NaN, 0 units ok).  The one rule of the CLI's table and the
    report's section 4."""
    per_seed = rows.groupby(["sweep_value", "split", "seed"])["auroc"].mean()
    spread = per_seed.groupby(["sweep_value", "split"]).agg(["mean", "std"]).unstack("split")
    index = sorted(set(spread.index) | set(values or []))
    table = pd.DataFrame(index=pd.Index(index, name="sweep_value", dtype="float64"))
    for split in ("val", "test"):
        for stat in ("mean", "std"):
            column = (stat, split)
            table[f"{split}_{'sd' if stat == 'std' else stat}"] = spread[column] if column in spread else math.nan
    table["seeds"] = rows.groupby("sweep_value")["seed"].nunique()
    table["units_ok"] = rows.drop_duplicates(["sweep_value", "holdout_class", "seed"]).groupby("sweep_value").size()
    table[["seeds", "units_ok"]] = table[["seeds", "units_ok"]].fillna(0).astype(int)
    table["units_total"] = table["units_ok"] if units_total is None else table["units_ok"].clip(lower=units_total)
    return table.reset_index().rename(columns={"sweep_value": "value"})


def sensitivity_table(rows: pd.DataFrame, spec: Any = None) -> pd.DataFrame:
    """Per swept (parameter, value): :func:`sweep_table` of the final detector's ok rows, counting the
    units planned per value (:func:`planned_units`) and listing every swept value (from the rows of any
    status, and ``spec.options["sweeps"]`` when the spec is given), so a value whose units all failed
    is shown as failed, not left out."""
    ok = _ok(rows)
    final = ok[(ok.detector == "final") & ok.sweep_param.notna() & ok.split.isin(["val", "test"])]
    swept = rows[rows.sweep_param.notna()][["sweep_param", "sweep_value"]]
    pairs = {(str(p), float(v)) for p, v in swept.itertuples(index=False)}
    if spec is not None:
        pairs |= {(str(s["param"]), float(s["value"])) for s in spec.options.get("sweeps", [])}
    if not pairs:
        return pd.DataFrame()
    total = len(planned_units(rows, spec))
    tables = [sweep_table(final[final.sweep_param == param], sorted(v for p, v in pairs if p == param), total)
              .assign(param=param) for param in sorted({p for p, _ in pairs})]
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

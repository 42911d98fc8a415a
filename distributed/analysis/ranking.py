"""The one ranking of a search's trials, which the printed search table, the report and the
confirmation all use: by the study's objective (:mod:`.objective`, the aggregate over ALL its
(class, seed) units) of the final detector J's VALIDATION AUROC.  A trial with a failed or missing unit
is not scored on the rest: it ranks after every complete trial.  Ties go to the smaller trial id."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import pandas as pd

from .objective import aggregate

if TYPE_CHECKING:
    import pyarrow.dataset as ds

    from ..store.study_folder import StudySpec

RANK_COLUMNS = ["study", "study_kind", "trial_id", "stage", "split", "status", "holdout_class", "seed", "auroc"]
"""The columns :func:`search_ranking` reads."""


def ranking_filter(spec: StudySpec) -> ds.Expression:
    """The rows :func:`search_ranking` reads (the search's ok validation rows of J), as a scan filter, so
    a caller reads only those."""
    import pyarrow.dataset as ds

    return ((ds.field("study") == spec.name) & (ds.field("study_kind") == "search") & (ds.field("stage") == "j")
            & (ds.field("split") == "val") & (ds.field("status") == "ok"))


def search_ranking(rows: pd.DataFrame, spec: StudySpec) -> pd.DataFrame:
    """The search's trials ranked by the study's objective on VALIDATION rows of J (stage j, split val,
    status ok, study_kind search): per trial, ``units`` with a value, ``objective`` (the aggregate
    over every unit of the spec, NaN when one is missing or failed), ``val_mean``.  Complete trials
    rank first, then by objective, then by trial id."""
    how = spec.options.get("objective", "mean")
    search = rows[(rows["study"] == spec.name) & (rows["study_kind"] == "search") & (rows["stage"] == "j")
                  & (rows["split"] == "val") & (rows["status"] == "ok")]
    records = []
    for trial_id, mine in search.groupby("trial_id"):
        by_unit = mine.set_index(["holdout_class", "seed"])["auroc"]
        values = [float(by_unit.get(unit, float("nan"))) for unit in spec.units]
        records.append({"trial_id": trial_id, "units": int(by_unit.notna().sum()),
                        "objective": aggregate([k for k, _ in spec.units], values, how),
                        "val_mean": float(by_unit.mean())})
    frame = pd.DataFrame(records, columns=["trial_id", "units", "objective", "val_mean"])
    frame["complete"] = frame["objective"].map(lambda v: math.isfinite(v))
    frame = frame.sort_values(["complete", "objective", "trial_id"], ascending=[False, False, True])
    return frame.reset_index(drop=True)

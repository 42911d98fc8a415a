"""Section 9 of ``omasgan report``: the shortcut alarm per study and trial (issue 12).

Read from the ok OMASGAN rows: the task2 rows' ``alarm_ink_auroc``, ``alarm_contrast_auroc`` and
``alarm_nn_auroc`` (AUROC of that statistic alone separating Task 2's B(z), positive, from training
normals; :mod:`omasgan.alarm`), the j rows' ``alarm_ink_spearman`` (validation split: Spearman's rho of
the final score with the sample's ink) and, when J refined B, the j rows' AUROCs of the refined B_r.
Per (study, trial): the mean over its (class, seed) units of each figure, and for each AUROC a
``_sep`` column, the mean of max(a, 1 - a) (an AUROC far below 0.5 separates as well as one far above).
Rows written before the alarm existed hold nulls and are left out.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from omasgan.vocabulary import ALARM_STATISTICS

from .page import Page
from .tables import OMASGAN, ok

STATISTICS = tuple(f"alarm_{name}" for name in ALARM_STATISTICS)


def _means(rows: pd.DataFrame, prefix: str = "") -> pd.DataFrame:
    """Per (study, trial): units, and the mean (and mean separability) of each alarm AUROC."""
    keys = ["study", "trial_id"]
    rows = rows.dropna(subset=list(STATISTICS), how="all")
    if rows.empty:
        return pd.DataFrame(columns=keys)
    parts = {f"{prefix}units": rows.groupby(keys).size()}
    for column in STATISTICS:
        name = prefix + column[len("alarm_"):]
        parts[name] = rows.groupby(keys)[column].mean()
        separability = rows[column].map(lambda a: max(a, 1 - a) if np.isfinite(a) else np.nan)
        parts[f"{name}_sep"] = separability.groupby([rows[k] for k in keys]).mean()
    return pd.DataFrame(parts).reset_index()


def alarm_table(results: pd.DataFrame) -> pd.DataFrame:
    """The section's table (see the module docstring); empty when no row holds an alarm."""
    rows = ok(results)
    rows = rows[rows["method"] == OMASGAN]
    if not set(STATISTICS) <= set(rows.columns):
        return pd.DataFrame()
    unit = ["dataset", "holdout_class", "seed"]
    task2 = rows[rows["stage"] == "task2"].drop_duplicates(subset=["study", "trial_id", *unit])
    table = _means(task2)
    j_rows = rows[(rows["stage"] == "j") & (rows["split"] == "val")]
    if "alarm_ink_spearman" in rows.columns and j_rows["alarm_ink_spearman"].notna().any():
        spearman = j_rows.dropna(subset=["alarm_ink_spearman"]).groupby(["study", "trial_id"])[
            "alarm_ink_spearman"].mean().rename("j_ink_spearman")
        table = table.merge(spearman.reset_index(), on=["study", "trial_id"], how="outer")
    refined = _means(j_rows, prefix="refined_")
    if len(refined) and "refined_units" in refined:
        table = table.merge(refined, on=["study", "trial_id"], how="outer")
    if table.empty or len(table.columns) <= 2:
        return pd.DataFrame()
    return table.sort_values(["study", "trial_id"]).reset_index(drop=True)


def section_alarm(page: Page, results: pd.DataFrame, threshold: float = 0.9) -> None:
    """9. The shortcut alarm: can ink, contrast or nearest-neighbour distance alone tell B(z) from x?"""
    page.heading("9. Shortcut alarm")
    page.text("AUROC of one trivial statistic alone separating Task 2's boundary samples B(z) (positive) from "
              "training normals x: `ink` (mean intensity; > 0.5: B is inkier), `contrast` (per-image SD), `nn` "
              "(distance to the nearest training normal, leave-one-out for x). Mean over each trial's (class, "
              "seed) units; `_sep` is the mean of max(a, 1 - a), since an AUROC far below 0.5 is as much a "
              f"shortcut. A `_sep` above {threshold:g} means J can separate B(z) from x by that statistic "
              "alone. `j_ink_spearman`: Spearman's rho of the final score with the ink of the validation "
              "samples (mean over units). `refined_*`: the same AUROCs for J's refined B_r (j.refine_steps > 0).")
    table = alarm_table(results)
    if table.empty:
        page.left_out("no ok OMASGAN row holds the alarm's figures (rows written before the alarm existed)")
        return
    page.table("shortcut-alarm", table, "Shortcut alarm per study and trial (mean over units).")
    sep = [c for c in table.columns if c.endswith("_sep")]
    flagged = table[(table[sep] > threshold).any(axis=1)] if sep else table.iloc[:0]
    page.text(f"{len(flagged)} of {len(table)} trial(s) have a statistic with mean separability above {threshold:g}.")

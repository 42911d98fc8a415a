"""The claims table of ``omasgan reproduce``: ``claims.md``, ``claims.html`` and ``claims.json`` with a
figure and the CSV tables, in one folder replaced whole (a failed write leaves the previous one).

Sections: the claims with the paper's number, where it states it, the measured value with its 95%
interval over (digit, seed) units and the verdict with the test used; the claims this run could not test,
with the command that would; the baselines measured in the same protocol (each paired against J); the
reference figures; and the seed table (per digit, mean and SD over seeds, the paper's Figure 11).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from omasgan.atomic_write import write_file_atomic, write_folder_atomic

from ..analysis.claims import Claim, mean_over_units, reference_rows, seed_table, unit_table
from ..analysis.statistics import paired_comparison
from .figures import _figure, _save
from .page import Page, code

CLAIMS_FOLDER = "claims"


def _interval(low: float, high: float) -> str:
    return f"[{low:.3f}, {high:.3f}]" if math.isfinite(low) and math.isfinite(high) else "-"


def claims_frame(claims: list[Claim]) -> pd.DataFrame:
    """The tested claims as a table (one row each)."""
    return pd.DataFrame([{
        "claim": c.statement, "paper": c.paper, "where": c.where, "data": c.data, "measured": c.measured,
        "interval_95": _interval(c.ci_low, c.ci_high), "units": c.units, "verdict": c.verdict, "test": c.test,
    } for c in claims if c.verdict != "untested"])


def baseline_context(units: dict[tuple[str, str], pd.Series]) -> pd.DataFrame:
    """Each baseline part measured here: its mean with the 95% interval, and J paired against it."""
    final = units.get(("omasgan", "final"))
    records = []
    for (part, detector), series in sorted(units.items()):
        if part in ("omasgan", "fgan"):
            continue
        mean, low, high = mean_over_units(series)
        record = {"method": part, "mean": mean, "interval_95": _interval(low, high), "units": len(series)}
        if final is not None:
            comparison = paired_comparison(final, series, name_a="J", name_b=part)
            record.update(j_minus_method=comparison.mean_diff,
                          j_interval_95=_interval(comparison.ci_low, comparison.ci_high), verdict=comparison.verdict)
        records.append(record)
    return pd.DataFrame(records)


def _figure_claims(path: Path, claims: list[Claim]) -> Path | None:
    """The AUROC claims (means): the paper's number as a dot, the measured mean with its interval."""
    shown = [c for c in claims if c.verdict != "untested" and "mean" in c.key]
    if not shown:
        return None
    figure, ax = _figure()
    x = np.arange(len(shown))
    measured = np.array([c.measured for c in shown])
    low = measured - np.array([c.ci_low for c in shown])
    high = np.array([c.ci_high for c in shown]) - measured
    ax.bar(x, measured, 0.6, color="tab:blue", label="measured (95% interval)")
    ax.errorbar(x, measured, yerr=[low, high], fmt="none", ecolor="black", capsize=3)
    ax.scatter(x, [c.paper for c in shown], color="tab:red", zorder=3, label="paper")
    ax.axhline(0.5, color="gray", linestyle=":", linewidth=1)
    ax.set_xticks(x, [c.key.replace("-mean", "") for c in shown], rotation=20, fontsize=8)
    ax.set_ylim(0, 1)
    ax.set_ylabel("test AUROC")
    ax.set_title("the paper's claims: measured against stated")
    ax.legend(loc="lower right", fontsize=8)
    return _save(figure, path)


def _table_or_left_out(page: Page, name: str, table: pd.DataFrame, caption: str, missing: str) -> bool:
    """``table`` on the page under ``name`` with ``caption``, or the line ``missing`` when it is empty;
    returns whether the table was shown."""
    if table.empty:
        page.left_out(missing)
        return False
    page.table(name, table, caption)
    return True


def _page(folder: Path, plan: Any, claims: list[Claim], rows: pd.DataFrame, budget: Any) -> Page:
    units = unit_table(rows)
    page = Page(folder)
    page.heading(f"Does OMASGAN reproduce? Budget {budget.name!r}", 1)
    page.text(f"Reproduction {code(plan.name)}: {budget.description}. Data: {code(plan.dataset)}, held-out digits "
              f"{code(', '.join(map(str, plan.digits)))} x seeds {code(', '.join(map(str, plan.seeds)))}; parts "
              f"{code(', '.join(plan.parts))}. Test AUROC per (digit, seed) unit; every interval is 95%.")
    for note in budget.notes:
        page.text(f"*Note: {note}.*")
    page.heading("Claims", 2)
    if _table_or_left_out(page, "claims", claims_frame(claims),
                          "consistent: the interval holds the paper's number; below / above: the whole interval "
                          "lies below / above it.",
                          "no claim could be measured: the parts that measure them have no results yet"):
        figure = _figure_claims(page.figure_path("claims"), claims)
        if figure is not None:
            page.figure(figure, "the paper's AUROC claims against the measured means and their intervals")
    page.heading("Untested here", 2)
    untested = [c for c in claims if c.verdict == "untested"]
    if not untested:
        page.text("Every claim was tested.")
    for claim in untested:
        command = claim.detail.get("command")
        page.text(f"{claim.statement} (paper: {claim.paper:g}, {claim.where}): {claim.test}"
                  + (f"; test it with {code(command)}" if command else ""))
    page.heading("Baselines in the same protocol", 2)
    _table_or_left_out(page, "baselines", baseline_context(units),
                       "mean over units with its interval; J minus the method, paired per unit, with its interval "
                       "and verdict (better / worse need the interval and Wilcoxon at 5%).", "no baseline part ran")
    page.heading("Reference figures (not measured here)", 2)
    for figure in reference_rows(units):
        if "per_digit" in figure:
            ours = figure.get("ours_per_digit", {})
            page.text(f"{figure['what']}: " + ", ".join(
                f"digit {k} {v:.2f}" + (f" (J here: {ours[k]:.3f})" if k in ours else "")
                for k, v in figure["per_digit"].items()))
        else:
            page.text(f"{figure['what']}: {figure['mean']:.3f}")
    page.heading("Seed table", 2)
    _table_or_left_out(page, "seeds", seed_table(rows),
                       "per held-out digit and part:detector, the mean and SD over seeds of the test AUROC; the last "
                       "rows (digit 'mean') average the digits.", "no results yet")
    return page


def write_claims(folder: Path, plan: Any, claims: list[Claim], rows: pd.DataFrame, budget: Any) -> Path:
    """Write ``folder/claims/`` (claims.md, claims.html, claims.json, figures/, tables/); return it."""
    out = folder / CLAIMS_FOLDER

    def build(path: str) -> None:
        page = _page(Path(path), plan, claims, rows, budget)
        (Path(path) / "claims.md").write_text(page.render("md"), encoding="utf-8")
        (Path(path) / "claims.html").write_text(page.render("html"), encoding="utf-8")
        document = {"reproduction": plan.name, "budget": budget.name, "dataset": plan.dataset,
                    "digits": plan.digits, "seeds": plan.seeds, "parts": plan.parts,
                    "claims": [c.as_dict() for c in claims]}
        body = json.dumps(_json_safe(document), indent=2, default=_plain, allow_nan=False).encode()
        write_file_atomic(Path(path) / "claims.json", lambda handle: handle.write(body))

    write_folder_atomic(out, build)
    return out


def _json_safe(value: Any) -> Any:
    """``value`` with every non-finite float as None (strict JSON has no NaN)."""
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if isinstance(value, (float, np.floating)) and not math.isfinite(float(value)):
        return None
    return value


def _plain(value: Any) -> Any:
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    return str(value)

"""``omasgan compare FOLDER --a X --b Y``: any two configs or methods of the result folders under
FOLDER, paired by (held-out class, seed), overall and per class.

X and Y name a set of result rows, one value per (class, seed) unit:

    STUDY              a seeds study (its one config); a search study (its confirmed winner when it
                       has a confirmation, else its best trial on validation); a baseline study with
                       one method
    STUDY:TRIAL        one trial of a study (a search trial id, or ``base`` of a confirmation)
    STUDY:METHOD       one baseline method of a study
    TRIAL or METHOD    a trial id or a baseline method name that only one study holds
    ...@DETECTOR       an OMASGAN detector other than the final J: task1, task3 (default final)

The statistics are :func:`analysis.statistics.paired_comparison` (mean difference, stratified
bootstrap interval, P(A > B), Wilcoxon p, verdict) on the split and metric asked (default: test AUROC; a
choice between configs should be made on ``--split val``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from omasgan.errors import ConfigError
from omasgan.vocabulary import DETECTORS, SPLITS

if TYPE_CHECKING:  # pandas waits until a comparison runs: the parser reads METRICS
    import pandas as pd

METRICS = ("auroc", "auprc", "f1")


@dataclass
class Selection:
    """What a name resolved to: a label, a description and one value per unit."""

    label: str
    description: str
    values: pd.Series


SELECTION_COLUMNS = ["study", "study_kind", "trial_id", "method", "detector", "dataset", "holdout_class", "seed",
                     "split", "status"]
"""The result columns ``resolve`` reads, besides the metric."""


def _ranked_trial(inputs, study: str, spec) -> tuple[str, str]:
    """A search study's trial to stand for it: its confirmed winner, else its best on validation."""
    from ..store.study_folder import read_confirmation
    from .tables import ranking as trial_ranking

    item = next(i for i in inputs.studies if i.spec.name == study)
    confirmed = read_confirmation(item.folder)
    if confirmed:
        return confirmed["winner"], f"the confirmed winner of search {study!r}"
    ranking = trial_ranking(inputs, spec)
    if ranking.empty:
        raise ConfigError(f"search study {study!r} has no validation rows of J to choose a trial from")
    return str(ranking["trial_id"].iloc[0]), f"the best trial of search {study!r} on validation (not confirmed)"


def resolve(name: str, inputs, split: str, metric: str) -> Selection:
    """The rows ``name`` stands for (see the module docstring), as values by (class, seed)."""
    import pandas as pd

    from ..analysis.statistics import unit_series

    text, _, detector = name.partition("@")
    detector = detector or "final"
    if detector not in DETECTORS:
        raise ConfigError(f"{name!r}: detector {detector!r} is not one of {', '.join(DETECTORS)}")
    rows = inputs.results[(inputs.results["status"] == "ok") & (inputs.results["split"] == split)]
    specs = {i.spec.name: i.spec for i in inputs.studies}
    study, _, item = text.partition(":")
    if not item and study not in specs:
        study, item = "", text
    if study:
        if study not in specs:
            raise ConfigError(f"{name!r}: no study {study!r} under the folder; it holds: {', '.join(sorted(specs))}")
        rows = rows[rows["study"] == study]
        spec = specs[study]
        if not item:
            if spec.kind == "search":
                item, how = _ranked_trial(inputs, study, spec)
            elif spec.kind == "seeds":
                how = f"seeds study {study!r}"
            else:
                methods = sorted(rows["method"].unique())
                if len(methods) != 1:
                    raise ConfigError(f"{name!r}: study {study!r} ({spec.kind}) holds {len(methods)} configs or "
                                      f"methods ({', '.join(methods) or 'none'}); name one as {study}:NAME")
                item, how = methods[0], f"{methods[0]} in study {study!r}"
        else:
            how = f"{item} in study {study!r}"
    else:
        how = item
    if item:
        by_trial, by_method = rows[rows["trial_id"] == item], rows[(rows["method"] == item) & (rows["method"] != "omasgan")]
        rows = by_trial if len(by_trial) else by_method
        if rows.empty:
            raise ConfigError(f"{name!r}: no ok {split} rows of a trial id or baseline method {item!r}"
                              + (f" in study {study!r}" if study else "") + "; give STUDY, STUDY:TRIAL or STUDY:METHOD")
        holders = sorted(rows["study"].unique())
        if len(holders) > 1:
            raise ConfigError(f"{name!r} is in several studies ({', '.join(holders)}); say which: STUDY:{item}")
    omasgan = rows["method"] == "omasgan"
    rows = pd.concat([rows[omasgan & (rows["detector"] == detector)], rows[~omasgan]])
    datasets = sorted(rows["dataset"].unique())
    if len(datasets) > 1:
        raise ConfigError(f"{name!r} has rows on several data sets ({', '.join(datasets)}); compare within one")
    label = name if "@" in name or detector == "final" else f"{name}@{detector}"
    return Selection(label, how, unit_series(rows, metric))


def compare(folder: str | Path, a: str, b: str, *, split: str = "test", metric: str = "auroc") -> dict:
    """The paired comparison of ``a`` against ``b`` overall and per class, as a JSON-ready dict."""
    from dataclasses import replace

    import pyarrow.dataset as ds

    from ..analysis.statistics import paired_comparison, per_class_comparisons
    from .tables import load_inputs, read_rows

    if split not in SPLITS:
        raise ConfigError(f"--split {split!r}; choose one of: {', '.join(SPLITS)}")
    if metric not in METRICS:
        raise ConfigError(f"--metric {metric!r}; choose one of: {', '.join(METRICS)}")
    inputs = load_inputs(folder)
    # every ok row of the split, but only the columns a selection reads (pushed down to the scan)
    where = (ds.field("status") == "ok") & (ds.field("split") == split)
    inputs = replace(inputs, results=read_rows(inputs, where, [*SELECTION_COLUMNS, metric]))
    first, second = resolve(a, inputs, split, metric), resolve(b, inputs, split, metric)
    overall = paired_comparison(first.values, second.values, name_a=first.label, name_b=second.label)
    per_class = per_class_comparisons(first.values, second.values, name_a=first.label, name_b=second.label)
    paired = first.values.index.intersection(second.values.index)
    return {"a": first.label, "a_is": first.description, "b": second.label, "b_is": second.description,
            "split": split, "metric": metric, "overall": overall.as_dict(), "line": overall.line(),
            "per_class": per_class.to_dict(orient="records"),
            "unpaired": {"a": len(first.values) - len(paired), "b": len(second.values) - len(paired)}}

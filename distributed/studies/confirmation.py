"""Confirmation of a search's winners on fresh seeds: ``omasgan search ... --confirm K`` and
``omasgan confirm STUDY``.

A search reports its luckiest trial: with N trials whose true quality is equal, the best of N noisy
objectives beats the others by chance.  So after the search:

1. the search's trials are ranked by their objective (the study's aggregate over ALL its (class, seed)
   units of J's validation AUROC; a trial with a failed or missing unit ranks last);
2. the top K trials and the base config (label ``base``; for the defaults, the paper's setting) are
   rerun on seeds the search never used (default 100, 101, 102; named in ``study.json``), same classes:
   a second Tune experiment ``NAME-confirm`` whose rows have ``study_kind = "confirm"`` and carry the
   confirmed search trial's id (or ``base``) as ``trial_id``;
3. each candidate is compared with the base, paired by (class, seed), on the fresh seeds' VALIDATION
   AUROC of J (:func:`omasgan.distributed.analysis.statistics.paired_comparison`: mean difference,
   stratified bootstrap interval, P(A > B), Wilcoxon p). With K candidates the level is Bonferroni's
   0.05 / K for both the interval and the test, so the chance of a false "better" over the whole
   confirmation stays under 5%. The same comparison on the TEST split is shown next to it and never
   steers anything;
4. the confirmed winner is the candidate with the highest confirmed objective among those whose
   verdict is "better"; when none is, the base config stays the winner.  ``confirmation.json`` (in
   the study folder) holds all of it, and the report's ``best-config.json`` is the confirmed winner's
   config, with a note saying so.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from omasgan.atomic_write import write_file_atomic
from omasgan.config import OMASGANConfig
from omasgan.errors import ConfigError

from ..analysis.objective import aggregate
from ..analysis.ranking import RANK_COLUMNS, ranking_filter, search_ranking
from ..store.study_folder import CONFIRMATION_FILE, StudySpec
from .preparation import RunOptions, StudyPaths, parse_int_list

BASE_LABEL = "base"
CONFIRM_KIND = "confirm"
CONFIRM_FOLDER = "confirm"
FIRST_FRESH_SEED = 100
UNIT_IDENTITY = ("data.holdout", "seed")
CANDIDATE_COLUMNS = [*RANK_COLUMNS, "config_json"]
"""The result columns choose_candidates reads."""


@dataclass
class Candidate:
    """A config to confirm: the base (``label = "base"``) or a search trial (``label`` = its id)."""

    label: str
    overrides: dict[str, Any]
    search_objective: float | None = None

    def as_param(self) -> dict[str, Any]:
        return {"label": self.label, "overrides": self.overrides}


def flat_config(config: dict[str, Any]) -> dict[str, Any]:
    """A nested config as dotted keys, without the unit's identity (held-out class and seed)."""
    flat = OMASGANConfig.from_dict(config).flat()
    return {k: v for k, v in flat.items() if k not in UNIT_IDENTITY}


def same_config(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Whether two flat configs are one config: equal keys, and equal values, floats up to rounding
    (|x - y| <= 1e-9 * max(1, |x|, |y|)): a search's parametrisation can give the base's 0.4 as
    0.7 - 0.3 = 0.39999999999999997."""
    if a.keys() != b.keys():
        return False
    for key, x in a.items():
        y = b[key]
        if isinstance(x, float) and isinstance(y, (int, float)) and not isinstance(y, bool):
            if not math.isclose(x, float(y), rel_tol=1e-9, abs_tol=1e-12):
                return False
        elif x != y:
            return False
    return True


def fresh_seeds(spec: StudySpec, text: str | None, count: int = 3) -> list[int]:
    """The confirmation's seeds: ``text`` (e.g. "100-104"), else ``count`` seeds from 100 on (or as
    many as the search had, if more); refused when one was used by the search."""
    seeds = parse_int_list(text, "--confirm-seeds") if text else list(
        range(FIRST_FRESH_SEED, FIRST_FRESH_SEED + max(count, len(spec.seeds))))
    used = sorted(set(seeds) & set(spec.seeds))
    if used:
        raise ConfigError(f"--confirm-seeds {used} were used by the search (its seeds: {spec.seeds}); "
                          f"confirmation needs seeds the search never saw, e.g. {FIRST_FRESH_SEED}-{FIRST_FRESH_SEED + 2}")
    return seeds


def choose_candidates(rows: pd.DataFrame, spec: StudySpec, top: int) -> list[Candidate]:
    """The base config, then the ``top`` complete trials of ``search_ranking`` whose config is not the
    base's (the paper point is the base: it is confirmed once, as ``base``)."""
    if top < 1:
        raise ConfigError(f"--confirm must be >= 1 (the number of top trials to confirm); got {top}")
    base = flat_config(spec.base_config)
    candidates = [Candidate(BASE_LABEL, base)]
    ranking = search_ranking(rows, spec)
    for record in ranking[ranking["complete"]].itertuples(index=False):
        config_rows = rows[(rows["trial_id"] == record.trial_id) & rows["config_json"].notna()]
        overrides = flat_config(json.loads(config_rows["config_json"].iloc[0]))
        if same_config(overrides, base):
            candidates[0].search_objective = float(record.objective)  # the base's own search trial
        elif len(candidates) <= top:
            candidates.append(Candidate(record.trial_id, overrides, float(record.objective)))
    if len(candidates) == 1:
        raise ConfigError(f"study {spec.name!r} has no complete search trial besides the base config to confirm "
                          f"({len(ranking)} trial(s) with validation rows of J)")
    return candidates


def confirmation_experiment(spec: StudySpec, paths: StudyPaths, info: dict[str, Any]):
    """The Tune experiment ``NAME-confirm``: one trial per candidate over classes x fresh seeds."""
    from ray import tune

    from .runner import Experiment

    candidates = info["candidates"]
    plan_changes = {"units": [[k, s] for k in spec.classes for s in info["seeds"]], "study_kind": CONFIRM_KIND,
                    "records_root": f"{paths.data_root}/{CONFIRM_FOLDER}", "stop_on_unit_error": False}
    return Experiment({"_candidate": tune.grid_search([{"label": c["label"], "overrides": c["overrides"]}
                                                       for c in candidates])},
                      1, len(candidates), name=f"{spec.name}-confirm", plan_changes=plan_changes,
                      row_trial_ids={c["label"] for c in candidates})


def prepare_confirmation(paths: StudyPaths, top: int, seeds_text: str | None) -> tuple[StudySpec, dict[str, Any]]:
    """Choose the candidates and seeds (or take those study.json holds, to resume an interrupted
    confirmation) and record them in study.json before anything runs."""
    from ..store.result_store import ResultStore

    spec = StudySpec.read(paths.control)
    if spec.kind != "search":
        raise ConfigError(f"{str(paths.control)!r} holds a {spec.kind} study; only a search is confirmed")
    stored = spec.options.get("confirm")
    if stored:
        if stored.get("top") != top or (seeds_text and stored["seeds"] != parse_int_list(seeds_text, "--confirm-seeds")):
            raise ConfigError(f"study {spec.name!r} was confirmed with --confirm {stored.get('top')} on seeds "
                              f"{stored['seeds']}; give those again (a finished confirmation is read again, an "
                              f"interrupted one resumes)")
        return spec, stored
    # only what the ranking reads (the search's ok validation rows of J), not every row of the study
    rows = ResultStore(paths.data_root).read(filter=ranking_filter(spec), columns=CANDIDATE_COLUMNS).to_pandas()
    candidates = choose_candidates(rows, spec, top)
    info = {"top": top, "seeds": fresh_seeds(spec, seeds_text), "objective": spec.options.get("objective", "mean"),
            "candidates": [asdict(c) for c in candidates]}
    spec.options["confirm"] = info
    spec.write(paths.control)
    return spec, info


def run_confirmation(paths: StudyPaths, options: RunOptions, top: int, seeds_text: str | None = None) -> dict[str, Any]:
    """Confirm the search in ``paths`` (see the module docstring); returns and writes its summary."""
    from ..store.result_store import ResultStore
    from .runner import run_experiment

    from dataclasses import replace

    from ray import tune

    spec, info = prepare_confirmation(paths, top, seeds_text)
    labels = ", ".join(c["label"] for c in info["candidates"])
    print(f"[{spec.name}] confirming {labels} on fresh seeds {info['seeds']} (classes {spec.classes})", flush=True)
    experiment = confirmation_experiment(spec, paths, info)
    resume = tune.Tuner.can_restore(f"{paths.tune_root}/{experiment.name}")  # an interrupted or finished one
    run_experiment(spec, replace(options, resume=resume), paths, experiment)
    import pyarrow.dataset as ds

    where = (ds.field("study") == spec.name) & (ds.field("study_kind") == CONFIRM_KIND)  # what the summary reads
    rows = ResultStore(paths.data_root).read(filter=where).to_pandas()
    summary = summarize_confirmation(rows, spec, info)
    text = json.dumps(summary, indent=2, default=_json_default) + "\n"
    write_file_atomic(paths.control / CONFIRMATION_FILE, lambda handle: handle.write(text.encode()))
    return summary


def _json_default(value: Any) -> Any:
    if hasattr(value, "item"):
        return value.item()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def confirm_series(rows: pd.DataFrame, spec: StudySpec, label: str, split: str, seeds: list[int]) -> pd.Series:
    """J's AUROC of one candidate on the confirmation's units: Series by (holdout_class, seed)."""
    from ..analysis.statistics import unit_series

    mine = rows[(rows["study"] == spec.name) & (rows["study_kind"] == CONFIRM_KIND) & (rows["trial_id"] == label)
                & (rows["stage"] == "j") & (rows["split"] == split) & (rows["status"] == "ok")
                & rows["seed"].isin(seeds)]
    return unit_series(mine)


def summarize_confirmation(rows: pd.DataFrame, spec: StudySpec, info: dict[str, Any]) -> dict[str, Any]:
    """The confirmed ranking, each candidate against the base (validation decides, test is shown),
    and the confirmed winner with its config."""
    from ..analysis.statistics import ALPHA, paired_comparison

    seeds, how = info["seeds"], info.get("objective", "mean")
    units = [(k, s) for k in spec.classes for s in seeds]
    candidates = info["candidates"]
    alpha = ALPHA / max(1, len(candidates) - 1)
    series = {c["label"]: {split: confirm_series(rows, spec, c["label"], split, seeds) for split in ("val", "test")}
              for c in candidates}
    ranking, comparisons = [], []
    for c in candidates:
        val = series[c["label"]]["val"]
        values = [float(val.get(u, float("nan"))) for u in units]
        ranking.append({"label": c["label"], "search_objective": c.get("search_objective"),
                        "confirmed_objective": aggregate([k for k, _ in units], values, how),
                        "units": int(val.notna().sum()), "val_mean": float(val.mean()) if len(val) else float("nan"),
                        "test_mean": float(series[c["label"]]["test"].mean()) if len(series[c["label"]]["test"])
                        else float("nan")})
        if c["label"] == BASE_LABEL:
            continue
        for split in ("val", "test"):
            try:
                result = paired_comparison(series[c["label"]][split], series[BASE_LABEL][split],
                                           name_a=c["label"], name_b=BASE_LABEL, alpha=alpha)
            except ConfigError as exc:
                comparisons.append({"label": c["label"], "split": split, "verdict": "not distinguishable",
                                    "error": str(exc)})
                continue
            comparisons.append({"label": c["label"], "split": split, **result.as_dict(), "line": result.line()})
    ranking.sort(key=lambda r: (-r["confirmed_objective"] if math.isfinite(r["confirmed_objective"]) else math.inf,
                                r["label"]))
    better = {c["label"] for c in comparisons if c["split"] == "val" and c["verdict"] == "better"}
    winner = next((r["label"] for r in ranking if r["label"] in better), BASE_LABEL)
    chosen = next(c for c in candidates if c["label"] == winner)
    reason = (f"{winner} is better than the base config on the fresh seeds' validation AUROC of J (Bonferroni "
              f"level {alpha:.3g} over {len(candidates) - 1} candidate(s))" if winner != BASE_LABEL else
              "no candidate is distinguishable from (or better than) the base config on the fresh seeds' "
              "validation AUROC of J: the base config stays")
    return {"study": spec.name, "objective": how, "seeds": seeds, "classes": spec.classes, "alpha": alpha,
            "decision_split": "val", "ranking": ranking, "comparisons": comparisons, "winner": winner,
            "reason": reason, "winner_overrides": chosen["overrides"]}


def confirmation_table(summary: dict[str, Any]) -> pd.DataFrame:
    """One line per candidate: search and confirmed objective, and its validation and test
    comparison with the base config."""
    by = {(c["label"], c["split"]): c for c in summary["comparisons"]}
    records = []
    for r in summary["ranking"]:
        line = {"candidate": r["label"], "search_obj": r["search_objective"], "confirmed_obj": r["confirmed_objective"],
                "units": r["units"], "test_mean": r["test_mean"]}
        for split in ("val", "test"):
            c = by.get((r["label"], split), {})
            line[f"{split}_diff"] = c.get("mean_diff", float("nan"))
            line[f"{split}_ci"] = (f"[{c['ci_low']:+.3f}, {c['ci_high']:+.3f}]" if "ci_low" in c else "-")
            line[f"{split}_p"] = c.get("wilcoxon_p", float("nan"))
            line[f"{split}_verdict"] = c.get("verdict", "(base)" if r["label"] == BASE_LABEL else "-")
        records.append(line)
    return pd.DataFrame(records)


def print_confirmation(summary: dict[str, Any]) -> None:
    from ..analysis.tables import render

    print(f"\nconfirmation on fresh seeds {summary['seeds']} x classes {summary['classes']} "
          f"(objective: {summary['objective']} of J's validation AUROC; each candidate against the base config, "
          f"paired by (class, seed); val decides at level {summary['alpha']:.3g}, test is shown only)")
    print(render(confirmation_table(summary)))
    for c in summary["comparisons"]:
        if c["split"] == "val" and "line" in c:
            print(f"  {c['line']}")
    print(f"confirmed winner: {summary['winner']}: {summary['reason']}")

"""``omasgan report``: one Markdown or HTML page of tables and PNG figures from the Parquet results of
any mix of search, sensitivity, seeds and baseline studies.

    omasgan report RESULTS_DIR [--out DIR] [--format md|html]

RESULTS_DIR is a study folder (it holds ``study.json``) or a folder of study folders.  The report
folder (default ``RESULTS_DIR/report``) holds ``report.md`` or ``report.html``, ``figures/*.png``
(640 x 400 px), ``tables/*.csv`` (every table's numbers, unrounded) and, for a search study,
``best-config.json``.  It is built in a temporary folder next to it and renamed into place, so a
failure leaves the previous report (or nothing) behind, never half a report.

Sections; each is left out with one line saying why when its inputs are missing:
  1. test AUROC per held-out class, one bar chart per detector stage, baselines as extra bars (Figs 4-7);
  2. ablation: Task 1 critic vs Task 3 critic vs final J, per class and on average (Figs 8-10);
  3. seed robustness: mean, SD, min and max of test AUROC over seeds per class (Fig 11);
  4. sensitivity curves: val and test AUROC of J against each swept parameter, with the seed spread;
  5. search history, parameter importance and the best config (chosen on validation AUROC only);
  6. histograms of J's test scores, normal vs anomalous samples;
  7. for 2-D data: x, G(z) and B(z) (Fig 3);
  8. AUROC / AUPRC / F1 per class and detector, wall time per stage and per trial;
  9. the shortcut alarm per study and trial (:mod:`.alarm`).
Which rows each section reads is in :mod:`.tables`.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd

from omasgan.atomic_write import write_folder_atomic
from omasgan.errors import ConfigError

from ..store.result_schema import safe_name
from . import figures as F
from . import tables as T
from .alarm import section_alarm
from .formats import FORMATS, PAGE_NAMES
from .page import Page, code, plain

BEST_CONFIG = "best-config.json"
IMPORTANCE_MAX_TRIALS = 500
"""fANOVA fits a random forest on every completed trial it is given, at a cost that grows faster than
the trials; past this many, the importance is fitted on a seeded uniform sample of this many."""


# ---- sections ------------------------------------------------------------------------------------

def _classes_and_mean(table: pd.DataFrame) -> tuple[list, pd.DataFrame]:
    frame = T.wide(table).set_index("holdout_class")
    return list(frame.index), frame


def _series(frame: pd.DataFrame, models: list[str], groups: list) -> dict[str, list[float]]:
    return {m: [float(frame.loc[g, m]) if m in frame.columns else np.nan for g in groups] for m in models}


def _omasgan_pairs(pairs: list[tuple[str, str]]) -> list[tuple[str, str]]:
    return [p for p in pairs if p[1] != T.BASELINE_SOURCE]


def section_overview(page: Page, inputs: T.Inputs, results_dir: Path) -> None:
    """The studies read, what sections 1-3 and 6-8 show, and the error rows."""
    page.heading("OMASGAN report", 1)
    page.text(f"Read {len(inputs.studies)} study folder(s) under {code(results_dir)}: "
              f"{inputs.total_rows} result rows.")
    page.table("studies", T.study_overview(inputs), "Studies read (rows: result rows; ok / error by status).")
    page.text("Sections 1-3 and 6-8 show, per data set: every seeds study; the best trial of every search "
              "study, chosen on validation AUROC only (section 5); and every baseline method on that data "
              "set. Sensitivity studies appear in section 4 only. Only rows with status=ok enter a number.")
    for item in [i for i in inputs.studies if i.spec.kind == "search"]:
        study = item.spec.name
        confirmed = T.confirmation_of(inputs, study)
        if confirmed is not None:
            page.text(f"Search study {code(study)}: its confirmed winner {code(confirmed['winner'])} is shown on the "
                      f"confirmation's fresh seeds {plain(confirmed['seeds'])} ({plain(confirmed['reason'])}).")
            continue
        ranked = T.ranking(inputs, item.spec)
        if len(ranked):
            page.text(f"Search study {code(study)}: trial {code(ranked['trial_id'].iloc[0])} is shown (objective "
                      f"{ranked['objective'].iloc[0]:.4f}: the {plain(item.spec.options.get('objective', 'mean'))} of J's "
                      f"validation AUROC over {ranked['units'].iloc[0]} units; not confirmed on fresh seeds).")
    errors = inputs.results[inputs.results["status"] == "error"]
    if len(errors):
        frame = errors[["study", "trial_id", "holdout_class", "seed", "method", "stage", "error"]].copy()
        frame = frame.sort_values(["study", "trial_id", "holdout_class", "seed", "method", "stage"], kind="stable")
        frame["error"] = frame["error"].fillna("").map(lambda e: e.splitlines()[0][:160] if e else "")
        page.table("errors", frame.reset_index(drop=True), f"{len(errors)} error row(s).")


def section_per_class(page: Page, reported: pd.DataFrame, pairs: list[tuple[str, str]]) -> None:
    """1. Per data set and source: test AUROC per class (mean over seeds) and its mean over classes,
    a bar chart per detector stage with the baselines as extra bars, and the table behind them."""
    page.heading("1. Test AUROC per held-out class")
    page.text("Each bar is the test AUROC of one held-out class, averaged over seeds; the error bar is +/- the "
              "SD over seeds (ddof=1; none with one seed); the `mean` group and the dashed line are the mean "
              "over the classes every column has, its error bar the SD over seeds of that mean. One chart per "
              "OMASGAN detector stage (task1: Task 1 critic, task3: Task 3 critic, final: J), with the baselines "
              "on the same data set as extra bars (paper Figures 4-7).")
    if not pairs:
        page.left_out("no ok test rows of a seeds study, a search study's best trial or a baseline")
    for dataset, source in pairs:
        rows = T.source_test_rows(reported, dataset, source)
        table = T.per_class(rows)
        groups, frame = _classes_and_mean(table)
        spread = T.wide(table, "auroc_sd").set_index("holdout_class")
        page.table(f"auroc-{dataset}-{source}", frame.reset_index(),
                   f"{code(dataset)} / {code(source)}: test AUROC, mean over seeds.")
        page.table(f"auroc-sd-{dataset}-{source}", spread.reset_index(),
                   f"{code(dataset)} / {code(source)}: SD over seeds of the test AUROC (the error bars).")
        models = T.model_order(table["model"])
        baselines = [m for m in models if m not in T.DETECTORS]
        for detector in [d for d in T.DETECTORS if d in models] or [None]:
            shown = ([detector] if detector else []) + baselines
            path = page.figure_path(f"auroc-{dataset}-{source}-{detector or 'baselines'}")
            F.grouped_bars(path, groups, _series(frame, shown, groups),
                           f"{dataset} / {source}: test AUROC per class ({detector or 'baselines'})",
                           mean_line=shown[0], errors=_series(spread, shown, groups))
            page.figure(path, f"test AUROC per class, {plain(detector or 'baselines')} (error bars: SD over seeds)")


def section_ablation(page: Page, reported: pd.DataFrame, pairs: list[tuple[str, str]]) -> None:
    """2. Task 1 critic vs Task 3 critic vs final J: test AUROC per class and on average, and J's gains."""
    page.heading("2. Ablation: Task 1 vs Task 3 vs final J")
    page.text("Test AUROC of the three OMASGAN detectors per held-out class (mean over seeds) and the mean "
              "over classes; `final - task1` and `final - task3` are J's gains (paper Figures 8-10).")
    if not _omasgan_pairs(pairs):
        page.left_out("no OMASGAN test rows (no seeds study and no search study with ok rows)")
    for dataset, source in _omasgan_pairs(pairs):
        rows = T.source_test_rows(reported, dataset, source)
        rows = rows[rows["source"] == source]
        if rows["model"].nunique() < 2:
            page.left_out(f"{code(dataset)} / {code(source)} has test rows of one detector stage only")
            continue
        table = T.ablation(rows)
        page.table(f"ablation-{dataset}-{source}", table, f"{code(dataset)} / {code(source)}: test AUROC per detector.")
        frame = table.set_index("holdout_class")
        groups = list(frame.index)
        path = page.figure_path(f"ablation-{dataset}-{source}")
        models = [d for d in T.DETECTORS if d in frame.columns]
        F.grouped_bars(path, groups, _series(frame, models, groups),
                       f"{dataset} / {source}: ablation (test AUROC)", mean_line="final" if "final" in models else None)
        page.figure(path, "ablation: task1 vs task3 vs final")


def section_seeds(page: Page, reported: pd.DataFrame, pairs: list[tuple[str, str]],
                  inputs: T.Inputs | None = None) -> None:
    """3. Seed robustness: a summary per source and model (mean, SD, IQM with its stratified bootstrap
    interval, worst class, units below chance); per class the mean, sample SD, min and max of J's test
    AUROC over seeds; then the noise floor.  Each counts its units against those planned (from
    ``inputs``), so a class or source where units failed says how many its numbers are over."""
    page.heading("3. Seed robustness")
    summaries = T.seed_summaries(reported, inputs)
    if len(summaries):
        page.table("seed-summary", summaries,
                   "Test AUROC over all (class, seed) units of each source and model: mean and SD (ddof=1) over "
                   "units; IQM (interquartile mean) with its 95% bootstrap interval, resampling seeds within each "
                   "held-out class (stratified; `nan` when a class has one seed); the worst class (lowest mean "
                   "over seeds) and its mean; the number of units below 0.5 (worse than chance); `units`: those "
                   "with a result of those planned.")
    page.text("Test AUROC of the final detector J over seeds, per held-out class: mean, sample SD (ddof=1), "
              "min and max, over the seeds that finished (`units`: finished/planned); the dot and error bar "
              "are mean +/- SD, the grey bar min..max (paper Figure 11).")
    done = False
    for dataset, source in _omasgan_pairs(pairs):
        rows = reported[(reported["dataset"] == dataset) & (reported["source"] == source)
                        & (reported["model"] == "final") & (reported["split"] == "test")]
        if rows.empty or rows.groupby("holdout_class")["seed"].nunique().max() < 2:
            continue
        planned = T.planned_units_of(inputs, dataset, source, "final") if inputs is not None else None
        table = T.seed_table(rows, planned)
        page.table(f"seeds-{dataset}-{source}", table, f"{code(dataset)} / {code(source)}: test AUROC of J over seeds.")
        page.text(f"Average SD over classes (classes with >= 2 seeds): {table['sd'].mean():.4f}.")
        path = page.figure_path(f"seeds-{dataset}-{source}")
        partial = table["units_ok"] < table["units_total"]
        labels = [f"{k} ({ok}/{n})" if short else str(k) for k, ok, n, short
                  in zip(table["holdout_class"], table["units_ok"], table["units_total"], partial)]
        F.seed_spread(path, labels, table["mean"], table["sd"], table["min"], table["max"],
                      f"{dataset} / {source}: test AUROC over seeds", partial=list(partial))
        page.figure(path, "seed robustness" + (SEEDS_PARTIAL_CAPTION if partial.any() else ""))
        done = True
    if not done:
        page.left_out("no study has more than one seed for a held-out class (a seeds study gives them)")
    section_noise_floor(page, reported)


SEEDS_PARTIAL_CAPTION = ("; a hollow dot, its class labelled k/n, is the mean of only the k seeds that finished "
                         "of the n planned")
SWEEP_PARTIAL_CAPTION = ("; a hollow point is the mean of fewer units than planned, an x at the top a value where "
                         "none finished (the table's `units`: finished/planned)")
"""Added to the caption of a figure that draws a mean of fewer units than planned."""


def section_noise_floor(page: Page, reported: pd.DataFrame) -> None:
    """3.1 The per-unit noise over seeds and the smallest difference a paired study can detect."""
    page.heading("3.1 Noise floor", 3)
    table = T.noise_floor_table(reported)
    if table.empty:
        page.left_out("noise floor: no source has two seeds of a held-out class")
        return
    page.text("How far one (class, seed) unit's test AUROC moves when only the seed changes: `unit_sd` is the SD "
              "over seeds within a held-out class, pooled over classes (`dof` degrees of freedom). Comparing two "
              "configs paired by (class, seed), the smallest true mean difference found with 80% power at a "
              "two-sided 5% level is about (z_0.975 + z_0.8) * sqrt(2) * unit_sd / sqrt(units), taking the two "
              "configs' seed noise as independent: `detectable_here` for this source's own units, and "
              "`detectable_N_seeds` for the same classes with N seeds each. A search whose trials differ by "
              "less than that on one seed is ranking noise.")
    page.table("noise-floor", table, "Noise floor of each source and model (test AUROC).")


def section_sensitivity(page: Page, results: pd.DataFrame, specs: dict | None = None) -> None:
    """4. Per sensitivity study and swept parameter: val and test AUROC of J against the value, as the
    mean over seeds of the per-seed mean over classes, with a +/- SD band over seeds: the CLI's table
    (:func:`..analysis.tables.sensitivity_table`) of the study's rows of any status, so a value where
    units failed shows how many of the planned units it is over (``specs``: study name -> its spec)."""
    from ..analysis.tables import sensitivity_table

    page.heading("4. Sensitivity")
    page.text("AUROC of the final detector J against each swept parameter (rows stage=j of sensitivity "
              "studies, validation and test split): at each value, the mean over seeds of the per-seed mean "
              "over held-out classes; the band and the `_sd` columns are the SD over seeds (ddof=1); `units`: "
              "the (class, seed) units that finished of those planned.")
    rows = results[(results["study_kind"] == "sensitivity") & (results["method"] == T.OMASGAN)
                   & results["sweep_param"].notna()]
    if T.ok(rows).query("stage == 'j'").empty and rows.empty:
        page.left_out("no ok rows of a sensitivity study (stage=j with sweep_param set)")
        return
    for study, mine in rows.groupby("study", sort=True):
        whole = sensitivity_table(mine, (specs or {}).get(study))
        for param, table in whole.groupby("param", sort=True):
            table = table.drop(columns="param").reset_index(drop=True)
            page.table(f"sensitivity-{study}-{param}", table, f"{code(study)}: {code(param)}.")
            curves = {s: (table[f"{s}_mean"], table[f"{s}_sd"]) for s in ("val", "test")
                      if table[f"{s}_mean"].notna().any()}
            if not curves:
                page.left_out(f"the curve of {code(study)} / {code(param)}: no unit finished at any value")
                continue
            partial = table["units_ok"] < table["units_total"]
            path = page.figure_path(f"sensitivity-{study}-{param}")
            F.sensitivity_curve(path, table["value"], curves, param, f"{study}: AUROC of J against {param}",
                                partial=list(partial))
            page.figure(path, f"sensitivity to {plain(param)}" + (SWEEP_PARTIAL_CAPTION if partial.any() else ""))


def _optuna_study(item: T.StudyInput):
    import optuna

    storage = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(item.journal)))
    return optuna.load_study(study_name=item.spec.name, storage=storage)


def _confirmed_numbers(study, inputs: T.Inputs, item: T.StudyInput) -> dict[int, str]:
    """Optuna trial number -> verdict of the trials the study's confirmation reran ("base" for the
    base config), matched by their sampled parameters to the confirmed candidates' configs."""
    from omasgan.search_spaces import resolve_params

    confirmed = T.confirmation_of(inputs, item.spec.name)
    if not confirmed:
        return {}
    verdicts = {c["label"]: c["verdict"] for c in confirmed["comparisons"] if c["split"] == "val"}
    candidates = item.spec.options.get("confirm", {}).get("candidates", [])
    found: dict[int, str] = {}
    for trial in study.trials:
        params = resolve_params(trial.params)
        for c in candidates:
            if params and all(_same(c["overrides"].get(k), v) for k, v in params.items()):
                found[trial.number] = "base" if c["label"] == "base" else verdicts.get(c["label"], "not distinguishable")
    return found


def _same(a, b) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        try:
            return abs(float(a) - float(b)) <= 1e-9 * max(1.0, abs(float(b)))
        except (TypeError, ValueError):
            return False
    return a == b


def _search_history(page: Page, item: T.StudyInput, inputs: T.Inputs | None = None) -> None:
    """The Optuna objective per completed trial with the best so far (confirmed trials marked), and
    fANOVA importances."""
    import optuna

    name = item.spec.name
    if not item.journal.is_file():
        page.left_out(f"search history and importance of {code(name)}: "
                      f"no Optuna journal ({item.journal.name}) in the folder")
        return
    try:
        study = _optuna_study(item)
    except (KeyError, ValueError, RuntimeError, OSError) as exc:
        page.left_out(f"search history of {code(name)}: the journal holds no readable study {code(name)} "
                      f"({plain(exc)})")
        return
    if len(study.directions) > 1:
        page.left_out(f"search history of {code(name)}: a multi-objective study")
        return
    states = Counter(t.state.name.lower() for t in study.trials)
    page.text(f"Optuna study {code(name)}: {len(study.trials)} trials (" +
              ", ".join(f"{n} {s}" for s, n in sorted(states.items()))
              + f"); direction {study.direction.name.lower()}.")
    complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE and t.value is not None]
    if not complete:
        page.left_out(f"search history of {code(name)}: no completed trial")
        return
    maximize = study.direction == optuna.study.StudyDirection.MAXIMIZE
    path = page.figure_path(f"search-history-{name}")
    confirmed = _confirmed_numbers(study, inputs, item) if inputs is not None else {}
    F.search_history(path, [t.number for t in complete], [t.value for t in complete], maximize,
                     f"{name}: objective per trial", confirmed=confirmed)
    page.figure(path, "search history" + (" (marked: rerun on fresh seeds, with the verdict against the base)"
                                          if confirmed else " (no trial confirmed on fresh seeds)"))
    names = {p for t in complete for p in t.params}  # one pass per parameter, not per (trial, parameter)
    varying = {p for p in names if len({repr(t.params.get(p)) for t in complete}) > 1}
    if len(complete) < 2 or not varying:
        page.left_out(f"parameter importance of {code(name)}: needs >= 2 completed trials whose parameters vary "
                      f"({len(complete)} completed)")
        return
    fitted_on, sampled = _importance_trials(study, complete)
    try:
        importances = optuna.importance.get_param_importances(
            fitted_on, evaluator=optuna.importance.FanovaImportanceEvaluator(seed=0))
    except (ValueError, RuntimeError) as exc:
        page.left_out(f"parameter importance of {code(name)}: {plain(exc)}")
        return
    if not importances:
        page.left_out(f"parameter importance of {code(name)}: no parameter is shared by every completed trial")
        return
    frame = pd.DataFrame({"param": list(importances), "importance": list(importances.values())})
    on = (f"; fitted on a seeded random sample of {IMPORTANCE_MAX_TRIALS:,} of its {len(complete):,} completed "
          "trials" if sampled else "")
    page.table(f"importance-{name}", frame,
               f"{code(name)}: fANOVA importance of each parameter for the objective (sums to 1{on}).")
    path = page.figure_path(f"importance-{name}")
    F.importance_bars(path, importances, f"{name}: parameter importance (fANOVA)")
    page.figure(path, "parameter importance")


def _importance_trials(study, complete: list) -> tuple[object, bool]:
    """The study fANOVA is fitted on, and whether it is a sample: ``study`` itself up to
    ``IMPORTANCE_MAX_TRIALS`` completed trials, else an in-memory study holding a uniform sample of
    that many of ``complete`` (drawn with seed 0, so a report is the same when written again)."""
    import optuna

    if len(complete) <= IMPORTANCE_MAX_TRIALS:
        return study, False
    picked = np.random.default_rng(0).choice(len(complete), size=IMPORTANCE_MAX_TRIALS, replace=False)
    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # no "A new study created" line in the report's output
    try:
        sample = optuna.create_study(direction=study.direction)
    finally:
        optuna.logging.set_verbosity(verbosity)
    sample.add_trials([complete[i] for i in sorted(picked)])
    return sample, True


def _best_config(page: Page, inputs: T.Inputs, item: T.StudyInput, filename: str) -> None:
    name = item.spec.name
    how = item.spec.options.get("objective", "mean")
    page.text(f"Search ranking: read from the rows of {code(name)} with stage=j (final detector J), split=val "
              f"(validation split only) and status=ok; per trial, the {plain(how)} of the validation AUROC over ALL its "
              "(held-out class, seed) units (a trial with a failed or missing unit is not scored on the rest and "
              "ranks last). Test rows are never read here.")
    ranked = T.ranking(inputs, item.spec)
    if ranked.empty:
        page.left_out(f"best config of {code(name)}: no ok validation rows of the final detector")
        return
    page.table(f"ranking-{name}", ranked.head(10), f"{code(name)}: the 10 best trials by the search's objective.")
    confirmed = T.confirmation_of(inputs, name)
    if confirmed is not None:
        _confirmation(page, item, confirmed, filename)
        return
    trial = ranked["trial_id"].iloc[0]
    config = T.best_config(inputs.results, name, trial)
    if config is None:
        page.left_out(f"best config of {code(name)}: trial {code(trial)} has no stored config")
        return
    note = {"study": name, "trial": trial, "confirmed": False,
            "chosen_by": f"the best search trial by the {how} of J's validation AUROC over "
                         f"{ranked['units'].iloc[0]} units; NOT confirmed on fresh seeds (omasgan confirm)"}
    _write_best_config(page.folder / filename, config, note)
    page.text(f"Best trial {code(trial)}: objective {ranked['objective'].iloc[0]:.4f} over {ranked['units'].iloc[0]} "
              f"units, not confirmed on fresh seeds ({code(f'omasgan confirm {item.folder}')} does that). Its "
              f"config, without `data.holdout` and `seed`, is [{filename}]({filename}): "
              f"{code(f'omasgan run --config {filename} --holdout K')} or "
              f"{code(f'omasgan seeds --config {filename}')} reruns it.")


def _write_best_config(path: Path, config: dict, note: dict) -> None:
    """best-config.json: `{"config": ..., "chosen_by": ...}`; every ``--config`` reads the config."""
    path.write_text(json.dumps({"config": config, "chosen_by": note}, indent=2, sort_keys=True, default=float) + "\n")


def _confirmation(page: Page, item: T.StudyInput, confirmed: dict, filename: str) -> None:
    """The confirmation's table and verdict lines, and best-config.json from the confirmed winner."""
    from omasgan.config import OMASGANConfig

    from ..studies.confirmation import confirmation_table

    name = item.spec.name
    page.text(f"Confirmation on fresh seeds {plain(confirmed['seeds'])} (never used by the search), classes "
              f"{plain(confirmed['classes'])}: the base config and the top search trials rerun; each against the base, "
              f"paired by (class, seed). The decision reads J's VALIDATION AUROC on the fresh seeds (level "
              f"{confirmed['alpha']:.3g}: 5% Bonferroni-divided over the candidates; mean difference, stratified "
              "bootstrap interval, Wilcoxon signed-rank p); the test columns are shown, never used.")
    page.table(f"confirmation-{name}", confirmation_table(confirmed), f"{code(name)}: confirmation.")
    for c in confirmed["comparisons"]:
        if "line" in c:
            page.text(f"- {plain(c['split'])}: {plain(c['line'])}")
    config = OMASGANConfig.from_dict(item.spec.base_config).with_overrides(confirmed["winner_overrides"]).to_dict()
    config.get("data", {}).pop("holdout", None)
    config.pop("seed", None)
    note = {"study": name, "trial": confirmed["winner"], "confirmed": True, "seeds": confirmed["seeds"],
            "chosen_by": confirmed["reason"]}
    _write_best_config(page.folder / filename, config, note)
    page.text(f"Confirmed winner {code(confirmed['winner'])}: {plain(confirmed['reason'])}. Its config is "
              f"[{filename}]({filename}) ({code(f'omasgan seeds --config {filename}')} reruns it).")


def section_search(page: Page, inputs: T.Inputs) -> None:
    """5. Per search study: Optuna history and importances from its journal, and the best config."""
    page.heading("5. Search: history, parameter importance and best config")
    searches = [item for item in inputs.studies if item.spec.kind == "search"]
    if not searches:
        page.left_out("no search study")
    for item in searches:
        name = item.spec.name
        page.heading(f"Search study {code(name)}", 3)
        _search_history(page, item, inputs)
        filename = BEST_CONFIG if len(searches) == 1 else f"best-config-{safe_name(name)}.json"
        _best_config(page, inputs, item, filename)


def _lowest_seed_per_class(frame: pd.DataFrame):
    for holdout in sorted(frame["holdout_class"].unique()):
        mine = frame[frame["holdout_class"] == holdout]
        seed = mine["seed"].min()
        mine = mine[mine["seed"] == seed]
        yield holdout, seed, mine[mine["trial_id"] == mine["trial_id"].min()]


def _lowest_seed_runs(inputs: T.Inputs, reported: pd.DataFrame, pairs: list[tuple[str, str]], read):
    """Per OMASGAN source and held-out class, the rows ``read(store, source, trials)`` gives for its
    reported trials, of the lowest seed (and lowest trial id): yields (dataset, source, store, holdout,
    seed, rows)."""
    for dataset, source in _omasgan_pairs(pairs):
        store = inputs.stores.get(source)
        trials = sorted(reported.loc[reported["source"] == source, "trial_id"].unique())
        found = read(store, source, trials) if store else pd.DataFrame()
        found = found[found["dataset"] == dataset] if len(found) else found
        for holdout, seed, mine in (_lowest_seed_per_class(found) if len(found) else []):
            yield dataset, source, store, holdout, seed, mine


def _figure_per_class(page: Page, heading: str, text: str, runs, prefix: str, caption: str, draw,
                      missing: str) -> None:
    """A section of one figure per run of :func:`_lowest_seed_runs` under ``heading`` and ``text``, each
    named ``prefix-DATASET-SOURCE-classN`` and captioned ``caption, class N``: ``draw(path, run)`` plots
    it to ``path``, or returns False when the run has nothing to plot (having said why on the page); the
    line ``missing`` when no run gave a figure."""
    page.heading(heading)
    page.text(text)
    drawn = False
    for run in runs:
        dataset, source, _, holdout, _, _ = run
        path = page.figure_path(f"{prefix}-{dataset}-{source}-class{holdout}")
        if draw(path, run):
            page.figure(path, f"{caption}, class {plain(holdout)}")
            drawn = True
    if not drawn:
        page.left_out(missing)


def section_scores(page: Page, inputs: T.Inputs, reported: pd.DataFrame, pairs: list[tuple[str, str]]) -> None:
    """6. Histograms of J's test scores, normal vs anomalous samples, one per held-out class (lowest seed)."""
    def draw(path: Path, run) -> bool:
        dataset, source, _, holdout, seed, mine = run
        F.score_histogram(path, mine.loc[mine["label"] == 0, "score"].to_numpy(),
                          mine.loc[mine["label"] == 1, "score"].to_numpy(),
                          f"{dataset} / {source}: J test scores, class {holdout} held out, seed {seed}")
        return True

    _figure_per_class(page, "6. Anomaly scores of the test samples",
                      "Test-split anomaly scores of the final detector J (higher = more anomalous) of normal "
                      "(label 0) and anomalous (label 1) samples, as densities, for the run with the lowest seed of "
                      "each class.", _lowest_seed_runs(inputs, reported, pairs, T.read_scores), "scores", "scores",
                      draw, "no per-sample test scores of the final detector in the scores table")


def section_boundary(page: Page, inputs: T.Inputs, reported: pd.DataFrame, pairs: list[tuple[str, str]]) -> None:
    """7. For 2-D data: x, G(z) and B(z) of the run with the lowest seed of each held-out class."""
    def draw(path: Path, run) -> bool:
        dataset, source, store, holdout, seed, mine = run
        arrays = T.load_samples(store, mine["path"].iloc[0])
        x = arrays.get("x")
        if x is None or x.ndim != 2 or x.shape[1] != 2:
            page.left_out(f"{code(dataset)} / {code(source)} class {plain(holdout)}: the samples are not 2-D points")
            return False
        F.boundary_scatter(path, x, arrays.get("generated"), arrays.get("boundary"),
                           f"{dataset} / {source}: class {holdout} held out, seed {seed}")
        return True

    _figure_per_class(page, "7. Boundary samples (2-D data)",
                      "Normal data x, Task 1 samples G(z) and Task 2 boundary samples B(z) of the run with the "
                      "lowest seed of each held-out class (paper Figure 3).",
                      _lowest_seed_runs(inputs, reported, pairs, T.find_samples), "boundary", "x, G(z), B(z)", draw,
                      "no 2-D samples (only 2-D data sets such as synthetic save x, G(z) and B(z))")


def section_tables(page: Page, runs: pd.DataFrame, reported: pd.DataFrame, pairs: list[tuple[str, str]]) -> None:
    """8. AUROC, AUPRC, F1 per class and model (test, mean over seeds); wall time per stage and trial
    (``runs``: one row per stage run, ``Inputs.stage_runs``)."""
    page.heading("8. Metrics and wall time")
    if not pairs:
        page.left_out("metrics: no ok test rows")
    for dataset, source in pairs:
        page.table(f"metrics-{dataset}-{source}", T.metrics_table(T.source_test_rows(reported, dataset, source)),
                   f"{code(dataset)} / {code(source)}: test AUROC, AUPRC and F1 (at the validation threshold), mean "
                   "over seeds; `mean` rows average the classes.")
    stages = T.wall_stage_table(runs)
    if stages.empty:
        page.left_out("wall time: no ok rows with a wall time")
        return
    page.table("wall-time-stages", stages,
               "Wall time per stage (every study, every trial): units, mean and total seconds.")
    page.table("wall-time-trials", T.wall_trial_table(runs),
               "Wall time per trial: total over its stages and units, and per (class, seed) unit.")


# ---- entry points ----------------------------------------------------------------------------------

def _check_out(out: Path) -> None:
    if out.exists() and (not out.is_dir() or (any(out.iterdir())
                                              and not any((out / n).is_file() for n in PAGE_NAMES.values()))):
        raise ConfigError(f"--out {str(out)!r} exists and is not a report folder (no report.md or report.html); "
                          "give a new or empty folder")


def write_report(results_dir: str | Path, out: str | Path | None = None, fmt: str = "md") -> Path:
    """Write the report of every study under ``results_dir``; return the page's path.

    ``out`` defaults to ``<results_dir>/report``; an earlier report there is replaced whole."""
    if fmt not in FORMATS:
        raise ConfigError(f"report format {fmt!r} is not allowed; choose one of: {', '.join(FORMATS)}")
    results_dir = Path(results_dir)
    inputs = T.load_inputs(results_dir)
    out = Path(out) if out is not None else results_dir / "report"
    _check_out(out)

    def build(folder: str) -> None:
        page = Page(Path(folder))
        reported = T.reported_rows(inputs)
        pairs = T.sources(reported)
        section_overview(page, inputs, results_dir)
        section_per_class(page, reported, pairs)
        section_ablation(page, reported, pairs)
        section_seeds(page, reported, pairs, inputs)
        section_sensitivity(page, inputs.results, {i.spec.name: i.spec for i in inputs.studies})
        section_search(page, inputs)
        section_scores(page, inputs, reported, pairs)
        section_boundary(page, inputs, reported, pairs)
        section_tables(page, inputs.stage_runs, reported, pairs)
        section_alarm(page, inputs.alarm_rows)
        (Path(folder) / PAGE_NAMES[fmt]).write_text(page.render(fmt))

    write_folder_atomic(out, build)  # built under a hidden name beside it, then renamed into place
    return out / PAGE_NAMES[fmt]

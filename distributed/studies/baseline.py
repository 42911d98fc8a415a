"""Baseline units (kNN, Isolation Forest, autoencoder) written to a study's Parquet result store, and
the baseline study folder that ``omasgan baseline`` (:mod:`omasgan.distributed.commands.baseline`) fills.

A unit is one (method + settings, data set, protocol, held-out class, seed).  It writes, under the
study folder, the result rows of stage ``baseline`` (one row per split, detector = the method) and the
per-sample scores of validation and test; both file names are fixed per unit (trial id = the
method's settings, e.g. ``knn-k5-mean``), so running a unit again replaces its files.  A unit that
fails writes one row with ``status="error"`` and the message instead, and the study goes on.

A baseline study folder (``study.json`` with kind ``baseline``) is created by its first unit
(:func:`record_unit`) and each further unit is appended to it.  Ray is not needed.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from omasgan.errors import ConfigError, OMASGANError

from ..store.study_folder import STUDY_FILE, StudySpec

if TYPE_CHECKING:  # the heavy imports (torch, scikit-learn, pyarrow) wait until a unit runs
    from omasgan.baselines import BaselineConfig
    from omasgan.config import OMASGANConfig

    from ..store.result_store import ResultStore, UnitKey

BASELINE_STAGE = "baseline"
NO_HOLDOUT = -1
"""The ``holdout_class`` partition value of an ``ood`` unit (it has no held-out class)."""


def unit_key(study: str, config: OMASGANConfig, baseline: BaselineConfig, *, study_kind: str = "baseline",
             trial_id: str | None = None) -> UnitKey:
    """The result store key of one baseline unit; ``trial_id`` defaults to ``baseline.tag()``."""
    from ..store.result_store import UnitKey

    holdout = config.data.holdout if config.data.protocol != "ood" and config.data.holdout is not None else NO_HOLDOUT
    return UnitKey(study, study_kind, trial_id or baseline.tag(), config.data.dataset, int(holdout), int(config.seed),
                   method=baseline.method)


def run_baseline_unit(store_root: str, study: str, config: OMASGANConfig, baseline: BaselineConfig, *,
                      study_kind: str = "baseline", trial_id: str | None = None, device: str = "cpu",
                      write_scores: bool = True, scores: str = "test",
                      raise_system_errors: bool = False) -> dict[str, Any]:
    """Load the splits of ``config``'s data / protocol / holdout, evaluate ``baseline`` with seed
    ``config.seed`` and write its rows and scores to the result store at ``store_root``; ``scores``
    (``--scores``: none, test or all) says which splits' per-sample scores are kept.

    Never raises for a failing unit (bad data, a diverged autoencoder, ...): it writes an error row
    (and removes the unit's stale scores) and returns ``status="error"``.  With
    ``raise_system_errors`` (a study's Ray task), only unit errors (``units.UNIT_ERRORS``) are
    recorded so; any other exception propagates and no row is written.  Returns a summary:
    status, method, trial_id, dataset, holdout, seed, val_auroc, test_auroc, metrics, wall_time_s,
    description (the splits) and error.
    """
    from omasgan.baselines import evaluate_baseline
    from omasgan.run import load_run_data, resolve_device, validate_run

    from ..store.result_store import ResultStore, score_splits

    store = ResultStore(store_root)
    kept = score_splits(scores, final=True) if write_scores else ()
    key = unit_key(study, config, baseline, study_kind=study_kind, trial_id=trial_id)
    summary: dict[str, Any] = {"method": baseline.method, "trial_id": key.trial_id, "dataset": key.dataset,
                               "holdout": key.holdout_class, "seed": key.seed, "val_auroc": None, "test_auroc": None,
                               "metrics": {}, "wall_time_s": None, "description": None, "error": None}
    try:
        import torch

        torch.set_num_threads(config.threads)  # the autoencoder trains with the unit's thread count
        torch_device = resolve_device(device)
        validate_run(config)
        splits = load_run_data(config, torch_device)
        summary["description"] = splits.description
        evaluation = evaluate_baseline(baseline, splits, config.seed, torch_device)
        labels = {"val": splits.val_y.cpu().numpy().astype(int), "test": splits.test_y.cpu().numpy().astype(int)}
        if kept:
            store.write_scores(key, evaluation.detector, {s: evaluation.scores[s] for s in kept},
                               {s: labels[s] for s in kept})
        store.write_stage_rows(
            key, BASELINE_STAGE, config=config, device=str(torch_device), wall_time_s=evaluation.wall_time_s,
            evaluation={"detector": evaluation.detector, "threshold": evaluation.threshold,
                        "metrics": evaluation.metrics},
        )
    except Exception as exc:  # noqa: BLE001 - a failing unit is recorded, the study goes on
        if raise_system_errors:
            from .units import is_unit_error

            if not is_unit_error(exc):
                raise
        message = str(exc) if isinstance(exc, OMASGANError) else f"{type(exc).__name__}: {exc}"
        store.write_stage_rows(key, BASELINE_STAGE, config=config, status="error", error=message, device=device)
        store.clear_scores(key, key.method)
        return {**summary, "status": "error", "error": message}
    return {**summary, "status": "ok", "metrics": evaluation.metrics, "wall_time_s": evaluation.wall_time_s,
            "val_auroc": evaluation.metrics["val"]["auroc"], "test_auroc": evaluation.metrics["test"]["auroc"]}


# ---- the study folder -----------------------------------------------------------------------------
def check_study_folder(folder: Path, dataset: str) -> StudySpec | None:
    """Raise a one-line ConfigError unless ``folder`` can take a baseline unit of ``dataset``: a
    writable baseline study folder of that data set, an empty folder, or a new path under a
    writable folder.  Returns the folder's StudySpec, or None when there is none yet."""
    if folder.exists():
        if not folder.is_dir():
            raise ConfigError(f"--out {str(folder)!r} is a file, not a folder; give a study folder")
        if not os.access(folder, os.W_OK | os.X_OK):
            raise ConfigError(f"--out {str(folder)!r} is not writable; give a folder you can write to")
        if not (folder / STUDY_FILE).is_file():
            if any(folder.iterdir()):
                raise ConfigError(f"--out {str(folder)!r} holds files but no {STUDY_FILE}; give a new or empty "
                                  f"folder, or a baseline study folder")
            return None
        spec = StudySpec.read(folder)
        if spec.kind != "baseline":
            raise ConfigError(f"--out {str(folder)!r} holds a {spec.kind!r} study; give a baseline study folder "
                              f"or a new folder")
        if spec.dataset != dataset:
            raise ConfigError(f"--out {str(folder)!r} is a baseline study of {spec.dataset!r}, not {dataset!r}; "
                              f"give a new folder for {dataset!r}")
        return spec
    parent = folder.parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir() or not os.access(parent, os.W_OK | os.X_OK):
        raise ConfigError(f"--out {str(folder)!r} cannot be created: {str(parent)!r} is not a writable folder")
    return None


def record_unit(folder: Path, spec: StudySpec | None, config: OMASGANConfig, baseline: BaselineConfig,
                trial_id: str) -> StudySpec:
    """Write ``study.json``: a new baseline StudySpec, or ``spec`` with this unit's class, seed,
    method and settings added (``options["baselines"]`` maps trial id -> baseline settings)."""
    holdout = unit_key(folder.name, config, baseline).holdout_class
    if spec is None:
        spec = StudySpec(name=folder.name, kind="baseline", dataset=config.data.dataset, classes=[holdout],
                         seeds=[int(config.seed)], base_config=config.to_dict(), last_stage=BASELINE_STAGE,
                         options={"protocol": config.data.protocol, "methods": [], "baselines": {}})
    if holdout not in spec.classes:
        spec.classes = sorted([*spec.classes, holdout])
    if int(config.seed) not in spec.seeds:
        spec.seeds = sorted([*spec.seeds, int(config.seed)])
    methods = spec.options.setdefault("methods", [])
    if baseline.method not in methods:
        methods.append(baseline.method)
    spec.options.setdefault("baselines", {})[trial_id] = baseline.to_dict()
    spec.write(folder)
    return spec

"""``omasgan baseline``: one classical baseline unit (kNN, Isolation Forest, autoencoder) scored into a
baseline study folder (:mod:`omasgan.distributed.studies.baseline` runs and records it).

    omasgan baseline --method knn --dataset digits --holdout 3 --seed 0 --out studies/baselines

creates the study folder (``study.json`` with kind ``baseline``) when it is missing and appends the
unit to it otherwise.  Ray is not needed.  Building the parser imports no torch, scikit-learn,
pyarrow or pandas.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

from omasgan.errors import OMASGANError
from omasgan.vocabulary import SCORE_CHOICES

from ..store.study_folder import StudySpec, result_root
from ..studies.baseline import check_study_folder, record_unit, run_baseline_unit
from .subcommand import add_subcommand

if TYPE_CHECKING:  # the heavy imports (torch, scikit-learn) wait until a unit runs
    from omasgan.baselines import BaselineConfig
    from omasgan.config import OMASGANConfig

METHOD_NAMES = ("knn", "iforest", "ae")
"""omasgan.baselines.BASELINE_METHODS, repeated here so that building the parser stays light."""
SETTING_NAMES = ("k", "knn_score", "n_estimators", "max_samples", "epochs", "lr", "batch_size", "latent_dim", "width")
"""The fields of omasgan.baselines.BaselineConfig other than ``method`` (the --set baseline.KEY keys)."""


def split_set_options(items: list[str] | None) -> tuple[list[str], list[str]]:
    """``--set`` items for the baseline (``baseline.key=value``) and for the OMASGAN config (the rest)."""
    baseline, other = [], []
    for item in items or []:
        (baseline if item.strip().startswith("baseline.") else other).append(item)
    return baseline, other


def format_baseline_table(summary: dict[str, Any]) -> str:
    """One row per split: the metrics of the baseline and its wall time."""
    from omasgan.vocabulary import METRIC_NAMES

    header = f"{'method':<9}{'split':<6}" + "".join(f"{c:>10}" for c in METRIC_NAMES) + f"{'seconds':>10}"
    lines = [header, "-" * len(header)]
    for split, values in summary["metrics"].items():
        lines.append(f"{summary['method']:<9}{split:<6}" + "".join(f"{values[c]:>10.4f}" for c in METRIC_NAMES)
                     + f"{summary['wall_time_s']:>10.2f}")
    return "\n".join(lines)


def prepare_baseline(args: argparse.Namespace) -> tuple[OMASGANConfig, BaselineConfig, Path, StudySpec | None]:
    """Every check of ``omasgan baseline`` that needs no data loading or training; one-line
    ConfigError / DataError on bad input."""
    from omasgan.baselines import BaselineConfig
    from omasgan.cli import build_config
    from omasgan.run import resolve_device, validate_run

    baseline_sets, config_sets = split_set_options(args.set)
    baseline = BaselineConfig(method=args.method).with_overrides(baseline_sets)
    config = build_config(argparse.Namespace(**{**vars(args), "set": config_sets}))
    validate_run(config)
    resolve_device(args.device)
    folder = Path(args.out)
    spec = check_study_folder(folder, config.data.dataset)
    return config, baseline, folder, spec


def cmd_baseline(args: argparse.Namespace) -> int:
    """Check, record the unit in the study folder, run it, and print its table (1 when the unit failed)."""
    config, baseline, folder, spec = prepare_baseline(args)
    trial_id = args.trial_id or baseline.tag()
    spec = record_unit(folder, spec, config, baseline, trial_id)
    d = config.data
    print(f"omasgan baseline: {baseline.method} ({trial_id}) {d.dataset} {d.protocol} holdout={d.holdout} "
          f"seed={config.seed} device={args.device}", flush=True)
    summary = run_baseline_unit(result_root(folder), spec.name, config, baseline, trial_id=trial_id,
                                device=args.device, scores=args.scores)
    if summary["status"] != "ok":
        print(f"omasgan baseline: error: {summary['error']} (an error row was written to {folder}/results)",
              file=sys.stderr)
        return 1
    print(summary["description"])
    print(format_baseline_table(summary))
    print(f"wrote {folder}/ (results/ and scores/ of study {spec.name!r})")
    return 0


def add_baseline_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add ``omasgan baseline`` to the ``omasgan`` subcommands."""
    from omasgan.cli import add_config_options

    parser = add_subcommand(
        sub, "baseline", cmd_baseline, help="score a classical baseline (knn, iforest, ae) into a study folder",
        description="Fit a kNN, Isolation Forest or autoencoder baseline on the normal training split, choose "
        "the max-F1 threshold on validation, score test once, and write the rows and per-sample scores to the "
        "study folder --out (created as a 'baseline' study when missing; a rerun of the same unit replaces its "
        "files). Baseline settings: --set baseline.KEY=VALUE with KEY among: "
        + ", ".join(SETTING_NAMES) + ".")
    parser.add_argument("--method", required=True, metavar="METHOD", help=f"the baseline: {', '.join(METHOD_NAMES)}")
    add_config_options(parser)
    parser.add_argument("--out", required=True,
                        help="the study folder (created when missing, else the unit is appended)")
    parser.add_argument("--trial-id", help="the unit's trial id in the store (default: the method and its settings)")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (the autoencoder trains there)")
    parser.add_argument("--scores", choices=SCORE_CHOICES, default="test",
                        help="per-sample scores to keep: none, test (the test split, default) or all (val and test)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m omasgan.distributed.commands.baseline ARGS``: the baseline command on its own."""
    parser = argparse.ArgumentParser(prog="omasgan")
    add_baseline_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["baseline", *(sys.argv[1:] if argv is None else argv)])
    try:
        return int(args.handler(args) or 0)
    except OMASGANError as exc:
        print(f"omasgan: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

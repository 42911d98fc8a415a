"""The ``omasgan`` command line.

    omasgan run     train Task 1 -> 2 -> 3 -> J once and write a run folder
    omasgan score   anomaly scores of new data with a saved model
    omasgan config  print the resolved config (defaults + file + overrides) as YAML or JSON

Further subcommands (the Ray/Optuna studies) register themselves through the ``omasgan.commands``
entry-point group, so this module never imports Ray or Optuna.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from importlib import metadata
from pathlib import Path
from typing import Any, Sequence

from . import __version__
from .config import DATASET_NAMES, PROTOCOL_NAMES, OMASGANConfig, default_config, read_config_file
from .errors import OMASGANError

STAGE_TITLES = {"task1": "Task 1 (GAN)", "task2": "Task 2 (boundary B)", "task3": "Task 3 (G', C)", "j": "J (final)"}


def build_config(args: argparse.Namespace) -> OMASGANConfig:
    """defaults of the data set <- --config file <- command-line flags <- --set overrides."""
    file_config: dict[str, Any] = read_config_file(args.config) if getattr(args, "config", None) else {}
    dataset = args.dataset or file_config.get("data", {}).get("dataset") or "digits"
    config = default_config(dataset)
    if file_config:
        config = config.merged(file_config)
    flags: dict[str, Any] = {"data.dataset": dataset}
    for flag, key in (
        ("protocol", "data.protocol"),
        ("holdout", "data.holdout"),
        ("data_root", "data.data_root"),
        ("ood_dataset", "data.ood_dataset"),
        ("tabular_path", "data.tabular_path"),
        ("label_column", "data.label_column"),
        ("max_train", "data.max_train"),
        ("seed", "seed"),
        ("threads", "threads"),
    ):
        value = getattr(args, flag, None)
        if value is not None:
            flags[key] = value
    if isinstance(flags.get("data.label_column"), str) and flags["data.label_column"].lstrip("-").isdigit():
        flags["data.label_column"] = int(flags["data.label_column"])
    if getattr(args, "download", False):
        flags["data.download"] = True
    config = config.with_overrides(flags)
    return config.with_overrides(list(getattr(args, "set", None) or []))


def add_config_options(parser: argparse.ArgumentParser) -> None:
    """The options that build a config (``build_config``): data set, protocol, held-out class, seed,
    --config, --set, --data-root, --threads, ...; shared by ``omasgan run`` and the study commands."""
    parser.add_argument("--dataset", choices=DATASET_NAMES, help="data set (default: the config file's, else digits)")
    parser.add_argument("--protocol", choices=PROTOCOL_NAMES, help="loo: all classes but --holdout are normal; "
                        "occ: only --holdout is normal; ood: all of --dataset is normal, --ood-dataset is the anomaly")
    parser.add_argument("--holdout", type=int, help="the held-out class (anomaly for loo, normal for occ); default 0")
    parser.add_argument("--seed", type=int, help="training seed (the data split depends only on data.split_seed)")
    parser.add_argument("--config", help="a JSON or YAML file with a full or partial nested config")
    parser.add_argument("--set", action="append", metavar="KEY=VALUE",
                        help="override one config value with a dotted key, e.g. --set task2.mu=0.2 (repeatable)")
    parser.add_argument("--data-root", help="folder holding the image data sets in torchvision's layout "
                        "(e.g. DIR/MNIST/raw/train-images-idx3-ubyte); default ./data")
    parser.add_argument("--download", action="store_true", help="download a missing image data set with torchvision")
    parser.add_argument("--ood-dataset", choices=DATASET_NAMES, help="the anomaly data set of --protocol ood")
    parser.add_argument("--tabular-path", help="a .parquet, .csv, .npy or .npz file for --dataset tabular")
    parser.add_argument("--label-column", help="label column of --tabular-path (name, or index for .npy)")
    parser.add_argument("--max-train", type=int, help="subsample the training split to at most this many samples")
    parser.add_argument("--threads", type=int, help="torch CPU threads of every stage (config key `threads`, "
                        "default 1); part of a run's identity: another count gives other numbers")


class EpochProgress:
    """A tqdm bar per stage (epochs, with the epoch's mean losses), on stderr."""

    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled
        self.bar = None
        self.stage = None

    def __call__(self, stage: str, epoch: int, epochs: int, losses: dict[str, float]) -> None:
        if not self.enabled:
            return
        from tqdm import tqdm

        if stage != self.stage:
            self.close()
            self.stage = stage
            self.bar = tqdm(total=epochs, desc=STAGE_TITLES.get(stage, stage), unit="epoch", file=sys.stderr,
                            dynamic_ncols=True, leave=True)
        self.bar.set_postfix({k: f"{v:.4g}" for k, v in losses.items()}, refresh=False)
        self.bar.update(1)
        if epoch == epochs:
            self.close()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
            self.stage = None


def format_metrics_table(metrics: dict[str, dict[str, dict[str, float]]], wall: dict[str, float]) -> str:
    """A plain-text table: one row per (detector, split)."""
    stage_of = {"task1": "task1", "task3": "task3", "final": "j"}
    columns = ("auroc", "auprc", "f1", "precision", "recall", "accuracy")
    header = f"{'detector':<9}{'split':<6}" + "".join(f"{c:>10}" for c in columns) + f"{'train s':>10}"
    lines = [header, "-" * len(header)]
    for detector, by_split in metrics.items():
        for split, values in by_split.items():
            seconds = wall.get(stage_of.get(detector, detector), float("nan"))
            row = f"{detector:<9}{split:<6}" + "".join(f"{values[c]:>10.4f}" for c in columns)
            lines.append(row + f"{seconds:>10.1f}")
    lines.append(f"Task 2 (boundary model) trained in {wall.get('task2', float('nan')):.1f} s")
    return "\n".join(lines)


def alarm_lines(alarms: dict[str, dict[str, float]], threshold: float) -> list[str]:
    """The shortcut alarm's figures (one line per stage that has them), then one WARNING line when
    ink or contrast separates B(z) from x with max(AUROC, 1 - AUROC) above ``threshold``."""
    from .alarm import exceeded

    names = {"ink_auroc": "ink", "contrast_auroc": "contrast", "nn_auroc": "nearest-neighbour distance"}
    lines, flagged = [], []
    for stage, alarm in alarms.items():
        which = "Task 2's B(z)" if stage == "task2" else "J's refined B_r(z)"
        parts = [f"{names[k]} {alarm[k]:.3f}" for k in names if k in alarm]
        if parts:
            lines.append(f"shortcut alarm: AUROC of a trivial statistic separating {which} from x "
                         f"(0.5 = none; > 0.5: B higher): " + ", ".join(parts))
        if "ink_spearman" in alarm:
            lines.append(f"final score vs ink (Spearman, validation samples): {alarm['ink_spearman']:+.3f}")
        flagged += [f"{names[k]} ({stage}: {alarm[k]:.3f})" for k in exceeded(alarm, threshold)]
    if flagged:
        lines.append(f"WARNING: shortcut: {', '.join(flagged)} separate(s) B(z) from the data with "
                     f"max(AUROC, 1 - AUROC) > {threshold:g}; the final detector may learn that statistic, "
                     "not the boundary")
    return lines


def _threshold(text: str) -> float:
    value = float(text)
    if not 0.5 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"{text!r} is out of range; it must lie in [0.5, 1]")
    return value


def default_out_folder(config: OMASGANConfig) -> Path:
    d = config.data
    what = f"ood-{d.ood_dataset}" if d.protocol == "ood" else f"{d.protocol}{d.holdout}"
    return Path("runs") / f"{d.dataset}-{what}-seed{config.seed}-{time.strftime('%Y%m%d-%H%M%S')}"


def cmd_run(args: argparse.Namespace) -> int:
    from .run import execute_run

    config = build_config(args)
    out = Path(args.out) if args.out else default_out_folder(config)
    progress = EpochProgress(enabled=not args.quiet)
    print(f"omasgan run: {config.data.dataset} {config.data.protocol} holdout={config.data.holdout} "
          f"seed={config.seed} threads={config.threads} divergence={config.divergence.name} network={config.network.kind} "
          f"device={args.device}", flush=True)
    try:
        outcome = execute_run(config, out, device=args.device, on_epoch=progress)
    finally:
        progress.close()
    print(outcome.splits.description)
    print(format_metrics_table(outcome.result.metrics, outcome.result.wall_time_s))
    for line in alarm_lines(outcome.result.alarms, args.alarm_threshold):
        print(line)
    print(f"wrote {outcome.folder}/ (metrics.json, checkpoints, model.json"
          + (", boundary.png)" if (outcome.folder / "boundary.png").exists() else ")"))
    return 0


def _read_input(path: Path, label_column: str | None):
    import numpy as np

    from .errors import DataError

    if not path.is_file():
        raise DataError(f"input file {str(path)!r} does not exist")
    suffix = path.suffix.lower()
    if suffix == ".npy":
        return np.load(path, allow_pickle=False)
    if suffix == ".npz":
        with np.load(path, allow_pickle=False) as archive:
            key = "X" if "X" in archive.files else archive.files[0]
            return archive[key]
    if suffix in (".csv", ".parquet", ".pq"):
        import pandas as pd

        frame = pd.read_csv(path) if suffix == ".csv" else pd.read_parquet(path)
        if label_column is not None:
            if label_column not in frame.columns:
                raise DataError(f"label column {label_column!r} is not in {path}; columns: {', '.join(map(str, frame.columns))}")
            frame = frame.drop(columns=[label_column])
        return frame.to_numpy(dtype=float)
    raise DataError(f"input file {str(path)!r} must be .npy, .npz, .csv or .parquet")


def cmd_score(args: argparse.Namespace) -> int:
    import numpy as np

    from .model_folder import SavedModel
    from .run import resolve_device

    model = SavedModel(args.model, resolve_device(args.device))
    raw = _read_input(Path(args.input), args.label_column)
    scores = model.scores(raw)
    labels = (scores >= model.threshold).astype(int)
    out = Path(args.output) if args.output else Path(args.input).with_suffix(".scores.csv")
    table = np.column_stack([np.arange(len(scores)), scores, labels])
    np.savetxt(out, table, delimiter=",", header="index,score,is_anomaly", comments="", fmt=["%d", "%.8g", "%d"])
    print(f"scored {len(scores)} samples with {args.model} (threshold {model.threshold:.6g}): "
          f"{int(labels.sum())} flagged as anomalies; wrote {out}")
    return 0


def cmd_config(args: argparse.Namespace) -> int:
    config = build_config(args)
    if args.format == "json":
        print(json.dumps(config.to_dict(), indent=2))
    else:
        import yaml

        print(yaml.safe_dump(config.to_dict(), sort_keys=False), end="")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="omasgan",
        description="OMASGAN anomaly detection: train the four stages (Task 1 GAN, Task 2 boundary model, "
        "Task 3 retraining, final discriminator J), score data, and run studies.",
    )
    parser.add_argument("--version", action="version", version=f"omasgan {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    run = sub.add_parser("run", help="train Task 1 -> 2 -> 3 -> J once and evaluate every detector",
                         description="Train one OMASGAN pipeline, print per-stage val/test metrics and write "
                         "checkpoints, metrics.json, model.json and (for 2-D data) boundary.png to --out.")
    add_config_options(run)
    run.add_argument("--out", help="output folder (must not exist or be empty); default runs/<dataset>-<protocol>...")
    run.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (default cpu)")
    run.add_argument("--quiet", action="store_true", help="no progress bars")
    run.add_argument("--alarm-threshold", type=_threshold, default=0.9,
                     help="warn when a trivial statistic (ink, contrast, nearest-neighbour distance) separates "
                     "Task 2's B(z) from the data with max(AUROC, 1 - AUROC) above this (default 0.9)")
    run.set_defaults(handler=cmd_run)

    score = sub.add_parser("score", help="anomaly scores of new data with a saved model",
                           description="Score samples with a model folder (from `omasgan run --out` or "
                           "OMASGANDetector.save). Input values are in the data set's raw units (e.g. 0-255 "
                           "pixels); higher score = more anomalous.")
    score.add_argument("--model", required=True, help="a model folder (holds model.json and j.pt)")
    score.add_argument("--input", required=True, help="samples as .npy/.npz (N, ...) or .csv/.parquet (one row each)")
    score.add_argument("--output", help="CSV to write (index,score,is_anomaly); default INPUT.scores.csv")
    score.add_argument("--label-column", help="a column of a CSV/Parquet input to drop before scoring")
    score.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    score.set_defaults(handler=cmd_score)

    show = sub.add_parser("config", help="print the resolved config (defaults <- --config <- flags <- --set)")
    add_config_options(show)
    show.add_argument("--format", choices=("yaml", "json"), default="yaml")
    show.set_defaults(handler=cmd_config)

    for entry in metadata.entry_points(group="omasgan.commands"):
        entry.load()(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "handler", None):
        parser.print_help()
        return 2
    try:
        return int(args.handler(args) or 0)
    except OMASGANError as exc:
        print(f"omasgan: error: {exc}", file=sys.stderr)
        return exc.exit_status
    except KeyboardInterrupt:
        print("omasgan: interrupted; nothing was written to the output folder", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

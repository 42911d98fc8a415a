"""One OMASGAN run end to end: validate, load data, train Task 1 -> 2 -> 3 -> J, write the folder.

The output folder is built under a temporary sibling name and renamed into place only when every
file is written, so a failed run (bad input, a NaN loss, Ctrl-C) leaves nothing half-written:

    config.json          the resolved config
    metrics.json         per-detector val/test metrics, thresholds, wall time and loss history
    task1.pt task2.pt task3.pt j.pt     stage checkpoints (omasgan.checkpoint)
    model.json           what `omasgan score --model` reads (J, threshold, input transform)
    scores.npz           per-sample anomaly scores of each detector on val and test
    boundary.png         for 2-D data: x, G(z) and B(z) (the paper's Figure 3)
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .checkpoint import save_stage, stage_payload
from .config import OMASGANConfig
from .data import DataSplits, load_splits, validate_data_request
from .errors import ConfigError
from .model_folder import atomic_folder, atomic_write_text, check_new_folder, write_model_json
from .networks import check_network_shape
from .pipeline import PipelineResult, metrics_document, run_pipeline
from .stages.common import EpochCallback, StageResult, latent, samples_without_graph
from .stages.feature_space import check_feature_space
from .stages.union import boundary_sampler


def resolve_device(name: str) -> torch.device:
    """``cpu``, ``cuda`` or ``cuda:N``; a CUDA device that is not there is an error, not a fallback."""
    if name == "cpu":
        return torch.device("cpu")
    if name == "cuda" or name.startswith("cuda:"):
        if not torch.cuda.is_available():
            raise ConfigError(f"device {name!r} was asked for but CUDA is not available here; use --device cpu")
        device = torch.device(name)
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ConfigError(f"device {name!r} does not exist; this machine has {torch.cuda.device_count()} GPU(s)")
        return device
    raise ConfigError(f"device {name!r} is not allowed; choose cpu, cuda or cuda:N")


def validate_run(config: OMASGANConfig) -> None:
    """Every check that needs no training: the data request and the network/shape fit."""
    d = config.data
    shape = validate_data_request(
        d.dataset, d.protocol, d.holdout, data_root=d.data_root, ood_dataset=d.ood_dataset, download=d.download,
        tabular_path=d.tabular_path, label_column=d.label_column, image_size=d.image_size,
    )
    check_network_shape(config.network.kind, shape)


def load_run_data(config: OMASGANConfig, device: torch.device) -> DataSplits:
    d = config.data
    splits = load_splits(
        d.dataset, d.protocol, d.holdout, data_root=d.data_root, split_seed=d.split_seed,
        val_fraction=d.val_fraction, val_anomaly_fraction=d.val_anomaly_fraction, ood_dataset=d.ood_dataset,
        download=d.download, max_train=d.max_train, tabular_path=d.tabular_path, label_column=d.label_column,
        synthetic_n_per_class=d.synthetic_n_per_class, image_size=d.image_size, device=device,
    )
    check_network_shape(config.network.kind, splits.sample_shape)
    check_feature_space(config, splits.sample_shape, splits.is_image)
    return splits


@dataclass
class RunOutcome:
    folder: Path
    result: PipelineResult
    splits: DataSplits
    document: dict[str, Any]


def execute_run(
    config: OMASGANConfig,
    out: str | Path,
    *,
    device: str = "cpu",
    on_epoch: EpochCallback | None = None,
    on_stage_end=None,
) -> RunOutcome:
    """Validate, train, evaluate and write the run folder ``out`` atomically (see module docstring)."""
    out = Path(out)
    torch_device = resolve_device(device)
    check_new_folder(out)
    validate_run(config)
    splits = load_run_data(config, torch_device)

    with atomic_folder(out) as staging:
        atomic_write_text(staging / "config.json", json.dumps(config.to_dict(), indent=2))

        def stage_end(stage: str, result: StageResult, evaluation) -> None:
            metrics = evaluation.metrics if evaluation is not None else {}
            save_stage(staging / f"{stage}.pt", stage_payload(result, config, splits.sample_shape, splits.is_image, metrics))
            if on_stage_end is not None:
                on_stage_end(stage, result, evaluation)

        result = run_pipeline(config, splits, on_epoch=on_epoch, on_stage_end=stage_end)
        document = metrics_document(result, splits, {"device": str(torch_device)})
        atomic_write_text(staging / "metrics.json", json.dumps(document, indent=2, default=_json_default))
        final = result.evaluations["j"]
        write_model_json(
            staging, final.threshold, splits.input_transform,
            {"dataset": config.data.dataset, "protocol": config.data.protocol, "holdout": config.data.holdout,
             "score": final.score_spec},
        )
        np.savez_compressed(
            staging / "scores.npz",
            **{f"{e.detector}_{split}": s for e in result.evaluations.values() for split, s in e.scores.items()},
            val_y=splits.val_y.cpu().numpy(), test_y=splits.test_y.cpu().numpy(),
        )
        if splits.sample_shape == (2,):
            _plot_boundary(result, splits, staging / "boundary.png")
    return RunOutcome(out, result, splits, document)


def _plot_boundary(result: PipelineResult, splits: DataSplits, path: Path) -> None:
    from .plots import plot_boundary_samples

    latent_dim = result.config.network.latent_dim
    device = splits.train_x.device
    g = samples_without_graph(result.stages["task1"].modules["generator"].eval(), latent(2000, latent_dim, device))
    b = samples_without_graph(boundary_sampler(result.stages["task2"].modules).eval(), latent(2000, latent_dim, device))
    plot_boundary_samples(
        splits.train_x.cpu().numpy(), g.cpu().numpy(), b.cpu().numpy(), path, title=splits.description.split(":")[0]
    )


def _json_default(value: Any) -> Any:
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    if isinstance(value, tuple):
        return list(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")

"""A saved OMASGAN model: a folder that ``omasgan score`` and ``OMASGANDetector.load`` read.

    model.json   {"format": "omasgan-model/1", "checkpoint": "j.pt", "threshold": t,
                  "transform": {...}, "detector": "final", "score": {...}, ...}
    j.pt         the final discriminator J (a stage checkpoint, see :mod:`omasgan.checkpoint`); for
                 ``j.score`` = critic | fusion it also holds Task 3's critic

``score`` is how the final detector scores (:class:`omasgan.final_score.FinalScore`: its mode and, for
fusion, the standardisation fitted on the validation normals); a model.json without it scores
with J's logit.

``omasgan run`` writes this layout (plus the other stages' checkpoints and metrics.json); the
detector API writes the same layout.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import torch
from torch import nn

from .atomic_write import write_file_atomic
from .checkpoint import CheckpointError, load_stage
from .config import OMASGANConfig
from .errors import ConfigError, OMASGANError
from .final_score import FinalScore
from .transform import InputTransform

MODEL_FORMAT = "omasgan-model/1"


def atomic_write_text(path: str | Path, text: str) -> None:
    """Replace ``path`` with ``text`` (UTF-8) atomically (:func:`omasgan.atomic_write.write_file_atomic`)."""
    write_file_atomic(path, lambda handle: handle.write(text.encode()))


def check_new_folder(path: Path) -> None:
    """A folder to be written must not exist, or be empty, and its parent must be writable."""
    if path.exists() and (not path.is_dir() or any(path.iterdir())):
        raise ConfigError(f"output folder {str(path)!r} already exists and is not empty; choose another one")
    parent = path.parent if str(path.parent) else Path(".")
    parent.mkdir(parents=True, exist_ok=True)
    if not os.access(parent, os.W_OK):
        raise ConfigError(f"output folder's parent {str(parent)!r} is not writable")


@contextmanager
def atomic_folder(path: str | Path) -> Iterator[Path]:
    """Yield a staging folder beside ``path``; on success it is renamed to ``path``, on any error
    (or interrupt) it is removed, so ``path`` never holds half of what was meant to be written."""
    path = Path(path)
    check_new_folder(path)
    staging = Path(tempfile.mkdtemp(prefix=f".{path.name}.partial-", dir=path.parent if str(path.parent) else "."))
    try:
        yield staging
        if path.exists():
            path.rmdir()
        staging.rename(path)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def write_model_json(folder: Path, threshold: float, transform: InputTransform, extra: dict[str, Any] | None = None) -> None:
    document = {
        "format": MODEL_FORMAT,
        "checkpoint": "j.pt",
        "detector": "final",
        "threshold": float(threshold),
        "transform": transform.to_dict(),
        **(extra or {}),
    }
    atomic_write_text(folder / "model.json", json.dumps(document, indent=2))


class SavedModel:
    """A model folder loaded for scoring: J (and its final score), its config, threshold and input transform."""

    def __init__(self, folder: str | Path, device: str | torch.device = "cpu") -> None:
        folder = Path(folder)
        manifest = folder / "model.json"
        if not manifest.is_file():
            raise OMASGANError(
                f"{str(folder)!r} is not an OMASGAN model folder (no model.json); pass the --out folder of "
                "`omasgan run` or a folder written by OMASGANDetector.save"
            )
        document = json.loads(manifest.read_text())
        if document.get("format") != MODEL_FORMAT:
            raise CheckpointError(f"{str(manifest)!r} is not an {MODEL_FORMAT} file")
        result, payload = load_stage(folder / document["checkpoint"], device)
        self.folder = folder
        self.config = OMASGANConfig.from_dict(payload["config"])
        self.detector: nn.Module = result.modules["detector"]
        try:
            self.scorer = FinalScore.from_modules(self.config, result.modules, document.get("score"))
        except KeyError as exc:
            raise CheckpointError(f"{str(manifest)!r}: {exc.args[0]}") from None
        self.threshold = float(document["threshold"])
        self.transform = InputTransform.from_dict(document["transform"])
        self.document = document
        self.device = torch.device(device)

    def scores(self, raw: Any) -> np.ndarray:
        """Anomaly scores j(x) (higher = more anomalous) of raw samples."""
        x = self.transform.apply(raw).to(self.device)
        return self.scorer(x).cpu().numpy()

    def predict(self, raw: Any) -> np.ndarray:
        return (self.scores(raw) >= self.threshold).astype(np.int64)

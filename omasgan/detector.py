"""``OMASGANDetector``: OMASGAN on your own data, with scikit-learn conventions.

    detector = OMASGANDetector().fit(X_normal)          # only normal samples
    scores = detector.decision_function(X_new)          # higher = more anomalous (j(x), eq. 6, or j.score)
    labels = detector.predict(X_new)                    # 1 = anomaly, 0 = normal
    detector.save("model/"); OMASGANDetector.load("model/")

Vectors (N, D) are standardised per feature with the statistics of the fitted normal data; images
(N, C, H, W) (or (N, H, W)) are mapped linearly from the fitted data's [min, max] to [-1, 1].
The threshold is chosen on a validation set: the max-F1 threshold when labelled anomalies are given
(``X_val``, ``y_val``), else the (1 - contamination) quantile of held-out normal scores.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from .checkpoint import save_stage, stage_payload
from .config import OMASGANConfig, default_config
from .data.splits import DataSplits
from .errors import ConfigError, DataError
from .metrics import max_f1_threshold
from .model_folder import SavedModel, atomic_folder, write_model_json
from .networks import check_network_shape
from .stages.feature_space import check_feature_space
from .final_score import FinalScore
from .stage_runner import run_stages
from .transform import InputTransform


def _default_for_shape(shape: tuple[int, ...]) -> OMASGANConfig:
    if len(shape) == 1:
        return default_config("synthetic" if shape[0] <= 4 else "digits")
    if shape[1:] == (28, 28):
        return default_config("mnist")
    if shape[1:] == (32, 32):
        return default_config("cifar10")
    return default_config("digits")  # an mlp on the flattened image


def _as_array(X: Any, name: str) -> np.ndarray:
    array = X.detach().cpu().numpy() if isinstance(X, torch.Tensor) else np.asarray(X)
    if array.dtype.kind not in "biuf":
        raise DataError(f"{name} must be numeric; got dtype {array.dtype}")
    array = array.astype(np.float64)
    if array.ndim < 2 or array.shape[0] == 0:
        raise DataError(f"{name} must hold at least one sample as rows (N, D) or (N, C, H, W); got shape {array.shape}")
    if array.ndim == 3:
        array = array[:, None]
    bad = ~np.isfinite(array)
    if bad.any():
        raise DataError(f"{name} holds {int(bad.sum())} NaN/inf values; remove or impute them before fitting")
    return array


class OMASGANDetector:
    """An OMASGAN anomaly detector fitted on normal samples only."""

    def __init__(
        self,
        config: OMASGANConfig | None = None,
        *,
        device: str = "cpu",
        val_fraction: float = 0.1,
        contamination: float = 0.05,
        verbose: bool = False,
    ) -> None:
        if config is not None and not isinstance(config, OMASGANConfig):
            raise ConfigError(f"config must be an OMASGANConfig or None, got {type(config).__name__}")
        if not 0.0 < val_fraction < 1.0:
            raise ConfigError(f"val_fraction={val_fraction!r} is out of range; it must lie in (0, 1)")
        if not 0.0 < contamination < 1.0:
            raise ConfigError(f"contamination={contamination!r} is out of range; it must lie in (0, 1)")
        self.config = config
        self.device = device
        self.val_fraction = val_fraction
        self.contamination = contamination
        self.verbose = verbose

    # ---- fitting --------------------------------------------------------------------------------
    def fit(self, X: Any, y: Any = None, *, X_val: Any = None, y_val: Any = None) -> "OMASGANDetector":
        """Train Task 1 -> 2 -> 3 -> J on the normal samples X (``y`` is ignored, as in scikit-learn)."""
        data = _as_array(X, "X")
        shape = tuple(data.shape[1:])
        config = self.config or _default_for_shape(shape)
        check_network_shape(config.network.kind, shape)
        is_image = len(shape) == 3
        check_feature_space(config, shape, is_image)
        if is_image:
            low, high = float(data.min()), float(data.max())
            half = (high - low) / 2 or 1.0
            transform = InputTransform(shape, (high + low) / 2, half)
        else:
            transform = InputTransform.standardising(data)
        x_all = transform.apply(data)

        if X_val is not None:
            if y_val is None:
                raise DataError("X_val needs y_val (0 = normal, 1 = anomaly)")
            val_x = transform.apply(_as_array(X_val, "X_val"))
            val_y = torch.as_tensor(np.asarray(y_val, dtype=np.float32).reshape(-1))
            if val_y.shape[0] != val_x.shape[0]:
                raise DataError(f"y_val holds {val_y.shape[0]} labels for {val_x.shape[0]} samples of X_val")
            train_x = x_all
        else:
            generator = torch.Generator().manual_seed(config.data.split_seed)
            order = torch.randperm(x_all.shape[0], generator=generator)
            n_val = max(1, int(round(self.val_fraction * x_all.shape[0]))) if x_all.shape[0] > 2 else 0
            val_x, train_x = x_all[order[:n_val]], x_all[order[n_val:]]
            val_y = torch.zeros(val_x.shape[0])
        if train_x.shape[0] < 2:
            raise DataError(f"fit needs at least 2 normal training samples; got {train_x.shape[0]}")

        device = torch.device(self.device)
        splits = DataSplits(
            train_x=train_x.to(device), val_x=val_x.to(device), val_y=val_y.to(device),
            test_x=val_x.to(device), test_y=val_y.to(device), sample_shape=shape, is_image=is_image,
            classes=(0, 1), normal_classes=(0,), anomaly_classes=(1,), description="OMASGANDetector.fit",
            input_transform=transform,
        )
        on_epoch = _print_epoch if self.verbose else None
        results = run_stages(config, splits, scored=(), on_epoch=on_epoch).results

        self.config_ = config
        self.transform_ = transform
        self.stages_ = results
        self.history_ = {name: r.history for name, r in results.items()}
        self.detector_ = results["j"].modules["detector"]
        normals = val_x[val_y == 0] if val_x.shape[0] else val_x
        self.scorer_ = FinalScore.from_modules(config, results["j"].modules).fit(
            (normals if normals.shape[0] else train_x).to(device))
        if val_x.shape[0] == 0:
            val_scores = self._scores_of(train_x.to(device))
        else:
            val_scores = self._scores_of(val_x.to(device))
        labels = val_y.numpy()
        if labels.min() != labels.max():
            self.threshold_ = max_f1_threshold(val_scores, labels)
        else:
            self.threshold_ = float(np.quantile(val_scores, 1.0 - self.contamination))
        return self

    # ---- inference ------------------------------------------------------------------------------
    def _check_fitted(self) -> None:
        if not hasattr(self, "detector_"):
            raise ConfigError("this OMASGANDetector is not fitted yet; call fit(X_normal) first")

    def _scores_of(self, x: torch.Tensor) -> np.ndarray:
        return self.scorer_(x).cpu().numpy()

    def decision_function(self, X: Any) -> np.ndarray:
        """Anomaly score per sample (j(x), or the config's ``j.score``): higher = more anomalous."""
        self._check_fitted()
        return self._scores_of(self.transform_.apply(_as_array(X, "X")).to(self.device))

    def predict(self, X: Any) -> np.ndarray:
        """1 for samples scored at or above the threshold (anomalies), else 0."""
        return (self.decision_function(X) >= self.threshold_).astype(np.int64)

    # ---- persistence ----------------------------------------------------------------------------
    def save(self, path: str | Path) -> Path:
        """Write the model folder (model.json + j.pt) atomically; ``omasgan score --model`` reads it."""
        self._check_fitted()
        with atomic_folder(path) as staging:
            shape = self.transform_.sample_shape
            save_stage(staging / "j.pt", stage_payload(self.stages_["j"], self.config_, shape, len(shape) == 3))
            write_model_json(staging, self.threshold_, self.transform_,
                             {"source": "OMASGANDetector", "score": self.scorer_.to_dict()})
        return Path(path)

    @classmethod
    def load(cls, path: str | Path, device: str = "cpu") -> "OMASGANDetector":
        """A fitted detector read back from a model folder (scoring only; no training state)."""
        saved = SavedModel(path, device)
        detector = cls(saved.config, device=device)
        detector.config_ = saved.config
        detector.transform_ = saved.transform
        detector.detector_ = saved.detector
        detector.scorer_ = saved.scorer
        detector.threshold_ = saved.threshold
        return detector


def _print_epoch(stage: str, epoch: int, epochs: int, losses: dict[str, float]) -> None:
    if epoch == epochs or epoch % 10 == 0:
        text = " ".join(f"{k}={v:.4f}" for k, v in losses.items())
        print(f"[{stage}] epoch {epoch}/{epochs} {text}", flush=True)

"""``OMASGANDetector``: OMASGAN on your own data, as a scikit-learn estimator.

    detector = OMASGANDetector().fit(X_normal)          # only normal samples
    scores = detector.decision_function(X_new)          # higher = more anomalous (j(x), eq. 6, or j.score)
    labels = detector.predict(X_new)                    # 1 = anomaly, 0 = normal
    detector.save("model/"); OMASGANDetector.load("model/")

Vectors (N, D) are standardised per feature with the statistics of the fitted normal data; images
(N, C, H, W) (or (N, H, W)) are mapped linearly from the fitted data's [min, max] to [-1, 1].
The threshold is chosen on a validation set: the max-F1 threshold when labelled anomalies are given
(``X_val``, ``y_val``), else the (1 - contamination) quantile of held-out normal scores.

The constructor stores its arguments as given and ``fit`` checks them, so ``get_params`` /
``set_params`` and ``sklearn.base.clone`` work as for the baselines (:mod:`omasgan.baselines`).
Labels follow PyOD's convention (1 = anomaly), not scikit-learn's outlier detectors' (-1 = outlier).
"""

from __future__ import annotations

from numbers import Real
from pathlib import Path
from typing import Any

import numpy as np
import torch
from scipy import sparse
from sklearn.base import BaseEstimator
from sklearn.exceptions import NotFittedError

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


class DetectorNotFittedError(ConfigError, NotFittedError):
    """Scoring, predicting or saving before ``fit``: a :class:`ConfigError` that is also
    scikit-learn's ``NotFittedError``."""


def _as_array(X: Any, name: str) -> np.ndarray:
    """Samples as a float64 array (N, D) or (N, C, H, W) ((N, H, W) gains C = 1); refuses sparse,
    complex, non-numeric, non-finite and empty input with a DataError."""
    if sparse.issparse(X):
        raise DataError(f"{name} is a sparse {type(X).__name__}; sparse input is not supported: "
                        f"pass {name}.toarray()")
    array = X.detach().cpu().numpy() if isinstance(X, torch.Tensor) else np.asarray(X)
    if array.dtype.kind == "c":
        raise DataError(f"Complex data not supported: {name} has dtype {array.dtype}; pass real features")
    if array.dtype.kind not in "biuf":
        raise DataError(f"{name} must be numeric; got dtype {array.dtype}")
    array = array.astype(np.float64)
    if array.ndim < 2:
        raise DataError(f"{name} must hold samples as rows (N, D) or (N, C, H, W); got shape {array.shape}. "
                        "Reshape your data: X.reshape(1, -1) for one sample, X.reshape(-1, 1) for one feature")
    if array.shape[0] == 0:
        raise DataError(f"{name} must hold at least one sample as rows (N, D) or (N, C, H, W); "
                        f"got shape {array.shape}")
    if 0 in array.shape[1:]:
        raise DataError(f"{name} has 0 feature(s) (shape={array.shape}) while a minimum of 1 is required.")
    if array.ndim == 3:
        array = array[:, None]
    bad = ~np.isfinite(array)
    if bad.any():
        raise DataError(f"{name} holds {int(bad.sum())} NaN/inf values; remove or impute them before fitting")
    return array


class OMASGANDetector(BaseEstimator):
    """An OMASGAN anomaly detector fitted on normal samples only (a scikit-learn estimator).

    ``fit`` trains Task 1 -> 2 -> 3 -> J on the normal samples, then chooses the threshold on a
    validation set (see the module docstring).  The constructor only stores its arguments; ``fit``
    checks them (a :class:`~omasgan.errors.ConfigError` naming the bad value).

    Parameters
    ----------
    config : OMASGANConfig or None, default=None
        Networks and stages.  ``None`` picks a data set's defaults from the sample shape at ``fit``:
        ``synthetic`` for up to 4 features, ``digits`` for more, ``mnist`` for 28 x 28 images,
        ``cifar10`` for 32 x 32 images, ``digits`` (an MLP on the flattened image) otherwise.
        ``config.seed`` seeds the training: the same config and data give the same scores.
    device : str, default="cpu"
        The torch device that trains and scores, e.g. ``"cuda"``.
    val_fraction : float, default=0.1
        The share of ``X`` held out (by ``config.data.split_seed``) to choose the threshold when
        ``fit`` gets no ``X_val``; in (0, 1).
    contamination : float, default=0.05
        Without labelled anomalies the threshold is the (1 - contamination) quantile of the held-out
        normals' scores; in (0, 1).
    verbose : bool, default=False
        Print each stage's losses every 10 epochs.

    Attributes
    ----------
    config_ : OMASGANConfig
        The config that was trained (``config`` or the defaults chosen for the sample shape).
    n_features_in_ : int
        Values per sample seen by ``fit``: D for vectors, C * H * W for images (which
        ``decision_function`` also takes flattened to that many columns).
    transform_ : InputTransform
        The input scaling fitted on ``X``.
    stages_ : dict of str to StageResult
        Each stage's trained modules and history (absent after :meth:`load`).
    history_ : dict of str to list
        Each stage's per-epoch losses (absent after :meth:`load`).
    detector_ : torch.nn.Module
        The final detector network J.
    scorer_ : FinalScore
        The final score (``config.j.score``) with its fitted scaling.
    threshold_ : float
        Samples scored at or above it are anomalies.

    Examples
    --------
    >>> import numpy as np
    >>> from omasgan.config import default_config
    >>> from omasgan.detector import OMASGANDetector
    >>> X_normal = np.random.default_rng(0).normal(size=(200, 2))
    >>> config = default_config("synthetic").with_overrides(
    ...     ["task1.epochs=2", "task2.epochs=1", "task3.epochs=1", "j.epochs=2"])
    >>> detector = OMASGANDetector(config, contamination=0.1).fit(X_normal)
    >>> detector.decision_function(X_normal[:3]).shape
    (3,)
    >>> set(detector.predict(X_normal).tolist()) <= {0, 1}
    True
    >>> from sklearn.base import clone
    >>> clone(detector).get_params()["contamination"]
    0.1
    """

    def __init__(
        self,
        config: OMASGANConfig | None = None,
        *,
        device: str = "cpu",
        val_fraction: float = 0.1,
        contamination: float = 0.05,
        verbose: bool = False,
    ) -> None:
        self.config = config
        self.device = device
        self.val_fraction = val_fraction
        self.contamination = contamination
        self.verbose = verbose

    def _check_params(self) -> None:
        """Raise a ConfigError naming the first constructor argument that is out of its range."""
        if self.config is not None and not isinstance(self.config, OMASGANConfig):
            raise ConfigError(f"config must be an OMASGANConfig or None, got {type(self.config).__name__}")
        for name in ("val_fraction", "contamination"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, Real) or not 0.0 < value < 1.0:
                raise ConfigError(f"{name}={value!r} is out of range; it must lie in (0, 1)")
        try:
            torch.device(self.device)
        except (RuntimeError, TypeError) as error:
            raise ConfigError(f"device={self.device!r} is not a torch device (e.g. 'cpu', 'cuda', 'cuda:1'): "
                              f"{error}") from None

    # ---- fitting --------------------------------------------------------------------------------
    def fit(self, X: Any, y: Any = None, *, X_val: Any = None, y_val: Any = None) -> "OMASGANDetector":
        """Train Task 1 -> 2 -> 3 -> J on the normal samples ``X`` and choose the threshold.

        Parameters
        ----------
        X : array-like or torch.Tensor of shape (N, D), (N, H, W) or (N, C, H, W)
            Normal samples only; numeric, finite.
        y : None
            Ignored (scikit-learn's unsupervised convention).
        X_val : array-like of the same sample shape, optional
            A labelled validation set: the threshold is then the max-F1 threshold on it, and all of
            ``X`` trains.  Without it ``val_fraction`` of ``X`` is held out and the threshold is the
            (1 - ``contamination``) quantile of its scores.
        y_val : array-like of shape (len(X_val),), optional
            0 = normal, 1 = anomaly; required with ``X_val``.

        Returns
        -------
        OMASGANDetector
            ``self``, fitted.

        Raises
        ------
        ConfigError
            A constructor argument or the config does not fit the data.
        DataError
            ``X`` is empty, non-numeric or holds NaN/inf, or has fewer than 2 training samples.
        """
        self._check_params()
        data = _as_array(X, "X")
        shape = tuple(data.shape[1:])
        config = self.config if self.config is not None else _default_for_shape(shape)
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
            count = train_x.shape[0]
            raise DataError(f"fit needs at least 2 normal training samples; "
                            f"got {count} sample{'' if count == 1 else 's'}")

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
        self.n_features_in_ = int(np.prod(shape))
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
    def __sklearn_is_fitted__(self) -> bool:
        """Whether ``fit`` (or :meth:`load`) has set the detector (``sklearn.utils.validation.check_is_fitted``)."""
        return hasattr(self, "detector_")

    def _check_fitted(self) -> None:
        if not self.__sklearn_is_fitted__():
            raise DetectorNotFittedError("this OMASGANDetector is not fitted yet; call fit(X_normal) first")

    def _scores_of(self, x: torch.Tensor) -> np.ndarray:
        return self.scorer_(x).cpu().numpy()

    def decision_function(self, X: Any) -> np.ndarray:
        """Anomaly score per sample (j(x), or the config's ``j.score``): higher = more anomalous.

        Parameters
        ----------
        X : array-like or torch.Tensor of the fitted sample shape
            Samples in the raw units of the data ``fit`` saw.

        Returns
        -------
        numpy.ndarray of shape (N,)
            The scores (float32).
        """
        self._check_fitted()
        data = _as_array(X, "X")
        n_features = int(np.prod(data.shape[1:]))
        if n_features != self.n_features_in_:
            raise DataError(f"X has {n_features} features, but OMASGANDetector is expecting {self.n_features_in_} "
                            f"features as input: the model takes shape {self.transform_.sample_shape}")
        return self._scores_of(self.transform_.apply(data).to(self.device))

    def predict(self, X: Any) -> np.ndarray:
        """Label each sample: 1 (anomaly) when its score (:meth:`decision_function`) is at or above
        ``threshold_``, else 0.

        Parameters
        ----------
        X : array-like or torch.Tensor
            The samples, as :meth:`decision_function` takes them.

        Returns
        -------
        numpy.ndarray of shape (N,)
            int64 labels, 1 = anomaly.
        """
        return (self.decision_function(X) >= self.threshold_).astype(np.int64)

    # ---- persistence ----------------------------------------------------------------------------
    def save(self, path: str | Path) -> Path:
        """Write the model folder (model.json + j.pt) atomically; ``omasgan score --model`` reads it.

        Parameters
        ----------
        path : str or Path
            The folder to create; it must not exist or be empty.

        Returns
        -------
        Path
            ``path``.
        """
        self._check_fitted()
        with atomic_folder(path) as staging:
            shape = self.transform_.sample_shape
            save_stage(staging / "j.pt", stage_payload(self.stages_["j"], self.config_, shape, len(shape) == 3))
            write_model_json(staging, self.threshold_, self.transform_,
                             {"source": "OMASGANDetector", "score": self.scorer_.to_dict()})
        return Path(path)

    @classmethod
    def load(cls, path: str | Path, device: str = "cpu") -> "OMASGANDetector":
        """A fitted detector read back from a model folder (scoring only: no ``stages_`` or ``history_``).

        Parameters
        ----------
        path : str or Path
            A folder written by :meth:`save` or by ``omasgan run``.
        device : str, default="cpu"
            The torch device that scores.

        Returns
        -------
        OMASGANDetector
            Fitted, with ``config`` and ``config_`` the saved config.
        """
        saved = SavedModel(path, device)
        detector = cls(saved.config, device=device)
        detector.config_ = saved.config
        detector.n_features_in_ = int(np.prod(saved.transform.sample_shape))
        detector.transform_ = saved.transform
        detector.detector_ = saved.detector
        detector.scorer_ = saved.scorer
        detector.threshold_ = saved.threshold
        return detector


def _print_epoch(stage: str, epoch: int, epochs: int, losses: dict[str, float]) -> None:
    if epoch == epochs or epoch % 10 == 0:
        text = " ".join(f"{k}={v:.4f}" for k, v in losses.items())
        print(f"[{stage}] epoch {epoch}/{epochs} {text}", flush=True)

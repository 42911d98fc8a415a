"""Classical anomaly-detection baselines scored with OMASGAN's evaluation protocol (docs/design.md section 4).

Every baseline is fitted on the normal training split only and gives each sample one anomaly score,
higher = more anomalous, exactly like OMASGAN's detectors; each is a scikit-learn estimator with
the detector protocol of :class:`omasgan.detector.OMASGANDetector` (``fit(X)``,
``decision_function(X)``, ``predict(X)``; :mod:`.protocol`):

    knn      :class:`KNNDetector`: the mean distance to the k nearest training normals, or the
             distance to the k-th nearest (:mod:`.knn`)
    iforest  :class:`IsolationForestDetector`: the forest's anomaly score 2^(-E[h(x)] / c(n))
             (:mod:`.isolation_forest`)
    ae       :class:`AutoencoderDetector`: the mean squared reconstruction error of an autoencoder
             trained on the normals (:mod:`.autoencoder`)

:class:`BaselineConfig` (:mod:`.config`) holds a method and its settings as the command line gives
them; :func:`evaluate_baseline` (:mod:`.evaluation`) fits one and scores it as
:func:`omasgan.evaluation.evaluate_scores` does: the threshold chosen on validation (max F1), the test
split scored once.  A fixed seed gives identical scores on CPU.  This package is pure torch / numpy /
scikit-learn (no Ray, Optuna or pyarrow).
"""

from .autoencoder import AutoencoderDetector
from .config import BASELINE_METHODS, KNN_SCORES, BaselineConfig
from .evaluation import BaselineEvaluation, baseline_detector, evaluate_baseline, fit_baseline
from .isolation_forest import IsolationForestDetector
from .knn import KNNDetector
from .protocol import BaselineDetector

__all__ = [
    "BASELINE_METHODS",
    "KNN_SCORES",
    "AutoencoderDetector",
    "BaselineConfig",
    "BaselineDetector",
    "BaselineEvaluation",
    "IsolationForestDetector",
    "KNNDetector",
    "baseline_detector",
    "evaluate_baseline",
    "fit_baseline",
]

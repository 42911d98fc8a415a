"""OMASGANDetector on a user's own data: fit on normal samples, score, predict, save and load."""

import numpy as np
import pytest

from omasgan.detector import OMASGANDetector
from omasgan.errors import ConfigError, DataError

from helpers import tiny_config


def _blobs(n, seed=0):
    rng = np.random.default_rng(seed)
    centres = np.array([[-2.0, -2.0], [2.0, 2.0]])
    return centres[rng.integers(0, 2, n)] + 0.2 * rng.normal(size=(n, 2))


@pytest.fixture(scope="module")
def fitted():
    config = tiny_config()
    return OMASGANDetector(config).fit(_blobs(600))


def test_scores_far_points_above_normal_points(fitted):
    normal = _blobs(200, seed=1)
    far = np.random.default_rng(2).uniform(-6, 6, size=(400, 2))
    far = far[np.min(np.linalg.norm(far[:, None] - np.array([[-2, -2], [2, 2]]), axis=2), axis=1) > 2.0]
    from sklearn.metrics import roc_auc_score

    scores = np.concatenate([fitted.decision_function(normal), fitted.decision_function(far)])
    labels = np.r_[np.zeros(len(normal)), np.ones(len(far))]
    assert roc_auc_score(labels, scores) > 0.9
    predicted = fitted.predict(normal)
    assert set(np.unique(predicted)) <= {0, 1}
    assert predicted.mean() < 0.2  # threshold at the 95% quantile of held-out normal scores


def test_save_load_round_trip(fitted, tmp_path):
    x = _blobs(50, seed=3)
    fitted.save(tmp_path / "model")
    loaded = OMASGANDetector.load(tmp_path / "model")
    np.testing.assert_array_equal(loaded.decision_function(x), fitted.decision_function(x))
    assert loaded.threshold_ == fitted.threshold_
    with pytest.raises(ConfigError, match="exists and is not empty"):
        fitted.save(tmp_path / "model")


def test_score_command_reads_a_detector_folder(fitted, tmp_path):
    from omasgan.cli import main

    fitted.save(tmp_path / "m")
    np.savetxt(tmp_path / "x.csv", _blobs(10, seed=4), delimiter=",", header="a,b", comments="")
    assert main(["score", "--model", str(tmp_path / "m"), "--input", str(tmp_path / "x.csv"),
                 "--output", str(tmp_path / "out.csv")]) == 0
    table = np.loadtxt(tmp_path / "out.csv", delimiter=",", skiprows=1)
    np.testing.assert_allclose(table[:, 1], fitted.decision_function(_blobs(10, seed=4)), rtol=1e-6)


def test_bad_input():
    with pytest.raises(DataError, match="NaN/inf"):
        OMASGANDetector(tiny_config()).fit(np.array([[0.0, np.nan], [1.0, 2.0], [3.0, 4.0]]))
    with pytest.raises(DataError, match="at least one sample"):
        OMASGANDetector(tiny_config()).fit(np.zeros((0, 2)))
    with pytest.raises(ConfigError, match="not fitted"):
        OMASGANDetector().decision_function(np.zeros((2, 2)))
    with pytest.raises(ConfigError, match="contamination=1.5"):
        OMASGANDetector(contamination=1.5)


def test_wrong_feature_count_at_scoring(fitted):
    with pytest.raises(DataError, match="the model takes shape"):
        fitted.decision_function(np.zeros((3, 5)))


def test_fusion_detector_scores_the_same_after_save_and_load(tmp_path):
    import json

    config = tiny_config(task1__epochs=5, task2__epochs=2, task3__epochs=3, j__epochs=5, j__score="fusion",
                         j__fusion_scaling="robust")
    detector = OMASGANDetector(config).fit(_blobs(300))
    assert detector.scorer_.mode == "fusion" and set(detector.scorer_.stats) == {"j", "critic"}
    x = _blobs(40, seed=5)
    detector.save(tmp_path / "model")
    document = json.loads((tmp_path / "model" / "model.json").read_text())
    assert document["score"]["mode"] == "fusion" and document["score"]["scaling"] == "robust"
    loaded = OMASGANDetector.load(tmp_path / "model")
    np.testing.assert_array_equal(loaded.decision_function(x), detector.decision_function(x))

"""The kNN / Isolation Forest / autoencoder baselines (omasgan.baselines) and the ``omasgan baseline``
command (omasgan.distributed.commands.baseline, studies.baseline): hand-checked distances, detection on
the synthetic mixture, a learning autoencoder, determinism, the detector protocol (clone, fit, decision_function,
predict), the rows written to a study folder, error rows and one-line errors for bad input."""

import json
import math

import numpy as np
import pytest
import torch

from sklearn.base import clone

from omasgan.autoencoders import ConvAutoencoder
from omasgan.baselines import (
    AutoencoderDetector, BaselineConfig, BaselineEvaluation, IsolationForestDetector, KNNDetector, baseline_detector,
    evaluate_baseline,
)
from omasgan.config import default_config
from omasgan.data import load_splits
from omasgan.errors import ConfigError
from omasgan.evaluation import StageEvaluation
from omasgan.metrics import METRIC_NAMES, max_f1_threshold

from omasgan.distributed import ResultStore
from omasgan.distributed.commands.baseline import main
from omasgan.distributed.studies.baseline import run_baseline_unit

SQUARE = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])


@pytest.fixture(scope="module")
def synthetic_splits():
    """Normal = the four blobs, anomaly = the ring (class 4); 120 points per class."""
    return load_splits("synthetic", "loo", 4, synthetic_n_per_class=120)


def test_knn_distances_equal_hand_values():
    query = torch.tensor([[2.0, 0.0], [0.5, 0.5]])
    # (2, 0): distances 1, sqrt 2, 2, sqrt 5; (0.5, 0.5): all four are sqrt(0.5)
    mean2 = KNNDetector(k=2).fit(SQUARE).decision_function(query)
    kth3 = KNNDetector(k=3, statistic="kth").fit(SQUARE).decision_function(query)
    np.testing.assert_allclose(mean2, [(1 + math.sqrt(2)) / 2, math.sqrt(0.5)], rtol=1e-6)
    np.testing.assert_allclose(kth3, [2.0, math.sqrt(0.5)], rtol=1e-6)


@pytest.mark.parametrize("method", ["knn", "iforest"])
def test_knn_and_iforest_detect_the_held_out_ring(synthetic_splits, method):
    evaluation = evaluate_baseline(BaselineConfig(method=method), synthetic_splits, seed=0)
    assert isinstance(evaluation, StageEvaluation) and isinstance(evaluation, BaselineEvaluation)
    assert evaluation.detector == method and evaluation.wall_time_s > 0
    assert set(evaluation.metrics) == {"val", "test"} and set(evaluation.metrics["test"]) == set(METRIC_NAMES)
    assert evaluation.metrics["val"]["auroc"] > 0.9 and evaluation.metrics["test"]["auroc"] > 0.9
    # the threshold comes from validation alone; test has one score per sample
    assert evaluation.threshold == max_f1_threshold(evaluation.scores["val"], synthetic_splits.val_y)
    assert evaluation.scores["test"].shape == (len(synthetic_splits.test_x),)


def test_mlp_autoencoder_learns_and_detects(synthetic_splits):
    config = BaselineConfig(method="ae", epochs=25, batch_size=64, lr=3e-3)
    evaluation = evaluate_baseline(config, synthetic_splits, seed=0)
    loss = evaluation.history["loss"]
    assert len(loss) == 25 and loss[-1] < 0.3 * loss[0]
    assert evaluation.metrics["test"]["auroc"] > 0.8


def test_conv_autoencoder_learns_on_digits_and_fits_28_and_32_pixels():
    splits = load_splits("digits", "loo", 0, max_train=200)
    detector = AutoencoderDetector(epochs=10, batch_size=16, width=8, lr=3e-3, random_state=0).fit(splits.train_x)
    assert isinstance(detector.model_, ConvAutoencoder)
    loss = detector.history_["loss"]
    # it learns: the loss halves, and ends below the error of the best constant image (the mean)
    assert loss[-1] < 0.5 * loss[0] and loss[-1] < splits.train_x.var(dim=0).mean().item()
    assert detector.decision_function(splits.test_x).shape == (len(splits.test_x),)
    for shape in ((1, 28, 28), (3, 32, 32)):
        x = torch.randn(2, *shape)
        assert ConvAutoencoder(shape, 16, 4)(x).shape == x.shape
    with pytest.raises(ConfigError, match="divisible by 4"):
        ConvAutoencoder((1, 10, 10), 16, 4)


def test_a_fixed_seed_gives_identical_scores_and_keeps_the_callers_rng(synthetic_splits):
    for config in (BaselineConfig(method="iforest", n_estimators=20), BaselineConfig(method="ae", epochs=3)):
        torch.manual_seed(123)
        first = evaluate_baseline(config, synthetic_splits, seed=7)
        after = torch.rand(1)
        torch.manual_seed(123)
        second = evaluate_baseline(config, synthetic_splits, seed=7)
        assert torch.equal(after, torch.rand(1))  # the baseline seeds itself without touching global RNG
        other = evaluate_baseline(config, synthetic_splits, seed=8)
        for split in ("val", "test"):
            np.testing.assert_array_equal(first.scores[split], second.scores[split])
        assert first.metrics == second.metrics
        assert not np.array_equal(first.scores["test"], other.scores["test"])


@pytest.mark.parametrize("kwargs, message", [
    ({"method": "lof"}, "baseline method 'lof' is not allowed; choose one of: knn, iforest, ae"),
    ({"k": 0}, "baseline.k=0 is out of range"),
    ({"knn_score": "median"}, "baseline.knn_score='median' is not allowed"),
    ({"lr": -1.0}, "baseline.lr=-1.0 is out of range"),
    ({"epochs": 2.5}, "baseline.epochs=2.5 is out of range"),
    ({"n_estimators": True}, "baseline.n_estimators=True is out of range"),
])
def test_bad_baseline_settings_name_the_value(kwargs, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        BaselineConfig(**kwargs)


def test_overrides_parse_and_reject():
    config = BaselineConfig(method="knn").with_overrides(["baseline.k=10", "knn_score=kth"])
    assert (config.k, config.knn_score, config.tag()) == (10, "kth", "knn-k10-kth")
    with pytest.raises(ConfigError, match="unknown baseline key 'kk'; allowed: method, k,"):
        config.with_overrides(["baseline.kk=3"])
    with pytest.raises(ConfigError, match="baseline.k='ten' has the wrong type; expected an integer"):
        config.with_overrides(["baseline.k=ten"])


def test_settings_the_data_cannot_take_are_config_errors(synthetic_splits):
    with pytest.raises(ConfigError, match="baseline.k=9 exceeds the 4 training normals"):
        KNNDetector(k=9).fit(SQUARE)
    with pytest.raises(ConfigError, match="baseline.latent_dim=2 must be smaller than the 2 features"):
        evaluate_baseline(BaselineConfig(method="ae", latent_dim=2), synthetic_splits, seed=0)


# ---- the detector protocol ---------------------------------------------------------------------
DETECTORS = [KNNDetector(k=3, statistic="kth", contamination=0.1),
             IsolationForestDetector(n_estimators=20, max_samples=16, random_state=3, contamination=0.1),
             AutoencoderDetector(epochs=15, lr=3e-3, batch_size=32, width=8, random_state=3, contamination=0.1)]


@pytest.mark.parametrize("detector", DETECTORS, ids=lambda d: type(d).__name__)
def test_a_clone_has_the_same_params_and_fits_to_the_same_scores(synthetic_splits, detector):
    twin = clone(detector)
    assert twin is not detector and twin.get_params() == detector.get_params()
    assert not hasattr(twin, "threshold_")  # a clone is unfitted
    twin.set_params(contamination=0.2)
    assert twin.get_params()["contamination"] == 0.2 and detector.contamination == 0.1
    normals = synthetic_splits.train_x.numpy()[:200]  # numpy in, like any scikit-learn estimator
    first = clone(detector).fit(normals).decision_function(synthetic_splits.test_x)
    second = clone(detector).fit(torch.as_tensor(normals)).decision_function(synthetic_splits.test_x.numpy())
    np.testing.assert_array_equal(first, second)


@pytest.mark.parametrize("detector", DETECTORS, ids=lambda d: type(d).__name__)
def test_fit_scores_and_predicts_with_a_threshold_on_the_training_normals(synthetic_splits, detector):
    normals = synthetic_splits.train_x[:200]
    fitted = clone(detector).fit(normals, y=np.zeros(len(normals)))  # y is ignored
    assert fitted.threshold_ == pytest.approx(np.quantile(fitted.decision_function(normals), 0.9))
    scores = fitted.decision_function(synthetic_splits.test_x)
    labels = fitted.predict(synthetic_splits.test_x)
    np.testing.assert_array_equal(labels, (scores >= fitted.threshold_).astype(np.int64))
    truth = synthetic_splits.test_y.numpy()
    assert labels.dtype == np.int64 and set(np.unique(labels)) == {0, 1}
    assert labels[truth == 1].mean() > labels[truth == 0].mean()  # anomalies are flagged more often
    assert scores[truth == 1].mean() > scores[truth == 0].mean()  # higher = more anomalous


def test_a_config_builds_the_detector_with_its_settings():
    assert baseline_detector(BaselineConfig(method="knn", k=7, knn_score="kth"), seed=4).get_params() == \
        {"k": 7, "statistic": "kth", "contamination": 0.05}
    forest = baseline_detector(BaselineConfig(method="iforest", n_estimators=9), seed=4)
    assert (forest.n_estimators, forest.max_samples, forest.random_state) == (9, None, 4)
    ae = baseline_detector(BaselineConfig(method="ae", epochs=2, lr=0.01, batch_size=8, latent_dim=3, width=5), 4, "cpu")
    assert ae.get_params() == {"epochs": 2, "lr": 0.01, "batch_size": 8, "latent_dim": 3, "width": 5,
                               "random_state": 4, "device": "cpu", "contamination": 0.05}


# ---- the command and the result store -----------------------------------------------------------
SMALL = ["--dataset", "synthetic", "--holdout", "4", "--max-train", "200", "--set", "data.synthetic_n_per_class=120"]


def test_baseline_command_writes_rows_scores_and_study_json(tmp_path, capsys):
    out = tmp_path / "baselines"
    assert main(["--method", "knn", *SMALL, "--seed", "1", "--out", str(out), "--set", "baseline.k=3",
                 "--scores", "all"]) == 0
    printed = capsys.readouterr().out
    assert "knn      val" in printed and "knn      test" in printed and str(out) in printed
    rows = ResultStore(str(out)).read().to_pandas()
    assert len(rows) == 2 and sorted(rows.split) == ["test", "val"]
    row = rows.iloc[0]
    assert (row.study, row.study_kind, row.trial_id, row.method, row.stage, row.detector, row.status) == (
        "baselines", "baseline", "knn-k3-mean", "knn", "baseline", "knn", "ok")
    assert (row.dataset, row.holdout_class, row.seed, row.cfg_data_max_train) == ("synthetic", 4, 1, 200)
    assert rows.auroc.min() > 0.9 and rows.wall_time_s.min() > 0
    scores = ResultStore(str(out)).read("scores").to_pandas()
    splits = load_splits("synthetic", "loo", 4, synthetic_n_per_class=120, max_train=200)
    assert len(scores) == len(splits.val_x) + len(splits.test_x) and set(scores.split) == {"val", "test"}
    val = scores[scores.split == "val"].sort_values("index")
    np.testing.assert_array_equal(val.label, splits.val_y.numpy().astype(int))
    # the same unit again replaces its files (by default keeping test scores only); another method
    # is appended to the study, with --scores none keeping no scores
    assert main(["--method", "knn", *SMALL, "--seed", "1", "--out", str(out), "--set", "baseline.k=3"]) == 0
    assert main(["--method", "iforest", *SMALL, "--seed", "2", "--out", str(out), "--scores", "none"]) == 0
    rows = ResultStore(str(out)).read().to_pandas()
    assert len(rows) == 4 and sorted(set(rows.method)) == ["iforest", "knn"]
    assert len(ResultStore(str(out)).files("scores")) == 1
    scores = ResultStore(str(out)).read("scores").to_pandas()
    assert len(scores) == len(splits.test_x) and set(scores.split) == {"test"} and set(scores.method) == {"knn"}
    spec = json.loads((out / "study.json").read_text())
    assert (spec["kind"], spec["dataset"], spec["classes"], spec["seeds"]) == ("baseline", "synthetic", [4], [1, 2])
    assert spec["options"]["methods"] == ["knn", "iforest"]
    assert spec["options"]["baselines"]["knn-k3-mean"]["k"] == 3


def test_a_failing_unit_writes_an_error_row_and_drops_stale_scores(tmp_path):
    config = default_config("synthetic", holdout=4, synthetic_n_per_class=60)
    root = str(tmp_path)
    ok = run_baseline_unit(root, "s", config, BaselineConfig(method="knn"), trial_id="t")
    assert ok["status"] == "ok" and ok["val_auroc"] > 0.9 and ok["test_auroc"] > 0.9
    # the same unit fails on a rerun (more neighbours than training normals)
    failed = run_baseline_unit(root, "s", config, BaselineConfig(method="knn", k=10_000), trial_id="t")
    assert failed["status"] == "error" and "baseline.k=10000 exceeds" in failed["error"]
    rows = ResultStore(root).read().to_pandas()
    assert len(rows) == 1 and rows.status[0] == "error" and "exceeds" in rows.error[0]
    assert ResultStore(root).files("scores") == []


@pytest.mark.parametrize("argv, message", [
    (["--method", "lof"], "baseline method 'lof' is not allowed"),
    (["--method", "knn", "--holdout", "7"], "holdout class 7 is not in dataset 'synthetic'"),
    (["--method", "knn", "--set", "baseline.k=0"], "baseline.k=0 is out of range"),
    (["--method", "knn", "--set", "task2.muu=1"], "unknown config key 'task2.muu'"),
    (["--method", "knn", "--device", "tpu"], "device 'tpu' is not allowed"),
])
def test_bad_input_is_one_line_and_writes_nothing(tmp_path, capsys, argv, message):
    out = tmp_path / "study"
    assert main([*argv, "--dataset", "synthetic", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err
    assert not out.exists()


def test_unusable_out_folders_are_rejected(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert main(["--method", "knn", *SMALL, "--out", str(blocker / "study")]) == 2
    assert "cannot be created" in capsys.readouterr().err
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("x")
    assert main(["--method", "knn", *SMALL, "--out", str(foreign)]) == 2
    assert "holds files but no study.json" in capsys.readouterr().err
    digits = tmp_path / "digits"
    assert main(["--method", "knn", "--dataset", "digits", "--max-train", "50", "--out", str(digits)]) == 0
    assert main(["--method", "knn", *SMALL, "--out", str(digits)]) == 2
    assert "is a baseline study of 'digits', not 'synthetic'" in capsys.readouterr().err


def test_the_parser_is_light_and_lists_every_method_and_setting():
    import dataclasses
    import subprocess
    import sys

    from omasgan.baselines import BASELINE_METHODS
    from omasgan.distributed.commands.baseline import METHOD_NAMES, SETTING_NAMES

    assert METHOD_NAMES == BASELINE_METHODS
    assert SETTING_NAMES == tuple(f.name for f in dataclasses.fields(BaselineConfig) if f.name != "method")
    code = ("import argparse, sys; from omasgan.distributed.commands.baseline import add_baseline_parser; "
            "add_baseline_parser(argparse.ArgumentParser().add_subparsers()); "
            "print(sorted(m for m in ('torch', 'sklearn', 'pyarrow', 'pandas', 'ray') if m in sys.modules))")
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert loaded.strip() == "[]"

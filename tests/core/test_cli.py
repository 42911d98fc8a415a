"""The `omasgan` command line end to end: digits LOO, synthetic with its figure, scoring new data,
and one clear error line (and no output folder) for each kind of bad input."""

import json
import subprocess
import sys

import numpy as np
import pytest

from omasgan.cli import main

FAST = [
    "--set", "task1.epochs=3", "--set", "task2.epochs=2", "--set", "task3.epochs=2", "--set", "j.epochs=3",
    "--set", "network.g_width=32", "--set", "network.d_width=32", "--set", "task2.bank_size=256",
]


def test_digits_loo_end_to_end_and_score(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["run", "--dataset", "digits", "--protocol", "loo", "--holdout", "3", "--seed", "1",
                 "--out", str(out), "--quiet", *FAST]) == 0
    printed = capsys.readouterr().out
    assert "final    test" in printed and "task1    val" in printed
    for name in ("config.json", "metrics.json", "model.json", "scores.npz", "task1.pt", "task2.pt", "task3.pt", "j.pt"):
        assert (out / name).is_file(), name
    document = json.loads((out / "metrics.json").read_text())
    assert set(document["metrics"]) == {"task1", "task3", "final"}
    for detector in document["metrics"].values():
        assert set(detector) == {"val", "test"}
        assert 0.0 <= detector["test"]["auroc"] <= 1.0
    assert document["data"]["test_anomalies"] > 0
    assert set(document["wall_time_s"]) == {"task1", "task2", "task3", "j"}
    assert document["config"]["seed"] == 1 and document["config"]["data"]["holdout"] == 3
    # score raw digits (values 0..16) with the saved model
    from sklearn.datasets import load_digits

    raw = load_digits().data[:25]
    np.save(tmp_path / "new.npy", raw)
    assert main(["score", "--model", str(out), "--input", str(tmp_path / "new.npy"),
                 "--output", str(tmp_path / "s.csv")]) == 0
    table = np.loadtxt(tmp_path / "s.csv", delimiter=",", skiprows=1)
    assert table.shape == (25, 3)
    assert set(np.unique(table[:, 2])) <= {0.0, 1.0}
    # the scores equal the run's own test scores for the same samples
    scores = np.load(out / "scores.npz")
    assert scores["final_test"].shape[0] == document["data"]["test"]


def test_synthetic_run_writes_figure(tmp_path):
    out = tmp_path / "syn"
    assert main(["run", "--dataset", "synthetic", "--holdout", "0", "--out", str(out), "--quiet",
                 "--set", "data.synthetic_n_per_class=60", *FAST]) == 0
    png = (out / "boundary.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5000


def _error_line(capsys):
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert err[0].startswith("omasgan: error: ")
    return err[0]


@pytest.mark.parametrize(
    "args, message",
    [
        (["--set", "divergence.name=fgan"], "divergence.name='fgan' is not allowed; choose one of"),
        (["--set", "network.kind=vgg"], "network.kind='vgg' is not allowed"),
        (["--set", "task2.mu=-0.1"], "task2.mu=-0.1 is out of range"),
        (["--set", "task2.nu=-1"], "task2.nu=-1.0 is out of range"),
        (["--set", "task2.bank_size=-5"], "task2.bank_size=-5 is out of range"),
        (["--set", "task2.batch_size=0"], "task2.batch_size=0 is out of range"),
        (["--set", "task3.alpha=0.9"], "outside the admissible region"),
        (["--set", "task3.gamma=-0.9"], "is below alpha + delta - 1"),
        (["--set", "j.zeta=2"], "j.zeta=2.0 is out of range"),
        (["--holdout", "12"], "holdout class 12 is not in dataset 'digits'"),
        (["--set", "network.kind=dcgan"], "network 'dcgan' takes images of shape"),
        (["--device", "tpu"], "device 'tpu' is not allowed"),
    ],
)
def test_bad_input_one_line_and_no_output(tmp_path, capsys, args, message):
    out = tmp_path / "never"
    assert main(["run", "--dataset", "digits", "--out", str(out), "--quiet", *FAST, *args]) == 2
    assert message in _error_line(capsys)
    assert not out.exists()
    assert list(tmp_path.iterdir()) == []


def test_unknown_dataset_is_an_argparse_error(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["run", "--dataset", "mnsit"])
    assert exc.value.code == 2
    assert "invalid choice: 'mnsit'" in capsys.readouterr().err


def test_missing_image_files_say_how_to_get_them(tmp_path, capsys):
    assert main(["run", "--dataset", "mnist", "--data-root", str(tmp_path), "--out", str(tmp_path / "o"), "--quiet"]) == 2
    line = _error_line(capsys)
    assert "missing" in line and "--download" in line


def test_truncated_image_file(tmp_path, capsys):
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    from omasgan.data.idx import write_idx

    for prefix, n in (("train", 20), ("t10k", 10)):
        write_idx(raw / f"{prefix}-images-idx3-ubyte", np.zeros((n, 28, 28), dtype=np.uint8))
        write_idx(raw / f"{prefix}-labels-idx1-ubyte", (np.arange(n) % 10).astype(np.uint8))
    path = raw / "train-images-idx3-ubyte"
    path.write_bytes(path.read_bytes()[:1000])
    assert main(["run", "--dataset", "mnist", "--data-root", str(tmp_path), "--out", str(tmp_path / "o"), "--quiet"]) == 2
    assert "truncated" in _error_line(capsys)


def test_tabular_nan_and_empty_normal_set(tmp_path, capsys):
    x = np.random.default_rng(0).normal(size=(40, 3))
    y = np.repeat([0, 1], 20)
    x[3, 1] = np.nan
    np.save(tmp_path / "t.npy", np.column_stack([x, y]))
    assert main(["run", "--dataset", "tabular", "--tabular-path", str(tmp_path / "t.npy"), "--label-column", "-1",
                 "--out", str(tmp_path / "o"), "--quiet"]) == 2
    assert "NaN" in _error_line(capsys)
    # a class the file lacks
    x[3, 1] = 0.0
    np.save(tmp_path / "u.npy", np.column_stack([x, np.zeros(40)]))
    assert main(["run", "--dataset", "tabular", "--tabular-path", str(tmp_path / "u.npy"), "--label-column", "-1",
                 "--protocol", "occ", "--holdout", "1", "--out", str(tmp_path / "o"), "--quiet"]) == 2
    assert "holdout class 1" in _error_line(capsys)
    # leave-one-out of the only class -> no normal sample to train on
    assert main(["run", "--dataset", "tabular", "--tabular-path", str(tmp_path / "u.npy"), "--label-column", "-1",
                 "--protocol", "loo", "--holdout", "0", "--out", str(tmp_path / "o"), "--quiet"]) == 2
    assert "no normal samples" in _error_line(capsys)
    assert not (tmp_path / "o").exists()


def test_existing_output_folder_is_refused(tmp_path, capsys):
    out = tmp_path / "full"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    assert main(["run", "--dataset", "digits", "--out", str(out), "--quiet", *FAST]) == 2
    assert "already exists and is not empty" in _error_line(capsys)
    assert (out / "keep.txt").read_text() == "mine"


def test_diverging_run_leaves_nothing_half_written(tmp_path, capsys):
    out = tmp_path / "nan"
    code = main(["run", "--dataset", "synthetic", "--out", str(out), "--quiet", *FAST,
                 "--set", "data.synthetic_n_per_class=60", "--set", "divergence.name=kl",
                 "--set", "task1.lr_d=1e30", "--set", "task1.lr_g=1e30"])
    assert code == 2
    line = _error_line(capsys)
    assert "stage task1" in line and "step" in line
    assert list(tmp_path.iterdir()) == []


def test_help_explains_every_subcommand(capsys):
    # the module runs as a program; the subcommands' help is the same parser, asked in this process
    text = subprocess.run([sys.executable, "-m", "omasgan.cli", "--help"], capture_output=True, text=True, check=True).stdout
    assert "usage: omasgan" in text
    for args in (["run", "--help"], ["score", "--help"], ["config", "--help"]):
        with pytest.raises(SystemExit) as stop:
            main(args)
        assert stop.value.code == 0
        text = capsys.readouterr().out
        assert f"usage: omasgan {args[0]}" in text
        if args[0] == "run":
            for option in ("--dataset", "--protocol", "--holdout", "--seed", "--config", "--set", "--data-root",
                           "--out", "--device"):
                assert option in text


def test_config_command_prints_resolved_config(capsys):
    assert main(["config", "--dataset", "mnist", "--set", "task2.mu=0.5", "--format", "json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["task2"]["mu"] == 0.5 and document["network"]["kind"] == "dcgan"


def test_variants_run_prints_the_alarm_and_the_saved_model_scores_like_the_run(tmp_path, capsys):
    from omasgan.config import OMASGANConfig
    from omasgan.model_folder import SavedModel
    from omasgan.run import load_run_data

    out = tmp_path / "variants"
    assert main(["run", "--dataset", "synthetic", "--holdout", "0", "--out", str(out), "--quiet",
                 "--set", "data.synthetic_n_per_class=60", *FAST, "--set", "task2.boundaries=2",
                 "--set", "j.refine_steps=1", "--set", "j.score=fusion", "--alarm-threshold", "0.5"]) == 0
    printed = capsys.readouterr().out.splitlines()
    alarm = [line for line in printed if line.startswith("shortcut alarm")]
    assert len(alarm) == 2 and "Task 2's B(z)" in alarm[0] and "refined" in alarm[1]
    warnings = [line for line in printed if line.startswith("WARNING: shortcut")]
    assert len(warnings) == 1 and "> 0.5" in warnings[0]
    document = json.loads((out / "metrics.json").read_text())
    assert {"ink_auroc", "contrast_auroc", "nn_auroc"} <= set(document["alarm"]["task2"])
    assert "ink_spearman" in document["alarm"]["j"] and document["final_score"]["mode"] == "fusion"
    model = SavedModel(out)
    config = OMASGANConfig.from_dict(json.loads((out / "config.json").read_text()))
    splits = load_run_data(config, model.device)
    np.testing.assert_array_equal(model.scorer(splits.test_x).numpy(), np.load(out / "scores.npz")["final_test"])


def test_no_warning_below_the_threshold_and_a_bad_threshold_is_refused(capsys):
    from omasgan.cli import alarm_lines

    lines = alarm_lines({"task2": {"ink_auroc": 0.2, "contrast_auroc": 0.5, "nn_auroc": 0.6}}, 0.9)
    assert len(lines) == 1 and not any(line.startswith("WARNING") for line in lines)
    lines = alarm_lines({"task2": {"ink_auroc": 0.05, "contrast_auroc": 0.5, "nn_auroc": 0.6}}, 0.9)
    assert lines[-1].startswith("WARNING: shortcut: ink (task2: 0.050)")
    with pytest.raises(SystemExit):
        main(["run", "--alarm-threshold", "0.3"])
    assert "out of range" in capsys.readouterr().err


def test_config_command_shows_the_variant_switches(capsys):
    assert main(["config", "--dataset", "digits", "--set", "task2.boundaries=3", "--format", "json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["task2"]["boundaries"] == 3 and document["task2"]["feature_space"] == "pixel"
    assert document["j"]["refine_steps"] == 0 and document["j"]["score"] == "j"


@pytest.mark.parametrize("command", [
    ["run", "--quiet"], ["config"], ["search"], ["sensitivity", "--param", "task2.mu", "--values", "0.1"], ["seeds"],
    ["baseline", "--method", "knn"],
])
@pytest.mark.parametrize("name, content, needles", [
    ("latin1.yaml", "task2:\n  mu: 0.2  # caf\xe9\n".encode("latin-1"), ("byte 0xe9 at offset 23", "not UTF-8")),
    ("binary.json", b"\x89PNG\r\n\x1a\n\x00\x00\xff\xfe", ("byte 0x89 at offset 0", "not UTF-8")),
    ("nul.json", b'{"seed": 1}\x00\x00', ("NUL byte at offset 11",)),
    ("bom.yaml", b"\xef\xbb\xbfseed: 1\n# \xff", ("byte 0xff at offset 13", "not UTF-8")),
])
def test_a_config_file_that_is_not_utf8_is_one_error_line(command, name, content, needles, tmp_path, capsys):
    """Every command that takes --config refuses a Latin-1 or binary file in one line naming it, before
    anything is written (it was a UnicodeDecodeError traceback)."""
    path = tmp_path / name
    path.write_bytes(content)
    out = tmp_path / "out"
    where = ["--out", str(out)] if command[0] in ("run", "baseline") else (
        ["--storage", str(out)] if command[0] in ("search", "sensitivity", "seeds") else [])
    assert main([*command, "--config", str(path), *where]) == 2
    line = _error_line(capsys)
    for needle in (repr(str(path)), *needles, "must be UTF-8 JSON or YAML"):
        assert needle in line, line
    assert sorted(p.name for p in tmp_path.iterdir()) == [name]


def test_a_utf8_config_file_with_a_byte_order_mark_is_read(tmp_path, capsys):
    path = tmp_path / "bom.json"
    path.write_bytes(b"\xef\xbb\xbf" + json.dumps({"task2": {"mu": 0.3}}).encode())
    assert main(["config", "--config", str(path), "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["task2"]["mu"] == 0.3

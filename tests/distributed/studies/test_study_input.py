"""Bad input to the studies: one clear error each, before Ray starts, and nothing written."""

import json

import pytest

from omasgan.cli import main
from omasgan.distributed.studies.preparation import parse_int_list
from omasgan.errors import ConfigError

from helpers import tiny_config


@pytest.fixture
def config_file(tmp_path):
    path = tmp_path / "base.json"
    path.write_text(json.dumps(tiny_config().to_dict()))
    return path


def _fails(args, capsys, *needles):
    import ray

    code = main(args)
    err = capsys.readouterr().err
    assert code == 2, err
    assert not ray.is_initialized(), "Ray started before the input was checked"
    lines = [line for line in err.strip().splitlines() if line.startswith("omasgan: error:")]
    assert len(lines) == 1, err
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


@pytest.mark.parametrize("args, needles", [
    (["sensitivity", "--param", "task2.muu", "--values", "1,2"], ("unknown config key 'task2.muu'", "mu")),
    (["sensitivity", "--param", "network.kind", "--grid", "paper"], ("network.kind", "task2.mu")),
    (["sensitivity", "--param", "task3.alpha", "--values", "0.95"], ("admissible",)),
    (["sensitivity", "--param", "task2.mu"], ("--values", "--grid paper")),
    (["search", "--classes", ""], ("--classes is empty",)),
    (["search", "--classes", "3-1"], ("range",)),
    (["search", "--classes", "0,7"], ("[7]", "synthetic", "0, 1, 2, 3, 4")),
    (["seeds", "--seeds", "a"], ("--seeds", "'a'")),
    (["search", "--trials", "0"], ("--trials must be >= 1",)),
    (["search", "--sampler-window", "100"], ("--sampler-window", "100", ">= 250")),
    (["search", "--name", "bad/name"], ("study name", "bad/name")),
    (["seeds", "--cpus-per-unit", "0"], ("--cpus-per-unit must be > 0",)),
    (["seeds", "--max-failed-trials", "0"], ("--max-failed-trials must be >= 1",)),
    (["seeds", "--placement-timeout", "0"], ("--placement-timeout must be a number of seconds > 0",)),
    (["seeds", "--placement-timeout", "nan"], ("--placement-timeout must be a number of seconds > 0",)),
    # credentials in a storage URI would be written to study.json and printed: refused, and masked
    (["seeds", "--storage", "s3://AKIAEXAMPLE:se/cr+et@bucket/omasgan"], ("--storage s3://***@bucket/omasgan",
                                                                          "carries credentials")),
    (["seeds", "--cache", "s3://AKIAEXAMPLE:secret@bucket/cache"], ("--cache s3://***@bucket/cache",)),
])
def test_bad_study_input_is_one_error_before_ray(args, needles, config_file, tmp_path, capsys):
    storage = tmp_path / "studies"
    full = [*args[:1], "--config", str(config_file), "--storage", str(storage), *args[1:]]
    line = _fails(full, capsys, *needles)
    assert "AKIAEXAMPLE" not in line and "cr+et" not in line
    assert not storage.exists() or not any(storage.iterdir())


@pytest.mark.parametrize("name, value, needle", [
    ("OMASGAN_PLACEMENT_GRACE_S", "soon", "must be a number of seconds, e.g. 60"),
    ("OMASGAN_PLACEMENT_GRACE_S", "0", "must be > 0 seconds"),
    ("OMASGAN_PLACEMENT_GRACE_S", "nan", "must be > 0 seconds"),
    ("OMASGAN_DRIVER_LEASE_STALE_S", "-3", "must be > 0 seconds"),
])
def test_a_bad_time_setting_in_the_environment_is_one_error_before_ray(name, value, needle, config_file, tmp_path,
                                                                      capsys, monkeypatch):
    monkeypatch.setenv(name, value)
    storage = tmp_path / "studies"
    _fails(["seeds", "--config", str(config_file), "--storage", str(storage)], capsys, f"{name}={value!r}", needle)
    assert not storage.exists() or not any(storage.iterdir())


def test_resume_of_a_folder_without_a_study(config_file, tmp_path, capsys):
    (tmp_path / "studies" / "ghost").mkdir(parents=True)
    _fails(["search", "--resume", "--name", "ghost", "--storage", str(tmp_path / "studies")], capsys,
           "holds no study", "ghost")
    _fails(["search", "--resume", "--storage", str(tmp_path / "studies")], capsys, "--resume needs --name")


def test_storage_that_is_not_writable(config_file, tmp_path, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    _fails(["seeds", "--config", str(config_file), "--storage", str(blocker / "studies")], capsys,
           "storage", "is not writable")


def test_a_study_name_in_use_needs_resume(config_file, tmp_path, capsys):
    from omasgan.distributed.store.study_folder import StudySpec

    StudySpec(name="taken", kind="seeds", dataset="synthetic", classes=[0], seeds=[0],
              base_config=tiny_config().to_dict()).write(tmp_path / "studies" / "taken")
    before = (tmp_path / "studies" / "taken" / "study.json").read_text()
    _fails(["seeds", "--config", str(config_file), "--storage", str(tmp_path / "studies"), "--name", "taken"],
           capsys, "already holds a study", "--resume")
    assert (tmp_path / "studies" / "taken" / "study.json").read_text() == before
    _fails(["search", "--resume", "--storage", str(tmp_path / "studies"), "--name", "taken"], capsys,
           "holds a seeds study")


def test_class_lists():
    assert parse_int_list("0-3,7,2", "--classes") == [0, 1, 2, 3, 7]
    with pytest.raises(ConfigError, match="not an integer"):
        parse_int_list("x", "--classes")


def test_results_of_a_folder_without_results(tmp_path, capsys):
    _fails(["results", str(tmp_path)], capsys, "holds no study")


def test_a_malformed_yaml_config_is_one_error_before_ray(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("task2:\n  mu: [1, 2\n")
    _fails(["search", "--config", str(bad), "--storage", str(tmp_path / "studies")], capsys,
           "bad.yaml", "is not valid YAML at line 3")
    assert not (tmp_path / "studies").exists()


@pytest.mark.parametrize("content, needle", [
    ("{not json", "not JSON"),
    ("[1, 2]", "holds a list"),
    ('{"name": "x"}', "missing ['kind'"),
    ('{"name": "x", "kind": "seeds", "dataset": "d", "classes": "0-3", "seeds": [0], "base_config": {}}',
     "classes must be a list of integers"),
    ('{"name": "x", "kind": "seeds", "dataset": "d", "classes": [0], "seeds": [0], "base_config": {}, "extra": 1}',
     "unknown keys ['extra']"),
])
def test_a_malformed_study_json_is_one_error(content, needle, tmp_path, capsys):
    folder = tmp_path / "studies" / "broken"
    folder.mkdir(parents=True)
    (folder / "study.json").write_text(content)
    line = _fails(["results", str(folder)], capsys, "study.json", "is not a valid study file", needle)
    assert "Traceback" not in line
    _fails(["seeds", "--resume", "--name", "broken", "--storage", str(tmp_path / "studies")], capsys,
           "is not a valid study file")


def test_a_foreign_parquet_file_in_the_results_is_one_error(tmp_path, capsys):
    import pyarrow as pa
    import pyarrow.parquet as pq

    from omasgan.distributed.store.study_folder import StudySpec

    folder = tmp_path / "studies" / "mixed"
    StudySpec(name="mixed", kind="seeds", dataset="synthetic", classes=[0], seeds=[0],
              base_config=tiny_config().to_dict()).write(folder)
    partition = folder / "results" / "dataset=synthetic" / "holdout_class=0" / "seed=0"
    partition.mkdir(parents=True)
    pq.write_table(pa.table({"price": [1.5, 2.5]}), partition / "prices.parquet")
    _fails(["results", str(folder)], capsys, "prices.parquet", "is not an omasgan results file", "price")
    (partition / "prices.parquet").write_text("a,b\n1,2\n")
    _fails(["report", str(folder)], capsys, "prices.parquet", "is not a Parquet file")


@pytest.mark.parametrize("target", ["javascript:alert(1)", "JavaScript:alert(1)", "java\tscript:alert(1)",
                                    " javascript:alert(1)", "data:text/html,<b>x</b>", "vbscript:x", "//evil.example"])
def test_report_links_only_to_safe_targets(target):
    from omasgan.distributed.report.page import Page, markdown_text, safe_link_target

    name = f"[click]({target})"
    assert not safe_link_target(target)
    for text in (f"study {name} ranked first", f"study `x`{name}`y`", f"*Left out: `{name}`*"):
        rendered = Page._inline(text)
        assert "<a " not in rendered, rendered
    # Markdown: outside code spans the brackets are escaped, so no viewer makes it a link
    shown = markdown_text(f"study {name} ranked first")  # tabs become spaces, '<' is escaped
    assert shown.startswith("study \\[click\\](") and shown.endswith(") ranked first")
    assert shown.count("<") == shown.count("\\<")
    assert Page._inline("see [best-config.json](best-config.json) and [docs](https://example.org/x)") == (
        'see <a href="best-config.json">best-config.json</a> and <a href="https://example.org/x">docs</a>')


def test_the_training_budget_is_a_sensitivity_parameter_like_any_other():
    """`omasgan sensitivity --param data.max_train,task1.epochs --values ...`: one trial per (parameter,
    value), each laid over the base config as an integer."""
    from omasgan.config import default_config
    from omasgan.distributed.studies.experiments import sensitivity_sweeps
    from omasgan.distributed.studies.trainable import trial_overrides

    base = default_config("digits")
    sweeps = sensitivity_sweeps(base, ["data.max_train", "task1.epochs"], [400.0, 800.0], None)
    assert [(s["param"], s["value"]) for s in sweeps] == [("data.max_train", 400.0), ("data.max_train", 800.0),
                                                         ("task1.epochs", 400.0), ("task1.epochs", 800.0)]
    config = base.with_overrides(trial_overrides({"_sweep": sweeps[1]}))
    assert config.data.max_train == 800 and isinstance(config.data.max_train, int)
    with pytest.raises(ConfigError, match="task1.epochs=2.5 has the wrong type; expected an integer"):
        sensitivity_sweeps(base, ["task1.epochs"], [2.5], None)

"""Bad input to the studies: one clear error each, before Ray starts, and nothing written."""

import json

import pytest

from omasgan.cli import main
from omasgan.distributed.studies import parse_int_list
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
    (["search", "--name", "bad/name"], ("study name", "bad/name")),
    (["seeds", "--cpus-per-unit", "0"], ("--cpus-per-unit must be > 0",)),
])
def test_bad_study_input_is_one_error_before_ray(args, needles, config_file, tmp_path, capsys):
    storage = tmp_path / "studies"
    full = [*args[:1], "--config", str(config_file), "--storage", str(storage), *args[1:]]
    _fails(full, capsys, *needles)
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
    from omasgan.distributed.study_folder import StudySpec

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

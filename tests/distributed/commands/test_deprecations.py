"""The deprecated names, options and module paths that still work until omasgan.deprecation.REMOVED_IN,
each with a warning that names the removal version and what to use instead: the names omasgan.pipeline
exported before they moved, ``--gpus-per-trial`` (now ``--gpus-per-unit``), and the module paths of
omasgan.distributed from before its split into rooms, read only to resume a study pickled under them."""

import argparse
import warnings

import pytest

from omasgan.deprecation import REMOVED_IN

PIPELINE_MOVED = {"run_stage": "omasgan.stage_runner", "evaluate_detector": "omasgan.evaluation",
                  "evaluate_stage": "omasgan.evaluation", "final_score": "omasgan.evaluation",
                  "stage_alarm": "omasgan.evaluation", "StageEvaluation": "omasgan.evaluation",
                  "DETECTOR_OF_STAGE": "omasgan.evaluation"}


@pytest.mark.parametrize("name", sorted(PIPELINE_MOVED))
def test_a_moved_pipeline_name_imports_from_its_home_with_a_warning(name):
    import importlib

    home = PIPELINE_MOVED[name]
    with pytest.warns(DeprecationWarning) as caught:
        exec(f"from omasgan.pipeline import {name} as value", namespace := {})
    assert namespace["value"] is getattr(importlib.import_module(home), name)
    message = str(caught[0].message)
    assert f"{name} from omasgan.pipeline" in message and home in message and REMOVED_IN in message
    assert caught[0].filename == "<string>"  # attributed to the importing code


def test_the_pipeline_own_names_import_without_a_warning_and_unknown_names_fail():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        from omasgan.pipeline import PipelineResult, metrics_document, run_pipeline  # noqa: F401
    import omasgan.pipeline

    with pytest.raises(AttributeError, match="no attribute 'nothing'"):
        omasgan.pipeline.nothing  # noqa: B018
    assert not set(PIPELINE_MOVED) & set(omasgan.pipeline.__all__)


def _search_parser() -> argparse.ArgumentParser:
    from omasgan.distributed.commands.studies import add_commands

    parser = argparse.ArgumentParser(prog="omasgan")
    add_commands(parser.add_subparsers(dest="command"))
    return parser


def test_gpus_per_trial_still_sets_the_gpus_per_unit_with_a_warning_line(capsys):
    parser = _search_parser()
    with pytest.warns(DeprecationWarning, match="--gpus-per-trial"):
        args = parser.parse_args(["seeds", "--gpus-per-trial", "0.5"])
    assert args.gpus_per_unit == 0.5
    err = capsys.readouterr().err
    assert err.strip() == (f"omasgan: warning: --gpus-per-trial is deprecated and will be removed in {REMOVED_IN}; "
                           "use --gpus-per-unit (the same option)")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        args = parser.parse_args(["search", "--gpus-per-unit", "0.25"])
    assert args.gpus_per_unit == 0.25 and capsys.readouterr().err == ""
    assert parser.parse_args(["sensitivity"]).gpus_per_unit is None


RESUME_CHECK = r"""
import json, sys, warnings
from omasgan.cli import build_parser
import omasgan.distributed
from omasgan.distributed.moved_modules import MovedModuleFinder

def installed():
    return any(isinstance(f, MovedModuleFinder) for f in sys.meta_path)

build_parser()  # every subcommand registered: the study system imported
result = {"after_import": installed()}
try:
    import omasgan.distributed.progress
    result["old_path_imports"] = True
except ModuleNotFoundError:
    result["old_path_imports"] = False

from ray import tune
from omasgan.distributed.studies import progress
from omasgan.distributed.studies.runner import restore_tuner

def trainable(config):
    return {"x": 1}

def write_experiment(name, module):
    # a study's tuner.pkl as the code of the time wrote it: its callback pickled under ``module``
    sys.modules[module], progress.StudyProgress.__module__ = progress, module
    try:
        tune.Tuner(trainable, run_config=tune.RunConfig(name=name, storage_path=sys.argv[1],
                                                        callbacks=[progress.StudyProgress(name, 1)]))
    finally:
        progress.StudyProgress.__module__ = progress.__name__
        if module != progress.__name__:
            del sys.modules[module]
    return f"{sys.argv[1]}/{name}"

current = write_experiment("current", progress.__name__)
old = write_experiment("old", "omasgan.distributed.progress")
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    restore_tuner("current", current, trainable, resume_errored=True, param_space=None)
    result["after_current"] = installed()
    result["current_warnings"] = len(caught)
    tuner = restore_tuner("old", old, trainable, resume_errored=True, param_space=None)
    result["after_old"] = installed()
    result["old_warnings"] = [str(w.message) for w in caught if w.category is DeprecationWarning]
result["callback"] = type(tuner._local_tuner.get_run_config().callbacks[0]).__module__
print(json.dumps(result))
"""


@pytest.mark.slow
def test_old_module_paths_are_installed_only_to_resume_a_study_pickled_under_them(tmp_path):
    """A fresh ``import omasgan.distributed`` (and every subcommand registered) installs no finder: an
    old path does not import.  Restoring a study written since the split installs nothing; restoring one
    whose tuner.pkl names an old path (written here as the old code wrote it) installs the finder, with a
    DeprecationWarning and a visible line that state the removal version, and the restore finds the
    callback as the module it became."""
    import json
    import subprocess
    import sys

    from omasgan.deprecation import REMOVED_IN

    run = subprocess.run([sys.executable, "-c", RESUME_CHECK, str(tmp_path)], capture_output=True, text=True,
                         timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]
    lines = run.stdout.strip().splitlines()
    result = json.loads(lines[-1])
    assert result["after_import"] is False and result["old_path_imports"] is False
    assert result["after_current"] is False and result["current_warnings"] == 0
    assert result["after_old"] is True and result["callback"] == "omasgan.distributed.studies.progress"
    assert len(result["old_warnings"]) == 1
    message = result["old_warnings"][0]
    assert "omasgan.distributed.progress" in message and REMOVED_IN in message and "finish this study" in message
    assert f"[old] warning: {message}" in lines
    assert not any("warning" in line for line in lines[:-1] if line.startswith("[current]"))

"""The stage cache's key follows the code: each stage's key holds the digest of the source its
training runs (found from the import graph, :mod:`omasgan.source_graph`) and of every upstream
stage's, and the runtime (torch, numpy, device type).  Edits are simulated by handing the digest
function a module's edited text (``PackageSources(replaced=...)``); nothing on disk changes."""

from __future__ import annotations

import numpy
import pytest
import torch

from omasgan.provenance import code_digest, stage_code_digests, stage_code_modules, stage_entry_modules
from omasgan.source_graph import PackageSources
from omasgan.trainables.cache import stage_cache_key

from helpers import tiny_config

STAGES = ("task1", "task2", "task3", "j")


def keys(sources: PackageSources | None = None, **options) -> dict[str, str]:
    config = tiny_config()
    code = stage_code_digests(sources) if sources is not None else None
    return {stage: stage_cache_key(config, stage, code=code, **options) for stage in STAGES}


ON_DISK = PackageSources()
"""The sources as they are (parsed once for the module)."""


def edited(module: str, extra: str = "\n# an edit\n") -> PackageSources:
    return PackageSources(replaced={module: ON_DISK.source(module).text + extra.encode()})


@pytest.fixture(scope="module")
def base() -> dict[str, str]:
    return keys(ON_DISK)


def changed(before: dict[str, str], after: dict[str, str]) -> list[str]:
    return [stage for stage in STAGES if before[stage] != after[stage]]


@pytest.mark.parametrize("module, expected", [
    ("omasgan.stages.task1", ["task1", "task2", "task3", "j"]),
    ("omasgan.stages.task2", ["task2", "task3", "j"]),
    ("omasgan.stages.feature_space", ["task2", "task3", "j"]),  # imported by task2 only
    ("omasgan.stages.task3", ["task3", "j"]),
    ("omasgan.stages.final_j", ["j"]),
    ("omasgan.stages.refine", ["j"]),  # imported by final_j only
])
def test_an_edit_to_a_stage_changes_its_key_and_the_downstream_keys_only(base, module, expected):
    assert base == keys()  # the process's own digests are those of the files on disk
    assert changed(base, keys(edited(module))) == expected


@pytest.mark.parametrize("module", ["omasgan.networks.mlp", "omasgan.stages.common", "omasgan.divergences",
                                    "omasgan.data.splits", "omasgan.checkpoint", "omasgan.stage_runner"])
def test_an_edit_to_a_module_every_stage_runs_changes_every_key(base, module):
    assert changed(base, keys(edited(module))) == list(STAGES)


def test_an_edit_outside_the_training_code_changes_no_key_but_the_package_digest(base):
    whole = code_digest(ON_DISK)
    for module in ("omasgan.evaluation", "omasgan.distributed.commands.doctor"):
        sources = edited(module)
        assert changed(base, keys(sources)) == [], module
        assert code_digest(sources) != whole, module


def test_a_new_helper_module_enters_the_key_of_the_stage_that_imports_it():
    """No list names the modules: a helper Task 3 starts importing is part of Task 3's (and J's) code."""
    task3 = ON_DISK.source("omasgan.stages.task3").text + b"\nfrom .new_helper import NEW_CONSTANT\n"
    helper = "omasgan.stages.new_helper"
    first = PackageSources(replaced={"omasgan.stages.task3": task3, helper: "NEW_CONSTANT = 1\n"})
    second = PackageSources(replaced={"omasgan.stages.task3": task3, helper: "NEW_CONSTANT = 2\n"})
    assert helper in stage_code_modules(first)["task3"] and helper not in stage_code_modules(first)["task2"]
    assert changed(keys(first), keys(second)) == ["task3", "j"]


def test_the_entry_points_are_read_from_run_stage():
    """The modules each stage's branch of ``run_stage`` calls into, through the re-exports of
    ``omasgan.stages``: Task 3 and J also draw boundary samples through ``stages.union``."""
    assert stage_entry_modules(ON_DISK) == {
        "task1": ["omasgan.stages.task1"], "task2": ["omasgan.stages.task2"],
        "task3": ["omasgan.stages.task3", "omasgan.stages.union"],
        "j": ["omasgan.stages.final_j", "omasgan.stages.union"],
    }
    # a runner whose Task 1 branch also calls a function of stages.refine: Task 1's code includes refine
    runner = ON_DISK.source("omasgan.stage_runner").text.decode()
    runner = runner.replace("from .stages.union import boundary_sampler",
                            "from .stages.union import boundary_sampler\nfrom .stages.refine import holdout_split")
    runner = runner.replace("return train_task1(", "holdout_split\n        return train_task1(")
    sources = PackageSources(replaced={"omasgan.stage_runner": runner})
    assert stage_entry_modules(sources)["task1"] == ["omasgan.stages.refine", "omasgan.stages.task1"]
    assert "omasgan.stages.refine" in stage_code_modules(sources)["task1"]


def test_a_runner_without_a_branch_for_a_stage_is_refused():
    runner = ON_DISK.source("omasgan.stage_runner").text.decode().replace('stage == "task2"', 'stage == "x"')
    with pytest.raises(LookupError, match="task2"):
        stage_entry_modules(PackageSources(replaced={"omasgan.stage_runner": runner}))


def test_line_endings_do_not_change_a_digest_but_any_other_byte_does():
    text = ON_DISK.source("omasgan.stages.task3").text
    base = stage_code_digests(ON_DISK)
    assert stage_code_digests(PackageSources(replaced={"omasgan.stages.task3": text.replace(b"\n", b"\r\n")})) == base
    assert stage_code_digests(PackageSources(replaced={"omasgan.stages.task3": text + b" "}))["task3"] != base["task3"]


def test_another_torch_or_numpy_version_or_device_type_changes_every_key(monkeypatch):
    base = keys()
    monkeypatch.setattr(torch, "__version__", torch.__version__ + ".post1")
    assert changed(base, keys()) == list(STAGES)
    monkeypatch.undo()
    assert keys() == base
    monkeypatch.setattr(numpy, "__version__", "0.0.1")
    assert changed(base, keys()) == list(STAGES)
    monkeypatch.undo()
    assert changed(base, keys(device="cuda")) == list(STAGES)
    assert keys(device=torch.device("cpu")) == base


def test_the_package_digest_covers_every_installed_folder_of_the_namespace():
    modules = ON_DISK.all_modules()
    for name in ("omasgan.stages.task1", "omasgan.trainables.cache", "omasgan.search_spaces",
                 "omasgan.distributed.commands.doctor", "omasgan.distributed.moved_modules"):
        assert name in modules, name
    assert len(code_digest()) == 64 and code_digest() == code_digest(PackageSources())

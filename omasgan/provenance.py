"""What a result depends on besides its config: library versions, the release tag, and digests of
the code that computes each stage and of the whole package.

- :func:`stage_code_digests`: per stage, the sha256 of the source files of the modules its training
  runs (:func:`stage_code_modules`), found from the import graph (:mod:`omasgan.source_graph`), not
  from a list kept by hand, so a new helper module a stage imports enters by itself.  The stage cache
  keys a stage by its own digest and those of the stages upstream of it.
- :func:`code_digest`: the sha256 of every module of the ``omasgan`` namespace (core, trainables,
  search spaces, distributed); ``omasgan doctor`` compares it between nodes, and every checkpoint and
  result row records it (``versions["omasgan_code"]``).
- :func:`stage_runtime`: the libraries and device kind a stage's numbers depend on besides the code.

Digests hash file contents with only line endings normalised, and are computed once per process.
"""

from __future__ import annotations

import ast
import hashlib
import platform
import sys
from collections.abc import Iterable
from importlib import metadata
from typing import Any

from . import __version__
from .source_graph import PackageSources
from .vocabulary import STAGES

CODE_VERSION = f"omasgan-{__version__}"
"""The release tag, for display.  What identifies the code is :func:`code_digest` (the whole
package) and :func:`stage_code_digests` (per stage, in the stage cache's key)."""

STAGE_RUNNER = "omasgan.stage_runner"
"""The module whose ``run_stage`` trains one stage: its own file is part of every stage's code, and
the functions each stage's branch of ``run_stage`` calls are that stage's entry points."""

SHARED_STAGE_ROOTS = ("omasgan.data", "omasgan.checkpoint")
"""What every stage's output depends on besides its own training code: the data it trains on
(:func:`omasgan.data.load_splits`) and the payload a stage is stored as (:mod:`omasgan.checkpoint`)."""


def _run_stage_branches(sources: PackageSources) -> dict[str, set[str]]:
    """For each ``if stage == "<name>":`` branch of ``run_stage``, the names the branch uses."""
    tree = sources.tree(STAGE_RUNNER)
    function = next((node for node in tree.body if isinstance(node, ast.FunctionDef) and node.name == "run_stage"),
                    None)
    if function is None:
        raise LookupError(f"{STAGE_RUNNER} has no function run_stage")
    branches: dict[str, set[str]] = {}
    for node in ast.walk(function):
        test = node.test if isinstance(node, ast.If) else None
        if (isinstance(test, ast.Compare) and isinstance(test.left, ast.Name) and test.left.id == "stage"
                and len(test.ops) == 1 and isinstance(test.ops[0], ast.Eq)
                and isinstance(test.comparators[0], ast.Constant) and isinstance(test.comparators[0].value, str)):
            names = {n.id for statement in node.body for n in ast.walk(statement) if isinstance(n, ast.Name)}
            branches.setdefault(test.comparators[0].value, set()).update(names)
    return branches


def stage_entry_modules(sources: PackageSources) -> dict[str, list[str]]:
    """Per stage, the modules defining what ``run_stage``'s branch for that stage calls: for
    ``train_task3(..., boundary_sampler(...), ...)`` that is ``omasgan.stages.task3`` (through the
    re-export in ``omasgan.stages``) and ``omasgan.stages.union``."""
    imported: dict[str, str] = {}
    for node in sources.tree(STAGE_RUNNER).body:
        if isinstance(node, ast.ImportFrom):
            base = sources.resolve(STAGE_RUNNER, node.module, node.level)
            if sources.get(base) is not None:
                for alias in node.names:
                    imported[alias.asname or alias.name] = sources.defining_module(base, alias.name)
    branches = _run_stage_branches(sources)
    missing = [stage for stage in STAGES if not branches.get(stage, set()) & imported.keys()]
    if missing:
        raise LookupError(f"{STAGE_RUNNER}.run_stage has no branch that calls an omasgan function for stage(s) "
                          f"{', '.join(missing)}")
    return {stage: sorted({imported[name] for name in branches[stage] if name in imported}) for stage in STAGES}


def stage_code_modules(sources: PackageSources | None = None) -> dict[str, list[str]]:
    """Per stage, the modules whose source its digest covers: the stage runner's file, the import
    closure of the stage's entry modules (:func:`stage_entry_modules`) and that of
    :data:`SHARED_STAGE_ROOTS`.  The runner's own imports are not followed (it imports every stage)."""
    sources = sources or PackageSources()
    shared = sources.closure(SHARED_STAGE_ROOTS)
    entries = stage_entry_modules(sources)
    return {stage: sorted({STAGE_RUNNER} | shared | sources.closure(entries[stage])) for stage in STAGES}


def digest_of_modules(sources: PackageSources, modules: Iterable[str]) -> str:
    """sha256 (hex) over the modules' names and the sha256 of each one's source text."""
    digest = hashlib.sha256()
    for name in sorted(set(modules)):
        digest.update(f"{name}\0{hashlib.sha256(sources.source(name).text).hexdigest()}\n".encode())
    return digest.hexdigest()


_MEMO: dict[str, Any] = {}


def stage_code_digests(sources: PackageSources | None = None) -> dict[str, str]:
    """Per stage, the digest of its code (:func:`stage_code_modules`); computed once per process
    for the installed code (``sources=None``), every call for given ``sources``."""
    if sources is None:
        if "stages" not in _MEMO:
            _MEMO["stages"] = stage_code_digests(PackageSources())
        return dict(_MEMO["stages"])
    return {stage: digest_of_modules(sources, modules) for stage, modules in stage_code_modules(sources).items()}


def code_digest(sources: PackageSources | None = None) -> str:
    """The digest of every module of the ``omasgan`` namespace
    (:meth:`~omasgan.source_graph.PackageSources.all_modules`); computed once per process for the
    installed code."""
    if sources is None:
        if "package" not in _MEMO:
            _MEMO["package"] = code_digest(PackageSources())
        return _MEMO["package"]
    return digest_of_modules(sources, sources.all_modules())


def stage_runtime(device: Any = "cpu") -> dict[str, Any]:
    """The libraries and device kind a trained stage's numbers depend on besides the code and the
    config: torch's version (a pip wheel's carries its CUDA build, ``+cu128``), numpy's (the data
    splits draw from ``numpy.random.Generator`` streams, which numpy does not promise to keep across
    versions), the device type (``cpu`` or ``cuda``: different kernels, TF32 convolutions on CUDA), and
    on CUDA the CUDA and cuDNN versions torch runs with.  The GPU model is not in it: CUDA training is
    not bit-for-bit repeatable on one GPU either (atomics, cuDNN's algorithm choice)."""
    import numpy
    import torch

    kind = torch.device(device).type
    runtime: dict[str, Any] = {"torch": torch.__version__, "numpy": numpy.__version__, "device": kind}
    if kind == "cuda":
        runtime["cuda"] = torch.version.cuda
        runtime["cudnn"] = torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None
    return runtime


def library_versions() -> dict[str, str]:
    """Versions of Python and of the libraries a result depends on, and ``omasgan_code``: the
    digest of the package's code (:func:`code_digest`)."""
    versions = {"python": sys.version.split()[0], "omasgan": __version__, "omasgan_code": code_digest(),
                "platform": platform.platform()}
    for name in ("torch", "torchvision", "numpy", "scikit-learn"):
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "absent"
    return versions

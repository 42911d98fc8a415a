"""Old module paths of ``omasgan.distributed``, read only to resume a study pickled under them.

Tune pickles a study's experiment state (its trainable, callbacks and searcher) by module path, so a
study folder written before ``distributed/`` was split into rooms names modules that no longer exist
(``omasgan.distributed.progress``, ``omasgan.distributed.study_trainable``, ...).  Resuming such a
study unpickles those paths, and Tune never rewrites ``tuner.pkl``, so the study names them until it
ends.  :func:`install_for` looks for them in the pickled state of the experiment about to be restored
and, only when it finds one, adds a finder that answers each old path with the module it became (and
warns that this works until :data:`omasgan.deprecation.REMOVED_IN`).  Importing ``omasgan.distributed``
installs nothing; nothing new should import the old paths.  A finished study's results (Parquet,
``study.json``, the Optuna journal) are read without unpickling anything.

This module imports no room of ``omasgan.distributed``: the finder imports a module it answers with
only when an old path is asked for.
"""

from __future__ import annotations

import binascii
import fnmatch
import importlib
import importlib.abc
import importlib.util
import os
import re
import sys

from omasgan.deprecation import deprecated

PACKAGE = "omasgan.distributed"

MOVED = {
    "study_control": "studies.control",
    "study_runner": "studies.runner",
    "study_trainable": "studies.trainable",
    "units": "studies.units",
    "capacity": "studies.capacity",
    "journal_search": "studies.journal_search",
    "progress": "studies.progress",
    "confirmation": "studies.confirmation",
    "baseline_study": "studies.baseline",
    "objective": "analysis.objective",
    "statistics": "analysis.statistics",
    "tables": "analysis.tables",
    "study_folder": "store.study_folder",
    "result_store": "store.result_store",
    "trial_record": "store.trial_record",
    "result_query": "store.result_query",
    "compaction": "store.compaction",
    "report_cli": "commands.report",
    "report_tables": "report.tables",
    "report_figures": "report.figures",
    "report_page": "report.page",
    "report_alarm": "report.alarm",
    "compare": "report.compare",
    "studies_cli": "commands.studies",
    "cache_cli": "commands.cache",
    "doctor": "commands.doctor",
}
"""Old module (under ``omasgan.distributed``) -> the module it is now (same names inside)."""


class _Alias(importlib.abc.Loader):
    def __init__(self, target: str):
        self.target = target

    def create_module(self, spec):
        return importlib.import_module(self.target)  # the module itself, registered under the old name too

    def exec_module(self, module) -> None:
        pass


class MovedModuleFinder(importlib.abc.MetaPathFinder):
    """Finds ``omasgan.distributed.<old>`` as the module it moved to (see :data:`MOVED`)."""

    def find_spec(self, fullname, path=None, target=None):
        prefix = PACKAGE + "."
        if not fullname.startswith(prefix) or fullname[len(prefix):] not in MOVED:
            return None
        return importlib.util.spec_from_loader(fullname, _Alias(f"{prefix}{MOVED[fullname[len(prefix):]]}"))


def install() -> None:
    """Add the finder once (idempotent)."""
    if not any(isinstance(finder, MovedModuleFinder) for finder in sys.meta_path):
        sys.meta_path.append(MovedModuleFinder())


PICKLED_STATE = ("tuner.pkl", "searcher-state-*.pkl", "callback-states-*.pkl", "experiment_state-*.json",
                 "search_gen_state-*.json", "basic-variant-state-*.json")
"""The files of a Tune experiment's folder that ``Tuner.restore`` unpickles, or that hold pickles
(hex-encoded, in the JSON files)."""
_OLD_PATH = re.compile(rb"omasgan\.distributed\.(" + b"|".join(re.escape(o.encode()) for o in MOVED)
                       + rb")(?![A-Za-z0-9_])")
_HEX_RUN = re.compile(rb"[0-9a-f]{32,}")


def _state_files(experiment_path: str):
    """The contents of the ``PICKLED_STATE`` files directly in ``experiment_path`` (a folder or a URI)."""
    import pyarrow.fs as pafs

    if "://" in experiment_path:
        fs, root = pafs.FileSystem.from_uri(experiment_path)
    else:
        fs, root = pafs.LocalFileSystem(), os.path.abspath(experiment_path)
    for info in fs.get_file_info(pafs.FileSelector(root, allow_not_found=True)):
        if info.type == pafs.FileType.File and any(fnmatch.fnmatch(info.base_name, p) for p in PICKLED_STATE):
            with fs.open_input_file(info.path) as handle:
                yield handle.readall()


def old_paths_in(experiment_path: str) -> list[str]:
    """The old module paths (``omasgan.distributed.<old>``, see :data:`MOVED`) that the pickled state of
    the Tune experiment at ``experiment_path`` names, sorted; [] for a study written since the split."""
    found = set()
    for data in _state_files(experiment_path):
        found.update(m.group(1).decode() for m in _OLD_PATH.finditer(data))
        for run in _HEX_RUN.finditer(data):  # Tune's JSON state holds cloudpickles as hex strings
            pickled = binascii.unhexlify(run.group()[: len(run.group()) // 2 * 2])
            found.update(m.group(1).decode() for m in _OLD_PATH.finditer(pickled))
    return [f"{PACKAGE}.{old}" for old in sorted(found)]


def install_for(experiment_path: str) -> str | None:
    """Before ``Tuner.restore(experiment_path)``: when its pickled state names an old module path, add
    the finder (:func:`install`) and warn (``DeprecationWarning``) that old paths are read until
    :data:`omasgan.deprecation.REMOVED_IN`; returns that warning's text, for a visible line, or None
    (nothing installed) when the state names no old path."""
    names = old_paths_in(experiment_path)
    if not names:
        return None
    install()
    return deprecated(f"resuming a study whose Tune state was pickled before omasgan.distributed was split into "
                      f"rooms (it names {', '.join(names)})",
                      "finish this study with the current version (its results stay readable afterwards), "
                      "or run it anew", stacklevel=2)

"""Old module paths of ``omasgan.distributed``, kept importable for what was pickled under them.

Tune pickles a study's experiment state (its trainable, callbacks and searcher) by module path, so a
study folder written before ``distributed/`` was split into rooms names modules that no longer exist
(``omasgan.distributed.progress``, ``omasgan.distributed.study_trainable``, ...).  Resuming such a
study, or reading a finished one again, unpickles those paths.  :func:`install` adds a finder that
answers an old path with the module it became; nothing new should import the old paths.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys

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

"""The distributed study system (installed as ``omasgan.distributed``), in five rooms:

- :mod:`.store`: what a study leaves on disk: its folder and ``study.json``, the versioned,
  hive-partitioned Parquet result store, the trials' durable records, compaction and queries
- :mod:`.analysis`: how a study's rows become numbers: the objective's aggregates, the one ranking of a
  search's trials, the statistics, and the printed tables
- :mod:`.studies`: the ``search``, ``sensitivity``, ``seeds`` and ``baseline`` studies on Ray Tune (and
  Optuna), unit by unit, and the confirmation of a search's winners
- :mod:`.report`: the report page of studies' results, and the paired comparison of two configs
- :mod:`.commands`: every study subcommand's arguments and handler, which :mod:`.cli` registers

Each room imports only the rooms listed before it.  Names are imported on first use, so
``omasgan --help`` does not load pyarrow, sklearn or Ray.  :mod:`.moved_modules` reads study folders
pickled before the split into rooms (installed only when such a folder is resumed).
"""

from importlib import import_module

_EXPORTS = {
    "SCHEMA_VERSION": "store.result_schema", "ResultStore": "store.result_store", "UnitKey": "store.result_store",
    "dataset_schema": "store.result_store", "result_schema": "store.result_schema",
    "score_schema": "store.result_schema", "StudySpec": "store.study_folder",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

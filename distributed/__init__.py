"""The distributed study system (installed as ``omasgan.distributed``).

- :mod:`.studies_cli`, :mod:`.studies`, :mod:`.study_runner`, :mod:`.study_trainable`, :mod:`.units`:
  the ``search``, ``sensitivity`` and ``seeds`` studies on Ray Tune (and Optuna), unit by unit
- :mod:`.result_store`: the versioned, hive-partitioned Parquet result store
- :mod:`.study_folder`: what a study folder holds (``study.json``, journal, results)
- :mod:`.tables`, :mod:`.progress`: the printed tables and live progress
- :mod:`.report` (+ ``report_tables``, ``report_figures``, ``report_page``): ``omasgan report``
- :mod:`.baseline_study`: ``omasgan baseline`` (kNN, Isolation Forest, autoencoder) in the same store

Names are imported on first use, so ``omasgan --help`` does not load pyarrow, sklearn or Ray.
"""

from importlib import import_module

_EXPORTS = {
    "SCHEMA_VERSION": "result_store", "ResultStore": "result_store", "UnitKey": "result_store",
    "dataset_schema": "result_store", "result_schema": "result_store", "score_schema": "result_store",
    "StudySpec": "study_folder",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

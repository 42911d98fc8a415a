"""The distributed study system (installed as ``omasgan.distributed``).

Present: :mod:`.result_store`, the versioned, hive-partitioned Parquet result store.
The study runners (search, sensitivity, seeds), the `omasgan results` command and reports are
not built yet.
"""

from .result_store import SCHEMA_VERSION, ResultStore, UnitKey, dataset_schema, result_schema, score_schema

__all__ = ["SCHEMA_VERSION", "ResultStore", "UnitKey", "dataset_schema", "result_schema", "score_schema"]

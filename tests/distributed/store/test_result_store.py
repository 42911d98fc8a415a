"""The Parquet result store: rows per split, the declared schema and hive partitions read back with
plain pyarrow.dataset and pandas, atomic unique files, error rows, per-sample scores."""

import json

import pytest

import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from omasgan.distributed import SCHEMA_VERSION, ResultStore, UnitKey, dataset_schema, result_schema

from helpers import tiny_config

EVALUATION = {
    "detector": "final",
    "threshold": 0.25,
    "metrics": {
        "val": {"auroc": 0.9, "auprc": 0.5, "f1": 0.6, "precision": 0.7, "recall": 0.5, "accuracy": 0.95},
        "test": {"auroc": 0.8, "auprc": 0.4, "f1": 0.5, "precision": 0.6, "recall": 0.4, "accuracy": 0.9},
    },
}


def _key(trial="t1", holdout=3, seed=0):
    return UnitKey(study="s1", study_kind="search", trial_id=trial, dataset="digits", holdout_class=holdout, seed=seed)


def test_rows_schema_and_partitions_read_back_without_project_code(tmp_path):
    store = ResultStore(str(tmp_path))
    config = tiny_config().with_overrides({"task2.mu": 0.7})
    store.write_stage_rows(_key(), "j", config=config, evaluation=EVALUATION, wall_time_s=12.5)
    store.write_stage_rows(_key(holdout=4, seed=1), "task2", config=config, wall_time_s=3.0)
    files = sorted((tmp_path / "results").rglob("*.parquet"))
    assert [f.parent.relative_to(tmp_path / "results").as_posix() for f in files] == [
        "dataset=digits/holdout_class=3/seed=0", "dataset=digits/holdout_class=4/seed=1"]
    # plain pyarrow, hive partitioning discovered from the paths
    table = ds.dataset(str(tmp_path / "results"), format="parquet", partitioning="hive").to_table()
    assert table.num_rows == 3
    assert set(table.column("holdout_class").to_pylist()) == {3, 4}
    frame = table.to_pandas()
    final = frame[(frame.stage == "j") & (frame.split == "test")].iloc[0]
    assert final.auroc == 0.8 and final.threshold == 0.25 and final.cfg_task2_mu == 0.7
    assert final.status == "ok" and json.loads(final.config_json)["task2"]["mu"] == 0.7
    # the store's own reader gives exactly the declared schema
    read = store.read()
    assert read.schema.equals(dataset_schema(), check_metadata=False)
    assert pq.read_schema(files[0]).metadata[b"omasgan_schema_version"] == str(SCHEMA_VERSION).encode()
    assert read.filter(ds.field("seed") == 1).num_rows == 1


def test_error_rows_and_rewrites_replace_instead_of_duplicating(tmp_path):
    store = ResultStore(str(tmp_path))
    first = store.write_stage_rows(_key(), "task2", config=None, status="error", error="loss became nan")
    other = store.write_stage_rows(_key(trial="t2"), "task2", config=None, status="error", error="again")
    assert first != other
    table = store.read()
    assert table.num_rows == 2 and set(table.column("status").to_pylist()) == {"error"}
    assert table.column("auroc").to_pylist() == [None, None]
    assert sorted(table.column("error").to_pylist()) == ["again", "loss became nan"]
    # a retried unit writes the same stage again: its file is replaced, no duplicate row appears
    again = store.write_stage_rows(_key(), "task2", config=tiny_config(), wall_time_s=2.0)
    assert again == first
    table = store.read()
    assert table.num_rows == 2 and sorted(table.column("status").to_pylist()) == ["error", "ok"]
    assert not list(tmp_path.rglob("*.tmp")) and len(store.files()) == 2


def test_sweep_columns_and_samples(tmp_path):
    import numpy as np

    store = ResultStore(str(tmp_path))
    store.write_stage_rows(_key(), "j", config=tiny_config(), evaluation=EVALUATION, sweep=("task2.mu", 0.5))
    frame = store.read().to_pandas()
    assert set(frame.sweep_param) == {"task2.mu"} and set(frame.sweep_value) == {0.5}
    path = store.write_samples(_key(), {"x": np.zeros((3, 2)), "boundary": np.ones((4, 2))})
    with np.load(path) as arrays:
        assert arrays["x"].shape == (3, 2) and arrays["boundary"].shape == (4, 2)


def test_scores_table(tmp_path):
    store = ResultStore(str(tmp_path))
    store.write_scores(_key(), "final", {"val": [0.1, 0.9], "test": [0.2, 0.3, 0.8]},
                       {"val": [0, 1], "test": [0, 0, 1]})
    table = store.read("scores")
    assert table.num_rows == 5 and table.column("score").to_pylist()[-1] == 0.8
    assert set(table.column("split").to_pylist()) == {"val", "test"}


def test_every_config_key_has_a_typed_column():
    schema = result_schema()
    flat = tiny_config().flat()
    for key in flat:
        assert f"cfg_{key.replace('.', '_', 1)}" in schema.names, key
    assert schema.field("cfg_task2_mu").type == pa.float64()
    assert schema.field("cfg_task1_epochs").type == pa.int64()
    assert schema.field("cfg_network_spectral_norm").type == pa.bool_()
    assert schema.field("cfg_data_label_column").type == pa.string()


def test_duckdb_and_polars_read_the_dataset_with_no_project_code(tmp_path):
    duckdb = pytest.importorskip("duckdb")
    polars = pytest.importorskip("polars")
    store = ResultStore(str(tmp_path))
    config = tiny_config().with_overrides({"task2.mu": 0.7})
    store.write_stage_rows(_key(), "j", config=config, evaluation=EVALUATION, wall_time_s=12.5)
    store.write_stage_rows(_key(trial="t2", holdout=4, seed=1), "j", config=config, evaluation=EVALUATION)
    pattern = f"{tmp_path}/results/**/*.parquet"
    rows = duckdb.sql(f"select holdout_class, seed, split, auroc, cfg_task2_mu from read_parquet('{pattern}', "
                      f"hive_partitioning=true) order by trial_id, split").fetchall()
    assert rows == [(3, 0, "test", 0.8, 0.7), (3, 0, "val", 0.9, 0.7), (4, 1, "test", 0.8, 0.7), (4, 1, "val", 0.9, 0.7)]
    frame = polars.read_parquet(pattern, hive_partitioning=True)
    assert frame.height == 4 and set(frame["holdout_class"].to_list()) == {3, 4}
    assert set(dataset_schema().names) <= set(frame.columns)


def test_alarm_columns_are_typed_and_filled_from_the_stage_alarm(tmp_path):
    from omasgan.distributed.store.result_schema import ALARM_COLUMNS

    schema = result_schema()
    assert ALARM_COLUMNS == ("alarm_ink_auroc", "alarm_contrast_auroc", "alarm_nn_auroc", "alarm_ink_spearman")
    for column in ALARM_COLUMNS:
        assert schema.field(column).type == pa.float64()
    assert schema.field("cfg_task2_boundaries").type == pa.int64()
    assert schema.field("cfg_task2_feature_space").type == pa.string()
    assert schema.field("cfg_j_score").type == pa.string()
    store = ResultStore(str(tmp_path))
    config = tiny_config()
    store.write_stage_rows(_key(), "task2", config=config, wall_time_s=1.0,
                           alarm={"ink_auroc": 0.1, "contrast_auroc": 0.6, "nn_auroc": 0.97})
    store.write_stage_rows(_key(), "j", config=config, evaluation=EVALUATION, alarm={"ink_spearman": -0.8})
    frame = store.read().to_pandas().set_index(["stage", "split"], drop=False)
    task2 = frame.loc[("task2", None)] if ("task2", None) in frame.index else frame[frame.stage == "task2"].iloc[0]
    assert (task2.alarm_ink_auroc, task2.alarm_contrast_auroc, task2.alarm_nn_auroc) == (0.1, 0.6, 0.97)
    assert task2.cfg_task2_boundaries == 1 and task2.cfg_j_score == "j"
    j_rows = frame[frame.stage == "j"]
    assert list(j_rows.alarm_ink_spearman) == [-0.8, -0.8] and j_rows.alarm_ink_auroc.isna().all()


def test_files_written_before_the_alarm_still_read(tmp_path):
    """A version-1 file (no alarm columns, no variant config columns) reads next to a new one; the
    missing columns come back as nulls."""
    from omasgan.distributed.store.result_schema import ALARM_COLUMNS

    store = ResultStore(str(tmp_path))
    new = store.write_stage_rows(_key(trial="new"), "task2", config=tiny_config(), alarm={"ink_auroc": 0.2})
    old_path = tmp_path / "results/dataset=digits/holdout_class=3/seed=0/s1.old.omasgan.task2.parquet"
    table = pq.read_table(new)
    dropped = [c for c in table.column_names
               if c in ALARM_COLUMNS or c.startswith(("cfg_task2_boundaries", "cfg_task2_diversity",
                                                      "cfg_task2_feature_space", "cfg_task2_ae_", "cfg_j_refine_",
                                                      "cfg_j_score", "cfg_j_fusion_scaling"))]
    assert len(dropped) == 4 + 7 + 9  # alarm; task2 variant keys; j variant keys
    old = table.drop_columns(dropped).set_column(0, "schema_version", pa.array([1], pa.int32()))
    old = old.set_column(old.column_names.index("trial_id"), "trial_id", pa.array(["old"]))
    pq.write_table(old.replace_schema_metadata({b"omasgan_schema_version": b"1"}), old_path)
    read = store.read().to_pandas().set_index("trial_id")
    assert sorted(read.index) == ["new", "old"]
    assert read.loc["new", "alarm_ink_auroc"] == 0.2 and read.loc["new", "schema_version"] == SCHEMA_VERSION == 2
    assert read.loc["old", "schema_version"] == 1
    for column in ALARM_COLUMNS + ("cfg_task2_boundaries", "cfg_j_score"):
        assert read.loc["old", column] is None or read.loc["old", column] != read.loc["old", column], column
    # pandas with no project code reads both too
    import pandas as pd

    assert len(pd.read_parquet(tmp_path / "results")) == 2

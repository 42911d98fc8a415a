"""`omasgan results` with its filter and group-by pushed down to the Parquet scan: `--where` selects
exactly the rows pandas' `DataFrame.query` selects (missing values included), bad filters are one-line
errors, and the summary equals the pandas summary of all rows, before and after compaction."""

import numpy as np
import pandas as pd
import pytest

from omasgan.cli import main
from omasgan.distributed import ResultStore, UnitKey
from omasgan.distributed.store.compaction import compact_store
from omasgan.distributed.store.result_query import parse_where, summary
from omasgan.distributed.store.study_folder import StudySpec
from omasgan.distributed.analysis.tables import summary_table
from omasgan.errors import ConfigError

from helpers import tiny_config

KEY = ["study", "trial_id", "holdout_class", "seed", "stage", "split"]


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """Two studies' rows: ok rows of four stages, a sweep column, error rows with no split."""
    root = tmp_path_factory.mktemp("query")
    store = ResultStore(str(root))
    rng = np.random.default_rng(0)
    config = tiny_config()
    for study, kind in (("a", "search"), ("b", "sensitivity")):
        for trial in ("t0", "t1", "t2"):
            for k in (0, 1):
                for s in (0, 1):
                    key = UnitKey(study, kind, trial, "synthetic", k, s)
                    sweep = ("j.zeta", 0.1 * k) if kind == "sensitivity" else None
                    for stage, detector in (("task1", "task1"), ("task2", None), ("task3", "task3"), ("j", "final")):
                        if trial == "t2" and stage == "j" and k == 1:
                            store.write_stage_rows(key, stage, config=config, status="error", error="nan", sweep=sweep)
                            continue
                        evaluation = None
                        if detector:
                            evaluation = {"detector": detector, "threshold": 0.0, "metrics": {
                                split: {m: float(rng.uniform()) for m in
                                        ("auroc", "auprc", "f1", "precision", "recall", "accuracy")}
                                for split in ("val", "test")}}
                        store.write_stage_rows(key, stage, config=config, evaluation=evaluation, sweep=sweep,
                                               wall_time_s=float(rng.uniform(1, 9)))
    return store


def _all(store):
    return store.read().to_pandas()


WHERES = [
    "stage == 'j'",
    "split != 'test'",  # pandas: a missing split is != 'test'
    "not (split == 'test')",
    "~(split == 'val') & (seed == 0)",
    "detector in ['task1', 'final']",
    "detector not in ['task1', 'final']",
    "0.2 < auroc <= 0.8 and holdout_class == 1",
    "0.5 > auroc or status == 'error'",
    "sweep_value.isna() | (sweep_value >= 0.05)",
    "split.notna() and trial_id == ['t0', 't2']",
    "error.isnull()",
    "cfg_task2_mu > 0 and study == 'b'",
    "auroc != 0.5",
]


@pytest.mark.parametrize("where", WHERES)
def test_where_selects_what_pandas_query_selects(store, where):
    rows = _all(store)
    expected = rows.query(where).sort_values(KEY).reset_index(drop=True)
    got = store.read(filter=parse_where(where)).to_pandas().sort_values(KEY).reset_index(drop=True)
    assert len(expected) > 0
    pd.testing.assert_frame_equal(got, expected)


@pytest.mark.parametrize("where, needle", [
    ("stage = 'j'", "is not a valid expression"),
    ("stag == 'j'", "'stag' is not a column"),
    ("auroc.mean() > 0.5", "auroc.mean() is not compared with a column"),
    ("stage.str.len()", "stage.str.len() is not a supported condition"),
    ("auroc < None", "None cannot be compared with <"),
    ("stage == @x", "is not a valid expression"),
    ("auroc > seed", "seed is not a literal value"),
    ("stage in 'j'", "'j' is not a list of values"),
    ("stage == ['j', seed]", "seed is not a literal value"),
    ("auroc + 1 > 0", "is not compared with a column"),
])
def test_bad_where_is_a_one_line_error_naming_the_bad_part(where, needle):
    with pytest.raises(ConfigError) as caught:
        parse_where(where)
    message = str(caught.value)
    assert needle in message and "\n" not in message and ("use comparisons of a column" in message or "columns include" in message)


def test_summary_equals_the_pandas_summary_of_every_row_before_and_after_compaction(store, tmp_path):
    rows = _all(store)
    cases = [([], None), (["holdout_class"], None), (["seed", "sweep_value"], "trial_id != 't1'"),
             ([], "status == 'error'")]
    for compacted in (False, True):
        for by, where in cases:
            expected = summary_table(rows.query(where) if where else rows, by)
            matched, got = summary([store], by, parse_where(where) if where else None, where or "")
            assert matched == (len(rows.query(where)) if where else len(rows))
            pd.testing.assert_frame_equal(got.reset_index(drop=True), expected.reset_index(drop=True),
                                          check_dtype=False, check_exact=False, rtol=1e-12)
        if not compacted:
            compact_store(store.root)
            assert len(_all(store)) == len(rows)


def test_omasgan_results_prints_the_summary_and_rejects_bad_input(store, tmp_path, capsys):
    folder = tmp_path / "a"
    StudySpec(name="a", kind="search", dataset="synthetic", classes=[0, 1], seeds=[0, 1],
              base_config=tiny_config().to_dict(), options={"data_root": store.root}).write(folder)
    assert main(["results", str(folder), "--where", "study == 'a' and split == 'test'", "--by", "holdout_class"]) == 0
    out = capsys.readouterr().out
    rows = _all(store).query("study == 'a' and split == 'test'")
    assert out.startswith(f"{len(rows)} rows from 1 result folder(s)") and "holdout_class" in out
    assert main(["results", str(folder), "--where", "stage == 3"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "cannot be evaluated on the rows" in err[0]
    assert main(["results", str(folder), "--by", "nope"]) == 2
    assert "--by ['nope'] are not columns" in capsys.readouterr().err


def damage_data_pages(path):
    """Overwrite the data pages of every column chunk of Parquet file ``path`` with garbage, keeping its
    dictionary pages and its footer intact: the file opens (schema, row count), its data does not read."""
    import pyarrow.parquet as pq

    data = bytearray(open(path, "rb").read())
    metadata = pq.ParquetFile(path).metadata
    for group in range(metadata.num_row_groups):
        for column in range(metadata.num_columns):
            chunk = metadata.row_group(group).column(column)
            end = (chunk.dictionary_page_offset or chunk.data_page_offset) + chunk.total_compressed_size
            data[chunk.data_page_offset:end] = b"\xab" * (end - chunk.data_page_offset)
    with open(path, "wb") as handle:
        handle.write(bytes(data))
    assert pq.read_schema(path).names[0] == "schema_version" and pq.ParquetFile(path).metadata.num_rows > 0
    with pytest.raises(OSError):
        pq.read_table(path)


def _damaged_study(tmp_path, compacted):
    """A seeds study folder of two units whose second unit's j file (or, compacted, its only part) is
    damaged; returns (folder, the damaged file's path)."""
    folder = tmp_path / "damaged"
    StudySpec(name="damaged", kind="seeds", dataset="synthetic", classes=[0], seeds=[0, 1],
              base_config=tiny_config().to_dict()).write(folder)
    store = ResultStore(str(folder))
    metrics = {split: {m: 0.75 for m in ("auroc", "auprc", "f1", "precision", "recall", "accuracy")}
               for split in ("val", "test")}
    paths = [store.write_stage_rows(UnitKey("damaged", "seeds", "t0", "synthetic", 0, seed), "j",
                                    config=tiny_config(seed=seed), wall_time_s=1.0,
                                    evaluation={"detector": "final", "threshold": 0.0, "metrics": metrics})
             for seed in (0, 1)]
    if compacted:
        compact_store(str(folder))
        paths = store.files("results")
        assert len(paths) == 2 and all("/part-g" in p for p in paths)
    damage_data_pages(paths[1])
    return folder, paths[1]


@pytest.mark.parametrize("compacted", [False, True])
def test_a_damaged_data_page_is_one_error_naming_the_file(compacted, tmp_path, capsys):
    """A Parquet file whose footer reads but whose data page does not: ResultStore.read, `omasgan
    results` (with and without --where), `omasgan report` and `omasgan compare` give one line naming the
    file and what to do, and write nothing (they raised pyarrow's OSError before)."""
    folder, damaged = _damaged_study(tmp_path, compacted)
    relative = damaged[len(str(folder)):]
    todo = "compacted part" if compacted else "move it out of results/"
    with pytest.raises(ConfigError) as caught:
        ResultStore(str(folder)).read(columns=["study", "auroc"])
    assert relative in str(caught.value) and "is damaged" in str(caught.value) and todo in str(caught.value)
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    for args in (["results", str(folder)], ["results", str(folder), "--where", "seed == 1"],
                 ["report", str(folder)], ["compare", str(folder), "--a", "damaged", "--b", "damaged"]):
        assert main(args) == 2, args
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("omasgan: error: "), (args, err)
        assert relative in err[0] and "is damaged: its footer reads but its data does not" in err[0], err[0]
        assert todo in err[0] and "cannot be evaluated" not in err[0]
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before

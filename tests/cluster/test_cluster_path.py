"""The cluster path under a local Ray, with an S3-compatible server on the loopback (moto's server mode)
as the only storage the drivers share: a search whose driver is killed is resumed from a second working
folder (another "machine": nothing local carried over), a unit given a GPU that torch cannot see
raises, and ``omasgan doctor`` checks the storage and finds that GPU."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

pytest.importorskip("moto")
pytest.importorskip("boto3")
ray = pytest.importorskip("ray")

from s3_helpers import client, environment, keys, moto_server  # noqa: E402

from helpers import REPO, tiny_config  # noqa: E402

BUCKET = "omasgan-cluster"
ROWS_PER_UNIT = 7
KEY = ["trial_id", "holdout_class", "seed", "stage", "split"]


@pytest.fixture(scope="module")
def s3_ray(tmp_path_factory):
    log = tmp_path_factory.mktemp("moto") / "moto.log"
    with moto_server(log) as env, environment(env):
        client(env).create_bucket(Bucket=BUCKET)
        # one logical GPU, as on a node whose NVIDIA setup is broken: Ray hands it out, torch has no CUDA
        ray.init(num_cpus=3, num_gpus=1, include_dashboard=False, log_to_driver=False, configure_logging=False)
        try:
            yield env
        finally:
            ray.shutdown()


@pytest.fixture
def config_file(tmp_path):
    path = tmp_path / "base.json"
    path.write_text(json.dumps(tiny_config(n_per_class=150, task1__epochs=8, task2__epochs=3, task3__epochs=3,
                                           j__epochs=10).to_dict()))
    return path


def test_a_killed_search_resumes_from_a_second_working_folder(s3_ray, config_file, tmp_path, monkeypatch, capsys):
    import optuna

    from omasgan.cli import main
    from omasgan.distributed import ResultStore
    from omasgan.distributed.store.trial_record import TrialRecords

    storage = f"s3://{BUCKET}/studies"
    first, second = tmp_path / "machine-a", tmp_path / "machine-b"
    first.mkdir()
    second.mkdir()
    command = [sys.executable, "-m", "omasgan.cli", "search", "--config", str(config_file), "--classes", "0",
               "--seeds", "0", "--space", "j", "--trials", "2", "--max-concurrent", "1", "--max-failures", "1",
               "--storage", storage, "--study-dir", str(first / "studies"), "--name", "moved"]
    records = TrialRecords(f"{storage}/moved")
    driver = subprocess.Popen(command, cwd=first, env=dict(os.environ, TUNE_GLOBAL_CHECKPOINT_S="1"),
                              start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 400
        while True:  # kill once the first trial finished its last round and the second one finished a round
            assert driver.poll() is None, driver.stderr.read()[-3000:]
            assert time.time() < deadline, "the search made no progress"
            ids = records.trial_ids()
            done = [t for t in ids if "j" in (records.read(t) or {}).get("rounds", [])]
            if done and len(ids) >= 2:
                break
            time.sleep(0.3)
    finally:
        os.killpg(driver.pid, signal.SIGKILL)
        driver.wait()
    finished = set(done)
    written = ResultStore(f"{storage}/moved").read().to_pandas()
    before = written[written.trial_id.isin(finished)].set_index(KEY).created_at
    assert len(before) and "studies/moved/driver.lease" in keys(s3_ray, BUCKET, "studies/moved/")  # left by the killed driver

    # "another machine": a new working folder with nothing of the first one's; only the bucket is shared
    monkeypatch.chdir(second)
    monkeypatch.setenv("OMASGAN_DRIVER_LEASE_STALE_S", "6")  # its fence, half of it, outlasts a loaded machine's stalls
    assert main(["search", "--resume", "--name", "moved", "--storage", storage,
                 "--study-dir", str(second / "studies")]) == 0
    out = capsys.readouterr().out
    assert "took over the lease" in out and "restored the journal from" in out
    restored = next(line for line in out.splitlines() if "run options restored from study.json" in line)
    assert "--max-concurrent 1" in restored and "--max-failures 1" in restored and "--address" not in restored

    rows = ResultStore(f"{storage}/moved").read().to_pandas()
    assert rows.duplicated(KEY).sum() == 0 and set(rows.status) == {"ok"}
    assert rows.trial_id.nunique() == 2 and len(rows) == 2 * ROWS_PER_UNIT
    # the finished trial was not run again: its rows are the ones written before the kill (the study
    # compacted its files when it ended, keeping every row as it was)
    assert rows.set_index(KEY).created_at.loc[before.index].equals(before)
    counts = records.training_counts()
    for stage in ("task1", "task2", "task3"):  # shared by both trials: trained once, across the kill
        assert sum(c.get(stage, 0) for c in counts.values()) == 1, (stage, counts)
    assert {c.get("j", 0) for c in counts.values() if c.get("j")} == {1}
    # the journal: both trials complete, in this machine's copy and in the bucket's log of objects, which are equal
    from omasgan.distributed.studies.control import StudyControl

    local = second / "studies" / "moved" / "optuna-journal.log"
    assert StudyControl("moved", f"{storage}/moved").new_mirror().read() == (local.read_bytes(), False)
    journal_objects = keys(s3_ray, BUCKET, "studies/moved/optuna-journal/")
    assert journal_objects and all(k.endswith((".chunk", ".seg")) for k in journal_objects)
    assert "studies/moved/optuna-journal.log" not in keys(s3_ray, BUCKET, "studies/moved/")
    study = optuna.load_study(study_name="moved", storage=optuna.storages.JournalStorage(
        optuna.storages.journal.JournalFileBackend(str(local))))
    assert [t.state.name for t in study.trials].count("COMPLETE") == 2
    assert (second / "studies" / "moved" / "study.json").is_file()
    assert "studies/moved/driver.lease" not in keys(s3_ray, BUCKET, "studies/moved/")  # released at the end
    # the name stays taken, from any folder
    assert main(["search", "--config", str(config_file), "--name", "moved", "--storage", storage,
                 "--study-dir", str(tmp_path / "machine-c")]) == 2
    assert "already holds a study named 'moved'" in capsys.readouterr().err


def test_a_unit_given_a_gpu_that_torch_cannot_see_raises(s3_ray, monkeypatch):
    from omasgan.trainables import function_trainables
    from omasgan.trainables.function_trainables import GPUUnavailable, trial_device

    with pytest.raises(GPUUnavailable, match=r"Ray assigned GPU \[.*\] .* sees no CUDA"):
        ray.get(ray.remote(num_gpus=1)(trial_device).remote())
    assert ray.get(ray.remote(num_gpus=0)(trial_device).remote()) == "cpu"
    # logical GPUs of a test cluster: allowed to train on the CPU only when asked for
    monkeypatch.setattr(function_trainables.ray, "get_gpu_ids", lambda: [0])
    monkeypatch.setenv("OMASGAN_ALLOW_CPU_FOR_GPU", "1")
    assert trial_device() == "cpu"


def test_doctor_checks_the_storage_and_finds_the_gpu_torch_cannot_see(s3_ray, tmp_path, capsys):
    from omasgan.cli import main

    code = main(["doctor", "--storage", f"s3://{BUCKET}/doctor", "--data-root", str(tmp_path / "missing")])
    out = capsys.readouterr().out
    fails = [line for line in out.splitlines() if line.startswith("FAIL")]
    assert code == 1 and len(fails) == 3, out
    assert "Ray lists 1 GPU(s) but torch sees no CUDA device" in fails[0]
    assert "CUDA_VISIBLE_DEVICES=0 as assigned; torch sees no CUDA device" in fails[1]  # from a task given the GPU
    assert "is not a folder on this node" in fails[2]
    assert any(line.startswith("ok") and "exclusive create refused a second writer" in line for line in out.splitlines())
    assert any(line.startswith("ok") and "boto3 finds AWS credentials" in line for line in out.splitlines())
    assert "one node wrote it" in out  # one node: nothing to read back elsewhere (test_multinode has three)
    assert not keys(s3_ray, BUCKET, "doctor/")  # probes cleaned up


def test_a_joined_cluster_is_sized_by_its_autoscaler_config_on_the_head(s3_ray, monkeypatch):
    """The driver reads the node types from the head (a task pinned there), not the nodes alive now:
    this one-node Ray plays the head of cluster.yaml, whose workers do not exist yet."""
    from pathlib import Path

    from omasgan.distributed.studies.capacity import check_fit, joined_cluster_shape

    alive = joined_cluster_shape()
    assert alive.source.startswith("the nodes alive now") and len(alive.node_types) == 1
    monkeypatch.setenv("OMASGAN_AUTOSCALER_CONFIG", str(REPO / "cluster.yaml"))
    shape = joined_cluster_shape()
    assert "cluster.yaml on the head" in shape.source
    assert check_fit(shape, 2, 1, units=20, parallel_units=None) == 10  # ten g5.xlarge the autoscaler can add
    # the head offers no CPU (only drivers run there), so the trial's coordinator (0.01 CPU) sits on a worker:
    # a unit asking for all 4 of a g5.xlarge's CPUs leaves that worker without a unit
    assert check_fit(shape, 4, 1, units=20, parallel_units=None) == 9

"""The object-store path without Ray, against a real S3-compatible server (moto's server mode, on the
loopback, started here): conditional writes, two processes with separate local folders that share
only the bucket racing for one cache entry (trained once), a lock left by a killed owner taken over,
a study name in use on the bucket refused, and a second driver kept out by the lease."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("moto")
boto3 = pytest.importorskip("boto3")

from s3_helpers import client, environment, keys, moto_server  # noqa: E402

from helpers import TESTS, tiny_config, wait_until  # noqa: E402

BUCKET = "omasgan-test"


@pytest.fixture(scope="module")
def s3(tmp_path_factory):
    log = tmp_path_factory.mktemp("moto") / "moto.log"
    with moto_server(log) as env, environment(env):
        client(env).create_bucket(Bucket=BUCKET)
        yield env


def test_s3_conditional_writes(s3):
    from omasgan.trainables.storage.conditional import conditional_store

    store, base = conditional_store(f"s3://{BUCKET}/cond")
    assert type(store).__name__ == "S3ConditionalStore" and store.exclusive and base == f"{BUCKET}/cond"
    path = f"{base}/x.lock"
    first = store.create(path, b"one")
    assert first is not None and store.create(path, b"two") is None  # If-None-Match: *
    assert store.read(path).data == b"one"
    second = store.replace(path, b"three", first)
    assert second is not None and store.replace(path, b"four", first) is None  # If-Match on a stale ETag
    assert not store.delete(path, first) and store.read(path).data == b"three"
    assert store.delete(path, second) and store.read(path) is None
    assert store.replace(path, b"five", second) is None  # gone: nothing to replace


RACER = """
import json, os, sys, time
from pathlib import Path
sys.path.insert(0, {tests!r})
import torch
torch.set_num_threads(1)
from helpers import tiny_config
from omasgan.trainables.trial import FaultInjection, TrialSettings, run_trial

cache_root, ready, me = sys.argv[1:4]
config = tiny_config(n_per_class=150, task1__epochs=10)
# whoever builds pauses 5 s in its first epoch: the other one certainly arrives while the lock is held
settings = TrialSettings(base=config.to_dict(), last_stage="task1", cache_root=cache_root,
                         cache_options={{"poll_s": 0.1}}, fault=FaultInjection("task1", 1, ".", action="pause",
                                                                              pause_s=5.0))
from omasgan.trainables.cache import StageCache
from omasgan.trainables.trial import trial_splits
trial_splits(config, torch.device("cpu"))  # load the data and reach the bucket once before the start line
StageCache(cache_root).get("task1", "warm-up")
Path(ready, me).touch()
while len(os.listdir(ready)) < 2:
    time.sleep(0.005)
started = time.time()
state = run_trial({{}}, settings, lambda metrics, folder: None)
print(json.dumps({{"trained": state.trained["task1"], "cache": state.cache, "started": started, "ended": time.time()}}))
"""


def test_two_processes_sharing_only_the_bucket_train_one_entry_once(s3, tmp_path):
    root = f"s3://{BUCKET}/race/cache"
    ready = tmp_path / "ready"
    ready.mkdir()
    script = RACER.format(tests=str(TESTS))
    racers = []
    for me in ("a", "b"):
        folder = tmp_path / me  # each its own working folder: nothing shared but the bucket
        folder.mkdir()
        racers.append(subprocess.Popen([sys.executable, "-c", script, root, str(ready), me], cwd=folder,
                                       env=dict(os.environ, **s3), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                       text=True))
    results = []
    for racer in racers:
        out, err = racer.communicate(timeout=300)
        assert racer.returncode == 0, err[-3000:]
        results.append(json.loads(out.strip().splitlines()[-1]))
    assert sorted(r["trained"] for r in results) == [0, 1], results  # trained once
    # the other one found the lock taken and waited for the entry (a real race, not a late hit)
    assert sorted((r["cache"]["cache_misses"], r["cache"]["cache_waits"]) for r in results) == [(0, 1), (1, 0)], results
    stored = keys(s3, BUCKET, "race/cache/")
    assert [k for k in stored if k.endswith(".entry")] and not [k for k in stored if k.endswith(".lock")]


OWNER = """
import sys, time
from omasgan.trainables.cache import StageCache
cache = StageCache(sys.argv[1], heartbeat_s=0.2)
cache.get_or_build("task1", "k" * 64, lambda: time.sleep(600))
"""


def test_a_lock_left_by_a_killed_owner_is_taken_over(s3, tmp_path):
    from omasgan.trainables.cache import StageCache

    root = f"s3://{BUCKET}/dead/cache"
    owner = subprocess.Popen([sys.executable, "-c", OWNER, root], cwd=tmp_path, env=dict(os.environ, **s3),
                             stderr=subprocess.PIPE, text=True, start_new_session=True)
    lock = f"dead/cache/task1/{'k' * 64}.lock"
    try:
        deadline = time.time() + 120
        while lock not in keys(s3, BUCKET, "dead/"):
            assert owner.poll() is None, owner.stderr.read()
            assert time.time() < deadline, "the owner never took the lock"
            time.sleep(0.1)
        first_beat = keys(s3, BUCKET, "dead/")[lock]
        wait_until(lambda: keys(s3, BUCKET, "dead/").get(lock, first_beat) != first_beat, 30,
                   "the live owner's heartbeat does not change its lock")
    finally:
        os.killpg(owner.pid, signal.SIGKILL)
        owner.wait()
    cache = StageCache(root, stale_after_s=1.0, heartbeat_s=0.2, poll_s=0.1)
    with pytest.warns(UserWarning, match="took the lock over"):
        payload, how = cache.get_or_build("task1", "k" * 64, lambda: {"value": 7})
    assert (payload, how) == ({"value": 7}, "miss") and cache.stats.taken_over == 1
    assert lock not in keys(s3, BUCKET, "dead/") and f"dead/cache/task1/{'k' * 64}.entry" in keys(s3, BUCKET, "dead/")


@pytest.fixture
def config_file(tmp_path):
    path = tmp_path / "base.json"
    path.write_text(json.dumps(tiny_config().to_dict()))
    return path


def _one_error(capsys) -> str:
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("omasgan: error:")]
    assert len(lines) == 1, err
    return lines[0]


def test_a_name_in_use_on_the_bucket_is_refused_from_any_working_folder(s3, config_file, tmp_path, capsys):
    import ray

    from omasgan.cli import main
    from omasgan.distributed.studies.control import StudyControl
    from omasgan.distributed.store.study_folder import StudySpec

    storage = f"s3://{BUCKET}/names"
    earlier = StudySpec(name="taken", kind="seeds", dataset="synthetic", classes=[0], seeds=[0],
                        base_config=tiny_config().to_dict())
    assert StudyControl("taken", f"{storage}/taken").create_spec(earlier)
    s3_client = client(s3)
    s3_client.put_object(Bucket=BUCKET, Key="names/taken/results/dataset=synthetic/holdout_class=0/seed=0/"
                                            "taken.t1.omasgan.j.parquet", Body=b"rows of the earlier study")
    s3_client.put_object(Bucket=BUCKET, Key="names/orphaned/scores/x.parquet", Body=b"no study.json, still data")
    before = keys(s3, BUCKET, "names/taken") | keys(s3, BUCKET, "names/orphaned")
    for name, needle in (("taken", "already holds a study named 'taken'"),
                         ("orphaned", "already holds files of an earlier study")):
        code = main(["seeds", "--config", str(config_file), "--storage", storage, "--study-dir",
                     str(tmp_path / "elsewhere"), "--name", name])
        assert code == 2 and needle in _one_error(capsys)
    assert not ray.is_initialized()
    # nothing written, nothing removed (only the storage probe's directory marker "names/" may appear)
    assert keys(s3, BUCKET, "names/taken") | keys(s3, BUCKET, "names/orphaned") == before
    assert not (tmp_path / "elsewhere").exists()


def test_a_second_driver_is_kept_out_by_the_lease(s3, tmp_path, monkeypatch):
    from omasgan.distributed.studies.preparation import RunOptions, prepare_study
    from omasgan.distributed.studies.control import StudyControl
    from omasgan.distributed.store.study_folder import StudySpec
    from omasgan.errors import ConfigError

    storage = f"s3://{BUCKET}/leases"
    spec = StudySpec(name="busy", kind="seeds", dataset="synthetic", classes=[0], seeds=[0],
                     base_config=tiny_config().to_dict())
    control = StudyControl("busy", f"{storage}/busy")
    assert control.create_spec(spec)
    running = control.acquire_lease(stale_after_s=6.0)  # the first driver, alive: it refreshes every second
    monkeypatch.setenv("OMASGAN_DRIVER_LEASE_STALE_S", "6")
    try:
        resume = StudySpec(name="busy", kind="seeds", dataset="-", classes=[0], seeds=[0], base_config={})
        with pytest.raises(ConfigError, match=r"being run by another driver.*one driver per study"):
            prepare_study(resume, RunOptions(storage=storage, study_dir=str(tmp_path / "b"), resume=True))
        assert not running.lost.is_set()
    finally:
        assert running.release()
    # once the first driver is gone, the second one gets the lease
    with prepare_study(resume, RunOptions(storage=storage, study_dir=str(tmp_path / "b"), resume=True)) as study:
        assert study.lease is not None and (tmp_path / "b" / "busy" / "study.json").is_file()
    assert "leases/busy/driver.lease" not in keys(s3, BUCKET, "leases/")


def test_the_compaction_lock_on_s3_is_exclusive_and_released_by_its_owner(s3):
    from omasgan.distributed.store.compaction_lock import LOCK_FILE, CompactionBusy, StoreLock

    root = f"s3://{BUCKET}/compaction-lock"
    first, second = StoreLock(root, heartbeat_s=0.2), StoreLock(root, poll_s=0.1)  # second sees first renew
    assert type(first.conditional).__name__ == "S3ConditionalStore"
    with first:
        with pytest.raises(CompactionBusy, match="is being compacted by"):
            second.acquire()
    assert f"compaction-lock/{LOCK_FILE}" not in keys(s3, BUCKET, "compaction-lock/")
    with second:  # free again
        assert f"compaction-lock/{LOCK_FILE}" in keys(s3, BUCKET, "compaction-lock/")

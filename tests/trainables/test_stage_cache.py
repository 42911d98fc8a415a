"""The stage cache without Ray: keys (a tabular file by content), atomic entries, corruption, single
flight, dead owners taken over, the owner check on release, and ``cache ls|prune``."""

import threading
import time

import pytest

from omasgan.trainables.cache import (
    StageCache,
    StageCacheTimeout,
    decode_entry,
    encode_entry,
    stage_cache_key,
)

from helpers import tiny_config, wait_until


def test_key_depends_on_upstream_but_not_downstream_parameters():
    base = tiny_config()
    assert stage_cache_key(base, "task1") == stage_cache_key(base.with_overrides(["task2.mu=1.0"]), "task1")
    assert stage_cache_key(base, "task2") != stage_cache_key(base.with_overrides(["task2.mu=1.0"]), "task2")
    assert stage_cache_key(base, "task3") != stage_cache_key(base.with_overrides(["task1.lr_d=0.01"]), "task3")
    assert stage_cache_key(base, "task1") != stage_cache_key(base.with_overrides(["seed=1"]), "task1")
    assert stage_cache_key(base, "task1") != stage_cache_key(base.with_overrides(["data.holdout=2"]), "task1")
    # where the data lives does not change what a stage computes
    assert stage_cache_key(base, "task1") == stage_cache_key(base.with_overrides(["data.data_root=/x"]), "task1")
    assert stage_cache_key(base, "j") != stage_cache_key(base.with_overrides(["j.zeta=0.2"]), "j")


@pytest.mark.parametrize("key, value, stage", [
    ("task2.boundaries", 2, "task2"), ("task2.diversity", 3.0, "task2"), ("task2.feature_space", "critic", "task2"),
    ("task2.ae_epochs", 5, "task2"), ("j.refine_steps", 1, "j"), ("j.refine_weight", 2.0, "j"),
    ("j.refine_patience", 3, "j"), ("j.score", "fusion", "j"), ("j.fusion_scaling", "robust", "j"),
])
def test_variant_switches_are_part_of_their_stage_key_only(key, value, stage):
    base = tiny_config()
    other = base.with_overrides({key: value})
    first = ("task1", "task2", "task3", "j").index(stage)
    for upstream in ("task1", "task2", "task3", "j")[:first]:
        assert stage_cache_key(base, upstream) == stage_cache_key(other, upstream), (key, upstream)
    for downstream in ("task1", "task2", "task3", "j")[first:]:
        assert stage_cache_key(base, downstream) != stage_cache_key(other, downstream), (key, downstream)


def test_entry_round_trip_and_checksum():
    blob = encode_entry({"a": 1, "b": [1, 2]})
    assert decode_entry(blob) == {"a": 1, "b": [1, 2]}
    assert decode_entry(blob[:-3]) is None
    assert decode_entry(blob[:-3] + b"xyz") is None
    assert decode_entry(b"garbage") is None


def test_truncated_entry_is_discarded_and_rebuilt(tmp_path):
    cache = StageCache(str(tmp_path))
    cache.put("task1", "k", {"value": 1})
    path = tmp_path / "task1" / "k.entry"
    path.write_bytes(path.read_bytes()[:40])
    assert cache.get("task1", "k") is None
    assert not path.exists() and cache.stats.corrupt == 1
    payload, how = cache.get_or_build("task1", "k", lambda: {"value": 2})
    assert (payload, how) == ({"value": 2}, "miss")
    assert cache.get("task1", "k") == {"value": 2}
    # no temporary, no lock (the hidden .guard that serialises lock writes stays)
    assert sorted(p.name for p in (tmp_path / "task1").iterdir()) in (["k.entry"], [".guard", "k.entry"])


def test_single_flight_two_concurrent_callers_build_once(tmp_path, monkeypatch):
    import types

    from omasgan.trainables import cache as cache_module

    # The build returns only once the other caller is polling the held lock, however late its thread
    # starts on a loaded machine: the cache module's one sleep is its poll.
    polling = threading.Event()

    def poll_sleep(seconds):
        polling.set()
        time.sleep(seconds)

    monkeypatch.setattr(cache_module, "time", types.SimpleNamespace(monotonic=time.monotonic, sleep=poll_sleep))
    builds = []

    def build():
        builds.append(threading.get_ident())
        assert polling.wait(timeout=120), "the second caller never waited on the lock"
        return {"value": 42}

    outcomes = []
    start = threading.Barrier(2)

    def call():
        cache = StageCache(str(tmp_path), poll_s=0.05)
        start.wait()  # both ask at once
        outcomes.append(cache.get_or_build("task1", "shared", build))

    threads = [threading.Thread(target=call) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(builds) == 1
    assert sorted(how for _, how in outcomes) == ["miss", "waited"]
    assert all(payload == {"value": 42} for payload, _ in outcomes)


def test_a_dead_owners_lock_is_taken_over_after_it_stops_changing(tmp_path):
    import json

    (tmp_path / "task1").mkdir()
    lock = tmp_path / "task1" / "k.lock"
    # a heartbeat written by a clock far in the future: only the lock's changes count, not its clock
    lock.write_text(json.dumps({"owner": "node-7:1234", "beat": 3, "since": time.time() + 86400}))
    cache = StageCache(str(tmp_path), stale_after_s=0.5, heartbeat_s=0.1, poll_s=0.05)
    started = time.monotonic()
    with pytest.warns(UserWarning, match=r"node-7:1234 stopped refreshing its lock.*took the lock over"):
        payload, how = cache.get_or_build("task1", "k", lambda: {"value": 1})
    assert (payload, how) == ({"value": 1}, "miss") and time.monotonic() - started >= 0.5
    assert cache.stats.taken_over == 1 and not lock.exists()
    assert cache.get_or_build("task1", "k", lambda: {"value": 2}) == ({"value": 1}, "hit")


def test_a_lock_that_keeps_changing_is_not_taken_over(tmp_path):
    import json

    (tmp_path / "task1").mkdir()
    lock = tmp_path / "task1" / "k.lock"
    stop = threading.Event()

    def beat():  # a live owner elsewhere whose clock is far in the past
        n = 0
        while not stop.wait(0.05):
            n += 1
            lock.write_text(json.dumps({"owner": "alive", "beat": n, "since": 0}))

    lock.write_text(json.dumps({"owner": "alive", "beat": 0, "since": 0}))
    owner = threading.Thread(target=beat)
    owner.start()
    try:
        cache = StageCache(str(tmp_path), stale_after_s=0.3, heartbeat_s=0.1, wait_timeout_s=1.0, poll_s=0.05)
        with pytest.raises(StageCacheTimeout, match="alive"):
            cache.get_or_build("task1", "k", lambda: {"value": 1})
    finally:
        stop.set()
        owner.join()
    assert cache.stats.taken_over == 0 and lock.exists()


def test_release_leaves_a_lock_that_another_owner_took_over(tmp_path):
    from omasgan.trainables.storage.conditional import LocalConditionalStore
    from omasgan.trainables.storage.leases import Lease

    store = LocalConditionalStore()
    path = str(tmp_path / "x.lock")
    first = Lease(store, path, heartbeat_s=60)
    assert first.acquire()
    second = Lease(store, path, heartbeat_s=60)
    assert not second.acquire()
    assert second.take_over(first.version)  # as after first was judged dead
    assert not first.release()  # first's release must not delete second's lock
    assert store.read(path) is not None
    assert second.release() and store.read(path) is None


def test_a_heartbeat_finds_its_lease_taken_over(tmp_path):
    from omasgan.trainables.storage.conditional import LocalConditionalStore
    from omasgan.trainables.storage.leases import Lease

    store = LocalConditionalStore()
    path = str(tmp_path / "x.lock")
    first = Lease(store, path, heartbeat_s=0.05)
    assert first.acquire()
    wait_until(lambda: first.beat >= 1, 30, "the lease never renewed")
    assert not first.lost.is_set()
    second = Lease(store, path, heartbeat_s=60)
    # as a waiter that judged it stale: a take-over that races one of first's beats fails and is tried again
    wait_until(lambda: second.take_over(store.read(path).version), 30, "the lease could never be taken over")
    assert first.lost.wait(2)
    assert not first.release()


def test_exactly_one_of_many_takes_over_a_stale_lock(tmp_path):
    from omasgan.trainables.storage.conditional import LocalConditionalStore
    from omasgan.trainables.storage.leases import Lease

    store = LocalConditionalStore()
    path = str(tmp_path / "x.lock")
    assert store.create(path, b"stale") is not None
    stale = store.read(path).version
    leases = [Lease(store, path, heartbeat_s=60) for _ in range(8)]
    barrier = threading.Barrier(len(leases))
    wins = []

    def race(lease):
        barrier.wait()
        wins.append(lease.take_over(stale))

    threads = [threading.Thread(target=race, args=(lease,)) for lease in leases]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert wins.count(True) == 1
    for lease in leases:
        lease.release()


def test_tabular_key_follows_the_files_content_not_its_path(tmp_path):
    import numpy as np

    from helpers import tiny_config

    first, second = tmp_path / "a.npz", tmp_path / "b.npz"
    x, y = np.random.default_rng(0).normal(size=(40, 3)), np.repeat([0, 1], 20)
    np.savez(first, x=x, label=y)
    second.write_bytes(first.read_bytes())

    def key(path):
        config = tiny_config().with_overrides({"data.dataset": "tabular", "data.tabular_path": str(path)})
        return stage_cache_key(config, "task1")

    assert key(first) == key(second)
    before = key(first)
    np.savez(first, x=x + 1, label=y)
    assert key(first) != before


def test_cache_ls_and_prune(tmp_path, capsys):
    import os

    from omasgan.cli import main
    from omasgan.trainables.cache import list_entries

    cache = StageCache(str(tmp_path / "cache"))
    cache.put("task1", "a" * 64, {"v": 1})
    cache.put("task2", "b" * 64, {"v": 2})
    cache.put("j", "c" * 64, {"v": 3})
    damaged = tmp_path / "cache" / "j" / f"{'c' * 64}.entry"
    damaged.write_bytes(damaged.read_bytes()[:50])
    old = tmp_path / "cache" / "task1" / f"{'a' * 64}.entry"
    os.utime(old, (time.time() - 3 * 86400, time.time() - 3 * 86400))
    (tmp_path / "cache" / "task2" / f"{'d' * 64}.lock").write_text('{"owner": "builder-1"}')

    assert main(["cache", "ls", str(tmp_path)]) == 0  # a study folder: its cache/ is listed
    out = capsys.readouterr().out
    assert "3 entries" in out and "being built by builder-1" in out and "aaaaaaaaaaaaaaaa" in out

    assert main(["cache", "prune", str(tmp_path / "cache"), "--damaged", "--dry-run"]) == 0
    assert "would remove j/cccccccccccccccc" in capsys.readouterr().out and damaged.exists()
    assert main(["cache", "prune", str(tmp_path / "cache"), "--damaged"]) == 0
    assert not damaged.exists()
    assert main(["cache", "prune", str(tmp_path / "cache"), "--older-than", "2d"]) == 0
    assert not old.exists() and "removed 1 entry" in capsys.readouterr().out
    assert [i.stage for i in list_entries(str(tmp_path / "cache"))] == ["task2", "task2"]  # entry + lock
    assert main(["cache", "prune", str(tmp_path / "cache"), "--all"]) == 0
    assert [(i.stage, i.size) for i in list_entries(str(tmp_path / "cache"))] == [("task2", None)]  # the lock stays
    assert main(["cache", "prune", str(tmp_path / "cache")]) == 2
    assert "needs a selector" in capsys.readouterr().err
    assert main(["cache", "prune", str(tmp_path / "cache"), "--older-than", "soon"]) == 2
    assert "--older-than 'soon'" in capsys.readouterr().err


def test_heartbeat_keeps_a_long_build_alive(tmp_path):
    owner = StageCache(str(tmp_path), heartbeat_s=0.1, poll_s=0.05)
    waiter = StageCache(str(tmp_path), stale_after_s=0.5, poll_s=0.05)
    results = {}
    building, waiting_since = threading.Event(), []

    def slow():
        # holds the lock until the waiter has waited three stale windows: without the owner's
        # heartbeat the waiter would have taken the build over by then
        building.set()
        wait_until(lambda: waiting_since and time.monotonic() - waiting_since[0] > 3 * 0.5, 60,
                   "the waiter never started", interval=0.01)
        return {"value": 3}

    t = threading.Thread(target=lambda: results.setdefault("owner", owner.get_or_build("task2", "k", slow)))
    t.start()
    assert building.wait(60), "the owner never started its build"  # the owner holds the lock now
    waiting_since.append(time.monotonic())
    results["waiter"] = waiter.get_or_build("task2", "k", lambda: {"value": -1})
    t.join()
    assert results["owner"][1] == "miss" and results["waiter"] == ({"value": 3}, "waited")

"""The stage cache without Ray: keys, atomic entries, corruption, single flight, dead owners."""

import threading
import time

import pytest

from omasgan.trainables.cache import (
    StageCache,
    StageCacheOwnerDied,
    StageCacheTimeout,
    decode_entry,
    encode_entry,
    stage_cache_key,
)

from helpers import tiny_config


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
    assert sorted(p.name for p in (tmp_path / "task1").iterdir()) == ["k.entry"]  # no temporary, no lock


def test_single_flight_two_concurrent_callers_build_once(tmp_path):
    builds = []

    def build():
        builds.append(threading.get_ident())
        time.sleep(1.0)
        return {"value": 42}

    outcomes = []

    def call():
        cache = StageCache(str(tmp_path), poll_s=0.05)
        outcomes.append(cache.get_or_build("task1", "shared", build))

    threads = [threading.Thread(target=call) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(builds) == 1
    assert sorted(how for _, how in outcomes) == ["miss", "waited"]
    assert all(payload == {"value": 42} for payload, _ in outcomes)


def test_dead_owner_gives_a_clear_error_and_frees_the_entry(tmp_path):
    import json

    (tmp_path / "task1").mkdir()
    lock = tmp_path / "task1" / "k.lock"
    lock.write_text(json.dumps({"owner": "node-7:1234", "heartbeat": time.time() - 1000}))
    cache = StageCache(str(tmp_path), stale_after_s=5, poll_s=0.01)
    with pytest.raises(StageCacheOwnerDied, match=r"node-7:1234.*stopped refreshing its lock"):
        cache.get_or_build("task1", "k", lambda: {"value": 1})
    assert not lock.exists()
    assert cache.get_or_build("task1", "k", lambda: {"value": 1}) == ({"value": 1}, "miss")


def test_waiting_times_out(tmp_path):
    import json

    (tmp_path / "task1").mkdir()
    (tmp_path / "task1" / "k.lock").write_text(json.dumps({"owner": "busy", "heartbeat": time.time() + 3600}))
    cache = StageCache(str(tmp_path), wait_timeout_s=0.2, poll_s=0.05)
    with pytest.raises(StageCacheTimeout, match="busy"):
        cache.get_or_build("task1", "k", lambda: {"value": 1})


def test_heartbeat_keeps_a_long_build_alive(tmp_path):
    owner = StageCache(str(tmp_path), heartbeat_s=0.1, poll_s=0.05)
    waiter = StageCache(str(tmp_path), stale_after_s=0.5, poll_s=0.05)
    results = {}

    def slow():
        time.sleep(1.5)
        return {"value": 3}

    t = threading.Thread(target=lambda: results.setdefault("owner", owner.get_or_build("task2", "k", slow)))
    t.start()
    time.sleep(0.2)
    results["waiter"] = waiter.get_or_build("task2", "k", lambda: {"value": -1})
    t.join()
    assert results["owner"][1] == "miss" and results["waiter"] == ({"value": 3}, "waited")

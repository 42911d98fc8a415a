"""A driver that loses its lease stops writing before another driver can take the study over.

Unit tests of the fenced lease (renewals that fail, a clock that jumps past the fence, a process
stopped with SIGSTOP), of the study's journal log (append-only objects created exclusively: a stale
driver can neither overwrite nor insert records; snapshots keep a resume's reads few; a study's old
whole-file copy is read and moved into the log), and one search under a local Ray whose driver's
renewals start failing: it stops before its stale window has passed, and a ``--resume`` driver
completes the study with every trial intact."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pyarrow.fs as pafs
import pytest

from omasgan.trainables.storage.conditional import LocalConditionalStore
from omasgan.trainables.storage.leases import Lease, LeaseLost

from omasgan.distributed.studies.control import DriverLease, StudyControl
from omasgan.distributed.studies.journal_mirror import JournalMirror, cover, parse_name

from helpers import wait_until


class FailingRenewals(LocalConditionalStore):
    """A local store whose ``replace`` (a lease's renewal) raises once ``failing`` is set, as with
    expired credentials; it counts the calls."""

    def __init__(self) -> None:
        self.failing = threading.Event()
        self.replaces = 0

    def replace(self, path, data, version):
        self.replaces += 1
        if self.failing.is_set():
            raise PermissionError("ExpiredToken: the security token included in the request is expired")
        return super().replace(path, data, version)


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _mirror(root: Path, lease=None) -> JournalMirror:
    return JournalMirror(LocalConditionalStore(), pafs.LocalFileSystem(), str(root / "optuna-journal"),
                         legacy=str(root / "optuna-journal.log"), lease=lease)


def _append(journal: Path, *records: dict) -> None:
    with open(journal, "ab") as handle:
        for record in records:
            handle.write(json.dumps(record).encode() + b"\n")


def _wait(condition, seconds: float, what: str) -> None:
    wait_until(condition, seconds, what, interval=0.01)


# ---------------------------------------------------------------- the fenced lease


def test_a_lease_whose_renewals_fail_is_lost_within_its_fence_and_writes_nothing_after(tmp_path):
    store = FailingRenewals()
    lease = Lease(store, str(tmp_path / "driver.lease"), heartbeat_s=0.05, fence_s=0.5)
    assert lease.acquire()
    _wait(lambda: lease.beat >= 2, 5, "the lease never renewed")
    mirror = _mirror(tmp_path, lease)
    journal = tmp_path / "local.log"
    _append(journal, {"op_code": 0, "n": 0})
    assert mirror.push(journal) > 0
    written = store.read(lease.path)

    store.failing.set()
    failing_since = lease.clock()
    _wait(lease.lost.is_set, 5, "renewals fail, yet the lease is never lost")
    assert not lease.held()
    assert lease.lost_at - lease.renewed_at >= 0.5  # lost at the fence, not before ...
    assert lease.lost_at - failing_since < 0.5 + 0.5  # ... and within about a fence of the first failure
    assert "fence" in lease.lost_reason and "ExpiredToken" in lease.lost_reason
    # nothing more is written: no renewal is tried, the lock is left as it was, no journal object
    calls = store.replaces
    time.sleep(0.2)  # four heartbeats
    assert store.replaces == calls and store.read(lease.path) == written
    _append(journal, {"op_code": 4, "n": 1})
    with pytest.raises(LeaseLost, match="fence"):
        mirror.push(journal)
    assert [p.name for p in sorted((tmp_path / "optuna-journal").iterdir())] == ["000000000000.chunk"]
    assert not lease.release() and store.read(lease.path) == written


def test_a_lease_paused_past_its_fence_writes_nothing(tmp_path):
    clock = Clock()
    store = LocalConditionalStore()
    lease = Lease(store, str(tmp_path / "driver.lease"), heartbeat_s=9, fence_s=10, clock=clock)
    assert lease.acquire()
    driver = DriverLease(lease, "study", "s3://bucket/study/driver.lease", stale_after_s=20)
    mirror = _mirror(tmp_path, driver)
    journal = tmp_path / "local.log"
    clock.now += 9.9
    assert lease.held()
    _append(journal, {"op_code": 0})
    assert mirror.push(journal) > 0
    clock.now += 0.1  # the machine slept (or the process was stopped): the fence has passed
    _append(journal, {"op_code": 5})
    with pytest.raises(LeaseLost) as refused:
        mirror.push(journal)
    assert not lease.held() and lease.lost.is_set()
    line = str(refused.value)
    assert line.startswith("study 'study': lost the study's lease s3://bucket/study/driver.lease (no successful "
                           "renewal for 10.0 s, past its 10 s fence)")
    assert "stopping; no more trials, no journal writes; another driver may take the study over" in line
    assert len(list((tmp_path / "optuna-journal").iterdir())) == 1
    clock.now -= 5  # a lost lease stays lost
    assert not lease.held()


def test_a_fence_must_be_longer_than_the_heartbeat(tmp_path):
    with pytest.raises(ValueError, match="heartbeat"):
        Lease(LocalConditionalStore(), str(tmp_path / "x.lease"), heartbeat_s=5, fence_s=5)


def test_a_driver_lease_is_fenced_at_half_its_stale_window(tmp_path):
    control = StudyControl("fenced", str(tmp_path / "fenced"))
    lease = control.acquire_lease(stale_after_s=6)
    try:
        assert lease.fence_s == 3 and lease.heartbeat_s == 1 and lease.held()
    finally:
        assert lease.release()
    assert not lease.held()


def test_the_searcher_asks_no_trial_once_the_lease_is_lost_and_ends_a_run_no_guard_stops(tmp_path):
    from ray.tune.search import Searcher

    from omasgan.distributed.studies.journal_search import UNGUARDED_AFTER_S, AdoptingConcurrencyLimiter

    class Asking(Searcher):
        _study_name = "asking"

        def __init__(self) -> None:
            super().__init__(metric="objective", mode="max")
            self.asked = 0

        def suggest(self, trial_id):
            self.asked += 1
            return {"x": self.asked}

        def on_trial_complete(self, trial_id, result=None, error=False):
            pass

    clock = Clock()
    lease = Lease(LocalConditionalStore(), str(tmp_path / "driver.lease"), heartbeat_s=9, fence_s=10, clock=clock)
    assert lease.acquire()
    StudyControl("asking", str(tmp_path))._register(lease, stale_after_s=20)
    searcher = Asking()
    limiter = AdoptingConcurrencyLimiter(searcher, max_concurrent=3)
    try:
        assert limiter.suggest("a") == {"x": 1}
        clock.now += 10  # the fence passes
        assert limiter.suggest("b") is None and searcher.asked == 1
        clock.now += UNGUARDED_AFTER_S + 0.1  # still asked: no guard halted the run
        with pytest.raises(LeaseLost, match="lost the study's lease"):
            limiter.suggest("c")
        assert searcher.asked == 1
    finally:
        lease.release()


STOPPED_DRIVER = """
import importlib.util, sys, types
from pathlib import Path
# the lease's module alone: the trainables package itself imports torch and Ray (seconds)
spec = importlib.util.find_spec("omasgan.trainables")
package = types.ModuleType("omasgan.trainables")
package.__path__ = list(spec.submodule_search_locations)
sys.modules["omasgan.trainables"] = package
from omasgan.trainables.storage.conditional import LocalConditionalStore
from omasgan.trainables.storage.leases import Lease
root = Path(sys.argv[1])
lease = Lease(LocalConditionalStore(), str(root / "driver.lease"), heartbeat_s=0.1, fence_s=0.5)
assert lease.acquire()
print("ready", flush=True)
sys.stdin.readline()
print("held" if lease.held() else f"refused: {lease.lost_reason}", flush=True)
"""


def test_a_driver_stopped_past_its_fence_writes_nothing_when_it_continues(tmp_path):
    child = subprocess.Popen([sys.executable, "-c", STOPPED_DRIVER, str(tmp_path)], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "ready"
        os.kill(child.pid, signal.SIGSTOP)
        beat = json.loads((tmp_path / "driver.lease").read_bytes())["beat"]
        time.sleep(1.0)  # the pause under test: twice the fence
        os.kill(child.pid, signal.SIGCONT)
        child.stdin.write("go\n")
        child.stdin.flush()
        out, _ = child.communicate(timeout=60)
    finally:
        if child.poll() is None:
            child.kill()
    assert out.startswith("refused:") and "past its 0.5 s fence" in out, out
    # no renewal sent after the pause (one sent just before it may have landed after it)
    assert json.loads((tmp_path / "driver.lease").read_bytes())["beat"] <= beat + 1


# ---------------------------------------------------------------- the journal log


def test_a_stale_driver_can_neither_overwrite_nor_insert_journal_records(tmp_path):
    store = LocalConditionalStore()
    clock = Clock()  # never moves: the stale driver believes it still holds its lease
    stale = Lease(store, str(tmp_path / "driver.lease"), heartbeat_s=9, fence_s=10, clock=clock)
    assert stale.acquire()
    first, second = tmp_path / "a.log", tmp_path / "b.log"
    old = _mirror(tmp_path, stale)
    for n in range(3):
        _append(first, {"op_code": 0, "worker": "a", "n": n})
        old.push(first)
    # the second driver takes the lease over and reads the log
    current = store.read(stale.path)
    fresh = Lease(store, stale.path, heartbeat_s=9, fence_s=10, clock=clock)
    assert fresh.take_over(current.version)
    new = _mirror(tmp_path, fresh)
    journal, legacy = new.read()
    assert journal == first.read_bytes() and not legacy
    second.write_bytes(journal)
    _append(second, {"op_code": 1, "worker": "b", "n": 3})
    new.push(second)
    # the stale driver appends: its create of chunk 3 fails, it stops, and the log is the new driver's
    _append(first, {"op_code": 1, "worker": "a", "n": 3})
    with pytest.raises(LeaseLost, match="another driver wrote journal chunk 3"):
        old.push(first)
    assert stale.lost.is_set() and not stale.held()
    _append(first, {"op_code": 1, "worker": "a", "n": 4})
    with pytest.raises(LeaseLost):
        old.push(first)  # refused before any request: the lease is lost
    assert _mirror(tmp_path).read() == (second.read_bytes(), False)
    assert fresh.held()
    # the new driver goes on
    _append(second, {"op_code": 1, "worker": "b", "n": 4})
    new.push(second)
    assert _mirror(tmp_path).read()[0] == second.read_bytes()


def test_a_chunk_whose_reply_was_lost_is_recognised_as_the_writers_own(tmp_path):
    class LostReply(LocalConditionalStore):
        """The first create is written but raises, as when the connection drops before the reply."""

        dropped = False

        def create(self, path, data):
            version = super().create(path, data)
            if not self.dropped:
                self.dropped = True
                raise ConnectionError("connection reset before the reply")
            return version

    mirror = JournalMirror(LostReply(), pafs.LocalFileSystem(), str(tmp_path / "optuna-journal"))
    journal = tmp_path / "local.log"
    _append(journal, {"n": 0})
    with pytest.warns(UserWarning, match="the next write uploads them"):
        assert mirror.push(journal) == 0
    _append(journal, {"n": 1})
    mirror.push(journal)  # chunk 0 exists with its first bytes: counted as its own, the rest is chunk 1
    assert sorted(p.name for p in (tmp_path / "optuna-journal").iterdir()) == ["000000000000.chunk",
                                                                                "000000000001.chunk"]
    assert _mirror(tmp_path).read()[0] == journal.read_bytes()


def test_the_log_keeps_uploads_flat_and_a_resume_reads_few_objects(tmp_path, monkeypatch):
    from omasgan.distributed.studies import journal_mirror

    monkeypatch.setattr(journal_mirror, "SEGMENT_CHUNKS", 8)  # the policy at a tenth of its scale
    monkeypatch.setattr(journal_mirror, "SNAPSHOT_MIN_BYTES", 4096)
    mirror = _mirror(tmp_path)
    journal = tmp_path / "local.log"
    record = {"op_code": 5, "worker_id": "w", "trial_id": 0, "param_name": "x" * 150}  # ~220 bytes
    sizes = []
    for n in range(400):
        _append(journal, {**record, "trial_id": n})
        mirror.push(journal)
        sizes.append(journal.stat().st_size)
    size = sizes[-1]
    traffic = mirror.traffic
    assert traffic.chunks.objects == 400 and traffic.chunks.bytes == size
    assert traffic.segments.bytes <= size and traffic.snapshots.bytes < 2 * size and traffic.bytes < 4 * size
    assert traffic.snapshots.objects >= 3 and traffic.segments.objects >= 10
    plan = cover(mirror.objects())
    assert plan[0].first == 0 and not plan[0].is_chunk and plan[0].size >= size / 2  # a snapshot of half or more
    tail_segments = [o for o in plan[1:] if not o.is_chunk]
    assert all(o.last - o.first + 1 == 8 for o in tail_segments)
    assert len([o for o in plan if o.is_chunk]) < 8
    assert len(plan) < 400 / 10
    fresh = _mirror(tmp_path)
    assert fresh.read() == (journal.read_bytes(), False) and fresh.traffic.reads.objects == len(plan)
    # a writer that read the log continues it where it ends
    _append(journal, {**record, "trial_id": -1})
    fresh.push(journal)
    assert _mirror(tmp_path).read()[0] == journal.read_bytes()


def test_object_names_and_a_gap_in_the_log():
    assert parse_name("000000000007.chunk") == (7, 7)
    assert parse_name("000000000000-000000000063.seg") == (0, 63)
    assert parse_name(".000000000007.chunk.tmp") is None and parse_name(".guard") is None
    from omasgan.distributed.studies.journal_mirror import MirrorObject

    with pytest.raises(RuntimeError, match="no object starting at chunk 1"):
        cover([MirrorObject(0, 0, 1, "a/000000000000.chunk"), MirrorObject(2, 2, 1, "a/000000000002.chunk")])


def test_a_study_with_the_old_whole_file_copy_is_read_and_moved_into_the_log(tmp_path):
    root = tmp_path / "storage" / "old"
    root.mkdir(parents=True)
    old_journal = b'{"op_code": 0, "study_name": "old"}\n{"op_code": 4}\n'
    (root / "optuna-journal.log").write_bytes(old_journal)
    control = StudyControl("old", str(root))
    lease = control.acquire_lease(stale_after_s=30)
    try:
        local = tmp_path / "work" / "optuna-journal.log"
        said = control.pull_journal(local)
        assert said == f"restored the journal from {root}/optuna-journal.log"
        assert local.read_bytes() == old_journal
        assert _mirror(root).read() == (old_journal, False)  # chunk 0 holds it now
        _append(local, {"op_code": 5})
        control.push_journal(local)
        assert _mirror(root).read()[0] == local.read_bytes()
        assert control.pull_journal(local) == "journal up to date"
    finally:
        lease.release()


# ---------------------------------------------------------------- a real search whose renewals fail

STALE_S = 4.0


class FailingDriverRenewals:
    """Wraps a study's conditional store: the driver lease's renewals raise once ``failing`` is set."""

    def __init__(self, store, failing: threading.Event) -> None:
        self.store, self.failing = store, failing
        self.exclusive = store.exclusive

    def replace(self, path, data, version):
        if path.endswith("driver.lease") and self.failing.is_set():
            raise PermissionError("ExpiredToken: the security token included in the request is expired")
        return self.store.replace(path, data, version)

    def __getattr__(self, name):
        return getattr(self.store, name)


def _created_trials(journal: Path) -> int:
    """Optuna trials the journal has created (its CREATE_TRIAL records)."""
    from optuna.storages.journal._storage import JournalOperation

    lines = journal.read_bytes().splitlines() if journal.is_file() else []
    return sum(json.loads(line)["op_code"] == JournalOperation.CREATE_TRIAL for line in lines)


@pytest.fixture(scope="module")
def local_ray():
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=3, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield
    ray.shutdown()


def test_a_driver_whose_renewals_fail_stops_before_another_driver_can_take_over(local_ray, tmp_path, monkeypatch,
                                                                                capsys):
    import optuna

    from helpers import tiny_config
    from omasgan.cli import build_parser
    from omasgan.distributed import ResultStore
    from omasgan.distributed.commands.studies import run_study, spec_from_args
    from omasgan.distributed.studies import control
    from omasgan.distributed.studies.preparation import RunOptions
    from omasgan.distributed.store.trial_record import TrialRecords
    from omasgan.trainables import FaultInjection
    from omasgan.trainables.storage import conditional

    config = tmp_path / "base.json"
    config.write_text(json.dumps(tiny_config(n_per_class=150, task1__epochs=8, task2__epochs=3, task3__epochs=3,
                                             j__epochs=10).to_dict()))
    storage, name = tmp_path / "studies", "unrenewed"
    folder, journal = storage / name, storage / name / "optuna-journal.log"
    monkeypatch.setenv("OMASGAN_DRIVER_LEASE_STALE_S", str(STALE_S))
    failing = threading.Event()
    real_store = conditional.conditional_store
    monkeypatch.setattr(conditional, "conditional_store",
                        lambda root: (FailingDriverRenewals(real_store(root)[0], failing), real_store(root)[1]))
    seen: dict = {}

    def expire_credentials_when_the_first_trial_starts_j():
        records, deadline = TrialRecords(str(folder)), time.monotonic() + 300
        while time.monotonic() < deadline:
            lease = control.driver_lease(name)
            if lease is not None and any("task3" in (records.read(t) or {}).get("rounds", [])
                                         for t in records.trial_ids()):
                seen["lease"] = lease.lease
                failing.set()
                lease.lease.lost.wait(60)
                seen["created at the loss"] = _created_trials(journal)
                return
            time.sleep(0.05)

    watcher = threading.Thread(target=expire_credentials_when_the_first_trial_starts_j, daemon=True)
    watcher.start()
    # each trial pauses 3 s in J (once per unit): the first one is still running when the fence (2 s) passes
    pause = FaultInjection("j", 1, str(tmp_path / "markers"), action="pause", pause_s=3.0)
    args = build_parser().parse_args(["search", "--config", str(config), "--classes", "0", "--seeds", "0", "--space",
                                      "j", "--trials", "2", "--name", name])
    with pytest.raises(LeaseLost) as stopped:
        run_study("search", spec_from_args("search", args), RunOptions(storage=str(storage), max_concurrent=1,
                                                                       fault=pause))
    lease = seen["lease"]
    returned, wall_offset = lease.clock(), time.time() - lease.clock()
    watcher.join(10)
    # it stopped with the line (the command prints it as `omasgan: error: ...`, exit status 1)
    assert str(stopped.value).startswith(f"study '{name}': lost the study's lease {folder / 'driver.lease'} (no "
                                         "successful renewal for")
    assert "no more trials, no journal writes; another driver may take the study over" in str(stopped.value)
    assert stopped.value.exit_status == 1
    assert lease.lost.is_set() and "fence" in lease.lost_reason and "ExpiredToken" in lease.lost_reason
    # every file of the driver's state was last written before another driver could judge the lease stale:
    # the journal, the lease, Tune's experiment state (the trials' folders are the trials' own)
    experiment = folder / "tune" / name
    driver_files = [journal, folder / "driver.lease", *(p for p in experiment.iterdir() if p.is_file())]
    last_write = max(p.stat().st_mtime for p in driver_files) - wall_offset
    assert last_write - lease.renewed_at < STALE_S, (last_write - lease.renewed_at, returned - lease.renewed_at)
    # it asked Optuna for no trial after it lost the lease, and left the lease file to be taken over
    assert _created_trials(journal) == seen["created at the loss"] == 1
    assert (folder / "driver.lease").is_file()
    capsys.readouterr()

    monkeypatch.setattr(conditional, "conditional_store", real_store)
    resume = build_parser().parse_args(["search", "--resume", "--name", name])
    outcome = run_study("search", spec_from_args("search", resume), RunOptions(storage=str(storage), resume=True))
    assert "took over the lease" in capsys.readouterr().out
    rows = ResultStore(str(folder)).read().to_pandas()
    study = optuna.load_study(study_name=name, storage=optuna.storages.JournalStorage(
        optuna.storages.journal.JournalFileBackend(str(journal))))
    states = [t.state.name for t in study.trials]
    assert "RUNNING" not in states
    assert states.count("COMPLETE") == rows.trial_id.nunique() == len(outcome.trial_ids) == 2
    final = rows[(rows.detector == "final") & (rows.split == "val")]
    assert sorted(round(v, 9) for v in final.groupby("trial_id").auroc.mean()) == sorted(
        round(t.value, 9) for t in study.trials if t.state.name == "COMPLETE")
    assert rows.duplicated(["trial_id", "holdout_class", "seed", "stage", "split"]).sum() == 0

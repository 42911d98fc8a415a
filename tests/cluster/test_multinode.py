"""Multi-node for real, on one machine: a head and two worker nodes as separate ``ray start``
processes on the loopback address (each with its own CPUs and a logical GPU), a search joined with
``--address``, and one worker node killed with SIGKILL mid-way: its trials are retried on the other
node, resume at their last finished stage, and the study ends with every trial done and exactly one
row set per trial, unit, stage and split; the trials' training ledgers show that no stage was trained
twice.  Before the search, ``omasgan doctor`` checks all three nodes and the storage across them.

The workers' GPUs are logical (``--num-gpus`` on a machine without CUDA), so the cluster runs with
OMASGAN_ALLOW_CPU_FOR_GPU=1: units given such a GPU train on the CPU instead of raising."""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

ray = pytest.importorskip("ray")

from helpers import tiny_config  # noqa: E402

RAY = str(Path(sys.executable).with_name("ray"))
ROWS_PER_UNIT = 7
STORE_BYTES = 300 * 1024 * 1024  # a small object store per node: the study ships only small objects
KEY = ["trial_id", "holdout_class", "seed", "stage", "split"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LocalCluster:
    """Head and workers started with ``ray start --block``, each in its own process group."""

    def __init__(self, temp: Path) -> None:
        self.port = _free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.temp = temp
        self.nodes: dict[str, subprocess.Popen] = {}
        # A trial whose units wait in a placement group that lost the killed node gives up after 10 s
        # (not the default 60 s) and is retried; the head marks a node dead after 5 missed health
        # checks 1 s apart with 2 s to answer (Ray's default: 3 s apart, 10 s to answer).
        self.env = dict(os.environ, RAY_AUTH_MODE="disabled", OMASGAN_ALLOW_CPU_FOR_GPU="1",
                        OMASGAN_PLACEMENT_GRACE_S="10", RAY_health_check_period_ms="1000",
                        RAY_health_check_timeout_ms="2000", RAY_health_check_failure_threshold="5")

    def start(self, name: str, *args: str) -> None:
        log = open(self.temp / f"{name}.log", "w")
        self.nodes[name] = subprocess.Popen([RAY, "start", "--block", "--disable-usage-stats", *args], env=self.env,
                                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)

    def wait_for_nodes(self, n: int, timeout: float = 120) -> None:
        deadline = time.time() + timeout
        while time.time() < deadline:
            out = subprocess.run([sys.executable, "-c", NODE_COUNT, self.address], env=self.env,
                                 capture_output=True, text=True, timeout=60)
            if out.returncode == 0 and out.stdout.strip() == str(n):
                return
            time.sleep(0.5)
        logs = "\n".join(f"--- {p.name}\n{p.read_text()[-1500:]}" for p in sorted(self.temp.glob("*.log")))
        raise AssertionError(f"the cluster never reached {n} nodes (last count: {out.stdout.strip()!r}, "
                             f"{out.stderr.strip()[-500:]!r})\n{logs}")

    def kill(self, name: str) -> None:
        os.killpg(self.nodes[name].pid, signal.SIGKILL)
        self.nodes[name].wait()

    def stop(self) -> None:
        for name in reversed(list(self.nodes)):
            try:
                os.killpg(self.nodes[name].pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.nodes[name].wait()


NODE_COUNT = """
import sys, ray
ray.init(address=sys.argv[1], logging_level="ERROR", log_to_driver=False)
print(sum(1 for n in ray.nodes() if n["Alive"]))
"""


@pytest.fixture
def cluster(tmp_path):
    temp = Path(f"/tmp/omasgan-mn-{os.getpid()}")  # short: Ray's socket paths must stay < 108 chars
    shutil.rmtree(temp, ignore_errors=True)
    temp.mkdir()
    c = LocalCluster(temp)
    try:
        c.start("head", "--head", "--node-ip-address=127.0.0.1", f"--port={c.port}", "--num-cpus=1", "--num-gpus=0",
                "--include-dashboard=false", f"--temp-dir={temp}", f"--object-store-memory={STORE_BYTES}")
        c.wait_for_nodes(1)
        for count, worker in enumerate(("worker1", "worker2"), start=2):  # one at a time: two raylets starting
            c.start(worker, f"--address={c.address}", "--node-ip-address=127.0.0.1", "--num-cpus=2",  # together on
                    "--num-gpus=1", f"--object-store-memory={STORE_BYTES}")  # one host can time out
            c.wait_for_nodes(count)
        yield c
    finally:
        c.stop()
        shutil.rmtree(temp, ignore_errors=True)


def test_search_on_a_three_node_cluster_survives_a_killed_worker_node(cluster, tmp_path):
    from omasgan.distributed import ResultStore
    from omasgan.distributed.store.trial_record import TrialRecords

    config = tmp_path / "base.json"
    config.write_text(json.dumps(tiny_config(n_per_class=150, task1__epochs=20, task2__epochs=3, task3__epochs=3,
                                             j__epochs=150).to_dict()))
    storage = tmp_path / "studies"
    doctor = subprocess.run([sys.executable, "-m", "omasgan.cli", "doctor", "--address", cluster.address,
                             "--storage", str(storage)], env=cluster.env, capture_output=True, text=True, timeout=300)
    report = doctor.stdout
    assert doctor.returncode == 0 and "FAIL" not in report, report + doctor.stderr[-2000:]
    assert "3 node(s) alive" in report and report.count("read back on node") == 3, report
    assert report.count("OMASGAN_ALLOW_CPU_FOR_GPU=1 lets units train on the CPU") == 2, report  # the two workers
    command = [sys.executable, "-m", "omasgan.cli", "search", "--address", cluster.address, "--config", str(config),
               "--classes", "0,1", "--seeds", "0", "--space", "j", "--trials", "3", "--max-concurrent", "2",
               "--cpus-per-unit", "1", "--gpus-per-unit", "0.5", "--max-failures", "3",
               "--storage", str(storage), "--name", "mn"]
    log = tmp_path / "driver.log"
    with open(log, "w") as out:
        driver = subprocess.Popen(command, env=cluster.env, stdout=out, stderr=subprocess.STDOUT)
        try:
            # kill worker1 once the first trial has finished Task 1 (its rows are written)
            deadline = time.time() + 300
            while not list((storage / "mn" / "results").rglob("*.task1.parquet")):
                assert driver.poll() is None, log.read_text()[-3000:]
                assert time.time() < deadline, "the search never started Task 1"
                time.sleep(0.5)
            cluster.kill("worker1")  # the first trial is past Task 1 and not done: its retry must resume
            assert driver.wait(timeout=600) == 0, log.read_text()[-3000:]
        finally:
            if driver.poll() is None:
                driver.kill()
    text = log.read_text()
    rows = ResultStore(str(storage / "mn")).read().to_pandas()
    assert rows.duplicated(KEY).sum() == 0
    assert rows.trial_id.nunique() == 3 and len(rows) == 3 * 2 * ROWS_PER_UNIT, text[-3000:]
    assert set(rows.status) == {"ok"}
    assert "3/3 done" in text and "retried from its last finished stage" in text, text[-3000:]
    # the retried trials did not retrain what they had finished: the stages all three trials share were
    # trained once per class, and each trial's J once per unit
    counts = TrialRecords(str(storage / "mn")).training_counts()
    for stage in ("task1", "task2", "task3"):
        per_class = {k: sum(c.get(stage, 0) for (_, kk, _), c in counts.items() if kk == k) for k in (0, 1)}
        assert per_class == {0: 1, 1: 1}, (stage, counts)
    assert {unit: c.get("j") for unit, c in counts.items() if c.get("j")} == {
        (t, k, 0): 1 for t in set(rows.trial_id) for k in (0, 1)}, counts

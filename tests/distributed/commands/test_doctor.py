"""``omasgan doctor``'s checks of what breaks first on a new cluster, against stand-ins that follow
Ray's real formats: the autoscaler's status written to the GCS exactly as Ray's autoscaler writes it
(v1: the JSON of Ray's own ``AutoscalerSummary`` under ``__autoscaling_status``; v2: an
``AutoscalingState`` protobuf reported to the GCS), a local Ray with a logical GPU (no CUDA), and
the autoscaler config a head holds.  One local Ray serves the module."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from dataclasses import asdict
from pathlib import Path

import pytest
import yaml

from helpers import REPO

ray = pytest.importorskip("ray")

from omasgan.distributed.commands import doctor_workers  # noqa: E402
from omasgan.distributed.commands.doctor import (  # noqa: E402
    Lines,
    ami_problems,
    autoscaler_lines,
    conditional_probe,
    gpu_task_report,
    run_doctor,
    version_lines,
)
from omasgan.distributed.studies.autoscaler_state import (  # noqa: E402
    ERROR_KEY,
    STATUS_KEY,
    error_summary,
    read_autoscaler_state,
)

CLUSTER_YAML = REPO / "cluster.yaml"
QUOTA = ("VcpuLimitExceeded", "You have requested more vCPU capacity than your current vCPU limit of 0 allows for "
         "the instance bucket that the specified instance type belongs to.")
GPU_WORKER = {"min_workers": 0, "max_workers": 4, "resources": {"CPU": 4, "GPU": 1},
              "node_config": {"InstanceType": "g5.xlarge", "ImageId": "ami-XXXXXXXXXXXXXXXXX"}}
CONFIG = {
    "cluster_name": "doctor-test", "max_workers": 6, "provider": {"type": "aws", "region": "us-west-2"},
    "head_node_type": "head.cpu",
    "available_node_types": {
        "head.cpu": {"min_workers": 0, "max_workers": 0, "resources": {"CPU": 2}, "node_config": {"InstanceType": "m5.large"}},
        "worker.gpu": GPU_WORKER,
        "worker.cpu": {"min_workers": 0, "max_workers": 2, "resources": {"CPU": 2},
                       "node_config": {"InstanceType": "m5.large"}},
    },
}


@pytest.fixture(scope="module")
def local_ray():
    """The head of CONFIG, with one logical GPU as on a node whose NVIDIA setup is broken.  Its own
    autoscaler monitor (a local Ray runs one, over a read-only provider) publishes the real status
    document first: the doctor's reader must read it; then the monitor is stopped, so the status the
    tests publish in its place stays."""
    from ray.experimental.internal_kv import _internal_kv_del, _internal_kv_get

    ray.init(num_cpus=2, num_gpus=1, include_dashboard=False, log_to_driver=False, configure_logging=False)
    try:
        deadline = time.monotonic() + 60
        while b'"autoscaler_report"' not in (_internal_kv_get(STATUS_KEY) or b""):  # its first have none
            assert time.monotonic() < deadline, "the local autoscaler monitor published no status"
            time.sleep(0.2)
        real = read_autoscaler_state()
        assert real is not None and real.active == {f"node_{head_node()['NodeID']}": 1}, real
        os.kill(json.loads(_internal_kv_get(STATUS_KEY))["monitor_pid"], signal.SIGTERM)
        while not _internal_kv_get(ERROR_KEY):  # a monitor that is stopped says so, as on a real head
            assert time.monotonic() < deadline, "the stopped monitor published no error"
            time.sleep(0.2)
        assert read_autoscaler_state().error == "Terminated with signal 15"
        _internal_kv_del(ERROR_KEY)
        yield
    finally:
        ray.shutdown()


@pytest.fixture
def head_config(tmp_path, monkeypatch):
    """CONFIG as the autoscaler config on the head (the doctor reads it from there)."""
    path = tmp_path / "ray_bootstrap_config.yaml"
    path.write_text(yaml.safe_dump(CONFIG))
    monkeypatch.setenv("OMASGAN_AUTOSCALER_CONFIG", str(path))
    return path


def v1_status(active: dict[str, int], pending_launches: dict[str, int], failures: dict[str, tuple[str, str]]) -> str:
    """The autoscaler v1 monitor's status document (ray/autoscaler/_private/monitor.py ``_run``), made
    with Ray's own summary classes and ``dataclasses.asdict`` as the monitor makes it."""
    from ray.autoscaler._private.autoscaler import AutoscalerSummary
    from ray.autoscaler._private.load_metrics import LoadMetricsSummary
    from ray.autoscaler._private.node_provider_availability_tracker import (
        NodeAvailabilityRecord,
        NodeAvailabilitySummary,
        UnavailableNodeInformation,
    )

    now = time.time()
    summary = AutoscalerSummary(
        active_nodes=active, idle_nodes=None, pending_nodes=[], pending_launches=pending_launches, failed_nodes=[],
        node_availability_summary=NodeAvailabilitySummary({
            node_type: NodeAvailabilityRecord(node_type, False, now, UnavailableNodeInformation(category, description))
            for node_type, (category, description) in failures.items()}),
        pending_resources={}, node_type_mapping={}, legacy=True)
    load = LoadMetricsSummary(usage={"CPU": (0.0, 2.0)}, resource_demand=[], pg_demand=[], request_demand=[],
                              node_types=[])
    return json.dumps({"gcs_request_time": 0.001, "time": now, "monitor_pid": os.getpid(),
                       "autoscaler_update_time": 0.01, "autoscaler_report": asdict(summary),
                       "non_terminated_nodes_time": 0.001, "load_metrics_report": asdict(load)})


def publish_v1(document: str) -> None:
    from ray._private import ray_constants
    from ray.experimental.internal_kv import _internal_kv_put

    _internal_kv_put(ray_constants.DEBUG_AUTOSCALING_STATUS, document, overwrite=True)


def printed(capsys) -> list[str]:
    return capsys.readouterr().out.splitlines()


def head_node() -> dict:
    return next(n for n in ray.nodes() if n["Alive"] and "node:__internal_head__" in n["Resources"])


# ---------------------------------------------------------------- the AMI


def test_ami_problems_name_each_gpu_worker_type_without_a_real_ami():
    def config(**images):
        types = {"head.cpu": {"node_config": {"InstanceType": "m5.2xlarge"}},  # the head and CPU workers: not checked
                 "worker.cpu": {"resources": {"CPU": 8}, "node_config": {"InstanceType": "m5.2xlarge"}}}
        for name, image in images.items():
            node_config = {"InstanceType": "g5.xlarge"} | ({"ImageId": image} if image is not None else {})
            types[name] = {"node_config": node_config}  # a GPU type by its instance family alone
        return {"provider": {"type": "aws"}, "head_node_type": "head.cpu", "available_node_types": types}

    assert ami_problems(config(gpu_a="ami-0123456789abcdef0", gpu_b="ami-0123abcd")) == []
    problems = ami_problems(config(gpu_a=None, gpu_b="ami-XXXXXXXXXXXXXXXXX", gpu_c="ami-CHANGE-ME", gpu_d="ami-0123"))
    assert [p.split(":")[0] for p in problems] == [f"GPU worker type gpu_{x}" for x in "abcd"]
    assert "ImageId is not set" in problems[0] and "Ray's default Deep Learning AMI" in problems[0]
    assert all("is a placeholder" in p for p in problems[1:])
    assert ami_problems({**config(gpu_a=None), "provider": {"type": "gcp"}}) == []  # not AWS: not this check
    # on the head, ray up has written its default AMI of the region into a type that set none
    from ray.autoscaler._private.aws.config import DEFAULT_AMI

    filled = ami_problems(config(gpu_a=DEFAULT_AMI["us-west-2"], gpu_b="latest_dlami"))
    assert len(filled) == 2 and "Ray's default for us-west-2 (what ray up fills in" in filled[0], filled
    assert "node_config.ImageId is latest_dlami, so the node runs Ray's default" in filled[1]
    # the shipped cluster.yaml: its GPU worker type must be given an AMI by the user
    shipped = ami_problems(yaml.safe_load(CLUSTER_YAML.read_text()))
    assert len(shipped) == 1 and shipped[0].startswith("GPU worker type worker.gpu:"), shipped


def test_a_negative_wait_is_one_error_line_before_ray_starts(capsys, monkeypatch):
    from omasgan.cli import main
    from omasgan.distributed.commands import doctor

    monkeypatch.setattr(doctor, "run_doctor", lambda *a, **k: pytest.fail("the doctor ran"))
    assert main(["doctor", "--wait-workers", "-5"]) != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["omasgan: error: --wait-workers -5: give 0 (report only) or a number of seconds"]


# ---------------------------------------------------------------- worker types and the autoscaler


def test_the_v1_stand_in_is_what_ray_status_reads(local_ray):
    """The document the tests publish is read by Ray's own ``ray status`` formatter as a failed launch."""
    from ray.autoscaler._private.commands import debug_status

    assert STATUS_KEY == __import__("ray._private.ray_constants", fromlist=["x"]).DEBUG_AUTOSCALING_STATUS
    document = v1_status({"head.cpu": 1}, {"worker.cpu": 1}, {"worker.gpu": QUOTA})
    text = debug_status(document.encode(), None, verbose=True)
    assert "worker.gpu: VcpuLimitExceeded" in text and QUOTA[1] in text and "worker.cpu, 1 launching" in text


def test_an_autoscaler_crash_is_said_in_one_line():
    traceback = ("The autoscaler failed with the following error:\nTraceback (most recent call last):\n  File \"x\", "
                 "line 1, in <module>\nbotocore.exceptions.ClientError: An error occurred (UnauthorizedOperation) when "
                 "calling the RunInstances operation: You are not authorized to perform this operation.\n")
    assert error_summary(traceback).startswith("botocore.exceptions.ClientError: An error occurred (UnauthorizedOperation)")
    assert error_summary("The autoscaler failed with the following error:\nTerminated with signal 15\n  File") == \
        "Terminated with signal 15"


def test_a_worker_type_the_autoscaler_could_not_launch_fails_with_the_clouds_reason(local_ray, head_config, capsys):
    publish_v1(v1_status({"head.cpu": 1}, {"worker.cpu": 1}, {"worker.gpu": QUOTA}))
    sent: list = []
    autoscaler_lines(Lines(), head_node(), wait_workers_s=0, timeout_s=60, request=doctor_workers.NodeRequest(sent.append))
    assert sent == []  # without --wait-workers nothing is asked for
    lines = printed(capsys)
    gpu = [line for line in lines if "worker type worker.gpu:" in line and not line.startswith("FAIL AMI")]
    assert len(gpu) == 1 and gpu[0].startswith("FAIL"), lines
    assert f"could not launch one: launch failed: {QUOTA[0]}: {QUOTA[1]}" in gpu[0]
    cpu = [line for line in lines if "worker type worker.cpu:" in line]
    assert len(cpu) == 1 and cpu[0].startswith("warn") and "no node up yet" in cpu[0] and "1 launching" in cpu[0]
    ami = [line for line in lines if line.startswith("FAIL AMI: GPU worker type worker.gpu:")]
    assert len(ami) == 1 and "ami-XXXXXXXXXXXXXXXXX" in ami[0], lines


def test_the_v2_autoscaler_state_is_read_with_the_failed_launch_and_its_reason(local_ray, head_config, capsys):
    from ray._private.worker import global_worker
    from ray._raylet import GCS_AUTOSCALER_STATE_NAMESPACE, GCS_AUTOSCALER_V2_ENABLED_KEY
    from ray.core.generated.autoscaler_pb2 import AutoscalingState

    reason = ("launch failed with Node Launch Exception (InsufficientInstanceCapacity): We currently do not have "
              "sufficient g5.xlarge capacity in the Availability Zone you requested (us-west-2a).")
    now = int(time.time())
    state = AutoscalingState(autoscaler_state_version=1)
    state.failed_instance_requests.add(instance_type_name="g5.xlarge", ray_node_type_name="worker.gpu", count=1,
                                       reason=reason, start_ts=now, failed_ts=now)
    state.pending_instance_requests.add(instance_type_name="m5.large", ray_node_type_name="worker.cpu", count=1,
                                        request_ts=now)
    gcs = global_worker.gcs_client
    gcs.internal_kv_put(GCS_AUTOSCALER_V2_ENABLED_KEY.encode(), b"1", True, GCS_AUTOSCALER_STATE_NAMESPACE.encode())
    try:
        gcs.report_autoscaling_state(state.SerializeToString())
        read = ray.get(ray.remote(num_cpus=0)(read_autoscaler_state).remote(), timeout=60)
        assert read.failures == {"worker.gpu": [reason]} and read.pending == {"worker.cpu": ["1 launching"]}
        autoscaler_lines(Lines(), head_node(), wait_workers_s=0, timeout_s=60)
        gpu = [line for line in printed(capsys) if line.startswith("FAIL worker type worker.gpu:")]
        assert len(gpu) == 1 and "InsufficientInstanceCapacity" in gpu[0], gpu
    finally:
        gcs.internal_kv_put(GCS_AUTOSCALER_V2_ENABLED_KEY.encode(), b"0", True, GCS_AUTOSCALER_STATE_NAMESPACE.encode())


def test_wait_workers_asks_for_the_missing_types_waits_and_withdraws_the_request(local_ray, head_config, capsys,
                                                                                monkeypatch):
    """A stand-in autoscaler (a thread) answers the request the doctor writes by reporting a worker.cpu
    node up; worker.gpu stays unlaunchable; the doctor withdraws its request at the end."""
    from ray._private.ray_constants import AUTOSCALER_RESOURCE_REQUEST_CHANNEL
    from ray.experimental.internal_kv import _internal_kv_get

    monkeypatch.setattr(doctor_workers, "POLL_S", 0.5)
    publish_v1(v1_status({"head.cpu": 1}, {}, {"worker.gpu": QUOTA}))
    seen: list = []

    def autoscaler() -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            raw = _internal_kv_get(AUTOSCALER_RESOURCE_REQUEST_CHANNEL)
            if raw and json.loads(raw):
                seen.append(json.loads(raw))
                publish_v1(v1_status({"head.cpu": 1, "worker.cpu": 1}, {}, {"worker.gpu": QUOTA}))
                return
            time.sleep(0.05)

    thread = threading.Thread(target=autoscaler, daemon=True)
    thread.start()
    code = run_doctor(None, None, None, None, timeout_s=60, wait_workers_s=3)
    thread.join(timeout=5)
    lines = printed(capsys)
    # one bundle of each missing type beyond what the nodes up hold (the 2-CPU head holds one worker.cpu bundle)
    assert len(seen) == 1 and sorted(seen[0], key=json.dumps) == [{"CPU": 2.0}, {"CPU": 2.0}, {"CPU": 4.0, "GPU": 1.0}]
    assert any(line.startswith("ok   worker type worker.cpu: 1 node(s) up") and "s after the request" in line
               for line in lines), lines
    gpu = [line for line in lines if line.startswith("FAIL worker type worker.gpu:")]
    assert len(gpu) == 1 and "no node joined within 3 s of asking the autoscaler for one" in gpu[0]
    assert QUOTA[0] in gpu[0]
    assert json.loads(_internal_kv_get(AUTOSCALER_RESOURCE_REQUEST_CHANNEL)) == []  # withdrawn
    assert any(line.startswith("ok   withdrew the request") for line in lines)
    assert code == 1


# ---------------------------------------------------------------- the GPU a task is given


def test_a_task_given_a_logical_gpu_finds_cuda_visible_devices_right_and_no_cuda(local_ray):
    def probe(allow_cpu: bool, devices: str | None = None) -> tuple[str, str]:
        if devices is not None:
            os.environ["CUDA_VISIBLE_DEVICES"] = devices  # as a reused process would keep another GPU's
        return gpu_task_report(allow_cpu)

    task = ray.remote(num_cpus=0, num_gpus=1)(probe)  # (one worker process serves the three calls)
    status, text = ray.get(task.remote(False), timeout=60)
    assert status == "FAIL" and "CUDA_VISIBLE_DEVICES=0 as assigned" in text and "torch sees no CUDA device" in text
    # OMASGAN_ALLOW_CPU_FOR_GPU=1 (a test cluster's logical GPUs): the same finding, a warning
    status, text = ray.get(task.remote(True), timeout=60)
    assert status == "warn" and "torch sees no CUDA device" in text and "OMASGAN_ALLOW_CPU_FOR_GPU=1" in text
    # a CUDA_VISIBLE_DEVICES other than the GPU Ray assigned fails, whatever OMASGAN_ALLOW_CPU_FOR_GPU says
    status, text = ray.get(task.remote(True, "1"), timeout=60)
    assert status == "FAIL" and "CUDA_VISIBLE_DEVICES='1', not the GPU id(s) Ray assigned (0)" in text


# ---------------------------------------------------------------- conditional writes, code digests


def test_the_conditional_writes_are_each_checked(tmp_path):
    from omasgan.trainables.storage.conditional import LocalConditionalStore

    lines = conditional_probe(LocalConditionalStore(), str(tmp_path / "probe.lock"))
    assert [status for status, _ in lines] == ["ok", "ok", "ok"], lines
    assert "exclusive create refused a second writer" in lines[0][1]
    assert "accepted the current version, refused a stale one" in lines[1][1]
    assert "refused a stale version, deleted the current one" in lines[2][1]
    assert not (tmp_path / "probe.lock").exists()

    class IgnoresVersions(LocalConditionalStore):
        """A storage whose replace and delete ignore the version they are given."""

        def replace(self, path, data, version):
            Path(path).write_bytes(data)
            return self.read(path).version

        def delete(self, path, version):
            Path(path).unlink()
            return True

    lines = conditional_probe(IgnoresVersions(), str(tmp_path / "other.lock"))
    assert [status for status, _ in lines] == ["ok", "FAIL", "FAIL"], lines
    assert "accepted a stale version" in lines[1][1] and "deleted the file for a stale version" in lines[2][1]


def test_a_code_digest_that_differs_between_nodes_names_the_nodes_and_digests(capsys):
    nodes = [{"NodeID": i, "NodeManagerAddress": f"10.0.0.{i}", "Resources": {"node:__internal_head__": 1} if i == 1
              else {}} for i in (1, 2, 3)]
    same = {"code_version": "omasgan-0.1.0", "torch": "2.14.1", "ray": "2.60.0", "python": "3.11.7"}
    reports = {1: {**same, "code": "a" * 64}, 2: {**same, "code": "a" * 64}, 3: {**same, "code": "b" * 64}}
    version_lines(Lines(), reports, nodes)
    lines = printed(capsys)
    assert lines == ["FAIL omasgan's code (digest) differs between nodes: aaaaaaaaaaaa on node 10.0.0.1 (head), "
                     "node 10.0.0.2; bbbbbbbbbbbb on node 10.0.0.3 (install the same omasgan on every node: ray up "
                     "--no-restart syncs it)"]
    version_lines(Lines(), {1: reports[1], 2: reports[2]}, nodes)
    assert printed(capsys) == ["ok   every node runs the same code (omasgan-0.1.0, digest aaaaaaaaaaaa), torch 2.14.1, "
                               "Ray 2.60.0 and Python 3.11.7"]

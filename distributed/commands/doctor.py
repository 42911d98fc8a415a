"""``omasgan doctor``: a preflight of the cluster a study is about to use, one line per check.

From a Ray task pinned to each alive node (``NodeAffinitySchedulingStrategy``, not soft) it checks:

- CUDA against torch: a node with GPUs (in Ray's resources) whose torch sees no CUDA device fails,
  and so does an NVIDIA driver older than the CUDA major version torch was built for;
- the code: omasgan's code version, torch and Ray equal on every node;
- storage (``--storage``): a probe written on each node reads back, byte for byte, on another node;
  an exclusive create on it is refused the second time (the conditional writes cache locks use);
- the data root (``--data-root``, and with ``--dataset`` its classes) on every node;
- credentials: for ``s3://`` storage, boto3 finds credentials on every node (and which kind).

Lines start with ``ok``, ``FAIL``, ``warn`` or ``skip``; the exit status is 1 when any check failed.
"""

from __future__ import annotations

import argparse
import ctypes
import os
import socket
import sys
import time
import uuid
from typing import Any

from omasgan.errors import ConfigError

PROBE_FOLDER = ".omasgan-doctor"


# ---------------------------------------------------------------- what one node reports


def driver_cuda_version() -> tuple[int, int] | None:
    """The CUDA version the NVIDIA driver supports (from libcuda's cuDriverGetVersion), or None when
    no driver library loads."""
    for name in ("libcuda.so.1", "libcuda.so", "nvcuda.dll"):
        try:
            library = ctypes.CDLL(name)
        except OSError:
            continue
        version = ctypes.c_int(0)
        if library.cuDriverGetVersion(ctypes.byref(version)) == 0 and version.value:
            return version.value // 1000, (version.value % 1000) // 10
    return None


def cuda_verdict(node_gpus: float, torch_cuda: str | None, cuda_available: bool, devices: list[str],
                 driver: tuple[int, int] | None, allow_cpu: bool) -> tuple[str, str]:
    """(status, words) for one node's GPUs: Ray's GPU count against what torch and the driver offer."""
    built = f"torch built for CUDA {torch_cuda}" if torch_cuda else "a CPU-only torch build"
    driver_text = f"driver supports CUDA {driver[0]}.{driver[1]}" if driver else "no NVIDIA driver library found"
    if node_gpus <= 0:
        return "ok", f"no GPU in Ray's resources ({built})"
    if not cuda_available:
        if allow_cpu:
            return "warn", (f"Ray lists {node_gpus:g} GPU(s) but torch sees no CUDA ({built}, {driver_text}); "
                            "OMASGAN_ALLOW_CPU_FOR_GPU=1 lets units train on the CPU (logical GPUs of a test cluster)")
        return "FAIL", (f"Ray lists {node_gpus:g} GPU(s) but torch sees no CUDA device ({built}, {driver_text}); "
                        "units given a GPU here would raise; install the NVIDIA driver or a CUDA build of torch")
    if torch_cuda and driver is not None and driver[0] < int(torch_cuda.split(".")[0]):
        return "FAIL", (f"the {driver_text}, older than the CUDA {torch_cuda} torch needs; use an AMI or image "
                        f"with a newer driver")
    return "ok", f"{len(devices)} CUDA device(s) ({', '.join(devices)}), {built}, {driver_text}"


def node_report(storage: str | None, probe_folder: str | None, data_root: str | None, dataset: str | None,
                node_gpus: float) -> dict[str, Any]:
    """Everything one node checks about itself (runs inside the pinned task); never raises."""
    import ray
    import torch

    from omasgan.provenance import CODE_VERSION
    from omasgan.trainables.function_trainables import ALLOW_CPU_ENV

    report: dict[str, Any] = {"host": socket.gethostname(), "ip": ray.util.get_node_ip_address(),
                              "code": CODE_VERSION, "torch": torch.__version__, "ray": ray.__version__,
                              "python": sys.version.split()[0]}
    devices = []
    available = torch.cuda.is_available()
    if available:
        devices = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    report["cuda"] = cuda_verdict(node_gpus, torch.version.cuda, available, devices, driver_cuda_version(),
                                  os.environ.get(ALLOW_CPU_ENV) == "1")
    if storage:
        report["storage"] = _probe_write(storage, probe_folder, report["host"])
        if storage.startswith("s3://"):
            report["credentials"] = _s3_credentials()
    if data_root:
        report["data"] = _data_check(data_root, dataset)
    return report


def _probe_write(storage: str, probe_folder: str, host: str) -> dict[str, Any]:
    from omasgan.trainables.conditional import conditional_store
    from omasgan.trainables.storage import open_filesystem, write_atomic

    token = uuid.uuid4().hex
    try:
        fs, base = open_filesystem(storage)
        path = f"{base}/{probe_folder}/{host}-{token[:8]}.probe"
        write_atomic(fs, path, token.encode())
        store, _ = conditional_store(storage)
        lock = f"{base}/{probe_folder}/{host}-{token[:8]}.lock"
        first, second = store.create(lock, b"1"), store.create(lock, b"2")
        if first is not None:
            store.delete(lock, first)
        exclusive = first is not None and second is None and store.exclusive
        return {"path": path, "token": token, "exclusive": exclusive, "backend": type(store).__name__}
    except Exception as exc:  # noqa: BLE001 - reported as the check's failure
        return {"error": f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"}


def probe_read(storage: str, path: str, token: str) -> str | None:
    """None when ``path`` under ``storage`` holds ``token``, else what went wrong (runs on a node)."""
    from omasgan.trainables.storage import open_filesystem

    try:
        fs, _ = open_filesystem(storage)
        with fs.open_input_stream(path) as handle:
            found = handle.read().decode(errors="replace")
    except Exception as exc:  # noqa: BLE001
        return f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
    return None if found == token else f"read {found[:16]!r}, expected {token[:16]!r}"


def _s3_credentials() -> tuple[str, str]:
    try:
        import boto3
    except ImportError:
        return "FAIL", "boto3 is not installed (s3:// storage needs it for conditional writes)"
    credentials = boto3.Session().get_credentials()
    if credentials is None:
        return "FAIL", "boto3 finds no AWS credentials (no instance profile, environment or config file)"
    return "ok", f"boto3 finds AWS credentials ({credentials.method})"


def _data_check(data_root: str, dataset: str | None) -> tuple[str, str]:
    if not os.path.isdir(data_root):
        return "FAIL", f"--data-root {data_root} is not a folder on this node"
    if not dataset:
        return "ok", f"--data-root {data_root} exists"
    try:
        from omasgan.data import dataset_classes

        classes = dataset_classes(dataset, data_root=data_root)
    except Exception as exc:  # noqa: BLE001
        return "FAIL", f"data set {dataset} under {data_root}: {str(exc).splitlines()[0] if str(exc) else exc!r}"
    return "ok", f"data set {dataset} under {data_root}: classes {', '.join(map(str, classes))}"


# ---------------------------------------------------------------- the driver side


class Lines:
    """The printed check lines and whether any failed."""

    def __init__(self) -> None:
        self.failed = 0

    def __call__(self, status: str, text: str) -> None:
        self.failed += status == "FAIL"
        print(f"{status:<4} {text}", flush=True)


def _name(node: dict[str, Any]) -> str:
    head = " (head)" if "node:__internal_head__" in node.get("Resources", {}) else ""
    return f"node {node.get('NodeManagerAddress', '?')}{head}"


def run_doctor(address: str | None, storage: str | None, data_root: str | None, dataset: str | None,
               timeout_s: float = 300.0) -> int:
    """Run every check; print one line per check; return the exit status (1 when any failed)."""
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    from ..studies.capacity import joined_cluster_shape
    from ..studies.preparation import RunOptions
    from ..studies.runner import start_ray

    line = Lines()
    start_ray(RunOptions(address=address))
    nodes = [n for n in ray.nodes() if n.get("Alive")]
    gpus = sum(n.get("Resources", {}).get("GPU", 0) for n in nodes)
    line("ok", f"cluster: {len(nodes)} node(s) alive, {sum(n['Resources'].get('CPU', 0) for n in nodes):g} CPU, "
               f"{gpus:g} GPU now")
    try:
        shape = joined_cluster_shape()
        line("ok", f"cluster maximum ({shape.source}): " + "; ".join(
            f"{t.name} x{t.max_nodes} {t.resources}" for t in shape.node_types))
    except Exception as exc:  # noqa: BLE001
        line("warn", f"cluster maximum: not readable ({type(exc).__name__}: {exc})")

    probe_folder = f"{PROBE_FOLDER}/{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:6]}"
    task = ray.remote(num_cpus=0)(node_report)
    refs = {}
    for node in nodes:
        pinned = task.options(scheduling_strategy=NodeAffinitySchedulingStrategy(node["NodeID"], soft=False))
        refs[node["NodeID"]] = pinned.remote(storage, probe_folder, data_root, dataset,
                                             float(node.get("Resources", {}).get("GPU", 0)))
    reports: dict[str, dict[str, Any]] = {}
    ready, _ = ray.wait(list(refs.values()), num_returns=len(refs), timeout=timeout_s)
    for node in nodes:
        ref = refs[node["NodeID"]]
        if ref not in ready:
            line("FAIL", f"{_name(node)}: no answer from a task pinned there within {timeout_s:.0f} s")
            continue
        try:
            reports[node["NodeID"]] = ray.get(ref)
        except Exception as exc:  # noqa: BLE001
            line("FAIL", f"{_name(node)}: its check task failed: {str(exc).strip().splitlines()[-1]}")
    for node in nodes:
        report = reports.get(node["NodeID"])
        if report is None:
            continue
        status, text = report["cuda"]
        line(status, f"{_name(node)} {report['host']}: {text}; torch {report['torch']}, Ray {report['ray']}, "
                     f"Python {report['python']}")
    for what in ("code", "torch", "ray", "python"):
        values = {r[what] for r in reports.values()}
        if len(values) > 1:
            line("FAIL", f"{what} differs between nodes: {', '.join(sorted(values))}")
    if reports and all(len({r[w] for r in reports.values()}) == 1 for w in ("code", "torch", "ray", "python")):
        line("ok", f"every node runs the same code ({next(iter(reports.values()))['code']}), torch, Ray and Python")

    if storage:
        _storage_lines(line, storage, nodes, reports, probe_folder, timeout_s)
    else:
        line("skip", "storage: no --storage given")
    for node in nodes:
        report = reports.get(node["NodeID"], {})
        if "credentials" in report:
            line(report["credentials"][0], f"{_name(node)}: credentials: {report['credentials'][1]}")
        if "data" in report:
            line(report["data"][0], f"{_name(node)}: {report['data'][1]}")
    if not data_root:
        line("skip", "data root: no --data-root given (synthetic and digits need none)")
    print(f"{'1 check' if line.failed == 1 else f'{line.failed} checks'} failed" if line.failed else "all checks passed")
    return 1 if line.failed else 0


def _storage_lines(line: Lines, storage: str, nodes: list[dict[str, Any]], reports: dict[str, dict[str, Any]],
                   probe_folder: str, timeout_s: float) -> None:
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    from omasgan.trainables.storage import open_filesystem

    written = [n for n in nodes if n["NodeID"] in reports and "token" in reports[n["NodeID"]].get("storage", {})]
    for node in nodes:
        probe = reports.get(node["NodeID"], {}).get("storage", {})
        if "error" in probe:
            line("FAIL", f"{_name(node)}: storage {storage} is not writable there: {probe['error']}")
        elif probe:
            exclusive = "exclusive create refused a second writer" if probe["exclusive"] else \
                "NO exclusive create (cache locks are best effort)"
            line("ok" if probe["exclusive"] else "warn",
                 f"{_name(node)}: wrote {storage} ({probe['backend']}); {exclusive}")
    if len(written) < 2:
        line("skip", f"storage {storage}: one node wrote it, so no other node can read it back")
    else:
        reader = ray.remote(num_cpus=0)(probe_read)
        pairs = [(written[i], written[(i + 1) % len(written)]) for i in range(len(written))]
        refs = [reader.options(scheduling_strategy=NodeAffinitySchedulingStrategy(b["NodeID"], soft=False)).remote(
            storage, reports[a["NodeID"]]["storage"]["path"], reports[a["NodeID"]]["storage"]["token"]) for a, b in pairs]
        ready, _ = ray.wait(refs, num_returns=len(refs), timeout=timeout_s)
        for (a, b), ref in zip(pairs, refs):
            problem = ray.get(ref) if ref in ready else f"no answer within {timeout_s:.0f} s"
            if problem is None:
                line("ok", f"storage {storage}: written on {_name(a)}, read back on {_name(b)}")
            else:
                line("FAIL", f"storage {storage}: written on {_name(a)}, NOT read on {_name(b)}: {problem} "
                             "(a local folder on more than one machine? use shared storage)")
    try:
        fs, base = open_filesystem(storage)
        fs.delete_dir(f"{base}/{probe_folder}")
    except Exception:  # noqa: BLE001 - leftover probes are harmless and hidden
        pass


def cmd_doctor(args: argparse.Namespace) -> int:
    if args.storage and "://" not in args.storage and not os.path.isabs(args.storage) and args.address:
        raise ConfigError(f"--storage {args.storage!r} is a relative path; on a cluster give an absolute path "
                          "every node has, or a URI")
    return run_doctor(args.address, args.storage, args.data_root, args.dataset)


def add_doctor_parser(sub: argparse._SubParsersAction) -> None:
    doctor = sub.add_parser(
        "doctor", help="preflight: CUDA vs torch, code, storage, data and credentials on every node",
        description="Runs a task on every node of the cluster (or the embedded Ray) and prints one line per "
        "check: CUDA and the NVIDIA driver against torch, equal code versions, storage written on one node "
        "read on another (and its exclusive create), the data root, and S3 credentials. Exit status 1 when any "
        "check failed.")
    doctor.add_argument("--address", help="the cluster to check (auto, or ray://HOST:10001); default or local: this machine")
    doctor.add_argument("--storage", help="the study storage to check (a shared folder or s3://... / gs://...)")
    doctor.add_argument("--data-root", help="the data folder every node must have")
    doctor.add_argument("--dataset", help="also load this data set's classes from --data-root on every node")
    doctor.add_argument("--verbose", action="store_true", help=argparse.SUPPRESS)
    doctor.set_defaults(handler=cmd_doctor)

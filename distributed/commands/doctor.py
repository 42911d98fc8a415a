"""``omasgan doctor``: a preflight of the cluster a study is about to use, one line per check.

On the autoscaler config the head holds (``ray up``'s ``~/ray_bootstrap_config.yaml``), it checks:

- the AMI: on AWS, every GPU worker type sets ``node_config.ImageId`` to a real AMI id
  (:func:`ami_problems`);
- worker types with no node, with the autoscaler's reason (a failed launch: the cloud's error code
  and message); ``--wait-workers SECONDS`` first asks the autoscaler for one node of each and waits
  (:mod:`.doctor_workers`).

From a Ray task pinned to each alive node (``NodeAffinitySchedulingStrategy``, not soft) it checks:

- CUDA against torch: a node with GPUs (in Ray's resources) whose torch sees no CUDA device fails,
  and so does an NVIDIA driver older than the CUDA major version torch was built for;
- the GPU a unit is given: a task that asks for one GPU (a fresh worker process, ``max_calls=1``)
  finds ``CUDA_VISIBLE_DEVICES`` equal to the GPU ids Ray assigned, torch seeing exactly that
  device, and a small CUDA computation right;
- the code: the digest of omasgan's code (:func:`omasgan.provenance.code_digest`), torch, Ray and
  Python equal on every node (a difference names the nodes and their values);
- storage (``--storage``): a probe written on each node reads back, byte for byte, on another node;
  the conditional writes cache locks and the study lease make: an exclusive create (refused the
  second time), a replace conditional on the version (``If-Match`` on S3: the current version
  accepted, a stale one refused) and a conditional delete (a stale version refused, the current
  one deleted);
- the data root (``--data-root``, and with ``--dataset`` its classes) on every node;
- credentials: for ``s3://`` storage, boto3 finds credentials on every node (and which kind).

Lines start with ``ok``, ``FAIL``, ``warn`` or ``skip``; the exit status is 1 when any check failed.
"""

from __future__ import annotations

import argparse
import ctypes
import os
import re
import socket
import sys
import time
import uuid
from typing import Any

from omasgan.errors import ConfigError

from .subcommand import add_subcommand

PROBE_FOLDER = ".omasgan-doctor"
AMI_ID = re.compile(r"^ami-(?:[0-9a-f]{8}|[0-9a-f]{17})$")
"""An EC2 image id: ``ami-`` and 8 (older) or 17 lower-case hex digits."""
GPU_INSTANCE_FAMILY = re.compile(r"^(?:p\d|g\d|gr\d)")
"""EC2 instance families with NVIDIA GPUs (p3, p4d, p5, g4dn, g5, g6, g6e, gr6, ...)."""


# ---------------------------------------------------------------- the autoscaler config


def is_gpu_type(node_type: dict[str, Any]) -> bool:
    """Whether a node type of an AWS autoscaler config has GPUs: a ``GPU`` resource, or an instance
    type of a GPU family."""
    if float((node_type.get("resources") or {}).get("GPU", 0) or 0) > 0:
        return True
    instance = str((node_type.get("node_config") or {}).get("InstanceType", ""))
    return bool(GPU_INSTANCE_FAMILY.match(instance))


def ray_default_amis() -> dict[str, str]:
    """Ray's default Deep Learning AMI per region: what ``ray up`` writes into a node type's
    ``node_config.ImageId`` when the cluster config sets none (``ray.autoscaler._private.aws.config``),
    so the autoscaler config on the head holds one of these, not an absent ImageId.  Empty when that
    module cannot be imported (it needs boto3)."""
    try:
        from ray.autoscaler._private.aws.config import DEFAULT_AMI
    except Exception:  # noqa: BLE001 - a private module; absent or changed means "not known"
        return {}
    return dict(DEFAULT_AMI)


def ami_problems(autoscaler_config: dict[str, Any]) -> list[str]:
    """One sentence per GPU worker node type of an AWS autoscaler config whose ``node_config.ImageId``
    is not a real AMI of the user's choice: absent or ``latest_dlami``, or Ray's default for the region
    (what ``ray up`` fills in for an absent one, :func:`ray_default_amis`): Ray's default Deep Learning
    AMI, whose NVIDIA driver is too old for the CUDA build of torch the node image installs, so every
    GPU unit would raise GPUUnavailable; or a placeholder (``ami-XXXXXXXXXXXXXXXXX``, anything
    containing CHANGE, anything not ``ami-`` and 8 or 17 hex digits).  Empty for another provider."""
    if (autoscaler_config.get("provider") or {}).get("type") != "aws":
        return []
    defaults = {ami: region for region, ami in ray_default_amis().items()}
    problems = []
    head = autoscaler_config.get("head_node_type")
    fix = ("set it to an AMI whose NVIDIA driver supports the CUDA of the node image's torch (an AWS Deep "
           "Learning Base GPU AMI of the region; docs/cluster.md says how to find its id)")
    for name, node_type in (autoscaler_config.get("available_node_types") or {}).items():
        if name == head or not isinstance(node_type, dict) or not is_gpu_type(node_type):
            continue
        image = str((node_type.get("node_config") or {}).get("ImageId") or "")
        if not image or image.lower() == "latest_dlami" or image in defaults:
            said = (f"is {image}, Ray's default for {defaults[image]} (what ray up fills in when it is not set)"
                    if image in defaults else f"is {image}" if image else "is not set")
            problems.append(f"GPU worker type {name}: node_config.ImageId {said}, so the node runs Ray's default "
                            f"Deep Learning AMI, whose NVIDIA driver is too old for torch's CUDA build; {fix}")
        elif "CHANGE" in image.upper() or not AMI_ID.match(image):
            problems.append(f"GPU worker type {name}: node_config.ImageId {image!r} is a placeholder, not an AMI id "
                            f"(ami- and 8 or 17 hex digits); {fix}")
    return problems


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

    from omasgan.provenance import CODE_VERSION, code_digest
    from omasgan.trainables.function_trainables import ALLOW_CPU_ENV

    report: dict[str, Any] = {"host": socket.gethostname(), "ip": ray.util.get_node_ip_address(),
                              "code": code_digest(), "code_version": CODE_VERSION, "torch": torch.__version__,
                              "ray": ray.__version__, "python": sys.version.split()[0]}
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


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text.splitlines()[0] if text else ''}"


def _probe_write(storage: str, probe_folder: str, host: str) -> dict[str, Any]:
    from omasgan.trainables.storage.conditional import conditional_store
    from omasgan.trainables.storage.filesystems import open_filesystem, write_atomic

    token = uuid.uuid4().hex
    try:
        fs, base = open_filesystem(storage)
        path = f"{base}/{probe_folder}/{host}-{token[:8]}.probe"
        write_atomic(fs, path, token.encode())
        store, _ = conditional_store(storage)
        checks = conditional_probe(store, f"{base}/{probe_folder}/{host}-{token[:8]}.lock")
        return {"path": path, "token": token, "conditional": checks, "backend": type(store).__name__}
    except Exception as exc:  # noqa: BLE001 - reported as the check's failure
        return {"error": _first_line(exc)}


CONDITIONS = {
    "S3ConditionalStore": ("If-None-Match: *", "If-Match", "If-Match"),
    "GCSConditionalStore": ("ifGenerationMatch=0", "ifGenerationMatch", "ifGenerationMatch"),
    "LocalConditionalStore": ("a hard link", "a version check under flock", "a version check under flock"),
}
"""How each conditional store makes its create, replace and delete conditional (for the words)."""


def conditional_probe(store: Any, path: str) -> list[tuple[str, str]]:
    """The conditional writes a cache lock and the study lease make, on one probe file of ``store``
    (a :class:`~omasgan.trainables.storage.conditional.ConditionalStore`): (status, words) for the create
    (a second create refused), the replace (accepted with the current version, refused with a stale
    one) and the delete (refused with a stale version, done with the current one).  Deletes the
    probe file."""
    create_how, replace_how, delete_how = CONDITIONS.get(type(store).__name__, ("", "", ""))
    results = []
    try:
        first = store.create(path, b"1")
        second = store.create(path, b"2") if first is not None else None
    except Exception as exc:  # noqa: BLE001
        return [("FAIL", f"conditional create ({create_how}) failed: {_first_line(exc)}")]
    if first is None:
        return [("FAIL", f"conditional create ({create_how}) of a new probe file was refused")]
    if not store.exclusive:
        results.append(("warn", "NO exclusive create (cache locks are best effort)"))
    elif second is None:
        results.append(("ok", f"exclusive create refused a second writer ({create_how})"))
    else:
        results.append(("FAIL", f"exclusive create ({create_how}) let a second writer overwrite the file"))
    current = first
    try:
        replaced = store.replace(path, b"3", first)
        stale = store.replace(path, b"4", first) if replaced is not None else None
        current = replaced or first
        if replaced is None:
            results.append(("FAIL", f"conditional replace ({replace_how}) refused the current version"))
        elif stale is not None:
            current = stale
            results.append(("FAIL" if store.exclusive else "warn",
                            f"conditional replace ({replace_how}) accepted a stale version"))
        else:
            results.append(("ok", f"conditional replace ({replace_how}) accepted the current version, refused a "
                                  "stale one"))
    except Exception as exc:  # noqa: BLE001
        results.append(("FAIL", f"conditional replace ({replace_how}) failed: {_first_line(exc)}"))
    try:
        stale_deleted = current != first and store.delete(path, first)
        deleted = store.delete(path, current) if not stale_deleted else True
        gone = store.read(path) is None
        fallback = getattr(store, "unconditional_delete", False)
        if stale_deleted:
            results.append(("FAIL" if store.exclusive else "warn",
                            f"conditional delete ({delete_how}) deleted the file for a stale version"))
        elif not (deleted and gone):
            results.append(("FAIL", f"conditional delete ({delete_how}) did not delete the file with its current "
                                    "version"))
        elif fallback:
            results.append(("warn", f"conditional delete: the service refuses {delete_how} on a delete; a lock is "
                                    "deleted after a read that checks its owner instead (a short window)"))
        else:
            stale_words = "refused a stale version, " if current != first else ""
            results.append(("ok", f"conditional delete ({delete_how}) {stale_words}deleted the current one"))
    except Exception as exc:  # noqa: BLE001
        results.append(("FAIL", f"conditional delete ({delete_how}) failed: {_first_line(exc)}"))
    return results


def gpu_task_report(allow_cpu: bool) -> tuple[str, str]:
    """(status, words) from inside a task Ray gave a GPU: ``CUDA_VISIBLE_DEVICES`` is the GPU ids Ray
    assigned, torch sees exactly that many devices, and a small CUDA computation is right.  With
    ``allow_cpu`` (``OMASGAN_ALLOW_CPU_FOR_GPU=1``, logical GPUs of a test cluster) a torch that sees
    no CUDA device is a warning."""
    import ray
    import torch

    ids = [str(i) for i in ray.get_gpu_ids()]
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    words = [f"a task Ray gave GPU {','.join(ids) or '(none)'}"]
    problems = []
    if visible is not None and visible.split(",") == ids:
        words.append(f"CUDA_VISIBLE_DEVICES={visible} as assigned")
    else:
        problems.append(f"CUDA_VISIBLE_DEVICES={visible!r}, not the GPU id(s) Ray assigned ({','.join(ids)})")
    no_cuda = False
    if not torch.cuda.is_available():
        no_cuda = True
        built = f"torch built for CUDA {torch.version.cuda}" if torch.version.cuda else "a CPU-only torch build"
        problems.append(f"torch sees no CUDA device ({built})")
    elif torch.cuda.device_count() != len(ids):
        problems.append(f"torch sees {torch.cuda.device_count()} CUDA device(s), not the {len(ids)} Ray assigned")
    else:
        try:
            x = torch.arange(8.0, device="cuda")
            value = float((x * x).sum())
            torch.cuda.synchronize()
            if value != 140.0:
                problems.append(f"a CUDA computation gave {value}, not 140")
            else:
                words.append(f"torch sees {torch.cuda.get_device_name(0)} and computed on it")
        except Exception as exc:  # noqa: BLE001 - e.g. "no kernel image is available for execution on the device"
            problems.append(f"a CUDA computation failed: {_first_line(exc)}")
    if not problems:
        return "ok", "; ".join(words)
    status = "warn" if allow_cpu and no_cuda and len(problems) == 1 else "FAIL"
    text = "; ".join(words + problems)
    if status == "warn":
        text += " (OMASGAN_ALLOW_CPU_FOR_GPU=1: the logical GPUs of a test cluster, units run on the CPU)"
    return status, text


def _gpu_task(allow_cpu_env: str) -> tuple[str, str]:
    return gpu_task_report(os.environ.get(allow_cpu_env) == "1")


def probe_read(storage: str, path: str, token: str) -> str | None:
    """None when ``path`` under ``storage`` holds ``token``, else what went wrong (runs on a node)."""
    from omasgan.trainables.storage.filesystems import open_filesystem

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


def _pinned(function: Any, node_id: str, **options: Any) -> Any:
    """``function`` as a Ray task that runs on node ``node_id`` only."""
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    options.setdefault("num_cpus", 0)
    return ray.remote(**options)(function).options(
        scheduling_strategy=NodeAffinitySchedulingStrategy(node_id, soft=False))


def _alive_nodes() -> list[dict[str, Any]]:
    import ray

    return [n for n in ray.nodes() if n.get("Alive")]


def _head(nodes: list[dict[str, Any]]) -> dict[str, Any] | None:
    return next((n for n in nodes if "node:__internal_head__" in n.get("Resources", {})), None)


def autoscaler_lines(line: Lines, head: dict[str, Any] | None, wait_workers_s: float, timeout_s: float,
                     request: Any = None) -> None:
    """The AMI and worker-type checks on the autoscaler config the head holds (the GCS's cluster
    config when there is none).  ``request``: the :class:`~.doctor_workers.NodeRequest` through which
    ``--wait-workers`` asks for nodes (the caller withdraws it at the end)."""
    import ray
    import yaml

    from ..studies.autoscaler_state import read_autoscaler_state
    from ..studies.capacity import AUTOSCALER_CONFIG_ENV, BOOTSTRAP_CONFIG
    from .doctor_workers import check_worker_types, read_autoscaler_config_text, worker_types, worker_types_from_gcs

    if head is None:
        line("skip", "autoscaler: no head node among the nodes alive")
        return
    head_id = head["NodeID"]
    path = os.environ.get(AUTOSCALER_CONFIG_ENV) or BOOTSTRAP_CONFIG
    text = ray.get(_pinned(read_autoscaler_config_text, head_id).remote(path), timeout=timeout_s)
    config = None
    if text:
        try:
            config = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            line("FAIL", f"the autoscaler config {path} on the head is not YAML: {_first_line(exc)}")
    types = []
    if isinstance(config, dict) and config.get("available_node_types"):
        problems = ami_problems(config)
        for problem in problems:
            line("FAIL", f"AMI: {problem}")
        gpu_types = [name for name, t in config["available_node_types"].items()
                     if name != config.get("head_node_type") and isinstance(t, dict) and is_gpu_type(t)]
        if (config.get("provider") or {}).get("type") != "aws":
            line("skip", f"AMI: the cluster's provider is {(config.get('provider') or {}).get('type')!r}, not aws")
        elif not problems and gpu_types:
            line("ok", "AMI: " + "; ".join(
                f"GPU worker type {name} launches {config['available_node_types'][name]['node_config']['ImageId']}"
                for name in gpu_types))
        elif not gpu_types:
            line("skip", "AMI: the cluster has no GPU worker type")
        types = worker_types(config)
    else:
        line("skip", f"AMI: no autoscaler config on the head ({path})")
        try:
            from ray._private.state import state

            types = worker_types_from_gcs(state.get_cluster_config())
        except Exception:  # noqa: BLE001 - a private API; absent or changed means "not available"
            types = []
    if not types:
        line("skip", "worker types: no autoscaler config with worker types (machines joined with ray start: every "
                     "node alive is checked below)")
        return
    check_worker_types(line, types,
                       read_state=lambda: ray.get(_pinned(read_autoscaler_state, head_id).remote(), timeout=timeout_s),
                       alive_nodes=_alive_nodes, request=request or _refuse_request, wait_s=wait_workers_s)


def _refuse_request(bundles: list[dict[str, float]]) -> None:
    raise RuntimeError("no way to ask the autoscaler for nodes was given")


def _differences(reports: dict[str, dict[str, Any]], nodes: list[dict[str, Any]], what: str) -> str:
    """``value on node A, node B; value on node C`` for one report field."""
    by_value: dict[str, list[str]] = {}
    for node in nodes:
        if node["NodeID"] in reports:
            by_value.setdefault(str(reports[node["NodeID"]][what]), []).append(_name(node))
    return "; ".join(f"{value[:12] if what == 'code' else value} on {', '.join(names)}"
                     for value, names in sorted(by_value.items()))


def version_lines(line: Lines, reports: dict[str, dict[str, Any]], nodes: list[dict[str, Any]]) -> None:
    """omasgan's code digest, torch, Ray and Python: equal on every node, or which node has which."""
    names = {"code": "omasgan's code (digest)", "torch": "torch", "ray": "Ray", "python": "Python"}
    differing = [w for w in names if len({r[w] for r in reports.values()}) > 1]
    for what in differing:
        line("FAIL", f"{names[what]} differs between nodes: {_differences(reports, nodes, what)}"
                     + (" (install the same omasgan on every node: ray up --no-restart syncs it)" if what == "code" else ""))
    if reports and not differing:
        first = next(iter(reports.values()))
        line("ok", f"every node runs the same code ({first['code_version']}, digest {first['code'][:12]}), torch "
                   f"{first['torch']}, Ray {first['ray']} and Python {first['python']}")


def gpu_lines(line: Lines, nodes: list[dict[str, Any]], timeout_s: float) -> None:
    """On every node with GPUs, a task given one GPU (a fresh worker process: ``max_calls=1``) checks
    that torch sees the GPU it was given (:func:`gpu_task_report`)."""
    import ray

    from omasgan.trainables.function_trainables import ALLOW_CPU_ENV

    gpu_nodes = [n for n in nodes if n.get("Resources", {}).get("GPU", 0) >= 1]
    refs = {n["NodeID"]: _pinned(_gpu_task, n["NodeID"], num_gpus=1, max_calls=1).remote(ALLOW_CPU_ENV)
            for n in gpu_nodes}
    ready, _ = ray.wait(list(refs.values()), num_returns=len(refs), timeout=timeout_s) if refs else ([], [])
    for node in gpu_nodes:
        ref = refs[node["NodeID"]]
        if ref not in ready:
            ray.cancel(ref, force=True)
            line("warn", f"{_name(node)}: no GPU of it came free within {timeout_s:.0f} s (units running?), so the "
                         "GPU task did not run")
            continue
        try:
            status, text = ray.get(ref)
        except Exception as exc:  # noqa: BLE001
            status, text = "FAIL", f"the GPU task failed: {str(exc).strip().splitlines()[-1]}"
        line(status, f"{_name(node)}: {text}")


def run_doctor(address: str | None, storage: str | None, data_root: str | None, dataset: str | None,
               timeout_s: float = 300.0, wait_workers_s: float = 0.0) -> int:
    """Run every check; print one line per check; return the exit status (1 when any failed)."""
    import ray

    from ..studies.capacity import joined_cluster_shape
    from ..studies.preparation import RunOptions
    from ..studies.runner import start_ray
    from .doctor_workers import NodeRequest, request_bundles

    line = Lines()
    start_ray(RunOptions(address=address))
    nodes = _alive_nodes()
    gpus = sum(n.get("Resources", {}).get("GPU", 0) for n in nodes)
    line("ok", f"cluster: {len(nodes)} node(s) alive, {sum(n['Resources'].get('CPU', 0) for n in nodes):g} CPU, "
               f"{gpus:g} GPU now")
    try:
        shape = joined_cluster_shape()
        line("ok", f"cluster maximum ({shape.source}): " + "; ".join(
            f"{t.name} x{t.max_nodes} {t.resources}" for t in shape.node_types))
    except Exception as exc:  # noqa: BLE001
        line("warn", f"cluster maximum: not readable ({type(exc).__name__}: {exc})")
    head = _head(nodes)
    request = NodeRequest(lambda bundles: ray.get(_pinned(request_bundles, head["NodeID"]).remote(bundles),
                                                  timeout=timeout_s))
    try:
        try:
            autoscaler_lines(line, head, wait_workers_s, timeout_s, request)
        except Exception as exc:  # noqa: BLE001
            line("warn", f"autoscaler: not readable ({_first_line(exc)})")
        if request.made:
            nodes = _alive_nodes()
        _node_lines(line, nodes, storage, data_root, dataset, timeout_s)
    finally:
        if request.withdraw():
            line("ok", "withdrew the request for worker nodes (the autoscaler removes idle ones after "
                       "idle_timeout_minutes)")
    print(f"{'1 check' if line.failed == 1 else f'{line.failed} checks'} failed" if line.failed else "all checks passed")
    return 1 if line.failed else 0


def _node_lines(line: Lines, nodes: list[dict[str, Any]], storage: str | None, data_root: str | None,
                dataset: str | None, timeout_s: float) -> None:
    """The checks a task pinned to each node makes, then the GPU tasks, versions, storage and data."""
    import ray

    probe_folder = f"{PROBE_FOLDER}/{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:6]}"
    refs = {node["NodeID"]: _pinned(node_report, node["NodeID"]).remote(
        storage, probe_folder, data_root, dataset, float(node.get("Resources", {}).get("GPU", 0))) for node in nodes}
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
    gpu_lines(line, [n for n in nodes if n["NodeID"] in reports], timeout_s)
    version_lines(line, reports, nodes)
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


def _storage_lines(line: Lines, storage: str, nodes: list[dict[str, Any]], reports: dict[str, dict[str, Any]],
                   probe_folder: str, timeout_s: float) -> None:
    import ray

    from omasgan.trainables.storage.filesystems import open_filesystem

    written = [n for n in nodes if n["NodeID"] in reports and "token" in reports[n["NodeID"]].get("storage", {})]
    for node in nodes:
        probe = reports.get(node["NodeID"], {}).get("storage", {})
        if "error" in probe:
            line("FAIL", f"{_name(node)}: storage {storage} is not writable there: {probe['error']}")
        elif probe:
            for index, (status, text) in enumerate(probe["conditional"]):
                wrote = f"wrote {storage} ({probe['backend']}); " if index == 0 else f"storage {storage}: "
                line(status, f"{_name(node)}: {wrote}{text}")
    if len(written) < 2:
        line("skip", f"storage {storage}: one node wrote it, so no other node can read it back")
    else:
        pairs = [(written[i], written[(i + 1) % len(written)]) for i in range(len(written))]
        refs = [_pinned(probe_read, b["NodeID"]).remote(
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
    if args.wait_workers < 0:
        raise ConfigError(f"--wait-workers {args.wait_workers:g}: give 0 (report only) or a number of seconds")
    return run_doctor(args.address, args.storage, args.data_root, args.dataset, wait_workers_s=args.wait_workers)


def add_doctor_parser(sub: argparse._SubParsersAction) -> None:
    doctor = add_subcommand(
        sub, "doctor", cmd_doctor,
        help="preflight: AMI, worker types, CUDA vs torch, the GPU a task gets, code, storage, data, credentials",
        description="Runs a task on every node of the cluster (or the embedded Ray) and prints one line per "
        "check: the AMI of the GPU worker types and the worker types with no node (with the autoscaler's "
        "reason), CUDA and the NVIDIA driver against torch, the GPU a task is given (CUDA_VISIBLE_DEVICES, "
        "torch, a CUDA computation), equal code digests, storage written on one node read on another and its "
        "conditional writes (create, replace, delete), the data root, and S3 credentials. Exit status 1 when "
        "any check failed.")
    doctor.add_argument("--address", help="the cluster to check (auto, or ray://HOST:10001); default or local: this machine")
    doctor.add_argument("--storage", help="the study storage to check (a shared folder or s3://... / gs://...)")
    doctor.add_argument("--data-root", help="the data folder every node must have")
    doctor.add_argument("--dataset", help="also load this data set's classes from --data-root on every node")
    doctor.add_argument("--wait-workers", type=float, default=0.0, metavar="SECONDS",
                        help="ask the autoscaler for one node of each worker type that has none and wait up to "
                        "SECONDS for them (default 0: report only); the request is withdrawn at the end")
    doctor.add_argument("--verbose", action="store_true", help=argparse.SUPPRESS)

"""cluster.yaml (and the on-premise snippet in docs/cluster.md) against the installed Ray's own
cluster-launcher checks, plus what this project needs of a cluster.

Ray's checks, in the order `ray up` runs them (ray.autoscaler._private.commands._bootstrap_config),
minus the steps that call AWS: the JSON schema ray/autoscaler/ray-schema.json, ``prepare_config``
(merges the provider's defaults.yaml, merges setup commands, checks docker, fills per-type
min/max workers) and ``validate_config`` (schema again, head_node_type, sum of min_workers).
The project's checks: a CPU head with no workers of its own, GPU workers, setup commands that pin
torch/torchvision exactly as setup.py does and install this package from the synced repo, and one
s3:// storage URI used throughout.  Broken copies must fail, so none of this passes vacuously.
No network, no AWS credentials, no Ray cluster.
"""

from __future__ import annotations

import ast
import copy
import json
import re
import shlex
from pathlib import Path

import pytest

yaml = pytest.importorskip("yaml")
jsonschema = pytest.importorskip("jsonschema")
pytest.importorskip("ray")
import ray.autoscaler  # noqa: E402
from packaging.requirements import Requirement  # noqa: E402
from packaging.specifiers import SpecifierSet  # noqa: E402
from packaging.version import Version  # noqa: E402
from ray.autoscaler._private.util import prepare_config, validate_config  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
CLUSTER_YAML = REPO / "cluster.yaml"
CLUSTER_DOC = REPO / "docs" / "cluster.md"
SCHEMA = json.loads((Path(ray.autoscaler.__file__).parent / "ray-schema.json").read_text())


# --- what setup.py declares (read with ast: setup.py is not importable without running setup()) ---

def setup_py_keywords() -> dict:
    tree = ast.parse((REPO / "setup.py").read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "setup":
            found = {}
            for keyword in node.keywords:
                try:
                    found[keyword.arg] = ast.literal_eval(keyword.value)
                except ValueError:
                    pass  # computed values (packages, long_description): not needed here
            return found
    raise AssertionError("setup.py has no setup(...) call")


def install_requires() -> dict[str, Requirement]:
    return {Requirement(text).name: Requirement(text) for text in setup_py_keywords()["install_requires"]}


def exact_pins() -> dict[str, str]:
    """``name -> version`` for every ``name==version`` requirement of setup.py (torch, torchvision)."""
    pins = {}
    for name, requirement in install_requires().items():
        specs = list(requirement.specifier)
        if len(specs) == 1 and specs[0].operator == "==":
            pins[name] = specs[0].version
    return pins


# --- Ray's checks and the project's checks -------------------------------------------------------

def ray_launcher_checks(config: dict) -> dict:
    """Ray's offline steps of `ray up`; returns the prepared config, raises on a bad one."""
    jsonschema.validate(config, SCHEMA)
    prepared = prepare_config(copy.deepcopy(config))
    validate_config(prepared)
    return prepared


def pip_installs(commands: list[str]) -> list[list[str]]:
    """The argument lists of every ``pip install`` in the commands (split on && and ;)."""
    installs = []
    for command in commands:
        for part in re.split(r"&&|;|\|\|", command):
            words = shlex.split(part)
            while words and words[0] in ("python", "python3", "-m"):
                words = words[1:]
            if words[:2] in (["pip", "install"], ["pip3", "install"]):
                installs.append(words[2:])
    return installs


def repo_mount(config: dict) -> str | None:
    """The remote path that file_mounts fills from this repository (local path relative to the repo
    root, where `ray up cluster.yaml` is run)."""
    for remote, local in (config.get("file_mounts") or {}).items():
        source = Path(local).expanduser()
        source = source if source.is_absolute() else REPO / source
        if source.resolve() == REPO:
            return remote
    return None


def project_problems(config: dict) -> list[str]:
    """What this project needs of cluster.yaml beyond Ray's own checks; empty when all is well."""
    problems = []
    types = config.get("available_node_types", {})
    head_name = config.get("head_node_type")
    head = types.get(head_name)
    if head is None:
        return [f"head_node_type {head_name!r} is not one of available_node_types {sorted(types)}"]
    if head.get("max_workers", 0) != 0 or head.get("min_workers", 0) != 0:
        problems.append("the head node type must launch no extra nodes of its own (min/max_workers 0)")
    if head.get("resources", {}).get("GPU", 0):
        problems.append("the head node is meant to be a CPU node (the GPU workers run the units)")
    if not head.get("resources", {}).get("CPU"):
        problems.append("the head node type must declare its CPUs (resources: {CPU: n})")
    workers = {name: t for name, t in types.items() if name != head_name}
    gpu_workers = {name: t for name, t in workers.items() if t.get("resources", {}).get("GPU", 0) >= 1}
    if not gpu_workers:
        problems.append("no worker node type declares a GPU (resources: {GPU: 1})")
    for name, node_type in gpu_workers.items():
        if node_type.get("resources", {}).get("CPU", 0) < 1:
            problems.append(f"{name}: declare the worker's CPUs too (a unit asks for CPU and GPU)")
        if node_type.get("max_workers", 0) < 1:
            problems.append(f"{name}: max_workers must be >= 1 or no GPU node ever starts")
        if node_type.get("min_workers", 0) > node_type.get("max_workers", 0):
            problems.append(f"{name}: min_workers > max_workers")
        if "IamInstanceProfile" not in node_type.get("node_config", {}):
            problems.append(f"{name}: workers need an IamInstanceProfile to reach the S3 storage")
    if sum(t.get("max_workers", 0) for t in workers.values()) > config.get("max_workers", 0):
        problems.append("the worker types' max_workers add up to more than the global max_workers")

    mount = repo_mount(config)
    if mount is None:
        problems.append("file_mounts does not sync this repository (local path '.' from the repo root)")
    commands = list(config.get("setup_commands", []))
    installs = [arg for args in pip_installs(commands) for arg in args]
    for name, version in exact_pins().items():
        if f"{name}=={version}" not in installs:
            problems.append(f"setup_commands do not pip install {name}=={version} (setup.py's pin)")
        for arg in installs:
            if re.fullmatch(rf"{re.escape(name)}\s*(==|>=|<=|~=|>|<).*", arg) and arg != f"{name}=={version}":
                problems.append(f"setup_commands install {arg}, setup.py pins {name}=={version}")
    editable = [args[args.index("-e") + 1] for args in pip_installs(commands) if "-e" in args[:-1]]
    if mount is not None and mount not in editable:
        problems.append(f"setup_commands do not `pip install -e {mount}` (the synced repo)")

    storage = (config.get("metadata") or {}).get("omasgan_storage", "")
    if not storage.startswith("s3://"):
        problems.append("metadata.omasgan_storage must be the s3:// URI every node reaches")
    elif not any(storage in command for command in commands):
        problems.append(f"setup_commands do not export the storage URI {storage}")
    return problems


@pytest.fixture(scope="module")
def raw_text() -> str:
    return CLUSTER_YAML.read_text()


@pytest.fixture()
def config(raw_text) -> dict:
    return yaml.safe_load(raw_text)


# --- cluster.yaml passes -----------------------------------------------------------------------------

def test_cluster_yaml_passes_rays_schema_and_config_checks(config):
    prepared = ray_launcher_checks(config)
    head = prepared["available_node_types"][prepared["head_node_type"]]
    assert head["max_workers"] == 0
    assert prepared["provider"]["type"] == "aws"
    # setup_commands run on both kinds of node after Ray's merge
    for key in ("head_setup_commands", "worker_setup_commands"):
        assert prepared[key][: len(config["setup_commands"])] == config["setup_commands"]


def test_cluster_yaml_meets_the_projects_needs(config):
    assert project_problems(config) == []


def test_setup_py_still_pins_torch_and_torchvision():
    # if these pins move, cluster.yaml must move with them (test above)
    assert {"torch", "torchvision"} <= set(exact_pins())


def test_docker_image_ray_satisfies_setup_py_so_pip_leaves_it_alone(config):
    image = config["docker"]["image"]
    match = re.fullmatch(r"rayproject/ray:(\d+\.\d+\.\d+)-py(\d)(\d+)(-[a-z0-9]+)*", image)
    assert match, f"expected a pinned rayproject/ray:<version>-py<xy>[-gpu] image, got {image}"
    ray_version, python = Version(match.group(1)), Version(f"{match.group(2)}.{match.group(3)}")
    assert "gpu" in image or "cu" in image, "the workers need a CUDA image"
    assert ray_version in install_requires()["ray"].specifier
    assert python in SpecifierSet(setup_py_keywords()["python_requires"])


def test_storage_uri_is_the_one_the_docs_and_header_use(config, raw_text):
    storage = config["metadata"]["omasgan_storage"]
    assert f"--storage {storage}" in raw_text  # the header's example command
    if CLUSTER_DOC.exists():
        assert storage in CLUSTER_DOC.read_text()


def test_local_provider_snippet_in_docs_passes_rays_checks():
    if not CLUSTER_DOC.exists():
        pytest.skip("docs/cluster.md not present")
    blocks = re.findall(r"```yaml\n(.*?)```", CLUSTER_DOC.read_text(), flags=re.S)
    local = [yaml.safe_load(block) for block in blocks if "type: local" in block]
    assert local, "docs/cluster.md should show a provider: local config"
    for snippet in local:
        prepared = ray_launcher_checks(snippet)
        assert prepared["provider"]["worker_ips"]


# --- broken copies fail ------------------------------------------------------------------------------

def _without(config: dict, key: str) -> dict:
    config.pop(key)
    return config


def _worker(config: dict) -> dict:
    return config["available_node_types"]["worker.gpu"]


RAY_REJECTS = {
    "unknown top-level key": (lambda c: {**c, "max_worker": 3}, jsonschema.ValidationError),
    "unknown node-type key": (lambda c: _worker(c).update(min_worker=1) or c, jsonschema.ValidationError),
    "GPU count as a string": (lambda c: _worker(c)["resources"].update(GPU="1") or c, jsonschema.ValidationError),
    "fractional CPU resource": (lambda c: _worker(c)["resources"].update(CPU=3.5) or c, jsonschema.ValidationError),
    "node type without resources": (lambda c: _worker(c).pop("resources") and c, jsonschema.ValidationError),
    "unknown docker key": (lambda c: c["docker"].update(imag="x") or c, jsonschema.ValidationError),
    "setup command not a string": (lambda c: {**c, "setup_commands": [["pip", "install"]]}, jsonschema.ValidationError),
    "provider without type": (lambda c: c["provider"].pop("type") and c, jsonschema.ValidationError),
    # without head_node_type, Ray's defaults.yaml supplies ray.head.default, which this file lacks
    "head_node_type missing": (lambda c: _without(c, "head_node_type"), (ValueError, "head_node_type")),
    "head_node_type not a node type": (lambda c: {**c, "head_node_type": "head.gpu"}, (ValueError, "head_node_type")),
    "min_workers above global max": (lambda c: _worker(c).update(min_workers=11) or c, (ValueError, "min_workers")),
}


@pytest.mark.parametrize("case", sorted(RAY_REJECTS))
def test_broken_copy_fails_rays_checks(config, case):
    breaker, error = RAY_REJECTS[case]
    error, match = error if isinstance(error, tuple) else (error, None)
    with pytest.raises(error, match=match):
        ray_launcher_checks(breaker(copy.deepcopy(config)))


PROJECT_REJECTS = {
    "worker without GPU": lambda c: _worker(c)["resources"].pop("GPU"),
    "head with workers of its own": lambda c: c["available_node_types"]["head.cpu"].update(max_workers=2),
    "worker max_workers 0": lambda c: _worker(c).update(max_workers=0),
    "worker without instance profile": lambda c: _worker(c)["node_config"].pop("IamInstanceProfile"),
    "torch unpinned": lambda c: c.update(setup_commands=[
        s.replace("torch==2.14.1", "torch") for s in c["setup_commands"]]),
    "torch pinned to another version": lambda c: c.update(setup_commands=[
        s.replace("torch==2.14.1", "torch==2.13.0") for s in c["setup_commands"]]),
    "torchvision missing": lambda c: c.update(setup_commands=[
        s.replace(" torchvision==0.29.1", "") for s in c["setup_commands"]]),
    "package not installed": lambda c: c.update(setup_commands=[
        s.replace(" && pip install -e ~/omasgan", "") for s in c["setup_commands"]]),
    "repo not synced": lambda c: c.update(file_mounts={"~/omasgan": "/tmp"}),
    "storage not on S3": lambda c: c["metadata"].update(omasgan_storage="/tmp/omasgan"),
    "storage missing": lambda c: c.pop("metadata"),
}


@pytest.mark.parametrize("case", sorted(PROJECT_REJECTS))
def test_broken_copy_fails_project_checks(config, case):
    broken = copy.deepcopy(config)
    PROJECT_REJECTS[case](broken)
    ray_launcher_checks(broken)  # each of these is valid to Ray; only the project's checks catch it
    assert project_problems(broken), case

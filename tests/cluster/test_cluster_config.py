"""cluster.yaml (and the on-premise snippet in docs/cluster.md) against the installed Ray's own
cluster-launcher checks, plus what this project needs of a cluster.

Ray's checks, in the order `ray up` runs them (ray.autoscaler._private.commands._bootstrap_config),
minus the steps that call AWS: the JSON schema ray/autoscaler/ray-schema.json, ``prepare_config``
(merges the provider's defaults.yaml, merges setup commands, checks docker, fills per-type
min/max workers) and ``validate_config`` (schema again, head_node_type, sum of min_workers).
The project's checks: a CPU head with no workers of its own, GPU workers, the node image built from
the repository's Dockerfile (which pins torch/torchvision exactly as setup.py does, on Ray's CUDA
image of the same Ray), setup commands that only link the synced repo (no download on a new worker),
an ECR login for that image, the instance profiles deploy/iam.py creates (a head role that may pass
only the worker role, scoped to the bucket), absolute paths in the documented commands, and one s3://
storage URI used throughout.  Broken copies must fail, so none of this passes vacuously.
No network, no AWS credentials, no Ray cluster (test_iam_set_up_against_an_iam_server uses moto).
"""

from __future__ import annotations

import ast
import copy
import json
import re
import shlex
from pathlib import Path

import pytest

from helpers import REPO

yaml = pytest.importorskip("yaml")
jsonschema = pytest.importorskip("jsonschema")
pytest.importorskip("ray")
import ray.autoscaler  # noqa: E402
from packaging.requirements import Requirement  # noqa: E402
from packaging.specifiers import SpecifierSet  # noqa: E402
from packaging.version import Version  # noqa: E402
from ray.autoscaler._private.util import prepare_config, validate_config  # noqa: E402

CLUSTER_YAML = REPO / "cluster.yaml"
CLUSTER_DOC = REPO / "docs" / "cluster.md"
DOCKERFILE = REPO / "Dockerfile"
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
            try:
                words = shlex.split(part)
            except ValueError:  # a split inside a quoted python -c "...; ..." is no pip install anyway
                words = part.split()
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


def dockerfile_installs(text: str) -> list[list[str]]:
    """The argument lists of every ``pip install`` in the Dockerfile's RUN instructions."""
    runs = re.findall(r"^RUN\s+(.*?)(?<!\\)$", text.replace("\\\n", " "), flags=re.M)
    return pip_installs(runs)


def dockerfile_base(text: str) -> str:
    return re.search(r"^FROM\s+(\S+)", text, flags=re.M).group(1)


def profile_name(node_type: dict) -> str | None:
    arn = (node_type.get("node_config", {}).get("IamInstanceProfile") or {}).get("Arn", "")
    return arn.rsplit("/", 1)[-1] if "instance-profile/" in arn else None


def project_problems(config: dict, dockerfile: str | None = None) -> list[str]:
    """What this project needs of cluster.yaml (and the Dockerfile its image is built from) beyond
    Ray's own checks; empty when all is well."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("deploy_iam", REPO / "deploy" / "iam.py")
    deploy_iam = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(deploy_iam)
    dockerfile = DOCKERFILE.read_text() if dockerfile is None else dockerfile
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
    if head.get("resources", {}).get("CPU", None) != 0:
        problems.append("the head node type must offer Ray no CPU (resources: {CPU: 0}): only drivers run there, so "
                        "the workers' role never writes what the head unpickles")
    for name, node_type in types.items():
        if not str(node_type.get("node_config", {}).get("ImageId", "")).startswith("ami-"):
            problems.append(f"{name}: node_config.ImageId must be set (required: Ray's default AMI has an NVIDIA "
                            "driver too old for torch's CUDA build)")
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
        elif profile_name(node_type) != deploy_iam.WORKER_ROLE:
            problems.append(f"{name}: the workers' profile must be {deploy_iam.WORKER_ROLE} (deploy/iam.py), the one "
                            f"the head's role may pass; got {profile_name(node_type)}")
    if profile_name(head) != deploy_iam.HEAD_ROLE:
        problems.append(f"the head needs the instance profile {deploy_iam.HEAD_ROLE} (deploy/iam.py: it may pass the "
                        f"worker role); without one Ray's ray-autoscaler-v1 cannot launch workers with a role")
    if sum(t.get("max_workers", 0) for t in workers.values()) > config.get("max_workers", 0):
        problems.append("the worker types' max_workers add up to more than the global max_workers")

    mount = repo_mount(config)
    if mount is None:
        problems.append("file_mounts does not sync this repository (local path '.' from the repo root)")
    commands = list(config.get("setup_commands", [])) + list(config.get("head_setup_commands", [])) + list(
        config.get("worker_setup_commands", []))
    image_installs = [arg for args in dockerfile_installs(dockerfile) for arg in args]
    for name, version in exact_pins().items():
        if f"{name}=={version}" not in image_installs:
            problems.append(f"the Dockerfile does not pip install {name}=={version} (setup.py's pin)")
        for arg in image_installs:
            if re.fullmatch(rf"{re.escape(name)}\s*(==|>=|<=|~=|>|<).*", arg) and arg != f"{name}=={version}":
                problems.append(f"the Dockerfile installs {arg}, setup.py pins {name}=={version}")
    for args in pip_installs(commands):  # a joining node downloads nothing: the image has every dependency
        if "--no-deps" not in args:
            problems.append(f"setup commands `pip install {' '.join(args)}` without --no-deps: every new node "
                            "would download packages the image already has")
    editable = [args[args.index("-e") + 1] for args in pip_installs(commands) if "-e" in args[:-1]]
    if mount is not None and mount not in editable:
        problems.append(f"setup_commands do not `pip install -e {mount}` (the synced repo)")
    image = (config.get("docker") or {}).get("image", "")
    if not re.search(r"(^|/)omasgan:[\w.-]+$", image):
        problems.append(f"docker.image {image!r} is not the node image built from the Dockerfile (REGISTRY/omasgan:TAG)")
    registry = image.split("/", 1)[0] if "/" in image else ""
    if ".dkr.ecr." in registry and not any("docker login" in c and registry in c
                                           for c in config.get("initialization_commands", [])):
        problems.append(f"initialization_commands do not log Docker in to {registry}, where the image lives")

    for command in commands:  # `ray up` runs them again each time: they must be idempotent
        if ">>" in command and not re.search(r"\bgrep -\w*q\w*\b.*\|\|", command):
            problems.append(f"setup command {command!r} appends on every `ray up`; guard it: "
                            "grep -qxF LINE FILE || echo LINE >> FILE")
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


def test_documented_commands_use_absolute_paths_on_the_cluster(raw_text):
    """`~` in a command typed on the laptop (ray job submit, ray exec) expands on the laptop."""
    import shlex

    text = raw_text + (CLUSTER_DOC.read_text() if CLUSTER_DOC.exists() else "")
    blocks = re.findall(r"```bash\n(.*?)```", text, flags=re.S) + [raw_text]
    offenders = []
    for block in blocks:
        for line in block.replace("\\\n", " ").splitlines():
            line = line.lstrip("# ").strip()
            if not re.search(r"\bomasgan (search|sensitivity|seeds|report|results|doctor|cache)\b", line):
                continue
            try:
                words = shlex.split(line, comments=True)
            except ValueError:
                words = line.split()
            offenders += [f"{w}  in: {line[:80]}" for w in words if w.startswith("~")]
    assert offenders == []


def test_setup_py_still_pins_torch_and_torchvision():
    # if these pins move, cluster.yaml must move with them (test above)
    assert {"torch", "torchvision"} <= set(exact_pins())


def test_docker_image_ray_satisfies_setup_py_so_pip_leaves_it_alone():
    image = dockerfile_base(DOCKERFILE.read_text())
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


def _set_profile(node_type: dict, name: str) -> None:
    node_type["node_config"]["IamInstanceProfile"] = {"Arn": f"arn:aws:iam::123456789012:instance-profile/{name}"}


PROJECT_REJECTS = {
    "worker without GPU": lambda c: _worker(c)["resources"].pop("GPU"),
    "head with workers of its own": lambda c: c["available_node_types"]["head.cpu"].update(max_workers=2),
    "tasks may run on the head": lambda c: c["available_node_types"]["head.cpu"].update(resources={"CPU": 8}),
    "GPU workers on Ray's default AMI": lambda c: c["available_node_types"]["worker.gpu"]["node_config"].pop("ImageId"),
    "setup commands that append on every run": lambda c: c.update(setup_commands=[
        "echo 'export OMASGAN_STORAGE=s3://YOUR-BUCKET/omasgan' >> ~/.bashrc" if "bashrc" in x else x
        for x in c["setup_commands"]]),
    "worker max_workers 0": lambda c: _worker(c).update(max_workers=0),
    "worker without instance profile": lambda c: _worker(c)["node_config"].pop("IamInstanceProfile"),
    "worker with Ray's default profile": lambda c: _set_profile(_worker(c), "ray-autoscaler-v1"),
    "head without instance profile": lambda c: c["available_node_types"]["head.cpu"]["node_config"].pop(
        "IamInstanceProfile"),
    "torch downloaded by every node": lambda c: c.update(setup_commands=[
        "pip install torch==2.14.1 torchvision==0.29.1 && pip install -e ~/omasgan"]),
    "package installed with its dependencies": lambda c: c.update(setup_commands=[
        s.replace("--no-deps ", "") for s in c["setup_commands"]]),
    "package not installed": lambda c: c.update(setup_commands=[
        s for s in c["setup_commands"] if "pip install" not in s]),
    "the stock Ray image": lambda c: c["docker"].update(image="rayproject/ray:2.60.0-py311-gpu"),
    "no registry login": lambda c: c.update(initialization_commands=[]),
    "repo not synced": lambda c: c.update(file_mounts={"~/omasgan": "/tmp"}),
    "storage not on S3": lambda c: c["metadata"].update(omasgan_storage="/tmp/omasgan"),
    "storage missing": lambda c: c.pop("metadata"),
}

DOCKERFILE_REJECTS = {
    "torch unpinned": lambda d: d.replace("torch==2.14.1", "torch"),
    "torch pinned to another version": lambda d: d.replace("torch==2.14.1", "torch==2.13.0"),
    "torchvision missing": lambda d: d.replace(" torchvision==0.29.1", ""),
}


@pytest.mark.parametrize("case", sorted(PROJECT_REJECTS))
def test_broken_copy_fails_project_checks(config, case):
    broken = copy.deepcopy(config)
    PROJECT_REJECTS[case](broken)
    ray_launcher_checks(broken)  # each of these is valid to Ray; only the project's checks catch it
    assert project_problems(broken), case


@pytest.mark.parametrize("case", sorted(DOCKERFILE_REJECTS))
def test_broken_dockerfile_fails_project_checks(config, case):
    assert project_problems(config, DOCKERFILE_REJECTS[case](DOCKERFILE.read_text())), case


@pytest.mark.slow
def test_iam_set_up_against_an_iam_server(tmp_path, config):
    """deploy/iam.py against moto's server: two profiles as cluster.yaml names them; the head's role may
    pass the worker role and no other; both reach only the bucket and the keys under the prefix of
    metadata.omasgan_storage, with the documents deploy/iam.py renders (tests/cluster/test_iam_stand_in.py
    evaluates them against every S3 request of a study); a run with --spot, then one without, leaves
    the head without the Spot service-linked role permission (the rerun replaces the policies)."""
    pytest.importorskip("moto")
    import importlib.util
    import json
    import os
    import subprocess
    import sys

    from s3_helpers import moto_server

    storage = config["metadata"]["omasgan_storage"]
    bucket, prefix = storage[len("s3://"):].split("/", 1)
    with moto_server(tmp_path / "moto.log") as env:
        out = subprocess.run([sys.executable, str(REPO / "deploy" / "iam.py"), "--bucket", bucket, "--prefix", prefix,
                              "--spot"], env=dict(os.environ, **env), capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, out.stderr[-2000:]
        rerun = subprocess.run([sys.executable, str(REPO / "deploy" / "iam.py"), "--bucket", bucket, "--prefix", prefix],
                               env=dict(os.environ, **env), capture_output=True, text=True, timeout=120)
        assert rerun.returncode == 0, rerun.stderr[-2000:]  # idempotent
        import boto3

        iam = boto3.client("iam", endpoint_url=env["AWS_ENDPOINT_URL"], region_name="us-east-1",
                           aws_access_key_id="testing", aws_secret_access_key="testing")
        profiles = {p["InstanceProfileName"]: [r["RoleName"] for r in p["Roles"]]
                    for p in iam.list_instance_profiles()["InstanceProfiles"]}
        account = boto3.client("sts", endpoint_url=env["AWS_ENDPOINT_URL"], region_name="us-east-1",
                               aws_access_key_id="testing", aws_secret_access_key="testing").get_caller_identity()["Account"]
        policies = {role: {name: iam.get_role_policy(RoleName=role, PolicyName=name)["PolicyDocument"]
                           for name in iam.list_role_policies(RoleName=role)["PolicyNames"]}
                    for role in profiles}
    head = profile_name(config["available_node_types"][config["head_node_type"]])
    worker = profile_name(_worker(config))
    assert profiles == {head: [head], worker: [worker]}
    spec = importlib.util.spec_from_file_location("deploy_iam_rendered", REPO / "deploy" / "iam.py")
    deploy_iam = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(deploy_iam)
    stored = {role: {name: d if isinstance(d, dict) else json.loads(d) for name, d in documents.items()}
              for role, documents in policies.items()}
    assert stored == deploy_iam.role_policies(bucket, prefix, "us-west-2", account, "omasgan")

    def statements(role):
        return [s for d in stored[role].values() for s in d["Statement"]]

    def listed(value):
        return [value] if isinstance(value, str) else value

    def actions(role):
        return {a for s in statements(role) for a in listed(s["Action"])}

    passes = [s for s in statements(head) if s["Action"] == "iam:PassRole"]
    assert [s["Resource"] for s in passes] == [f"arn:aws:iam::{account}:role/{worker}"]
    assert "ec2:RunInstances" in actions(head) and not any(a.startswith(("ec2:", "iam:")) for a in actions(worker))
    assert "iam:CreateServiceLinkedRole" not in actions(head)  # the rerun without --spot removed it
    for role in (head, worker):
        s3 = [s for s in statements(role) if all(a.startswith("s3:") for a in listed(s["Action"]))]
        resources = {r for s in s3 for r in listed(s["Resource"])}
        assert all(r == f"arn:aws:s3:::{bucket}" or r.startswith(f"arn:aws:s3:::{bucket}/{prefix}/")
                   for r in resources), resources
        assert f"arn:aws:s3:::{bucket}/{prefix}/*" in resources
    assert [s["Sid"] for s in statements(worker) if s["Effect"] == "Deny"] == ["NeverWhatTheHeadUnpickles",
                                                                                 "NeverTheDriversState"]
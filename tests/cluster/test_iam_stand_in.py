"""A strict stand-in for IAM: every S3 request a study makes, recorded and judged by AWS's rules.

moto enforces no IAM policy, so a request the real S3 would refuse passes there unseen.  Here a
recording proxy in front of moto's server (tests/s3_helpers.py) logs every request with the access
key that signed it, and deploy/policy_check.py maps each one to the IAM action, resource and
condition keys AWS authorises for it and evaluates the policies deploy/iam.py ships for that role.

The roles are modelled as on the cluster, where the head offers Ray no CPU and runs drivers only:
the Ray cluster (``ray start --head``) runs with the WORKER role's keys in its environment, so every
Ray worker process (trial coordinators, units, doctor's tasks, a compaction's tasks) signs with
them; the drivers and the CLI on the head (``omasgan search``, ``compact``, ``report``, ``doctor``)
sign with the HEAD role's keys, which they find in a credentials file as an instance profile's are
found, not in ``AWS_ACCESS_KEY_ID`` (Ray Tune copies a driver's ``AWS_ACCESS_KEY_ID``,
``AWS_SECRET_ACCESS_KEY`` and ``AWS_SESSION_TOKEN`` into every trial actor's environment).

The scenario, run once for the module: a search with a shared ``--cache``, killed with SIGKILL
mid-way and resumed with ``--resume`` from a second working folder (``Tuner.restore`` reads the
experiment back from the bucket); its end-of-study compaction, whose partition jobs run as Ray tasks
as a big study's do (the commit stays in the driver); ``omasgan compact`` and ``omasgan report`` on
the study folder; ``omasgan doctor --storage``.  ``OMASGAN_S3_REQUEST_LOG=PATH`` keeps a copy of the
request log for ``python deploy/policy_check.py PATH``.  The tests: no request denied; each role's S3
permissions all used by its own requests; the worker role can write none of the files the head
unpickles, and the head wrote every one the restore read; plus hand-written cases of the mapper and
the evaluator.  Non-S3 statements (EC2 for the autoscaler, ECR, PassRole) are outside these checks.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

import pytest

pytest.importorskip("moto")
pytest.importorskip("boto3")

from s3_helpers import client, moto_server, recording_proxy  # noqa: E402

from helpers import REPO, tiny_config  # noqa: E402



def _load(name: str):
    spec = importlib.util.spec_from_file_location(f"deploy_{name}", REPO / "deploy" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


iam = _load("iam")
check = _load("policy_check")

BUCKET, PREFIX, STUDY = "omasgan-iam", "omasgan", "iam"
HEAD_KEY, WORKER_KEY = "AKIAHEADROLE", "AKIAWORKERROLE"
ROLES = {HEAD_KEY: iam.HEAD_ROLE, WORKER_KEY: iam.WORKER_ROLE}
RAY = str(Path(sys.executable).with_name("ray"))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _base_env(endpoint: str, work: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    return dict(env, AWS_DEFAULT_REGION="us-east-1", AWS_ENDPOINT_URL=endpoint, RAY_AUTH_MODE="disabled",
                AWS_CONFIG_FILE=str(work / "no-aws-config"), AWS_SHARED_CREDENTIALS_FILE=str(work / "no-credentials"))


def cluster_env(endpoint: str, work: Path) -> dict[str, str]:
    """The environment of ``ray start``, hence of every Ray worker process: the worker role's keys."""
    return dict(_base_env(endpoint, work), AWS_ACCESS_KEY_ID=WORKER_KEY, AWS_SECRET_ACCESS_KEY="worker-secret")


def head_env(endpoint: str, work: Path) -> dict[str, str]:
    """The environment of a driver or CLI command on the head: the head role's keys in a credentials
    file, not in ``AWS_ACCESS_KEY_ID``, as an instance profile's are.  (Ray Tune copies a driver's
    ``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``/``AWS_SESSION_TOKEN`` into every trial actor's
    runtime environment: keys there would make the trials sign with the head's role.)"""
    credentials = work / "head-credentials"
    credentials.write_text(f"[default]\naws_access_key_id = {HEAD_KEY}\naws_secret_access_key = head-secret\n")
    return dict(_base_env(endpoint, work), AWS_SHARED_CREDENTIALS_FILE=str(credentials))


def _run(name: str, command: list[str], env: dict, cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess:
    """Run a command to its end (its output also in ``cwd/<name>.log``); it must succeed."""
    out = subprocess.run(command, env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    (cwd / f"{name}.log").write_text(out.stdout + out.stderr)
    assert out.returncode == 0, f"{name}: exit {out.returncode}\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}"
    return out


def _trial_rounds(admin, study_prefix: str) -> dict[str, list[str]]:
    """``{trial id: rounds}`` of the study's trial records, read straight from moto (not recorded)."""
    rounds = {}
    listing = admin.list_objects_v2(Bucket=BUCKET, Prefix=f"{study_prefix}/trials/")
    for item in listing.get("Contents", []):
        name = item["Key"][len(f"{study_prefix}/trials/"):]
        if name.endswith(".json") and "/" not in name and not name.startswith("."):  # not the training ledgers
            body = admin.get_object(Bucket=BUCKET, Key=item["Key"])["Body"].read()
            rounds[name[: -len(".json")]] = json.loads(body).get("rounds", [])
    return rounds


@pytest.fixture(scope="module")
def recording(tmp_path_factory):
    """Run the scenario once for the module; the recorded requests (dicts, as policy_check reads them)."""
    pytest.importorskip("ray")
    work = tmp_path_factory.mktemp("iam")
    temp = Path(f"/tmp/omasgan-iam-{os.getpid()}")  # short: Ray's socket paths must stay < 108 chars
    shutil.rmtree(temp, ignore_errors=True)
    temp.mkdir()
    log = work / "s3-requests.jsonl"
    with moto_server(work / "moto.log") as admin_env, \
            recording_proxy(admin_env, log, ROLES, bucket=BUCKET, prefix=PREFIX) as proxy:
        admin = client(admin_env)  # the bucket's owner: straight to moto, not recorded
        admin.create_bucket(Bucket=BUCKET)
        head = head_env(proxy.url, work)
        port = _free_port()
        address = f"127.0.0.1:{port}"
        cluster_log = open(work / "ray-head.log", "w")
        cluster = subprocess.Popen(
            [RAY, "start", "--block", "--disable-usage-stats", "--head", "--node-ip-address=127.0.0.1",
             f"--port={port}", "--num-cpus=3", "--num-gpus=0", "--include-dashboard=false", f"--temp-dir={temp}",
             f"--object-store-memory={200 * 1024 * 1024}"],
            env=cluster_env(proxy.url, work), stdout=cluster_log, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            _scenario(work, admin, head, address, cluster)
        finally:
            os.killpg(cluster.pid, signal.SIGKILL)
            cluster.wait()
            cluster_log.close()
            shutil.rmtree(temp, ignore_errors=True)
        records = list(proxy.records)
    if os.environ.get("OMASGAN_S3_REQUEST_LOG"):
        shutil.copyfile(log, os.environ["OMASGAN_S3_REQUEST_LOG"])
    return records


RESUME_WITH_COMPACTION_TASKS = (
    "import sys\n"
    "from omasgan.distributed.studies import runner\n"
    "runner.RAY_COMPACTION_MIN_FILES = 1  # the compaction's partition jobs run as Ray tasks, as in a big study\n"
    "from omasgan.cli import main\n"
    "sys.exit(main(sys.argv[1:]))\n"
)


def _scenario(work: Path, admin, head_env: dict, address: str, cluster: subprocess.Popen) -> None:
    started = time.time()
    storage = f"s3://{BUCKET}/{PREFIX}"
    config = work / "base.json"
    config.write_text(json.dumps(tiny_config(n_per_class=100, task1__epochs=4, task2__epochs=2, task3__epochs=2,
                                             j__epochs=6).to_dict()))
    first, second = work / "machine-a", work / "machine-b"
    first.mkdir()
    second.mkdir()
    omasgan = [sys.executable, "-m", "omasgan.cli"]
    search = [*omasgan, "search", "--config", str(config), "--classes", "0", "--seeds", "0", "--space", "j",
              "--trials", "2", "--max-concurrent", "1", "--max-failures", "1", "--storage", storage,
              "--cache", f"{storage}/cache", "--study-dir", str(first / "studies"), "--name", STUDY,
              "--address", address]
    with open(work / "driver-a.log", "w") as out:
        driver = subprocess.Popen(search, cwd=first, env=dict(head_env, TUNE_GLOBAL_CHECKPOINT_S="1"),
                                  start_new_session=True, stdout=out, stderr=subprocess.STDOUT)
        try:
            deadline = time.time() + 300
            while True:  # kill once one trial has finished its last round and the second has started
                assert driver.poll() is None, (work / "driver-a.log").read_text()[-3000:]
                assert cluster.poll() is None, (work / "ray-head.log").read_text()[-3000:]
                assert time.time() < deadline, "the search made no progress"
                rounds = _trial_rounds(admin, f"{PREFIX}/{STUDY}")
                if len(rounds) >= 2 and any("j" in r for r in rounds.values()):
                    break
                time.sleep(0.3)
        finally:
            os.killpg(driver.pid, signal.SIGKILL)
            driver.wait()
    phases = {"killed": time.time() - started}
    # "another machine": a second working folder; only the bucket is shared
    resumed = _run("resume", [sys.executable, "-c", RESUME_WITH_COMPACTION_TASKS, "search", "--resume", "--name", STUDY,
                    "--storage", storage, "--study-dir", str(second / "studies"), "--address", address],
                   dict(head_env, OMASGAN_DRIVER_LEASE_STALE_S="6"), second)
    assert "resuming the Tune experiment" in resumed.stdout, resumed.stdout[-3000:]
    phases["resumed"] = time.time() - started
    folder = second / "studies" / STUDY
    from omasgan.cli import main

    with pytest.MonkeyPatch.context() as patch:  # in this process (no Ray): the head's environment
        for name in [k for k in os.environ if k.startswith("AWS_")]:
            patch.delenv(name)
        for name, value in head_env.items():
            if name.startswith("AWS_"):
                patch.setenv(name, value)
        assert main(["compact", str(folder)]) == 0
        phases["compact"] = time.time() - started
        assert main(["report", str(folder), "--out", str(second / "report")]) == 0
        phases["report"] = time.time() - started
    _run("doctor", [*omasgan, "doctor", "--address", address, "--storage", storage], head_env, second)
    phases["doctor"] = time.time() - started
    print("scenario, seconds from the first driver's start:", {k: round(v, 1) for k, v in phases.items()})


# ------------------------------------------------------------------ the recording, judged


def _policies() -> dict[str, dict[str, dict]]:
    return iam.role_policies(BUCKET, PREFIX, "us-west-2", "123456789012", "omasgan")


def _by_role(records: list[dict]) -> dict[str, list[dict]]:
    grouped = defaultdict(list)
    for r in records:
        grouped[r["role"]].append(r)
    return grouped


@pytest.fixture(scope="module")
def reports(recording):
    """``{role: policy_check.RoleReport}`` of the recording under the shipped policies, printed as a
    table: per role, each S3 action with the operations that needed it and how many requests."""
    policies = _policies()
    grouped = _by_role(recording)
    assert set(grouped) <= set(policies), f"requests by no known role: {set(grouped) - set(policies)}"
    found = {role: check.check_role(role, policies[role], grouped[role], expected_denials=check.EXPECTED_DENIALS)
             for role in sorted(grouped)}
    for role, report in found.items():
        print(f"\n{role}: {len(grouped[role])} requests; S3 actions: {', '.join(report.actions)}")
        for (action, operation), count in sorted(report.operations.items()):
            print(f"  {action:28} {operation:24} {count:5}")
        print(f"  {report.expected_denials} denied as expected: pyarrow's HeadBucket probe of a bucket that cannot exist")
    return found


S3_ACTIONS_USED = {
    iam.HEAD_ROLE: ["s3:DeleteObject", "s3:GetObject", "s3:ListBucket", "s3:PutObject"],
    iam.WORKER_ROLE: ["s3:DeleteObject", "s3:GetObject", "s3:ListBucket", "s3:PutObject"],
}
"""The S3 actions the scenario's requests need, per role (the operations behind them: HeadBucket and
ListObjectsV2 -> ListBucket; GetObject, HeadObject and a copy's source -> GetObject; PutObject,
conditional PutObject, the multipart upload's three steps and a copy's target -> PutObject;
DeleteObject, conditional DeleteObject and DeleteObjects -> DeleteObject)."""


def test_no_s3_request_of_a_study_is_denied(reports):
    """Every request maps to an IAM authorization (an unmapped one raises) and the role's shipped
    policies allow it; the only denials are pyarrow's probe of a bucket that cannot exist."""
    denials = [str(d) for report in reports.values() for d in report.denials]
    assert not denials, "\n".join(denials[:40])
    assert {role: report.actions for role, report in reports.items()} == S3_ACTIONS_USED


def test_each_role_uses_every_s3_permission_it_holds(reports):
    """Every action and every resource pattern of each role's S3 Allow statements served at least one
    of that role's own requests (the Deny statements and the non-S3 statements are not checked)."""
    unused = {role: report.unused for role, report in reports.items() if report.unused}
    assert not unused, unused


def test_trials_sign_with_the_worker_role_and_drivers_with_the_head_role(recording):
    """The model holds: Ray worker processes use the worker role's keys, the drivers the head's."""
    writers = defaultdict(set)
    for r in recording:
        if r["method"] in ("PUT", "POST") and r["status"] < 300 and r["path"].count("/") >= 2 \
                and not r["path"].endswith("/"):  # a directory marker (pyarrow writes them on either side)
            key = r["path"].split("/", 2)[2]
            for folder in ("/results/", "/trials/", "/checkpoint_", "/cache/", "/tuner.pkl", "/study.json",
                           "/experiment_state-", "/driver.lease", "/optuna-journal"):
                if folder in key:
                    writers[folder].add(r["role"])
    worker, head = {iam.WORKER_ROLE}, {iam.HEAD_ROLE}
    assert {f: writers[f] for f in ("/trials/", "/checkpoint_", "/cache/")} == dict.fromkeys(
        ("/trials/", "/checkpoint_", "/cache/"), worker)
    assert {f: writers[f] for f in ("/tuner.pkl", "/study.json", "/experiment_state-", "/driver.lease",
                                    "/optuna-journal")} == dict.fromkeys(
        ("/tuner.pkl", "/study.json", "/experiment_state-", "/driver.lease", "/optuna-journal"), head)
    assert writers["/results/"] == worker | head  # units write results; the driver commits the compaction


def _unpickled(key: str) -> bool:
    name = key.rpartition("/")[2]
    return any(check.matches(pattern, name) for pattern in iam.TUNE_FILES_THE_HEAD_UNPICKLES)


def test_only_the_head_writes_what_tuner_restore_unpickles(recording):
    """Every Tune file the resumed driver read that Ray loads with (cloud)pickle was last written by
    the head role, and the worker role may neither write nor delete any of them (an explicit Deny)."""
    last_writer, read = {}, []
    for r in recording:
        key = r["path"].split("/", 2)[2] if r["path"].count("/") >= 2 else ""
        if "/tune/" not in key or not _unpickled(key):
            continue
        if r["status"] < 300 and (r["method"] == "PUT" or (r["method"] == "POST" and "uploadId=" in r["query"])):
            last_writer[key] = r["role"]
        elif r["method"] == "GET" and r["status"] in (200, 206):
            read.append((key, r["role"], last_writer.get(key)))
    names = {key.rpartition("/")[2].split("-")[0] for key, _, _ in read}
    assert {"tuner.pkl", "experiment_state", "searcher", "search_gen_state"} <= names, names  # the restore ran
    assert all(reader == writer == iam.HEAD_ROLE for _, reader, writer in read), read
    worker = _policies()[iam.WORKER_ROLE]
    for key, _, _ in read:
        for action in ("s3:PutObject", "s3:DeleteObject"):
            decision = check.evaluate(worker, check.Authorization(action, f"arn:aws:s3:::{BUCKET}/{key}"))
            assert decision.effect == "ExplicitDeny", (key, action, decision)


def test_the_unpickled_tune_files_are_the_ones_ray_names_and_the_worker_may_not_touch_them():
    """deploy/iam.py's list of what the head unpickles is Ray's own: the file names of ``Tuner.restore``
    (tuner.pkl, the experiment state, the searcher, search generator, variant generator and callback
    states) and of an errored trial's pickled error.  A Ray upgrade that renames or adds one fails
    here.  The worker role may neither write nor delete any of them, wherever they sit below the prefix."""
    ray = pytest.importorskip("ray")
    from ray.air.constants import EXPR_ERROR_PICKLE_FILE
    from ray.tune.callback import CallbackList
    from ray.tune.execution.tune_controller import TuneController
    from ray.tune.impl.tuner_internal import _TUNER_PKL
    from ray.tune.search.basic_variant import BasicVariantGenerator
    from ray.tune.search.search_generator import SearchGenerator
    from ray.tune.search.searcher import Searcher

    assert ray.__version__ == "2.60.0", "check the list against this Ray's restore code, then update the pin"
    ray_names = {_TUNER_PKL, EXPR_ERROR_PICKLE_FILE, *(cls.CKPT_FILE_TMPL.format("*") for cls in (
        TuneController, Searcher, SearchGenerator, BasicVariantGenerator, CallbackList))}
    assert set(iam.TUNE_FILES_THE_HEAD_UNPICKLES) == ray_names
    worker = _policies()[iam.WORKER_ROLE]
    experiment = f"{PREFIX}/{STUDY}/tune/{STUDY}"
    for name in iam.TUNE_FILES_THE_HEAD_UNPICKLES:
        for where in (experiment, f"{experiment}/trial_0001_x", f"{PREFIX}/{STUDY}/results/tune/x/checkpoint_1"):
            key = f"{where}/{name.replace('*', '2026-01-01_00-00-00')}"
            for action in ("s3:PutObject", "s3:DeleteObject"):
                decision = check.evaluate(worker, check.Authorization(action, f"arn:aws:s3:::{BUCKET}/{key}"))
                assert decision.effect == "ExplicitDeny", (key, action)


WORKER_WRITES = {  # key under the bucket: (PutObject, DeleteObject) decisions for the worker role
    "omasgan/s/results/dataset=d/holdout_class=0/seed=0/s.t.omasgan.j.parquet": ("Allow", "Allow"),
    "omasgan/s/scores/dataset=d/holdout_class=0/seed=0/.part-g1-x.parquet.y.tmp": ("Allow", "Allow"),
    "omasgan/s/samples/dataset=d/holdout_class=0/seed=0/s.t.npz": ("Allow", "ImplicitDeny"),
    "omasgan/s/trials/t.json": ("Allow", "ImplicitDeny"),
    "omasgan/s/trials/t.training/0-0.u.json": ("Allow", "ImplicitDeny"),
    "omasgan/s/cache/task1/k.entry": ("Allow", "Allow"),  # a study's own stage cache
    "omasgan/cache/task1/k.lock": ("Allow", "Allow"),  # a shared --cache
    "omasgan/s/tune/s/trial_1/checkpoint_000001/study_trial.json": ("Allow", "ImplicitDeny"),
    "omasgan/.omasgan-doctor/x/node.lock": ("Allow", "Allow"),
    "omasgan/": ("Allow", "ImplicitDeny"),  # directory markers
    "omasgan/s/tune/s/trial_1/": ("Allow", "ImplicitDeny"),
    "omasgan/s/tune/s/trial_1/result.json": ("ImplicitDeny", "ImplicitDeny"),  # the driver's (Tune's loggers)
    "omasgan/s/tune/s/.validate_storage_marker": ("ImplicitDeny", "ImplicitDeny"),
    "omasgan/s/tune/s/tuner.pkl": ("ExplicitDeny", "ExplicitDeny"),
    "omasgan/s/tune/s/experiment_state-2026-01-01_00-00-00.json": ("ExplicitDeny", "ExplicitDeny"),
    "omasgan/s/tune/s/trial_1/checkpoint_000001/evil.pkl": ("ExplicitDeny", "ExplicitDeny"),
    "omasgan/s/results/tune/s/tuner.pkl": ("ExplicitDeny", "ExplicitDeny"),
    "omasgan/cache/tune/cache/tuner.pkl": ("ExplicitDeny", "ExplicitDeny"),  # a study named "cache"
    "omasgan/cache/study.json": ("ExplicitDeny", "ExplicitDeny"),
    "omasgan/s/study.json": ("ExplicitDeny", "ExplicitDeny"),
    "omasgan/s/driver.lease": ("ExplicitDeny", "ExplicitDeny"),
    "omasgan/s/optuna-journal.log": ("ExplicitDeny", "ExplicitDeny"),
    "omasgan/s/optuna-journal/c.chunk": ("ExplicitDeny", "ExplicitDeny"),
    "omasgan/s/confirmation.json": ("ExplicitDeny", "ExplicitDeny"),
    "omasgan/s/results/_manifest.json": ("ExplicitDeny", "ExplicitDeny"),
    "omasgan/s/_compaction.lock": ("ExplicitDeny", "ExplicitDeny"),
    "other/s/results/x.parquet": ("ImplicitDeny", "ImplicitDeny"),
    "omasganx/s/results/x.parquet": ("ImplicitDeny", "ImplicitDeny"),
}


@pytest.mark.parametrize("key", sorted(WORKER_WRITES))
def test_what_the_worker_role_may_write_and_delete(key):
    worker = iam.role_policies("b", "omasgan", "us-west-2", "1", "omasgan")[iam.WORKER_ROLE]
    found = tuple(check.evaluate(worker, check.Authorization(action, f"arn:aws:s3:::b/{key}")).effect
                  for action in ("s3:PutObject", "s3:DeleteObject"))
    assert found == WORKER_WRITES[key]


# ------------------------------------------------------------------ the mapper and the evaluator, by hand

OLD_WORKER_STORAGE = {  # deploy/policies/worker.json before this test existed: s3:ListBucket only with a prefix
    "Version": "2012-10-17",
    "Statement": [
        {"Sid": "ListTheStudyPrefix", "Effect": "Allow", "Action": "s3:ListBucket", "Resource": "arn:aws:s3:::b",
         "Condition": {"StringLike": {"s3:prefix": ["omasgan", "omasgan/*"]}}},
        {"Sid": "ReadWriteTheStudies", "Effect": "Allow",
         "Action": ["s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload",
                    "s3:ListMultipartUploadParts"],
         "Resource": ["arn:aws:s3:::b/omasgan", "arn:aws:s3:::b/omasgan/*"]},
    ],
}


def _request(method: str, path: str, query: str = "", **headers) -> dict:
    return {"method": method, "path": path, "query": query,
            "headers": {k.replace("_", "-"): v for k, v in headers.items()}}


def _one(method: str, path: str, query: str = "", **headers) -> tuple:
    [a] = check.authorizations(_request(method, path, query, **headers))
    return a.action, a.resource, dict(a.context), a.operation


def test_requests_map_to_the_iam_actions_aws_documents():
    assert _one("HEAD", "/b") == ("s3:ListBucket", "arn:aws:s3:::b", {}, "HeadBucket")
    assert _one("GET", "/b", "list-type=2&prefix=omasgan%2Fs%2F&delimiter=%2F&max-keys=1") == (
        "s3:ListBucket", "arn:aws:s3:::b", {"s3:prefix": "omasgan/s/", "s3:delimiter": "/", "s3:max-keys": "1"},
        "ListObjectsV2")
    assert _one("GET", "/b", "list-type=2")[2] == {}  # no prefix given: no s3:prefix key
    assert _one("GET", "/b", "prefix=")[2:] == ({"s3:prefix": ""}, "ListObjects")
    assert _one("GET", "/b", "location") == ("s3:GetBucketLocation", "arn:aws:s3:::b", {}, "GetBucketLocation")
    assert _one("GET", "/b", "uploads")[::3] == ("s3:ListBucketMultipartUploads", "ListMultipartUploads")
    assert _one("GET", "/b/k%3D1/x") == ("s3:GetObject", "arn:aws:s3:::b/k=1/x", {}, "GetObject")
    assert _one("HEAD", "/b/k", range="bytes=0-1")[::3] == ("s3:GetObject", "HeadObject")
    assert _one("PUT", "/b/k", if_none_match="*") == ("s3:PutObject", "arn:aws:s3:::b/k", {"s3:if-none-match": "*"},
                                                      "PutObject")
    assert _one("PUT", "/b/k", if_match='"e1"')[2] == {"s3:if-match": '"e1"'}
    assert _one("POST", "/b/k", "uploads")[::3] == ("s3:PutObject", "CreateMultipartUpload")
    assert _one("PUT", "/b/k", "partNumber=1&uploadId=u")[::3] == ("s3:PutObject", "UploadPart")
    assert _one("POST", "/b/k", "uploadId=u", if_none_match="*")[2:] == ({"s3:if-none-match": "*"},
                                                                        "CompleteMultipartUpload")
    assert _one("DELETE", "/b/k", "uploadId=u")[::3] == ("s3:AbortMultipartUpload", "AbortMultipartUpload")
    assert _one("GET", "/b/k", "uploadId=u")[::3] == ("s3:ListMultipartUploadParts", "ListParts")
    assert _one("DELETE", "/b/k", if_match='"e"')[:2] == ("s3:DeleteObject", "arn:aws:s3:::b/k")
    copy = check.authorizations(_request("PUT", "/b/to", x_amz_copy_source="/b/from%20x"))
    assert [(a.action, a.resource, a.operation) for a in copy] == [
        ("s3:PutObject", "arn:aws:s3:::b/to", "CopyObject"), ("s3:GetObject", "arn:aws:s3:::b/from x", "CopyObject")]
    body = '<Delete xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Object><Key>a/1</Key></Object>' \
           '<Object><Key>a/2</Key></Object><Quiet>true</Quiet></Delete>'
    deleted = check.authorizations(dict(_request("POST", "/b", "delete"), body=body))
    assert [(a.action, a.resource) for a in deleted] == [("s3:DeleteObject", "arn:aws:s3:::b/a/1"),
                                                         ("s3:DeleteObject", "arn:aws:s3:::b/a/2")]
    assert [a.action for a in check.authorizations(_request("PUT", "/b/k", x_amz_acl="private"))] == [
        "s3:PutObject", "s3:PutObjectAcl"]


@pytest.mark.parametrize("request_", [
    _request("GET", "/b/k", "acl"), _request("PUT", "/b/k", "tagging"), _request("GET", "/b", "versioning"),
    _request("GET", "/b/k", "versionId=1"), _request("DELETE", "/b/k", "versionId=1"), _request("GET", "/b", "policy"),
    _request("POST", "/b", "delete"), _request("PUT", "/b/k", object_lock_mode="x", x_amz_object_lock_mode="GOVERNANCE"),
    _request("GET", "/", "x=1"), _request("PATCH", "/b/k"), _request("POST", "/b/k", "select&select-type=2"),
], ids=lambda r: f"{r['method']} {r['path']}?{r['query']}")
def test_a_request_the_mapper_does_not_know_fails_loudly(request_):
    with pytest.raises(check.UnmappedRequest):
        check.authorizations(request_)


def _decide(policy: dict, action: str, resource: str, **context) -> str:
    return check.evaluate({"p": policy}, check.Authorization(action, resource, context)).effect


def _policy(*statements: dict) -> dict:
    return {"Version": "2012-10-17", "Statement": list(statements)}


def test_head_bucket_is_denied_under_the_old_worker_policy_and_allowed_under_the_shipped_one():
    [head_bucket] = check.authorizations(_request("HEAD", "/b"))
    [listing] = check.authorizations(_request("GET", "/b", "list-type=2&prefix=omasgan%2Fs%2F"))
    assert check.evaluate({"old": OLD_WORKER_STORAGE}, head_bucket).effect == "ImplicitDeny"
    assert check.evaluate({"old": OLD_WORKER_STORAGE}, listing).effect == "Allow"
    shipped = iam.role_policies("b", "omasgan", "us-west-2", "1", "omasgan")
    for role in (iam.HEAD_ROLE, iam.WORKER_ROLE):
        assert check.evaluate(shipped[role], head_bucket).allowed and check.evaluate(shipped[role], listing).allowed
        for prefix in ("other/", "", "omasganx/"):  # still no listing outside the prefix
            [outside] = check.authorizations(_request("GET", "/b", f"list-type=2&prefix={prefix}"))
            assert check.evaluate(shipped[role], outside).effect == "ImplicitDeny", (role, prefix)


def test_explicit_deny_wins_then_allow_else_implicit_deny():
    allow = {"Effect": "Allow", "Action": "s3:*", "Resource": "arn:aws:s3:::b/*"}
    deny = {"Effect": "Deny", "Action": "s3:PutObject", "Resource": "arn:aws:s3:::b/secret/*"}
    p = _policy(allow, deny)
    assert _decide(p, "s3:PutObject", "arn:aws:s3:::b/x") == "Allow"
    assert _decide(p, "s3:PutObject", "arn:aws:s3:::b/secret/x") == "ExplicitDeny"
    assert _decide(p, "s3:GetObject", "arn:aws:s3:::b/secret/x") == "Allow"
    assert _decide(p, "s3:ListBucket", "arn:aws:s3:::b") == "ImplicitDeny"  # b/* is not the bucket
    assert _decide(_policy(deny), "s3:GetObject", "arn:aws:s3:::b/x") == "ImplicitDeny"


def test_wildcards_actions_ignore_case_arns_do_not():
    p = _policy({"Effect": "Allow", "Action": "S3:get*", "Resource": "arn:aws:s3:::b/a?c/*.json"})
    assert _decide(p, "s3:GetObject", "arn:aws:s3:::b/abc/x/y.json") == "Allow"  # * spans "/"
    assert _decide(p, "s3:GetObject", "arn:aws:s3:::b/ac/y.json") == "ImplicitDeny"  # ? is one character
    assert _decide(p, "s3:GetObject", "arn:aws:s3:::b/ABC/y.json") == "ImplicitDeny"
    assert _decide(p, "s3:PutObject", "arn:aws:s3:::b/abc/y.json") == "ImplicitDeny"
    assert _decide(p, "s3:GetObject", "arn:aws:s3:::b/abc/y.json.bak") == "ImplicitDeny"


def test_not_action_and_not_resource():
    p = _policy({"Effect": "Allow", "NotAction": "s3:Delete*", "NotResource": "arn:aws:s3:::b/private/*"})
    assert _decide(p, "s3:GetObject", "arn:aws:s3:::b/x") == "Allow"
    assert _decide(p, "s3:DeleteObject", "arn:aws:s3:::b/x") == "ImplicitDeny"
    assert _decide(p, "s3:GetObject", "arn:aws:s3:::b/private/x") == "ImplicitDeny"


def test_condition_operators_missing_keys_and_how_values_and_keys_combine():
    def listing(condition: dict, **context) -> str:
        p = _policy({"Effect": "Allow", "Action": "s3:ListBucket", "Resource": "arn:aws:s3:::b",
                     "Condition": condition})
        return _decide(p, "s3:ListBucket", "arn:aws:s3:::b", **context)

    like = {"StringLike": {"s3:prefix": ["a/*", "b/*"]}}
    assert listing(like, **{"s3:prefix": "b/x"}) == "Allow"  # several values of one key: any
    assert listing(like, **{"s3:prefix": "c/x"}) == "ImplicitDeny"
    assert listing(like) == "ImplicitDeny"  # the key missing: false
    assert listing({"StringLikeIfExists": {"s3:prefix": "a/*"}}) == "Allow"  # ...IfExists: true
    assert listing({"StringLikeIfExists": {"s3:prefix": "a/*"}}, **{"s3:prefix": "c/"}) == "ImplicitDeny"
    assert listing({"StringEquals": {"s3:prefix": "a/"}}, **{"s3:prefix": "a/"}) == "Allow"
    assert listing({"StringEquals": {"s3:prefix": "a/*"}}, **{"s3:prefix": "a/x"}) == "ImplicitDeny"  # no wildcards
    assert listing({"StringEquals": {"S3:Prefix": "a/"}}, **{"s3:prefix": "a/"}) == "Allow"  # key names: any case
    assert listing({"StringEquals": {"s3:prefix": "A/"}}, **{"s3:prefix": "a/"}) == "ImplicitDeny"
    assert listing({"StringEqualsIgnoreCase": {"s3:prefix": "A/"}}, **{"s3:prefix": "a/"}) == "Allow"
    assert listing({"StringNotLike": {"s3:prefix": ["a/*", "b/*"]}}, **{"s3:prefix": "c/"}) == "Allow"
    assert listing({"StringNotLike": {"s3:prefix": ["a/*", "b/*"]}}, **{"s3:prefix": "b/"}) == "ImplicitDeny"
    assert listing({"StringNotLike": {"s3:prefix": "a/*"}}) == "Allow"  # a negated operator, key missing: true
    assert listing({"StringNotLikeIfExists": {"s3:prefix": "a/*"}}) == "Allow"
    assert listing({"Null": {"s3:prefix": "true"}}) == "Allow"
    assert listing({"Null": {"s3:prefix": "true"}}, **{"s3:prefix": ""}) == "ImplicitDeny"
    assert listing({"Null": {"s3:prefix": "false"}}, **{"s3:prefix": ""}) == "Allow"
    assert listing({"NumericLessThanEquals": {"s3:max-keys": "10"}}, **{"s3:max-keys": "10"}) == "Allow"
    assert listing({"NumericLessThanEquals": {"s3:max-keys": "10"}}, **{"s3:max-keys": "1000"}) == "ImplicitDeny"
    both = {"StringLike": {"s3:prefix": "a/*", "s3:delimiter": "/"}}  # several keys: all
    assert listing(both, **{"s3:prefix": "a/x", "s3:delimiter": "/"}) == "Allow"
    assert listing(both, **{"s3:prefix": "a/x"}) == "ImplicitDeny"
    two = {"StringLike": {"s3:prefix": "a/*"}, "StringEquals": {"s3:max-keys": "1"}}  # several operators: all
    assert listing(two, **{"s3:prefix": "a/x", "s3:max-keys": "1"}) == "Allow"
    assert listing(two, **{"s3:prefix": "a/x", "s3:max-keys": "2"}) == "ImplicitDeny"
    deny_unless_prefixed = _policy(
        {"Effect": "Allow", "Action": "s3:ListBucket", "Resource": "arn:aws:s3:::b"},
        {"Effect": "Deny", "Action": "s3:ListBucket", "Resource": "arn:aws:s3:::b",
         "Condition": {"StringNotLike": {"s3:prefix": "a/*"}}})
    assert _decide(deny_unless_prefixed, "s3:ListBucket", "arn:aws:s3:::b") == "ExplicitDeny"  # HeadBucket too


@pytest.mark.parametrize("statement", [
    {"Effect": "Allow", "Action": "s3:*", "Resource": "arn:aws:s3:::b/${aws:username}/*"},
    {"Effect": "Allow", "Action": "s3:*", "Resource": "*", "Condition": {"ForAnyValue:StringLike": {"s3:prefix": "a"}}},
    {"Effect": "Allow", "Action": "s3:*", "Resource": "*", "Condition": {"DateGreaterThan": {"s3:prefix": "a"}}},
    {"Effect": "Allow", "Action": "s3:*", "Resource": "*", "Condition": {"Bool": {"aws:SecureTransport": "true"}}},
    {"Effect": "Allow", "Action": "s3:*", "Resource": "*", "Condition": {"StringEquals": {"s3:versionid": "1"}}},
    {"Effect": "Allow", "Action": "s3:*", "Resource": "*", "Principal": "*"},
    {"Effect": "Allow", "Action": "s3:*"},
    {"Effect": "Maybe", "Action": "s3:*", "Resource": "*"},
], ids=["variable", "set-operator", "date-operator", "global-key", "unmapped-s3-key", "principal", "no-resource",
        "effect"])
def test_a_policy_element_the_evaluator_does_not_implement_is_refused(statement):
    with pytest.raises(check.PolicyError):
        check.evaluate({"p": _policy(statement)}, check.Authorization("s3:GetObject", "arn:aws:s3:::b/k"))


def test_spot_adds_the_service_linked_role_to_the_head_only_when_asked():
    def linked(roles: dict) -> dict:
        return {role: [s for d in documents.values() for s in d["Statement"]
                       if s["Action"] == "iam:CreateServiceLinkedRole"] for role, documents in roles.items()}

    plain = linked(iam.role_policies("b", "omasgan", "us-west-2", "123456789012", "omasgan"))
    assert plain == {iam.HEAD_ROLE: [], iam.WORKER_ROLE: []}
    spot = linked(iam.role_policies("b", "omasgan", "us-west-2", "123456789012", "omasgan", spot=True))
    assert spot[iam.WORKER_ROLE] == []
    [statement] = spot[iam.HEAD_ROLE]
    assert statement["Effect"] == "Allow"
    assert statement["Resource"] == "arn:aws:iam::*:role/aws-service-role/spot.amazonaws.com/AWSServiceRoleForEC2Spot"
    assert statement["Condition"] == {"StringEquals": {"iam:AWSServiceName": "spot.amazonaws.com"}}
    printed = subprocess.run([sys.executable, str(REPO / "deploy" / "iam.py"), "--bucket", "b", "--dry-run", "--spot"],
                             capture_output=True, text=True, timeout=60)
    assert printed.returncode == 0 and json.loads(printed.stdout)[iam.HEAD_ROLE]["omasgan-autoscaler"]["Statement"][-1] \
        == statement


def test_the_offline_check_of_a_request_log(tmp_path, capsys):
    """``python deploy/policy_check.py LOG``: per role the actions used, each denial, exit status 1."""
    log = tmp_path / "requests.jsonl"
    lines = [{"recording": "S3 requests", "bucket": "b", "prefix": "omasgan", "roles": ROLES},
             dict(_request("HEAD", "/b"), role=iam.WORKER_ROLE),
             dict(_request("HEAD", "/%24extremelyunlikelytoexist%24"), role=iam.WORKER_ROLE),
             dict(_request("PUT", "/b/omasgan/s/tune/s/tuner.pkl"), role=iam.WORKER_ROLE),
             dict(_request("PUT", "/b/omasgan/s/tune/s/tuner.pkl"), role=iam.HEAD_ROLE)]
    log.write_text("\n".join(json.dumps(line) for line in lines) + "\n")
    assert check.main([str(log)]) == 1
    out = capsys.readouterr().out
    assert "omasgan-head: 1 requests; S3 actions used: s3:PutObject" in out
    [denied] = [line for line in out.splitlines() if "DENIED" in line]
    assert "PUT /b/omasgan/s/tune/s/tuner.pkl (PutObject) -> s3:PutObject" in denied and "ExplicitDeny" in denied
    assert "NeverWhatTheHeadUnpickles" in denied and "1 denied as their sender expects" in out
    lines.pop()
    lines.pop()
    log.write_text("\n".join(json.dumps(line) for line in lines) + "\n")
    assert check.main([str(log)]) == 0

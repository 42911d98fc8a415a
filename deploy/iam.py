"""Create (or update) the IAM roles and instance profiles that cluster.yaml names.

    python deploy/iam.py --bucket YOUR-BUCKET [--prefix omasgan] [--region us-west-2] [--cluster omasgan] [--spot]

Two roles, each with an instance profile of the same name, both trusted by EC2, split by what each
node writes (every S3 request a study makes, recorded and evaluated against these policies by
tests/cluster/test_iam_stand_in.py with deploy/policy_check.py):

- ``omasgan-worker`` (the GPU workers: trial coordinators, units, doctor's tasks; policies/storage-worker.json):
  list the bucket under ``PREFIX/`` (and ``HeadBucket``, which AWS authorises as ``s3:ListBucket``
  with no ``s3:prefix``: pyarrow and Ray send it before writing); read anything under ``PREFIX/``;
  write only what trials produce: result, score and sample files, trial records, stage-cache entries
  and locks (in any folder below ``PREFIX/`` whose name ends in ``cache``: a study's own ``cache/``,
  or a shared ``--cache`` such as ``s3://BUCKET/PREFIX/cache``), Tune's trial checkpoints
  (``tune/*/<trial>/checkpoint_*``), doctor's probes (``PREFIX/.omasgan-doctor/``) and pyarrow's
  directory markers (keys ending in "/"); delete only
  stage-cache locks, doctor's probes and, for a compaction that runs as Ray tasks, result and score
  files.  Explicitly denied, so no wildcard can reach them: every ``*.pkl`` and Tune's cloudpickled
  ``experiment_state-*``, ``search_gen_state-*`` and ``basic-variant-state-*`` files
  (:data:`TUNE_FILES_THE_HEAD_UNPICKLES`: ``Tuner.restore`` unpickles them on the head, which holds
  ``PassRole`` and ``RunInstances``), and the driver's own state (``study.json``, ``driver.lease``, the
  Optuna journal copy ``optuna-journal*``, ``confirmation.json``, the result store's ``_manifest.json``
  and ``_compaction.lock``); also the node image pull from the account's ECR in ``--region`` (policies/image.json);
- ``omasgan-head`` (the head node: the study drivers, the CLI, Ray's autoscaler): read, write and
  delete anything under ``PREFIX/`` and list it (policies/storage-head.json), the same image pull, plus
  what the autoscaler needs to start workers (``ec2:RunInstances``, ``ec2:CreateTags``,
  ``ec2:Describe*``), to stop only this cluster's nodes (tag ``ray-cluster-name``), and ``iam:PassRole``
  on the worker role alone, so it can launch workers with ``omasgan-worker`` but cannot hand out any
  other role (policies/head.json).  ``--spot`` adds ``iam:CreateServiceLinkedRole`` for the EC2 Spot
  service-linked role (``AWSServiceRoleForEC2Spot``, only for ``spot.amazonaws.com``): the first spot
  ``RunInstances`` of an account that lacks that role creates it (policies/spot.json).

Neither role may abort multipart uploads or list them: nothing a study runs does (pyarrow completes
an upload when its stream closes), so an upload whose writer was killed stays incomplete until a
bucket lifecycle rule (``AbortIncompleteMultipartUpload``, docs/cluster.md section 1) removes it.
Nothing calls ``GetBucketLocation`` either: pyarrow and boto3 find a bucket's region with ``HeadBucket``.
IAM cannot tell ``HeadBucket`` from a listing that gives no prefix, so either role may list the key
names (not the contents) of the whole bucket; give the studies a bucket of their own if that matters.

Ray gives a head without an ``IamInstanceProfile`` its own ``ray-autoscaler-v1`` profile, whose role
may not pass the worker role: the autoscaler's ``RunInstances`` then fails with an authorisation error
and the placement groups of a study wait for ever.  cluster.yaml therefore names both profiles.

Run the drivers with the head's instance profile, never with AWS keys in their environment: Ray Tune
copies ``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY`` and ``AWS_SESSION_TOKEN`` from the driver's
environment into every trial's, and the trials would then act with those keys, not the worker role.

Idempotent: an existing role or profile is kept and its inline policies are replaced.  Uses boto3
with the usual credentials (``aws configure``); ``--dry-run`` prints the policies instead.
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

HERE = Path(__file__).resolve().parent
HEAD_ROLE, WORKER_ROLE = "omasgan-head", "omasgan-worker"
REPOSITORY = "omasgan"
TUNE_FILES_THE_HEAD_UNPICKLES = ("tuner.pkl", "experiment_state-*.json", "searcher-state-*.pkl",
                                 "search_gen_state-*.json", "basic-variant-state-*.json", "callback-states-*.pkl",
                                 "error.pkl")
"""Files of a Tune experiment that the head loads with pickle or cloudpickle (Ray 2.60): on ``--resume``
``Tuner.restore`` reads ``tuner.pkl`` and the newest experiment state (whose trial data is cloudpickled),
and the searcher, search generator, variant generator and callbacks restore their ``*-state-*``
files; ``error.pkl`` (a trial folder's) is read for an errored trial's result.  The driver writes
all of them; the worker role's policy denies writing or deleting any of them."""


def policy(name: str, **values: str) -> dict:
    """The policy template ``policies/<name>.json`` with its ``{placeholders}`` filled in."""
    text = (HERE / "policies" / f"{name}.json").read_text()
    for key, value in values.items():
        text = text.replace("{" + key + "}", value)
    left = re.findall(r"\{[a-z_]+\}", text)
    if left:
        raise ValueError(f"policies/{name}.json: placeholder {left[0]} has no value")
    return json.loads(text)


def merged(*documents: dict) -> dict:
    """One policy document holding the statements of ``documents``, in order."""
    return {"Version": "2012-10-17", "Statement": [s for d in documents for s in d["Statement"]]}


def role_policies(bucket: str, prefix: str, region: str, account: str, cluster: str,
                  spot: bool = False) -> dict[str, dict[str, dict]]:
    """``{role: {inline policy name: document}}`` for both roles; ``spot``: the head may create the EC2
    Spot service-linked role."""
    prefix = prefix.strip("/")
    if not prefix:
        raise ValueError("the key prefix is empty: give one (e.g. omasgan), the roles reach only the keys under it")
    values = dict(bucket=bucket, prefix=prefix, region=region, account=account, cluster=cluster,
                  repository=REPOSITORY, worker_role=WORKER_ROLE)
    image = policy("image", **values)
    autoscaler = merged(policy("head", **values), *([policy("spot", **values)] if spot else []))
    return {WORKER_ROLE: {"omasgan-storage-and-image": merged(policy("storage-worker", **values), image)},
            HEAD_ROLE: {"omasgan-storage-and-image": merged(policy("storage-head", **values), image),
                        "omasgan-autoscaler": autoscaler}}


def ensure(iam, role: str, documents: dict[str, dict]) -> str:
    """Create ``role`` and its instance profile when missing, put its inline policies; the profile's ARN."""
    try:
        iam.create_role(RoleName=role, AssumeRolePolicyDocument=(HERE / "policies" / "trust-ec2.json").read_text(),
                        Description="omasgan Ray cluster node (deploy/iam.py)")
    except iam.exceptions.EntityAlreadyExistsException:
        pass
    for name, document in documents.items():
        iam.put_role_policy(RoleName=role, PolicyName=name, PolicyDocument=json.dumps(document))
    try:
        iam.create_instance_profile(InstanceProfileName=role)
    except iam.exceptions.EntityAlreadyExistsException:
        pass
    profile = iam.get_instance_profile(InstanceProfileName=role)["InstanceProfile"]
    if role not in [r["RoleName"] for r in profile["Roles"]]:
        iam.add_role_to_instance_profile(InstanceProfileName=role, RoleName=role)
    return profile["Arn"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bucket", required=True, help="the S3 bucket of the studies (no s3://)")
    parser.add_argument("--prefix", default="omasgan", help="the key prefix under it (default omasgan)")
    parser.add_argument("--region", default="us-west-2", help="the region of the ECR repository (default us-west-2)")
    parser.add_argument("--cluster", default="omasgan", help="cluster_name in cluster.yaml (default omasgan)")
    parser.add_argument("--spot", action="store_true",
                        help="the workers are spot instances: the head may create EC2 Spot's service-linked role")
    parser.add_argument("--dry-run", action="store_true", help="print the policies; create nothing")
    args = parser.parse_args(argv)
    if args.bucket.startswith("s3://") or "/" in args.bucket:
        parser.error(f"--bucket {args.bucket!r}: give the bucket's name only, e.g. my-bucket (the prefix goes in --prefix)")
    if not args.prefix.strip("/"):
        parser.error(f"--prefix {args.prefix!r}: give a key prefix, e.g. omasgan (the roles reach only the keys under it)")
    import boto3

    account = "YOUR_ACCOUNT_ID" if args.dry_run else boto3.client("sts").get_caller_identity()["Account"]
    roles = role_policies(args.bucket, args.prefix, args.region, account, args.cluster, spot=args.spot)
    if args.dry_run:
        print(json.dumps(roles, indent=2))
        return 0
    iam = boto3.client("iam")
    for role, documents in roles.items():
        print(f"{role}: instance profile {ensure(iam, role, documents)}")
    print("cluster.yaml names these two profiles (IamInstanceProfile of head.cpu and worker.gpu); "
          f"account {account}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Create (or update) the IAM roles and instance profiles that cluster.yaml names.

    python deploy/iam.py --bucket YOUR-BUCKET [--prefix omasgan] [--region us-west-2] [--cluster omasgan]

Two roles, each with an instance profile of the same name, both trusted by EC2:

- ``omasgan-worker`` (the GPU workers): read and write ``s3://BUCKET/PREFIX/...`` only, and pull the
  ``omasgan`` image from the account's ECR in ``--region``  (policies/worker.json);
- ``omasgan-head`` (the head node: the study driver and Ray's autoscaler): the same, plus what the
  autoscaler needs to start workers (``ec2:RunInstances``, ``ec2:CreateTags``, ``ec2:Describe*``), to
  stop only this cluster's nodes (tag ``ray-cluster-name``), and ``iam:PassRole`` on the worker role
  alone, so it can launch workers with ``omasgan-worker`` but cannot hand out any other role
  (policies/head.json).

Ray gives a head without an ``IamInstanceProfile`` its own ``ray-autoscaler-v1`` profile, whose role
may not pass the worker role: the autoscaler's ``RunInstances`` then fails with an authorisation error
and the placement groups of a study wait for ever.  cluster.yaml therefore names both profiles.

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


def policy(name: str, **values: str) -> dict:
    """The policy template ``policies/<name>.json`` with its ``{placeholders}`` filled in."""
    text = (HERE / "policies" / f"{name}.json").read_text()
    for key, value in values.items():
        text = text.replace("{" + key + "}", value)
    left = re.findall(r"\{[a-z_]+\}", text)
    if left:
        raise ValueError(f"policies/{name}.json: placeholder {left[0]} has no value")
    return json.loads(text)


def role_policies(bucket: str, prefix: str, region: str, account: str, cluster: str) -> dict[str, dict[str, dict]]:
    """``{role: {inline policy name: document}}`` for both roles."""
    values = dict(bucket=bucket, prefix=prefix.strip("/"), region=region, account=account, cluster=cluster,
                  repository=REPOSITORY, worker_role=WORKER_ROLE)
    storage = policy("worker", **values)
    return {WORKER_ROLE: {"omasgan-storage-and-image": storage},
            HEAD_ROLE: {"omasgan-storage-and-image": storage, "omasgan-autoscaler": policy("head", **values)}}


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
    parser.add_argument("--dry-run", action="store_true", help="print the policies; create nothing")
    args = parser.parse_args(argv)
    if args.bucket.startswith("s3://") or "/" in args.bucket:
        parser.error(f"--bucket {args.bucket!r}: give the bucket's name only, e.g. my-bucket (the prefix goes in --prefix)")
    import boto3

    account = "YOUR_ACCOUNT_ID" if args.dry_run else boto3.client("sts").get_caller_identity()["Account"]
    roles = role_policies(args.bucket, args.prefix, args.region, account, args.cluster)
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

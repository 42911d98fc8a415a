"""An S3-compatible server for the tests: moto's server mode on the loopback, started and stopped by the
test that needs it (never any other address), and the environment that points boto3 and pyarrow at it."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

MOTO_SERVER = str(Path(sys.executable).with_name("moto_server"))
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def moto_server(log: Path):
    """Start ``moto_server`` on a free loopback port; yield the environment that reaches it (endpoint
    and dummy credentials, for boto3 and pyarrow alike); stop it at the end."""
    port = _free_port()
    with open(log, "w") as out:
        server = subprocess.Popen([MOTO_SERVER, "-H", "127.0.0.1", "-p", str(port)], stdout=out,
                                  stderr=subprocess.STDOUT)
    try:
        deadline = time.time() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), 0.2).close()
                break
            except OSError:
                assert server.poll() is None, log.read_text()
                assert time.time() < deadline, "moto_server did not start"
                time.sleep(0.1)
        yield {"AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}", **CREDENTIALS}
    finally:
        server.terminate()
        server.wait(timeout=30)


def client(env: dict[str, str]):
    import boto3

    return boto3.client("s3", endpoint_url=env["AWS_ENDPOINT_URL"], aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
                        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"], region_name=env["AWS_DEFAULT_REGION"])


def keys(env: dict[str, str], bucket: str, prefix: str = "") -> dict[str, str]:
    """``{key: ETag}`` of every object under ``prefix`` (pyarrow's directory markers, keys ending in
    "/", left out)."""
    found, token = {}, None
    s3 = client(env)
    while True:
        page = s3.list_objects_v2(Bucket=bucket, Prefix=prefix, **({"ContinuationToken": token} if token else {}))
        found.update({o["Key"]: o["ETag"] for o in page.get("Contents", []) if not o["Key"].endswith("/")})
        if not page.get("IsTruncated"):
            return found
        token = page["NextContinuationToken"]


@contextmanager
def environment(env: dict[str, str]):
    """Set ``env`` in os.environ for the duration (restoring what was there)."""
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v

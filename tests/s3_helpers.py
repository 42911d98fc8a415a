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


# ------------------------------------------------------------------ recording every request, by role

RECORDED_HEADERS = ("if-match", "if-none-match", "range", "content-length")
"""Request headers a recorded request keeps besides ``x-amz-*`` (which it keeps all of, except the
session token): the ones AWS's authorisation of an S3 request can depend on."""
_HOP_BY_HOP = {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "te", "trailer", "upgrade",
               "expect", "content-length"}


def access_key_of(headers, query: str) -> str | None:
    """The SigV4 access key id of a request: from ``Authorization: AWS4-HMAC-SHA256 Credential=KEY/...``
    or, for a presigned URL, ``X-Amz-Credential=KEY/...``; None when it is not signed."""
    from urllib.parse import parse_qs

    authorization = headers.get("Authorization") or ""
    if "Credential=" in authorization:
        return authorization.split("Credential=", 1)[1].split("/", 1)[0]
    credential = parse_qs(query).get("X-Amz-Credential")
    return credential[0].split("/", 1)[0] if credential else None


class RecordingProxy:
    """A reverse proxy on the loopback in front of an S3 server (moto's): it forwards each request
    unchanged and records it, one JSON line per request in ``log`` (and in :attr:`records`):
    method, raw path and query, the headers AWS authorises on (:data:`RECORDED_HEADERS`, ``x-amz-*``),
    the SigV4 access key, the role that key stands for (``roles``; ``unknown`` otherwise), the
    response's status, and the body of a multi-object delete (its key list).  The log's first line
    describes it (``{"recording": "S3 requests", "roles": {...}, **about}``: deploy/policy_check.py
    reads such a log).  Threaded: one thread per client connection, each with its own persistent
    connection to the server."""

    def __init__(self, upstream: str, log: Path, roles: dict[str, str], **about):
        import http.client
        import http.server
        import json
        import threading
        from urllib.parse import urlsplit

        self.records: list[dict] = []
        self._lock = threading.Lock()
        self._log = open(log, "w")
        self._log.write(json.dumps({"recording": "S3 requests", "roles": roles, **about}) + "\n")
        target = urlsplit(upstream)
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            upstream_connection = None

            def log_message(self, *args):  # noqa: D102 - quiet
                pass

            def _body(self) -> bytes:
                if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
                    parts = []
                    while True:
                        size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                        if size == 0:
                            while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                                pass
                            return b"".join(parts)
                        parts.append(self.rfile.read(size))
                        self.rfile.readline()
                return self.rfile.read(int(self.headers.get("Content-Length") or 0))

            def _forward(self) -> None:
                body = self._body()
                headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP}
                if body or self.command in ("PUT", "POST"):
                    headers["Content-Length"] = str(len(body))
                for attempt in range(2):  # a kept-alive upstream connection the server closed: reconnect once
                    if self.upstream_connection is None:
                        self.upstream_connection = http.client.HTTPConnection(target.hostname, target.port,
                                                                              timeout=120)
                    try:
                        self.upstream_connection.request(self.command, self.path, body=body or None, headers=headers)
                        response = self.upstream_connection.getresponse()
                        payload = response.read()
                        break
                    except (http.client.HTTPException, ConnectionError):
                        self.upstream_connection.close()
                        self.upstream_connection = None
                        if attempt:
                            raise
                proxy._record(self.command, self.path, self.headers, response.status,
                              body if "delete" in self.path.partition("?")[2].split("&") else None)
                self.send_response_only(response.status, response.reason)
                for name, value in response.getheaders():
                    if name.lower() not in _HOP_BY_HOP:
                        self.send_header(name, value)
                if self.command == "HEAD":
                    if response.getheader("Content-Length") is not None:
                        self.send_header("Content-Length", response.getheader("Content-Length"))
                else:
                    self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(payload)

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _forward

        class Server(http.server.ThreadingHTTPServer):
            def handle_error(self, request, client_address):  # a client that hung up: nothing to report
                if not isinstance(sys.exc_info()[1], (ConnectionResetError, BrokenPipeError)):
                    super().handle_error(request, client_address)

        self._roles = dict(roles)
        self._server = Server(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, name="s3-recording-proxy", daemon=True)
        self._thread.start()

    def _record(self, method: str, target: str, headers, status: int, body: bytes | None) -> None:
        import json

        path, _, query = target.partition("?")
        kept = {k.lower(): v for k, v in headers.items()
                if (k.lower().startswith("x-amz-") and k.lower() != "x-amz-security-token")
                or k.lower() in RECORDED_HEADERS}
        key = access_key_of(headers, query)
        record = {"method": method, "path": path, "query": query, "headers": kept, "access_key": key,
                  "role": self._roles.get(key, "unknown"), "status": status}
        if body is not None:
            record["body"] = body.decode("utf-8", "replace")
        with self._lock:
            self.records.append(record)
            self._log.write(json.dumps(record) + "\n")
            self._log.flush()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._log.close()


@contextmanager
def recording_proxy(upstream_env: dict[str, str], log: Path, roles: dict[str, str], **about):
    """A :class:`RecordingProxy` in front of the server of ``upstream_env`` (from :func:`moto_server`)
    for the duration; yields the proxy (its ``url`` is the endpoint to give clients)."""
    proxy = RecordingProxy(upstream_env["AWS_ENDPOINT_URL"], log, roles, **about)
    try:
        yield proxy
    finally:
        proxy.close()

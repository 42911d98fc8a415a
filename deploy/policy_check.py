"""Check the IAM policies of deploy/iam.py against recorded S3 requests, offline, with AWS's rules.

    python deploy/policy_check.py REQUESTS.jsonl [--bucket BUCKET --prefix PREFIX] [--spot]

``REQUESTS.jsonl`` is a request log as ``tests/cluster/test_iam_stand_in.py`` records one (each request a
study made on its S3 server, with the role whose credentials signed it; set ``OMASGAN_S3_REQUEST_LOG``
to keep a copy).  The script prints, per role, the S3 actions its requests needed, every request the
role's policies deny, and every S3 permission the role holds that none of its requests used; exit
status 1 when a request is denied.  Nothing here talks to AWS.

Two parts, usable on their own:

- :func:`authorizations` maps one S3 REST request (method, path, query, headers) to what AWS
  authorises for it: one or more ``(IAM action, resource ARN, condition keys)``, as AWS documents in
  "Actions, resources, and condition keys for Amazon S3" and "Required permissions for Amazon S3 API
  operations".  ``HeadBucket`` is ``s3:ListBucket`` with no ``s3:prefix`` key; a listing carries
  ``s3:prefix``/``s3:delimiter``/``s3:max-keys`` only when the request has them; a copy needs
  ``s3:GetObject`` on its source and ``s3:PutObject`` on its target; a multi-object delete needs
  ``s3:DeleteObject`` on every key.  A request it does not know raises :class:`UnmappedRequest`:
  nothing is allowed by default.  Path-style requests only (what an endpoint override sends).
- :func:`evaluate` decides one such authorization under identity policies, per AWS's "Policy
  evaluation logic" for one account with no resource policy, boundary or SCP: an explicit Deny wins,
  then an Allow, otherwise the implicit deny.  ``Action``/``NotAction``, ``Resource``/``NotResource``
  with ``*`` and ``?`` (actions case-insensitive, ARNs case-sensitive), and the condition operators
  ``String{Not}Equals{IgnoreCase}``, ``String{Not}Like``, ``Numeric*``, ``Bool`` (each also
  ``...IfExists``) and ``Null``.  A key missing from the request makes a condition false, except for
  the negated operators (``StringNotLike``...: true), ``...IfExists`` (true) and ``Null``.  Several
  values of one key: any may match (the negated operators: none may); several keys or operators: all
  must hold.  A policy element it does not implement (a policy variable, ``ForAnyValue:``, an unknown
  operator, a condition key :func:`authorizations` never sets) raises :class:`PolicyError` rather
  than being guessed at.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Iterable, Mapping
from urllib.parse import parse_qsl, unquote
from xml.etree import ElementTree

HERE = Path(__file__).resolve().parent


# ------------------------------------------------------------------ S3 requests -> IAM authorizations


class UnmappedRequest(ValueError):
    """An S3 request this module does not know how AWS authorises."""


@dataclass(frozen=True)
class Authorization:
    """One permission check AWS makes for a request: the IAM action, the resource's ARN, and the
    condition keys the request carries (names lower-case, each with one value)."""

    action: str
    resource: str
    context: Mapping[str, str] = field(default_factory=dict)
    operation: str = ""
    """The S3 API operation the request is (HeadBucket, PutObject, ...), for reports."""

    def __post_init__(self) -> None:
        if not re.fullmatch(r"s3:[A-Za-z]+", self.action):
            raise ValueError(f"action {self.action!r} is not an s3:Name action")
        if not self.resource.startswith("arn:aws:s3:::") and self.resource != "*":
            raise ValueError(f"resource {self.resource!r} is not an S3 ARN")
        object.__setattr__(self, "context", {k.lower(): v for k, v in dict(self.context).items()})


LIST_KEYS = {"prefix": "s3:prefix", "delimiter": "s3:delimiter", "max-keys": "s3:max-keys"}
"""Query parameters of a listing that AWS exposes as condition keys of s3:ListBucket."""
PUT_HEADER_KEYS = {"if-none-match": "s3:if-none-match", "if-match": "s3:if-match",
                   "x-amz-acl": "s3:x-amz-acl", "x-amz-server-side-encryption": "s3:x-amz-server-side-encryption",
                   "x-amz-storage-class": "s3:x-amz-storage-class",
                   "x-amz-metadata-directive": "s3:x-amz-metadata-directive"}
"""Request headers of an object write that AWS exposes as condition keys of s3:PutObject."""
MODELLED_KEYS = frozenset(LIST_KEYS.values()) | frozenset(PUT_HEADER_KEYS.values()) | {"s3:x-amz-copy-source"}
"""The condition keys :func:`authorizations` sets when a request has them; a policy that tests any
other key cannot be checked here (:class:`PolicyError`)."""

_LIST_PARAMETERS = {"list-type", "prefix", "delimiter", "max-keys", "continuation-token", "start-after",
                    "encoding-type", "fetch-owner", "marker", "x-id"}
_GET_OBJECT_PARAMETERS = {"partNumber", "x-id", "response-cache-control", "response-content-disposition",
                          "response-content-encoding", "response-content-language", "response-content-type",
                          "response-expires"}
_ACL_HEADERS = ("x-amz-acl", "x-amz-grant-read", "x-amz-grant-read-acp", "x-amz-grant-write-acp",
                "x-amz-grant-full-control")


def _split(request: Mapping) -> tuple[str, str, dict[str, str], dict[str, str]]:
    """``(bucket, key, query parameters, lower-case headers)`` of a path-style request."""
    path = request["path"]
    if not path.startswith("/"):
        raise UnmappedRequest(f"path {path!r} does not start with '/'")
    bucket, _, raw_key = path[1:].partition("/")
    query = dict(parse_qsl(request.get("query") or "", keep_blank_values=True))
    headers = {k.lower(): v for k, v in (request.get("headers") or {}).items()}
    return unquote(bucket), unquote(raw_key), query, headers


def _object_arn(bucket: str, key: str) -> str:
    return f"arn:aws:s3:::{bucket}/{key}"


def _unexpected(operation: str, query: Mapping[str, str], allowed: set[str]) -> None:
    extra = sorted(set(query) - allowed)
    if extra:
        raise UnmappedRequest(f"{operation} with query parameter(s) {extra}: not modelled")


def _copy_source(header: str) -> tuple[str, str]:
    source = unquote(header.split("?", 1)[0]).lstrip("/")
    bucket, _, key = source.partition("/")
    if "?versionId=" in header:
        raise UnmappedRequest(f"a copy of a version ({header!r}) needs s3:GetObjectVersion: not modelled")
    if not bucket or not key:
        raise UnmappedRequest(f"x-amz-copy-source {header!r} names no bucket/key")
    return bucket, key


def _put_context(headers: Mapping[str, str], conditional: bool) -> dict[str, str]:
    context = {name: headers[h] for h, name in PUT_HEADER_KEYS.items() if h in headers
               and (conditional or h not in ("if-none-match", "if-match"))}
    return context


def _write_extras(operation: str, arn: str, headers: Mapping[str, str]) -> list[Authorization]:
    """The further permissions an object write needs for the headers it carries (ACL, tags)."""
    extra = []
    if any(h in headers for h in _ACL_HEADERS):
        extra.append(Authorization("s3:PutObjectAcl", arn, {}, operation))
    if "x-amz-tagging" in headers:
        extra.append(Authorization("s3:PutObjectTagging", arn, {}, operation))
    if any(h.startswith("x-amz-object-lock-") for h in headers):
        raise UnmappedRequest(f"{operation} with object-lock headers: not modelled")
    return extra


def authorizations(request: Mapping) -> list[Authorization]:
    """What AWS authorises for one recorded S3 request (``method``, ``path``, ``query``, ``headers``,
    and for a multi-object delete its XML ``body``): every returned authorization must be allowed.
    Raises :class:`UnmappedRequest` for a request it does not know."""
    method = request["method"].upper()
    bucket, key, query, headers = _split(request)
    if not bucket:
        if method == "GET" and not query:
            return [Authorization("s3:ListAllMyBuckets", "*", {}, "ListBuckets")]
        raise UnmappedRequest(f"{method} on the service with query {query}: not modelled")
    bucket_arn = f"arn:aws:s3:::{bucket}"
    if not key:
        return _bucket_request(method, bucket, bucket_arn, query, headers, request)
    return _object_request(method, bucket, key, query, headers)


def _bucket_request(method: str, bucket: str, bucket_arn: str, query: dict, headers: dict,
                    request: Mapping) -> list[Authorization]:
    if method == "HEAD":
        _unexpected("HeadBucket", query, set())
        return [Authorization("s3:ListBucket", bucket_arn, {}, "HeadBucket")]
    if method == "GET":
        if "location" in query:
            _unexpected("GetBucketLocation", query, {"location"})
            return [Authorization("s3:GetBucketLocation", bucket_arn, {}, "GetBucketLocation")]
        if "uploads" in query:
            _unexpected("ListMultipartUploads", query, {"uploads", "prefix", "delimiter", "max-uploads",
                                                        "key-marker", "upload-id-marker", "encoding-type"})
            return [Authorization("s3:ListBucketMultipartUploads", bucket_arn, {}, "ListMultipartUploads")]
        operation = "ListObjectsV2" if query.get("list-type") == "2" else "ListObjects"
        _unexpected(operation, query, _LIST_PARAMETERS)
        context = {name: query[p] for p, name in LIST_KEYS.items() if p in query}
        return [Authorization("s3:ListBucket", bucket_arn, context, operation)]
    if method == "POST" and "delete" in query:
        _unexpected("DeleteObjects", query, {"delete"})
        body = request.get("body")
        if body is None:
            raise UnmappedRequest("DeleteObjects recorded without its body: its keys are unknown")
        keys = [element.text or "" for element in ElementTree.fromstring(body).iter()
                if element.tag.rpartition("}")[2] == "Key"]
        if any(element.tag.rpartition("}")[2] == "VersionId" for element in ElementTree.fromstring(body).iter()):
            raise UnmappedRequest("DeleteObjects of versions needs s3:DeleteObjectVersion: not modelled")
        return [Authorization("s3:DeleteObject", _object_arn(bucket, k), {}, "DeleteObjects") for k in keys]
    if method == "PUT" and not query:
        return [Authorization("s3:CreateBucket", bucket_arn, {}, "CreateBucket")]
    raise UnmappedRequest(f"{method} on bucket {bucket!r} with query {query}: not modelled")


def _object_request(method: str, bucket: str, key: str, query: dict, headers: dict) -> list[Authorization]:
    arn = _object_arn(bucket, key)
    if method in ("GET", "HEAD"):
        operation = "GetObject" if method == "GET" else "HeadObject"
        if "versionId" in query:
            raise UnmappedRequest(f"{operation} of a version needs s3:GetObjectVersion: not modelled")
        if method == "GET" and "uploadId" in query:
            _unexpected("ListParts", query, {"uploadId", "max-parts", "part-number-marker", "x-id"})
            return [Authorization("s3:ListMultipartUploadParts", arn, {}, "ListParts")]
        _unexpected(operation, query, _GET_OBJECT_PARAMETERS)
        return [Authorization("s3:GetObject", arn, {}, operation)]
    if method == "PUT":
        if "uploadId" in query or "partNumber" in query:
            _unexpected("UploadPart", query, {"uploadId", "partNumber", "x-id"})
            if "x-amz-copy-source" in headers:
                source = _copy_source(headers["x-amz-copy-source"])
                return [Authorization("s3:PutObject", arn, {}, "UploadPartCopy"),
                        Authorization("s3:GetObject", _object_arn(*source), {}, "UploadPartCopy")]
            return [Authorization("s3:PutObject", arn, {}, "UploadPart")]
        _unexpected("PutObject", query, {"x-id"})
        if "x-amz-copy-source" in headers:
            source = _copy_source(headers["x-amz-copy-source"])
            context = {**_put_context(headers, conditional=True), "s3:x-amz-copy-source": headers["x-amz-copy-source"]}
            return [Authorization("s3:PutObject", arn, context, "CopyObject"),
                    Authorization("s3:GetObject", _object_arn(*source), {}, "CopyObject"),
                    *_write_extras("CopyObject", arn, headers)]
        return [Authorization("s3:PutObject", arn, _put_context(headers, conditional=True), "PutObject"),
                *_write_extras("PutObject", arn, headers)]
    if method == "POST":
        if "uploads" in query:
            _unexpected("CreateMultipartUpload", query, {"uploads", "x-id"})
            return [Authorization("s3:PutObject", arn, _put_context(headers, conditional=False),
                                  "CreateMultipartUpload"), *_write_extras("CreateMultipartUpload", arn, headers)]
        if "uploadId" in query:
            _unexpected("CompleteMultipartUpload", query, {"uploadId", "x-id"})
            return [Authorization("s3:PutObject", arn, _put_context(headers, conditional=True),
                                  "CompleteMultipartUpload")]
    if method == "DELETE":
        if "uploadId" in query:
            _unexpected("AbortMultipartUpload", query, {"uploadId", "x-id"})
            return [Authorization("s3:AbortMultipartUpload", arn, {}, "AbortMultipartUpload")]
        if "versionId" in query:
            raise UnmappedRequest("DeleteObject of a version needs s3:DeleteObjectVersion: not modelled")
        _unexpected("DeleteObject", query, {"x-id"})
        return [Authorization("s3:DeleteObject", arn, {}, "DeleteObject")]
    raise UnmappedRequest(f"{method} on object {bucket}/{key} with query {query}: not modelled")


# ------------------------------------------------------------------ policy evaluation


class PolicyError(ValueError):
    """A policy element this evaluator does not implement (it refuses rather than guesses)."""


@lru_cache(maxsize=4096)
def _wildcard(pattern: str, ignore_case: bool) -> re.Pattern:
    """``*`` (any characters, '/' and ':' included) and ``?`` (one character), the rest literal."""
    if "${" in pattern:
        raise PolicyError(f"{pattern!r}: policy variables are not implemented")
    body = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.compile(body, re.DOTALL | (re.IGNORECASE if ignore_case else 0))


def matches(pattern: str, value: str, ignore_case: bool = False) -> bool:
    """Whether ``value`` matches an IAM wildcard ``pattern`` (``*``, ``?``)."""
    return _wildcard(pattern, ignore_case).fullmatch(value) is not None


def _values(element) -> list[str]:
    if isinstance(element, str):
        return [element]
    if isinstance(element, list) and all(isinstance(v, (str, int, float, bool)) for v in element):
        return [str(v).lower() if isinstance(v, bool) else str(v) for v in element]
    if isinstance(element, (bool, int, float)):
        return [str(element).lower() if isinstance(element, bool) else str(element)]
    raise PolicyError(f"{element!r}: a policy value must be a string or a list of strings")


def _string_test(operator: str):
    ignore_case = operator.endswith("IgnoreCase")
    if operator.startswith("StringLike") or operator.startswith("StringNotLike"):
        return lambda have, want: matches(want, have)
    if ignore_case:
        return lambda have, want: have.lower() == want.lower()
    return lambda have, want: have == want


def _numeric_test(comparison: str):
    compare = {"Equals": lambda a, b: a == b, "NotEquals": lambda a, b: a == b, "LessThan": lambda a, b: a < b,
               "LessThanEquals": lambda a, b: a <= b, "GreaterThan": lambda a, b: a > b,
               "GreaterThanEquals": lambda a, b: a >= b}[comparison]

    def test(have: str, want: str) -> bool:
        try:
            return compare(float(have), float(want))
        except ValueError:
            return False
    return test


_OPERATORS = {}
for _base in ("StringEquals", "StringEqualsIgnoreCase", "StringLike"):
    _OPERATORS[_base] = (_string_test(_base), False)
for _base in ("StringNotEquals", "StringNotEqualsIgnoreCase", "StringNotLike"):
    _OPERATORS[_base] = (_string_test(_base), True)
for _comparison in ("Equals", "LessThan", "LessThanEquals", "GreaterThan", "GreaterThanEquals"):
    _OPERATORS["Numeric" + _comparison] = (_numeric_test(_comparison), False)
_OPERATORS["NumericNotEquals"] = (_numeric_test("NotEquals"), True)
_OPERATORS["Bool"] = (lambda have, want: have.lower() == want.lower(), False)


def _condition_holds(operator: str, key: str, wanted: list[str], context: Mapping[str, str]) -> bool:
    if operator == "Null":
        present = key in context
        return any((w.lower() == "true") != present for w in wanted)
    if_exists = operator.endswith("IfExists")
    base = operator[: -len("IfExists")] if if_exists else operator
    test, negated = _OPERATORS[base]
    if key not in context:
        return if_exists or negated
    have = context[key]
    hit = any(test(have, w) for w in wanted)
    return not hit if negated else hit


def _check_condition_block(block, check_keys: bool = True) -> None:
    """Refuse a Condition block this evaluator does not implement; ``keys``: also a condition key that
    :func:`authorizations` never sets (checked only for statements that apply to an S3 request)."""
    if not isinstance(block, dict):
        raise PolicyError(f"Condition {block!r} is not an object")
    for operator, keys in block.items():
        if ":" in operator:
            raise PolicyError(f"condition set operator {operator!r} is not implemented")
        base = operator[: -len("IfExists")] if operator.endswith("IfExists") else operator
        if operator != "Null" and base not in _OPERATORS:
            raise PolicyError(f"condition operator {operator!r} is not implemented")
        if not isinstance(keys, dict):
            raise PolicyError(f"{operator}: {keys!r} is not an object of keys")
        for key, wanted in keys.items():
            _values(wanted)
            if not check_keys:
                continue
            if key.lower().startswith("s3:") and key.lower() not in MODELLED_KEYS:
                raise PolicyError(f"condition key {key!r}: requests are not mapped to it here")
            if not key.lower().startswith("s3:"):
                raise PolicyError(f"condition key {key!r}: only s3: keys of S3 requests are modelled")


def condition_holds(block: Mapping | None, context: Mapping[str, str]) -> bool:
    """Whether a statement's ``Condition`` block holds for a request's condition keys."""
    if not block:
        return True
    _check_condition_block(block)
    context = {k.lower(): v for k, v in context.items()}
    return all(_condition_holds(operator, key.lower(), _values(wanted), context)
               for operator, keys in block.items() for key, wanted in keys.items())


_STATEMENT_ELEMENTS = {"Sid", "Effect", "Action", "NotAction", "Resource", "NotResource", "Condition"}


def statements(policy: Mapping) -> list[dict]:
    """The statements of an identity policy document, checked for the elements evaluated here."""
    if policy.get("Version") != "2012-10-17":
        raise PolicyError(f"policy Version {policy.get('Version')!r}; only 2012-10-17 is implemented")
    found = policy.get("Statement")
    found = [found] if isinstance(found, dict) else found
    if not isinstance(found, list) or not found:
        raise PolicyError("a policy needs a Statement list")
    for s in found:
        unknown = set(s) - _STATEMENT_ELEMENTS
        if unknown:
            raise PolicyError(f"statement {s.get('Sid', s)!r}: element(s) {sorted(unknown)} not implemented "
                              "(an identity policy has no Principal)")
        if s.get("Effect") not in ("Allow", "Deny"):
            raise PolicyError(f"statement {s.get('Sid')!r}: Effect {s.get('Effect')!r}")
        if ("Action" in s) == ("NotAction" in s) or ("Resource" in s) == ("NotResource" in s):
            raise PolicyError(f"statement {s.get('Sid')!r}: needs exactly one of Action/NotAction and of "
                              "Resource/NotResource")
        if "Condition" in s:
            _check_condition_block(s["Condition"], check_keys=False)
    return found


def _action_hits(statement: Mapping, action: str) -> list[str]:
    """The statement's action patterns that select ``action`` ([] when it does not apply)."""
    if "Action" in statement:
        return [p for p in _values(statement["Action"]) if matches(p, action, ignore_case=True)]
    return [] if any(matches(p, action, ignore_case=True) for p in _values(statement["NotAction"])) else ["NotAction"]


def _resource_hits(statement: Mapping, resource: str) -> list[str]:
    if "Resource" in statement:
        return [p for p in _values(statement["Resource"]) if matches(p, resource)]
    return [] if any(matches(p, resource) for p in _values(statement["NotResource"])) else ["NotResource"]


@dataclass(frozen=True)
class Match:
    """A statement that applies to an authorization, with the patterns that selected it."""

    policy: str
    index: int
    sid: str
    effect: str
    actions: tuple[str, ...]
    resources: tuple[str, ...]


def applying(policies: Mapping[str, Mapping], authorization: Authorization) -> list[Match]:
    """Every statement of ``policies`` (``{name: document}``) that applies to ``authorization``."""
    found = []
    for name, document in policies.items():
        for index, statement in enumerate(statements(document)):
            actions = _action_hits(statement, authorization.action)
            if not actions:
                continue
            resources = _resource_hits(statement, authorization.resource)
            if resources and condition_holds(statement.get("Condition"), authorization.context):
                found.append(Match(name, index, statement.get("Sid", f"#{index}"), statement["Effect"],
                                   tuple(actions), tuple(resources)))
    return found


@dataclass(frozen=True)
class Decision:
    """``Allow``, ``ExplicitDeny`` or ``ImplicitDeny``, and the statements that decided it."""

    effect: str
    by: tuple[Match, ...] = ()

    @property
    def allowed(self) -> bool:
        return self.effect == "Allow"


def evaluate(policies: Mapping[str, Mapping], authorization: Authorization) -> Decision:
    """AWS's decision for ``authorization`` under the identity ``policies`` of one principal: an
    explicit Deny wins over any Allow; an Allow allows; nothing applying is the implicit deny."""
    found = applying(policies, authorization)
    denies = tuple(m for m in found if m.effect == "Deny")
    if denies:
        return Decision("ExplicitDeny", denies)
    allows = tuple(m for m in found if m.effect == "Allow")
    return Decision("Allow", allows) if allows else Decision("ImplicitDeny")


# ------------------------------------------------------------------ a request log against each role


def is_s3_statement(statement: Mapping) -> bool:
    """Whether a statement is about S3 alone (all its actions ``s3:``); a statement that mixes S3 with
    other services raises PolicyError (it could not be checked for unused S3 permissions)."""
    actions = _values(statement.get("Action", statement.get("NotAction", [])))
    s3 = [a.lower().startswith("s3:") for a in actions]
    if any(s3) and not all(s3):
        raise PolicyError(f"statement {statement.get('Sid')!r} mixes S3 and other actions: {actions}")
    return all(s3) and "NotAction" not in statement


@dataclass
class Denial:
    """A request a role's policies deny, with the authorization that failed."""

    role: str
    request: Mapping
    authorization: Authorization
    decision: Decision

    def __str__(self) -> str:
        r = self.request
        query = f"?{r['query']}" if r.get("query") else ""
        by = ", ".join(m.sid for m in self.decision.by) or "no statement allows it"
        return (f"{self.role}: {r['method']} {r['path']}{query} ({self.authorization.operation}) -> "
                f"{self.authorization.action} on {self.authorization.resource} "
                f"{dict(self.authorization.context) or ''} {self.decision.effect} ({by})")


@dataclass
class RoleReport:
    """What one role's recorded requests needed, what its policies denied, and what they grant unused."""

    role: str
    operations: Counter = field(default_factory=Counter)
    """``{(IAM action, S3 operation): requests}``."""
    denials: list[Denial] = field(default_factory=list)
    expected_denials: int = 0
    """Requests denied whose sender expects a failure (``expected_denials`` of :func:`check_role`)."""
    used: set[tuple[str, int, str]] = field(default_factory=set)
    """``(policy, statement index, "Action:<pattern>" or "Resource:<pattern>")`` an allowed request used."""
    unused: list[str] = field(default_factory=list)

    @property
    def actions(self) -> list[str]:
        return sorted({action for action, _ in self.operations})


def check_role(role: str, policies: Mapping[str, Mapping], requests: Iterable[Mapping],
               expected_denials: Iterable = ()) -> RoleReport:
    """Evaluate every request of ``role`` under its ``policies``: the S3 actions they needed, the
    denials (a request is denied when any of its authorizations is), and each (S3 Allow statement,
    action or resource pattern) no allowed request used.  ``expected_denials`` are predicates on a
    request that mark requests whose sender expects them to fail (they are counted, not reported)."""
    report = RoleReport(role)
    expected = list(expected_denials)
    for request in requests:
        for authorization in authorizations(request):
            report.operations[(authorization.action, authorization.operation)] += 1
            decision = evaluate(policies, authorization)
            if not decision.allowed:
                if any(test(request) for test in expected):
                    report.expected_denials += 1
                else:
                    report.denials.append(Denial(role, request, authorization, decision))
                continue
            for m in decision.by:
                report.used.update((m.policy, m.index, f"Action:{a}") for a in m.actions)
                report.used.update((m.policy, m.index, f"Resource:{r}") for r in m.resources)
    for name, document in policies.items():
        for index, statement in enumerate(statements(document)):
            if statement["Effect"] != "Allow" or not is_s3_statement(statement):
                continue
            for element in ("Action", "Resource"):
                for pattern in _values(statement.get(element, [])):
                    if (name, index, f"{element}:{pattern}") not in report.used:
                        report.unused.append(f"{name}/{statement.get('Sid', index)}: {element} {pattern}")
    return report


def read_log(path: Path) -> tuple[dict, list[dict]]:
    """A request log: its header line (``{"recording": ..., "roles": {key: role}, ...}``) and requests."""
    lines = [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]
    if not lines or "recording" not in lines[0]:
        raise ValueError(f"{path}: not a request log (its first line must describe the recording)")
    return lines[0], lines[1:]


def _load_iam():
    import importlib.util

    spec = importlib.util.spec_from_file_location("deploy_iam", HERE / "iam.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("log", type=Path, help="a request log (JSON lines) as tests/cluster/test_iam_stand_in.py records it")
    parser.add_argument("--bucket", help="the bucket the policies name (default: the log's)")
    parser.add_argument("--prefix", help="the key prefix the policies name (default: the log's)")
    parser.add_argument("--spot", action="store_true", help="the policies of deploy/iam.py --spot")
    args = parser.parse_args(argv)
    header, requests = read_log(args.log)
    bucket, prefix = args.bucket or header.get("bucket"), args.prefix or header.get("prefix")
    if not bucket or prefix is None:
        parser.error(f"{args.log}: the log names no bucket/prefix; give --bucket and --prefix")
    iam = _load_iam()
    roles = iam.role_policies(bucket, prefix, "us-west-2", "123456789012", "omasgan", spot=args.spot)
    by_role = defaultdict(list)
    for request in requests:
        by_role[request.get("role", "unknown")].append(request)
    denied = 0
    for role, role_requests in sorted(by_role.items()):
        if role not in roles:
            print(f"{role}: {len(role_requests)} request(s) by a role deploy/iam.py does not define")
            denied += len(role_requests)
            continue
        report = check_role(role, roles[role], role_requests, expected_denials=EXPECTED_DENIALS)
        print(f"{role}: {len(role_requests)} requests; S3 actions used: {', '.join(report.actions)}")
        for (action, operation), count in sorted(report.operations.items()):
            print(f"  {action:32} {operation:24} {count}")
        if report.expected_denials:
            print(f"  {report.expected_denials} denied as their sender expects ({', '.join(t.__name__ for t in EXPECTED_DENIALS)})")
        for denial in report.denials:
            print(f"  DENIED {denial}")
        for grant in report.unused:
            print(f"  unused: {grant}")
        denied += len(report.denials)
    return 1 if denied else 0


def arrow_backend_probe(request: Mapping) -> bool:
    """pyarrow's S3 file system learns which server it talks to from the error of a ``HeadBucket`` on
    a bucket that cannot exist (``$extremelyunlikelytoexist$``, not a valid bucket name): it expects a
    failure, and a 403 is one."""
    return request["method"] == "HEAD" and request["path"] == "/%24extremelyunlikelytoexist%24"


EXPECTED_DENIALS = (arrow_backend_probe,)
"""Requests whose sender expects them to fail; denied, they are counted but not reported."""


if __name__ == "__main__":
    raise SystemExit(main())

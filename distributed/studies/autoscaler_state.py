"""What Ray's autoscaler says about each node type: nodes up, launches pending, and launches that
failed with the cloud's reason.  The same facts ``ray status`` prints, read where it reads them:

- autoscaler v1 (``ray up`` on VMs): the monitor on the head writes a JSON document to the GCS
  key-value store every few seconds, key ``__autoscaling_status``
  (``ray._private.ray_constants.DEBUG_AUTOSCALING_STATUS``): ``{"load_metrics_report": ...,
  "autoscaler_report": dataclasses.asdict(AutoscalerSummary), "time": ...}``.  The summary holds
  ``active_nodes`` {type: count}, ``pending_launches`` {type: count}, ``pending_nodes`` [[ip, type,
  status]], ``failed_nodes`` [[ip, type]] and ``node_availability_summary.node_availabilities``
  {type: {"is_available", "last_checked_timestamp", "unavailable_node_information": {"category",
  "description"}}}, where a failed launch's category is the cloud's error code (the AWS provider
  passes botocore's ``Error.Code``: ``InsufficientInstanceCapacity``, ``VcpuLimitExceeded``,
  ``UnauthorizedOperation``, ...) and its description the cloud's message.  A crash of the
  autoscaler itself is under ``__autoscaling_error`` (``DEBUG_AUTOSCALING_ERROR``).
- autoscaler v2 (KubeRay, or ``RAY_enable_autoscaler_v2=1``), which says so under the key
  ``__autoscaler_v2_enabled`` in the ``__autoscaler`` namespace: the ``AutoscalingState`` it reports
  to the GCS, read with ``ray.autoscaler.v2.sdk.get_cluster_status``: ``failed_launches`` (type and
  ``details``: the reason), ``pending_launches``, ``pending_nodes``, ``active_nodes``/``idle_nodes``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

STATUS_KEY = "__autoscaling_status"
"""``ray._private.ray_constants.DEBUG_AUTOSCALING_STATUS``: the v1 autoscaler's status document."""
ERROR_KEY = "__autoscaling_error"
"""``ray._private.ray_constants.DEBUG_AUTOSCALING_ERROR``: the v1 autoscaler's last crash, if any."""


@dataclass
class AutoscalerState:
    """Per node type: nodes up (``active``), launches in progress (``pending``, in words) and failed
    launches (``failures``: the cloud's reason, in its words); ``error``: the autoscaler's own crash."""

    source: str
    active: dict[str, int] = field(default_factory=dict)
    pending: dict[str, list[str]] = field(default_factory=dict)
    failures: dict[str, list[str]] = field(default_factory=dict)
    error: str | None = None

    def about(self, node_type: str) -> str:
        """What the autoscaler says about ``node_type``'s missing nodes, in one phrase."""
        said = [f"launch failed: {reason}" for reason in self.failures.get(node_type, [])]
        said += self.pending.get(node_type, [])
        if self.error:
            said.append(f"the autoscaler reports an error: {self.error}")
        return "; ".join(said) if said else "the autoscaler reports no launch of it, pending or failed"


def _add(table: dict[str, list[str]], node_type: str, words: str) -> None:
    table.setdefault(str(node_type), []).append(words)


def state_from_v1_document(document: dict[str, Any], error: str | None = None) -> AutoscalerState:
    """An :class:`AutoscalerState` from the v1 autoscaler's status document (see the module docstring)."""
    report = document.get("autoscaler_report") or {}
    state = AutoscalerState(f"the autoscaler's status (GCS key {STATUS_KEY})", error=error or None)
    state.active = {str(k): int(v) for k, v in (report.get("active_nodes") or {}).items()}
    for node_type, count in (report.get("pending_launches") or {}).items():
        if count:
            _add(state.pending, node_type, f"{count} launching")
    for node in report.get("pending_nodes") or []:
        if len(node) >= 3:
            _add(state.pending, node[1], f"node {node[0]} {str(node[2]).lower()}")
    availability = (report.get("node_availability_summary") or {}).get("node_availabilities") or {}
    for node_type, record in availability.items():
        if isinstance(record, dict) and not record.get("is_available", True):
            info = record.get("unavailable_node_information") or {}
            reason = ": ".join(str(p) for p in (info.get("category"), info.get("description")) if p)
            _add(state.failures, node_type, reason or "no reason given")
    for node in report.get("failed_nodes") or []:
        if len(node) >= 2:
            _add(state.failures, node[1], f"node {node[0]} launched but failed or was lost (update failed, or "
                                          "terminated; its setup log: ray monitor cluster.yaml)")
    return state


def state_from_cluster_status(status: Any) -> AutoscalerState:
    """An :class:`AutoscalerState` from autoscaler v2's ``ClusterStatus``."""
    state = AutoscalerState("the autoscaler's cluster status (autoscaler v2)")
    for node in list(status.active_nodes) + list(status.idle_nodes):
        state.active[node.ray_node_type_name] = state.active.get(node.ray_node_type_name, 0) + 1
    for launch in status.pending_launches:
        _add(state.pending, launch.ray_node_type_name, f"{launch.count} launching")
    for node in status.pending_nodes:
        _add(state.pending, node.ray_node_type_name,
             f"node {node.instance_id} {node.details or (node.node_status or 'pending').lower()}")
    for launch in status.failed_launches:
        _add(state.failures, launch.ray_node_type_name, launch.details or "no reason given")
    for node in status.failed_nodes:
        _add(state.failures, node.ray_node_type_name,
             f"node {node.instance_id} failed: {node.failure_detail or node.details or 'no detail'}")
    return state


def read_autoscaler_state() -> AutoscalerState | None:
    """The autoscaler's state now, or None when no autoscaler reports one (an embedded Ray, machines
    joined with ``ray start``).  Needs ``ray.init``; call it in a task on the head, where the GCS
    address is known in every driver mode."""
    import ray
    from ray.experimental.internal_kv import _internal_kv_get

    try:
        from ray.autoscaler.v2.utils import is_autoscaler_v2

        v2 = is_autoscaler_v2(fetch_from_server=True)
    except Exception:  # noqa: BLE001 - a private API: absent or changed means "not v2"
        v2 = False
    if v2:
        from ray.autoscaler.v2.sdk import get_cluster_status

        return state_from_cluster_status(get_cluster_status(ray.get_runtime_context().gcs_address))
    raw = _internal_kv_get(STATUS_KEY)
    if not raw:
        return None
    try:
        document = json.loads(raw)
    except ValueError:
        return None
    error = _internal_kv_get(ERROR_KEY)
    return state_from_v1_document(document, error_summary(error.decode(errors="replace")) if error else None)


def error_summary(message: str) -> str | None:
    """The v1 autoscaler's crash (``The autoscaler failed with the following error:`` and a traceback,
    or ``Terminated with signal N`` and a stack) in one line: the exception line of a traceback, else
    the first line after the header."""
    lines = [line for line in message.strip().splitlines() if line.strip()]
    if lines and lines[0].startswith("The autoscaler failed"):
        lines = lines[1:]
    if not lines:
        return None
    return lines[-1].strip() if lines[0].startswith("Traceback") else lines[0].strip()


def autoscaler_summary() -> str:
    """What the autoscaler says now about node types with launches pending or failed (and its own
    crash), in one phrase; '' when it says nothing of them or no autoscaler reports (see
    :func:`read_autoscaler_state`)."""
    try:
        state = read_autoscaler_state()
    except Exception:  # noqa: BLE001 - a progress line must not fail on a private API
        return ""
    if state is None:
        return ""
    said = [f"{node_type}: {state.about(node_type)}" for node_type in sorted(set(state.pending) | set(state.failures))]
    if state.error and not said:
        said.append(f"the autoscaler reports an error: {state.error}")
    return "; ".join(said)

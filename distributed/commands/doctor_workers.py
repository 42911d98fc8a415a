"""``omasgan doctor``'s checks of an autoscaling cluster as a whole: the autoscaler config on the
head and the worker types that have no node yet, with the
autoscaler's reason (optionally after asking the autoscaler for one node of each and waiting).

Right after ``ray up`` with ``min_workers: 0`` only the head is up; a worker type whose nodes cannot
be launched (no vCPU quota for the instance family, no capacity in the zones, an IAM role that may
not run instances, a bad AMI) shows only when a study asks for one and then waits for ever.  With
``--wait-workers SECONDS`` the doctor asks the autoscaler for one node of every worker type that has
none (``ray.autoscaler.sdk.request_resources``, one bundle of the type's resources beyond what the
nodes up can hold), waits up to SECONDS for each to join, and releases the request at the end.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import Any, Callable

from ..studies.autoscaler_state import AutoscalerState

POLL_S = 5.0


@dataclass
class WorkerType:
    """A worker node type of the autoscaler config: its resources per node and its node limits."""

    name: str
    resources: dict[str, float]
    min_workers: int
    max_workers: int


def worker_types(config: dict[str, Any]) -> list[WorkerType]:
    """The worker node types of an autoscaler config that can have a node (``max_workers`` > 0, the
    type's own or else the cluster's); the head's type is not one of them."""
    head = config.get("head_node_type")
    global_max = config.get("max_workers")
    found = []
    for name, node_type in (config.get("available_node_types") or {}).items():
        if name == head or not isinstance(node_type, dict):
            continue
        most = int(node_type.get("max_workers", global_max if global_max is not None else 0))
        if global_max is not None:
            most = min(most, int(global_max))
        if most > 0:
            found.append(WorkerType(name, {k: float(v) for k, v in (node_type.get("resources") or {}).items()},
                                    int(node_type.get("min_workers", 0)), most))
    return found


def worker_types_from_gcs(cluster_config: Any) -> list[WorkerType]:
    """The node groups of the cluster config an autoscaler v2 reported to the GCS (KubeRay)."""
    if cluster_config is None:
        return []
    return [WorkerType(group.name, {k: float(v) for k, v in group.resources.items()}, int(group.min_count),
                       group.max_count if group.max_count >= 0 else 10**6)
            for group in cluster_config.node_group_configs if group.max_count != 0]


# ---------------------------------------------------------------- what runs on the head


def read_autoscaler_config_text(path: str) -> str | None:
    """The text of the autoscaler config at ``path`` on this node (``~`` expanded here), or None when
    there is none.  The driver passes ``$OMASGAN_AUTOSCALER_CONFIG`` or ``ray up``'s
    ``~/ray_bootstrap_config.yaml`` (:mod:`..studies.capacity`)."""
    try:
        with open(os.path.expanduser(path)) as handle:
            return handle.read()
    except OSError:
        return None


def request_bundles(bundles: list[dict[str, float]]) -> None:
    """Ask the autoscaler for room for ``bundles`` (an empty list withdraws the request)."""
    from ray.autoscaler.sdk import request_resources
    from ray.autoscaler.v2.utils import is_autoscaler_v2

    is_autoscaler_v2(fetch_from_server=True)  # request_resources goes by this process's cached answer
    request_resources(bundles=bundles)


# ---------------------------------------------------------------- the driver side


class NodeRequest:
    """The doctor's request to the autoscaler for worker nodes: ``send(bundles)`` (a task on the
    head), remembered so that :meth:`withdraw` can take it back at the end, after an error too."""

    def __init__(self, send: Callable[[list[dict[str, float]]], None]) -> None:
        self.send = send
        self.made = False

    def __call__(self, bundles: list[dict[str, float]]) -> None:
        self.made = True
        self.send(bundles)

    def withdraw(self) -> bool:
        """Withdraw the request if one was made; whether one was."""
        if self.made:
            self.send([])
            self.made = False
            return True
        return False


def joined_counts(types: list[WorkerType], state: AutoscalerState | None, nodes: list[dict[str, Any]]) -> dict[str, int]:
    """Nodes up per worker type: the autoscaler's count when it reports one, else the alive worker
    nodes whose CPUs and GPUs are those of the type."""
    if state is not None:
        return {t.name: int(state.active.get(t.name, 0)) for t in types}
    counts = {}
    for t in types:
        shape = {k: v for k, v in t.resources.items() if k in ("CPU", "GPU")}
        counts[t.name] = sum(1 for n in nodes if n.get("Alive") and "node:__internal_head__" not in n.get("Resources", {})
                             and shape and all(float(n["Resources"].get(k, 0)) == v for k, v in shape.items()))
    return counts


def bundles_for(types: list[WorkerType], nodes: list[dict[str, Any]]) -> list[dict[str, float]]:
    """For each type, one bundle of its resources more than the alive nodes can hold, so the
    autoscaler has to add a node that fits one (of that type unless another type fits it too)."""
    from ..studies.capacity import units_per_node

    bundles = []
    for t in types:
        room = sum(units_per_node({k: float(v) for k, v in n.get("Resources", {}).items()}, t.resources)
                   for n in nodes if n.get("Alive"))
        bundles += [dict(t.resources)] * (room + 1)
    return bundles


def _format(resources: dict[str, float]) -> str:
    return "{" + ", ".join(f"{k}: {v:g}" for k, v in sorted(resources.items())) + "}"


def check_worker_types(line: Callable[[str, str], None], types: list[WorkerType],
                       read_state: Callable[[], AutoscalerState | None], alive_nodes: Callable[[], list[dict[str, Any]]],
                       request: Callable[[list[dict[str, float]]], None], wait_s: float) -> None:
    """One line per worker type: nodes up, or why none is (the autoscaler's reason).  With
    ``wait_s`` > 0, first ask (``request``, a :class:`NodeRequest` the caller withdraws at the end)
    for one node of each type that has none and wait for them up to ``wait_s``.

    A type with no node is FAIL when the autoscaler reports a failed launch of it, or when it was
    waited for; else warn (with ``min_workers: 0`` no node is started until a study asks)."""
    state, nodes = read_state(), alive_nodes()
    counts = joined_counts(types, state, nodes)
    missing = [t for t in types if counts[t.name] == 0]
    asked = [t for t in missing if t.resources]
    requested = False
    started = time.monotonic()
    joined_after: dict[str, float] = {}
    if wait_s > 0 and asked:
        bundles = bundles_for(asked, nodes)
        request(bundles)
        requested = True
        line("ok", "asked the autoscaler for one node of " + ", ".join(f"{t.name} {_format(t.resources)}" for t in asked)
             + f"; waiting up to {wait_s:.0f} s")
        deadline = started + wait_s
        while time.monotonic() < deadline:
            time.sleep(min(POLL_S, max(0.0, deadline - time.monotonic())))
            state, nodes = read_state(), alive_nodes()
            counts = joined_counts(types, state, nodes)
            for t in asked:
                if counts[t.name]:
                    joined_after.setdefault(t.name, time.monotonic() - started)
            if all(counts[t.name] for t in asked):
                break
    where = f" ({state.source})" if state is not None else " (no autoscaler status: counted by resources)"
    for t in types:
        if counts[t.name]:
            after = f" {joined_after[t.name]:.0f} s after the request" if t.name in joined_after else ""
            line("ok", f"worker type {t.name}: {counts[t.name]} node(s) up{after} ({_format(t.resources)} each, at most "
                       f"{t.max_workers}){where}")
            continue
        about = state.about(t.name) if state is not None else "no autoscaler status to say why"
        if requested and t in asked:
            line("FAIL", f"worker type {t.name}: no node joined within {wait_s:.0f} s of asking the autoscaler for one; "
                         f"{about}")
        elif state is not None and state.failures.get(t.name):
            line("FAIL", f"worker type {t.name}: no node up, and the autoscaler could not launch one: {about}")
        elif not t.resources:
            line("warn", f"worker type {t.name}: no node up, and the config gives it no resources, so the doctor "
                         f"cannot ask for one; {about}")
        else:
            line("warn", f"worker type {t.name}: no node up yet (min_workers {t.min_workers}: the autoscaler starts one "
                         f"when a study asks; --wait-workers SECONDS asks for one now and checks it); {about}")

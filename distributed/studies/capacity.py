"""How many (class, seed) units of one trial a cluster can ever hold at once, and a clear refusal of a
placement group that can never fit.

A trial's placement group is ``[{"CPU": 0.01}] + [unit] * parallel_units`` (see :mod:`.trainable`), with
``unit = {"CPU": cpus_per_unit, "GPU": gpus_per_unit}``.  Ray places a group only when every bundle
fits on some node; a group larger than the cluster can *ever* become waits for ever.  So the study
checks, before it starts a trial, against the cluster's maximum:

- an autoscaling cluster: its node types at their ``max_workers`` (the head once), within the global
  ``max_workers``; read from the autoscaler's config (``~/ray_bootstrap_config.yaml`` on the head,
  where ``ray up`` puts it) or from the cluster config the autoscaler reports to Ray's GCS;
- a fixed cluster (machines joined with ``ray start``): the nodes alive now;
- the embedded Ray (no ``--address``): this machine, before Ray starts.

On an autoscaling cluster with ``min_workers: 0`` the nodes alive when the driver starts are the head
alone, so the nodes alive now would make a 10-class trial run its units one after another; the
maximum is what the autoscaler can add.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from typing import Any

from omasgan.errors import ConfigError

from .trainable import DRIVER_BUNDLE

BOOTSTRAP_CONFIG = "~/ray_bootstrap_config.yaml"
AUTOSCALER_CONFIG_ENV = "OMASGAN_AUTOSCALER_CONFIG"
"""Where on the head the autoscaler's config is, when not at BOOTSTRAP_CONFIG (``ray up`` puts it there)."""
EPSILON = 1e-9


@dataclass
class NodeType:
    """Nodes of one kind: their resources each and how many the cluster can have at most."""

    name: str
    resources: dict[str, float]
    max_nodes: int
    head: bool = False


@dataclass
class ClusterShape:
    """The node types of a cluster at its largest, and where that was read from."""

    node_types: list[NodeType]
    source: str
    max_workers: int | None = None
    """The global cap on worker nodes (all worker types together), when the cluster has one."""
    notes: list[str] = field(default_factory=list)


def unit_bundle(cpus_per_unit: float, gpus_per_unit: float) -> dict[str, float]:
    bundle = {"CPU": float(cpus_per_unit)}
    if gpus_per_unit:
        bundle["GPU"] = float(gpus_per_unit)
    return bundle


def units_per_node(resources: dict[str, float], unit: dict[str, float], reserved: dict[str, float] | None = None) -> int:
    """How many ``unit`` bundles one node with ``resources`` holds (after ``reserved``)."""
    fits = []
    for name, amount in unit.items():
        if amount <= 0:
            continue
        have = resources.get(name, 0.0) - (reserved or {}).get(name, 0.0)
        fits.append(math.floor(have / amount + EPSILON) if have > 0 else 0)
    return max(0, min(fits)) if fits else 0


def _format(resources: dict[str, float]) -> str:
    return "{" + ", ".join(f"{k}: {v:g}" for k, v in sorted(resources.items()) if k in ("CPU", "GPU") or v) + "}"


def max_units(shape: ClusterShape, unit: dict[str, float]) -> tuple[int, str]:
    """The most ``unit`` bundles the cluster can hold at once next to one trial's own bundle, and
    how, in words (per node type: nodes x units each)."""
    per_node = {t.name: units_per_node(t.resources, unit) for t in shape.node_types}
    # the worker types fill the global cap in the order that holds the most units
    counts: dict[str, int] = {}
    budget = shape.max_workers
    for node_type in sorted(shape.node_types, key=lambda t: (not t.head, -per_node[t.name])):
        count = node_type.max_nodes
        if not node_type.head and budget is not None:
            count = min(count, budget)
            budget -= count
        counts[node_type.name] = count
    total = sum(per_node[t.name] * counts[t.name] for t in shape.node_types)
    # the trial's own bundle (0.01 CPU) sits on one node: the one where it costs the fewest units
    losses = [per_node[t.name] - units_per_node(t.resources, unit, DRIVER_BUNDLE)
              for t in shape.node_types if counts[t.name] > 0
              and units_per_node(t.resources, DRIVER_BUNDLE) >= 1]
    total -= min(losses) if losses else 0
    how = "; ".join(f"{t.name}: {counts[t.name]} node(s) x {per_node[t.name]} unit(s) of {_format(t.resources)}"
                    for t in shape.node_types)
    return max(0, total), how


def check_fit(shape: ClusterShape, cpus_per_unit: float, gpus_per_unit: float, units: int,
              parallel_units: int | None) -> int:
    """The units a trial runs at once: ``parallel_units`` if given, else as many as the cluster can
    ever hold (at most ``units``).  Raises a ConfigError with the numbers when one unit fits no node,
    or when the trial's placement group can never fit."""
    unit = unit_bundle(cpus_per_unit, gpus_per_unit)
    largest = max(shape.node_types, key=lambda t: units_per_node(t.resources, unit), default=None)
    if largest is None or units_per_node(largest.resources, unit) == 0:
        kinds = "; ".join(f"{t.name} {_format(t.resources)}" for t in shape.node_types) or "none"
        raise ConfigError(f"a unit asks for {_format(unit)} (--cpus-per-unit {cpus_per_unit:g}, --gpus-per-unit "
                          f"{gpus_per_unit:g}), which no node of the cluster has; its node types ({shape.source}): "
                          f"{kinds}")
    most, how = max_units(shape, unit)
    if parallel_units is None:
        return max(1, min(units, most))
    if parallel_units > most:
        raise ConfigError(
            f"--parallel-units {parallel_units}: a trial's placement group ({parallel_units} x {_format(unit)} + "
            f"{_format(DRIVER_BUNDLE)}) can never fit: the cluster holds at most {most} such units ({how}; read from "
            f"{shape.source}); lower --parallel-units, or the CPUs/GPUs per unit")
    return min(parallel_units, units)


# ---------------------------------------------------------------- where the shape comes from


def this_machine() -> ClusterShape:
    """The embedded Ray's one node, as runner.start_ray starts it (one logical CPU more than
    the cores; the GPUs torch sees)."""
    import torch

    gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
    resources = {"CPU": float((os.cpu_count() or 1) + 1), "GPU": float(gpus)}
    return ClusterShape([NodeType("this machine", resources, 1, head=True)], "this machine (embedded Ray)")


def shape_from_autoscaler_config(config: dict[str, Any], source: str) -> ClusterShape:
    """The cluster's maximum from an autoscaler config (``ray up``'s YAML, or its bootstrap copy)."""
    types = config.get("available_node_types") or {}
    head_type = config.get("head_node_type")
    global_max = config.get("max_workers")
    node_types = []
    for name, node_type in types.items():
        resources = {k: float(v) for k, v in (node_type.get("resources") or {}).items()}
        most = int(node_type.get("max_workers", global_max if global_max is not None else 0))
        if name == head_type:
            node_types.append(NodeType(name, resources, 1, head=True))
            most = int(node_type.get("max_workers", 0))  # further nodes of the head's type are workers
            if most <= 0:
                continue
            name = f"{name} (workers)"
        node_types.append(NodeType(name, resources, most))
    return ClusterShape(node_types, source, int(global_max) if global_max is not None else None)


def shape_from_gcs_config(config: Any) -> ClusterShape | None:
    """The maximum from the cluster config an autoscaler reported to the GCS (autoscaler v2, KubeRay)."""
    if config is None or not config.node_group_configs:
        return None
    node_types = []
    for group in config.node_group_configs:
        most = group.max_count if group.max_count >= 0 else 10**6
        node_types.append(NodeType(group.name, {k: float(v) for k, v in group.resources.items()}, most))
    return ClusterShape(node_types, "the cluster config in Ray's GCS")


def shape_from_nodes(nodes: list[dict[str, Any]]) -> ClusterShape:
    """A fixed cluster: every node alive now, once."""
    node_types = []
    for node in nodes:
        if not node.get("Alive"):
            continue
        resources = {k: float(v) for k, v in node.get("Resources", {}).items() if k in ("CPU", "GPU")}
        head = "node:__internal_head__" in node.get("Resources", {})
        node_types.append(NodeType(f"node {node.get('NodeManagerAddress', '?')}{' (head)' if head else ''}",
                                   resources, 1, head=head))
    return ClusterShape(node_types, "the nodes alive now (no autoscaler config found)")


def _read_bootstrap_config(path: str) -> str | None:
    path = os.path.expanduser(path)
    try:
        with open(path) as handle:
            return handle.read()
    except OSError:
        return None


def joined_cluster_shape() -> ClusterShape:
    """The joined cluster's maximum: the GCS's cluster config, else the autoscaler config on the head
    (``$OMASGAN_AUTOSCALER_CONFIG`` or ``~/ray_bootstrap_config.yaml``, read by a task pinned to the head
    node), else the nodes alive now.  Needs ``ray.init`` first."""
    import ray
    import yaml
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    try:
        from ray._private.state import state

        shape = shape_from_gcs_config(state.get_cluster_config())
    except Exception:  # noqa: BLE001 - a private API; absent or changed means "not available"
        shape = None
    if shape is not None:
        return shape
    nodes = ray.nodes()
    head = next((n for n in nodes if n.get("Alive") and "node:__internal_head__" in n.get("Resources", {})), None)
    if head is not None:
        reader = ray.remote(num_cpus=0)(_read_bootstrap_config).options(
            scheduling_strategy=NodeAffinitySchedulingStrategy(head["NodeID"], soft=False))
        path = os.environ.get(AUTOSCALER_CONFIG_ENV) or BOOTSTRAP_CONFIG
        text = ray.get(reader.remote(path), timeout=120)
        if text:
            try:
                config = yaml.safe_load(text)
            except yaml.YAMLError:
                config = None
            if isinstance(config, dict) and config.get("available_node_types"):
                return shape_from_autoscaler_config(config, f"the autoscaler config {path} on the head")
    return shape_from_nodes(nodes)

"""How many units a trial runs at once, from the cluster's maximum rather than the nodes alive when the
driver starts, and the up-front refusal of a placement group that can never fit; and the run options
that --resume restores.  No Ray cluster: the shapes come from cluster.yaml and from node lists."""


import pytest
import yaml

from omasgan.distributed.studies.capacity import (
    ClusterShape,
    NodeType,
    check_fit,
    max_units,
    shape_from_autoscaler_config,
    shape_from_nodes,
    unit_bundle,
)
from omasgan.distributed.studies.preparation import RunOptions, restore_run_options
from omasgan.errors import ConfigError

from helpers import REPO

CLUSTER_YAML = REPO / "cluster.yaml"


@pytest.fixture(scope="module")
def aws():
    return shape_from_autoscaler_config(yaml.safe_load(CLUSTER_YAML.read_text()), "cluster.yaml")


def test_an_autoscaling_cluster_counts_the_workers_it_can_add(aws):
    # cluster.yaml: a head that offers no CPU (only drivers run there) and up to 10 one-GPU workers
    assert check_fit(aws, 2, 1, units=20, parallel_units=None) == 10
    assert check_fit(aws, 4, 1, units=20, parallel_units=None) == 9  # the trial's 0.01-CPU bundle dents a worker
    assert check_fit(aws, 1, 0.25, units=20, parallel_units=None) == 20  # 40 fit, the trial has 20
    assert check_fit(aws, 0.75, 0.25, units=60, parallel_units=None) == 40
    assert check_fit(aws, 2, 1, units=3, parallel_units=None) == 3
    # CPU-only units fit on the workers alone (4 CPUs each, one of which the trial's own bundle dents)
    assert max_units(aws, unit_bundle(1, 0))[0] == 9 * 4 + 3


def test_the_live_nodes_of_an_autoscaling_cluster_would_have_serialised_the_units():
    # what ray.nodes() shows when the driver starts on a min_workers: 0 cluster: the head alone
    head_only = shape_from_nodes([{"Alive": True, "NodeManagerAddress": "10.0.0.1",
                                   "Resources": {"CPU": 8.0, "node:__internal_head__": 1.0}}])
    with pytest.raises(ConfigError, match=r"no node of the cluster has"):
        check_fit(head_only, 4, 1, units=10, parallel_units=None)


def test_a_placement_group_that_can_never_fit_is_refused_with_the_numbers(aws):
    with pytest.raises(ConfigError) as info:
        check_fit(aws, 2, 1, units=20, parallel_units=12)
    message = str(info.value)
    assert "--parallel-units 12" in message and "at most 10" in message and "worker.gpu: 10 node(s) x 1 unit(s)" in message
    assert "cluster.yaml" in message and "\n" not in message
    with pytest.raises(ConfigError, match=r"\{CPU: 4, GPU: 2\}.*which no node of the cluster has.*worker.gpu \{CPU: 4, GPU: 1\}"):
        check_fit(aws, 4, 2, units=2, parallel_units=None)
    with pytest.raises(ConfigError, match=r"\{CPU: 16\}"):
        check_fit(aws, 16, 0, units=2, parallel_units=1)
    assert check_fit(aws, 2, 1, units=20, parallel_units=10) == 10


def test_the_global_max_workers_caps_the_worker_types_best_first():
    shape = ClusterShape([NodeType("head", {"CPU": 2}, 1, head=True),
                          NodeType("small", {"CPU": 4, "GPU": 1}, 10), NodeType("big", {"CPU": 16, "GPU": 4}, 10)],
                         "test", max_workers=3)
    assert max_units(shape, unit_bundle(4, 1))[0] == 3 * 4  # three big nodes, not ten small ones


def test_a_fixed_cluster_counts_its_live_nodes():
    nodes = [{"Alive": True, "NodeManagerAddress": "h", "Resources": {"CPU": 1.0, "node:__internal_head__": 1.0}},
             {"Alive": True, "NodeManagerAddress": "w1", "Resources": {"CPU": 2.0, "GPU": 1.0}},
             {"Alive": True, "NodeManagerAddress": "w2", "Resources": {"CPU": 2.0, "GPU": 1.0}},
             {"Alive": False, "NodeManagerAddress": "gone", "Resources": {"CPU": 64.0, "GPU": 8.0}}]
    shape = shape_from_nodes(nodes)
    assert check_fit(shape, 1, 0.5, units=10, parallel_units=None) == 4
    assert check_fit(shape, 1, 0, units=10, parallel_units=None) == 4  # the head's one CPU holds the trial's bundle
    with pytest.raises(ConfigError, match="at most 4"):
        check_fit(shape, 1, 0.5, units=10, parallel_units=5)


def test_resume_restores_the_options_not_given_and_names_a_differing_one():
    stored = {"address": "auto", "cpus_per_unit": 4.0, "gpus_per_unit": 1.0, "parallel_units": None,
              "max_concurrent": 3, "max_failures": 2, "storage": "s3://b/omasgan"}
    given = RunOptions(storage="s3://b/omasgan", resume=True, max_failures=5,
                       explicit=frozenset({"max_failures"}))
    options, restored, differing = restore_run_options(given, stored)
    assert (options.address, options.cpus_per_unit, options.gpus_per_unit, options.max_concurrent) == ("auto", 4.0, 1.0, 3)
    assert options.max_failures == 5
    assert restored == ["--address auto", "--cpus-per-unit 4.0", "--gpus-per-unit 1.0", "--max-concurrent 3"]
    assert differing == ["--max-failures 5 differs from the study's 2 (study.json); using 5"]
    # the same value given again is no difference
    same = RunOptions(resume=True, max_failures=2, explicit=frozenset({"max_failures"}))
    assert restore_run_options(same, stored)[2] == []


def test_run_options_given_on_the_command_line_are_told_from_defaults():
    from omasgan.cli import build_parser
    from omasgan.distributed.commands.studies import options_from_args

    args = build_parser().parse_args(["search", "--resume", "--name", "x", "--gpus-per-unit", "0.5"])
    options = options_from_args(args)
    assert options.explicit == frozenset({"gpus_per_unit"})
    assert (options.gpus_per_unit, options.cpus_per_unit, options.max_concurrent, options.max_failures) == (0.5, 1.0, 2, 2)

"""What Ray does with a study's units and trials, on logical GPUs (``ray.init(num_gpus=...)``: Ray
schedules them without CUDA).

- Each GPU unit runs in a fresh worker process, under CUDA_VISIBLE_DEVICES set to the GPU Ray assigned
  it, so cuda:0 inside the unit is that GPU.  A reused process would keep its CUDA context and cached
  memory and stay on the GPU it first had (Ray applies max_calls=1 only to remote functions whose
  decorator names num_gpus, never to GPUs given through .options()).
- A trial whose placement group Ray can never place (here: units of 4 GPUs on 2-GPU nodes, while the
  autoscaler's config promises 4-GPU workers that never come, as with an instance quota of 0) is named
  in the progress lines with what it waits for and why, and the study halts with one line after
  ``--placement-timeout``."""

from __future__ import annotations

import json
import os

import pytest

ray = pytest.importorskip("ray")

from helpers import tiny_config  # noqa: E402


@pytest.fixture(scope="module")
def logical_gpus():
    saved = os.environ.get("OMASGAN_ALLOW_CPU_FOR_GPU")
    os.environ["OMASGAN_ALLOW_CPU_FOR_GPU"] = "1"  # the units train on the CPU under their logical GPU
    ray.init(num_cpus=3, num_gpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    try:
        yield
    finally:
        ray.shutdown()
        if saved is None:
            os.environ.pop("OMASGAN_ALLOW_CPU_FOR_GPU", None)
        else:
            os.environ["OMASGAN_ALLOW_CPU_FOR_GPU"] = saved


def _plan(tmp_path, gpus_per_unit: float, units: list[tuple[int, int]]):
    from omasgan.distributed.studies.trainable import TrialPlan

    config = tiny_config(n_per_class=60, task1__epochs=1, task1__batch_size=64)
    return TrialPlan(study="gpu", study_kind="seeds", base_config=config.to_dict(), units=units, last_stage="task1",
                     cache_root=str(tmp_path / "cache"), store_root=str(tmp_path / "store"), cpus_per_unit=0.5,
                     gpus_per_unit=gpus_per_unit, parallel_units=len(units), scores="none")


def test_each_gpu_unit_runs_in_its_own_process_on_the_gpu_ray_assigned(logical_gpus, tmp_path):
    from omasgan.distributed.studies.trainable import _run_round

    units = [(0, s) for s in range(3)]  # three units on two GPUs: a reused process would run two of them
    outcomes = _run_round(_plan(tmp_path, 1.0, units), "t0", {}, "task1", units)
    assert [o.status for o in outcomes] == ["ok"] * len(units)
    pids = [o.pid for o in outcomes]
    assert len(set(pids)) == len(units), f"GPU units shared worker processes: pids {pids}"
    for outcome in outcomes:
        assert len(outcome.gpu_ids) == 1 and outcome.gpu_ids[0] in ("0", "1"), outcome.gpu_ids
        # Ray's GPU is the only device the unit's process can see: its cuda:0
        assert outcome.cuda_visible_devices == outcome.gpu_ids[0]
    assert {o.gpu_ids[0] for o in outcomes} == {"0", "1"}  # both GPUs were used


def test_cpu_units_reuse_their_worker_processes(logical_gpus, tmp_path):
    """The CPU path keeps Ray's worker reuse (starting a process per unit would cost seconds each)."""
    from omasgan.distributed.studies.trainable import _run_round

    units = [(0, s) for s in range(2)]
    plan = _plan(tmp_path, 0.0, units)
    plan.cpus_per_unit = 2.0  # one at a time on the 3 CPUs
    outcomes = _run_round(plan, "t1", {}, "task1", units)
    assert [o.status for o in outcomes] == ["ok"] * len(units)
    assert all(o.gpu_ids == [] for o in outcomes)
    assert len({o.pid for o in outcomes}) < len(units)


AUTOSCALER_CONFIG = """\
cluster_name: promised
max_workers: 2
head_node_type: head
available_node_types:
  head: {resources: {CPU: 3, GPU: 2}, node_config: {}, max_workers: 0}
  worker.gpu4: {resources: {CPU: 8, GPU: 4}, node_config: {}, min_workers: 0, max_workers: 2}
"""


def test_a_trial_that_can_never_be_placed_is_named_and_halts_the_study(logical_gpus, tmp_path, monkeypatch, capsys):
    from omasgan.cli import main
    from omasgan.distributed.store.study_folder import StudySpec

    promised = tmp_path / "bootstrap.yaml"
    promised.write_text(AUTOSCALER_CONFIG)
    monkeypatch.setenv("OMASGAN_AUTOSCALER_CONFIG", str(promised))
    config = tmp_path / "base.json"
    config.write_text(json.dumps(tiny_config(n_per_class=60, task1__epochs=1).to_dict()))
    code = main(["seeds", "--config", str(config), "--classes", "0", "--seeds", "0", "--gpus-per-unit", "4",
                 "--placement-timeout", "10", "--storage", str(tmp_path / "studies"), "--name", "stuck"])
    captured = capsys.readouterr()
    waiting = [line for line in captured.out.splitlines() if "waiting, none running" in line]
    assert code == 1 and waiting, captured.out
    assert "for its placement group 1 x {CPU: 0.01} + 1 x {CPU: 1, GPU: 4}" in waiting[0]
    assert "it needs GPU 4 (the cluster has 2 in all" in waiting[0] and "INFEASIBLE" in waiting[0]
    errors = [line for line in captured.err.splitlines() if line.startswith("omasgan: error:")]
    assert len(errors) == 1 and "halted: trial" in errors[0] and "(--placement-timeout 10)" in errors[0]
    assert "--resume --name stuck" in errors[0]
    # the study is there to be resumed once the cause is fixed
    assert StudySpec.read(tmp_path / "studies" / "stuck").kind == "seeds"

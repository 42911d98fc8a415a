"""What Ray does with a study's GPU units, on logical GPUs (``ray.init(num_gpus=...)``: Ray schedules
them without CUDA): each GPU unit runs in a fresh worker process, under CUDA_VISIBLE_DEVICES set to the
GPU Ray assigned it, so cuda:0 inside the unit is that GPU.  A reused process would keep its CUDA
context and cached memory and stay on the GPU it first had (Ray applies max_calls=1 only to remote
functions whose decorator names num_gpus, never to GPUs given through .options())."""

from __future__ import annotations

import os

import pytest

ray = pytest.importorskip("ray")

from helpers import tiny_config  # noqa: E402


@pytest.fixture(scope="module")
def logical_gpus():
    saved = os.environ.get("OMASGAN_ALLOW_CPU_FOR_GPU")
    os.environ["OMASGAN_ALLOW_CPU_FOR_GPU"] = "1"  # the units train on the CPU under their logical GPU
    ray.init(num_cpus=4, num_gpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
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
    plan.cpus_per_unit = 4.0  # one at a time
    outcomes = _run_round(plan, "t1", {}, "task1", units)
    assert [o.status for o in outcomes] == ["ok"] * len(units)
    assert all(o.gpu_ids == [] for o in outcomes)
    assert len({o.pid for o in outcomes}) < len(units)

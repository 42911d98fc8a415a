"""The trainables under a real (local) Ray Tune: the stage cache across trials, resume after an
injected fault with FailureConfig, concurrent single flight, and resources."""

from pathlib import Path

import pytest

ray = pytest.importorskip("ray")
from ray import tune  # noqa: E402

from omasgan.trainables import FaultInjection, make_trainable, pipeline_trainable  # noqa: E402

from helpers import TESTS, tiny_config, wait_until  # noqa: E402

SHORT = dict(n_per_class=80, task1__epochs=4, task2__epochs=3, task3__epochs=2, j__epochs=4)


@pytest.fixture(scope="module")
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield
    ray.shutdown()


def _fit(trainable, param_space, tmp_path, name, *, max_failures=0, concurrency=2):
    tuner = tune.Tuner(
        trainable,
        param_space=param_space,
        tune_config=tune.TuneConfig(metric="objective", mode="max", max_concurrent_trials=concurrency),
        run_config=tune.RunConfig(
            name=name,
            storage_path=str(tmp_path / "results"),
            failure_config=tune.FailureConfig(max_failures=max_failures),
            checkpoint_config=tune.CheckpointConfig(num_to_keep=1),
            verbose=0,
        ),
    )
    grid = tuner.fit()
    assert not grid.errors, grid.errors
    return grid


def test_four_trials_two_task1_configs_train_task1_twice(local_ray, tmp_path):
    trainable = pipeline_trainable(tiny_config(**SHORT), cache_root=str(tmp_path / "cache"), cpus_per_trial=1)
    grid = _fit(trainable, {"task1.lr_d": tune.grid_search([1e-3, 2e-3]), "task2.mu": tune.grid_search([2.0, 4.0])},
                tmp_path, "share")
    finals = [r.metrics for r in grid]
    assert len(finals) == 4 and all(m["done"] for m in finals)
    assert sum(m["trained_task1"] for m in finals) == 2
    assert sum(m["trained_task2"] for m in finals) == 4
    assert sum(m["cache_misses"] for m in finals) == 2 + 4 + 4 + 4
    for result in grid:
        stages = list(result.metrics_dataframe["stage"])
        assert stages == ["task1", "task2", "task3", "j"]
        assert result.metrics_dataframe["objective"].notna().all()


def test_fault_in_task2_resumes_with_task1_and_same_metrics(local_ray, tmp_path):
    base = tiny_config(**SHORT)
    reference = _fit(pipeline_trainable(base, cpus_per_trial=1), {"task2.mu": 3.0}, tmp_path, "ref")
    faulty = pipeline_trainable(base, cpus_per_trial=1, fault=FaultInjection("task2", 2, str(tmp_path / "m")))
    grid = _fit(faulty, {"task2.mu": 3.0}, tmp_path, "faulty", max_failures=1)
    final = grid[0].metrics
    assert (tmp_path / "m").exists() and len(list((tmp_path / "m").iterdir())) == 1  # the fault did fire
    assert final["trained_task1"] == 1 and final["trained_task2"] == 1
    expected = reference[0].metrics
    for key in ("objective", "val_final_auroc", "test_final_auroc", "test_task1_auroc", "test_task3_auroc"):
        assert final[key] == expected[key], key


def test_task1_only_trainable_over_the_divergence(local_ray, tmp_path):
    trainable = make_trainable("task1", tiny_config(**SHORT), cpus_per_trial=1)
    grid = _fit(trainable, {"divergence.name": tune.grid_search(["gan", "pearson"])}, tmp_path, "t1")
    for result in grid:
        assert result.metrics["stage"] == "task1" and result.metrics["done"]
        assert "val_auroc" in result.metrics and "test_task1_auroc" in result.metrics
        assert (Path(result.path) / "scores-task1.npz").is_file()


def test_trials_use_the_thread_count_of_their_config(local_ray, tmp_path):
    trainable = make_trainable("task1", tiny_config(**SHORT), cpus_per_trial=2)
    grid = _fit(trainable, {"threads": tune.grid_search([1, 2])}, tmp_path, "threads")
    threads = sorted(r.metrics["torch_threads"] for r in grid)
    assert threads == [1, 2] and all(r.metrics["device"] == "cpu" for r in grid)


def test_two_concurrent_trials_needing_one_task1_entry_train_it_once(local_ray, tmp_path):
    trainable = pipeline_trainable(tiny_config(**SHORT), cache_root=str(tmp_path / "cache"), cpus_per_trial=1)
    grid = _fit(trainable, {"task2.mu": tune.grid_search([1.0, 5.0])}, tmp_path, "flight", concurrency=2)
    finals = [r.metrics for r in grid]
    assert sum(m["trained_task1"] for m in finals) == 1
    assert sum(m["cache_hits"] for m in finals) >= 1


DRIVER = """
import json, sys
import ray
from ray import tune
from omasgan.config import OMASGANConfig
from omasgan.trainables import FaultInjection, pipeline_trainable
base = OMASGANConfig.from_dict(json.load(open(sys.argv[1])))
ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
trainable = pipeline_trainable(base, cpus_per_trial=1,
                               fault=FaultInjection("task2", 1, sys.argv[3], action="pause"))
tune.Tuner(trainable, param_space={"task2.mu": 3.0},
           tune_config=tune.TuneConfig(metric="objective", mode="max"),
           run_config=tune.RunConfig(name="interrupted", storage_path=sys.argv[2], verbose=0)).fit()
"""


def _names_a_checkpoint(experiment: Path) -> bool:
    """Whether the experiment state Tune last wrote under ``experiment`` holds a checkpoint of a trial."""
    if not list(experiment.glob("experiment_state-*.json")):
        return False
    try:
        trials = tune.ExperimentAnalysis(str(experiment)).trials
    except (ValueError, OSError, KeyError):  # a state file being replaced as it is read: poll again
        return False
    return any(trial.checkpoint is not None for trial in trials)


def test_tuner_restore_of_a_killed_driver_resumes_at_task2(local_ray, tmp_path):
    import json
    import os
    import signal
    import subprocess
    import sys
    import time

    base = tiny_config(**SHORT)
    (tmp_path / "base.json").write_text(json.dumps(base.to_dict()))
    markers, storage = tmp_path / "markers", tmp_path / "storage"
    env = dict(os.environ, TUNE_GLOBAL_CHECKPOINT_S="1", PYTHONPATH=str(TESTS))
    driver = subprocess.Popen([sys.executable, "-c", DRIVER, str(tmp_path / "base.json"), str(storage), str(markers)],
                              env=env, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 240
        while not (markers.exists() and any(markers.iterdir())):
            assert driver.poll() is None, "the driver exited before reaching Task 2"
            assert time.time() < deadline, "the trial never reached Task 2"
            time.sleep(0.5)
        # kill once Tune's experiment state names Task 1's checkpoint: the state a restore starts from
        wait_until(lambda: _names_a_checkpoint(storage / "interrupted"), 120,
                   "Tune never persisted an experiment state with Task 1's checkpoint", interval=0.2)
    finally:
        os.killpg(driver.pid, signal.SIGKILL)
        driver.wait()

    reference = _fit(pipeline_trainable(base, cpus_per_trial=1), {"task2.mu": 3.0}, tmp_path, "reference")
    restored = tune.Tuner.restore(str(storage / "interrupted"), trainable=pipeline_trainable(base, cpus_per_trial=1),
                                  resume_unfinished=True, resume_errored=True)
    grid = restored.fit()
    assert not grid.errors
    final = grid[0].metrics
    assert final["done"] and final["trained_task1"] == 1 and final["trained_task2"] == 1
    stages = list(grid[0].metrics_dataframe["stage"])
    assert stages.count("task1") == 1 and stages[-1] == "j"
    for key in ("objective", "test_final_auroc", "test_task1_auroc"):
        assert final[key] == reference[0].metrics[key], key

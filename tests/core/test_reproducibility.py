"""Same seed, same device -> identical metrics and weights; another seed -> different ones.
Stage checkpoints load back into modules that compute the same outputs."""

import pytest
import torch

from omasgan.checkpoint import CheckpointError, load_stage, save_stage, stage_payload
from omasgan.data import load_splits
from omasgan.pipeline import run_pipeline
from omasgan.stage_runner import run_stage

from helpers import tiny_config

SHORT = dict(task1__epochs=4, task2__epochs=2, task3__epochs=2, j__epochs=4, n_per_class=80)


def _run(seed):
    config = tiny_config(seed=seed, **SHORT)
    splits = load_splits("synthetic", "loo", 4, synthetic_n_per_class=80)
    return run_pipeline(config, splits)


def test_same_seed_same_metrics_and_weights():
    first, second = _run(0), _run(0)
    assert first.metrics == second.metrics
    for stage in first.stages:
        a, b = first.stages[stage].state_dicts(), second.stages[stage].state_dicts()
        for name in a:
            for key in a[name]:
                assert torch.equal(a[name][key], b[name][key]), (stage, name, key)
        assert first.stages[stage].history == second.stages[stage].history


def test_other_seed_other_metrics():
    assert _run(0).stages["task1"].history != _run(1).stages["task1"].history


def test_a_stage_rerun_alone_matches_the_pipeline():
    """A stage seeds itself from (seed, stage): retraining Task 2 from a saved Task 1 gives the
    same B as the uninterrupted pipeline (what resume and caching rely on)."""
    config = tiny_config(**SHORT)
    splits = load_splits("synthetic", "loo", 4, synthetic_n_per_class=80)
    full = run_pipeline(config, splits)
    task1_only = run_stage("task1", config, splits, {})
    task2_alone = run_stage("task2", config, splits, {"task1": task1_only})
    for key, value in full.stages["task2"].modules["boundary"].state_dict().items():
        assert torch.equal(value, task2_alone.modules["boundary"].state_dict()[key])


def test_checkpoint_round_trip(tmp_path):
    config = tiny_config(**SHORT)
    splits = load_splits("synthetic", "loo", 4, synthetic_n_per_class=80)
    result = run_stage("task1", config, splits, {})
    save_stage(tmp_path / "task1.pt", stage_payload(result, config, (2,), False, {"val": {"auroc": 0.5}}))
    loaded, payload = load_stage(tmp_path / "task1.pt")
    assert payload["metrics"] == {"val": {"auroc": 0.5}}
    assert payload["versions"]["torch"] and payload["code_version"].startswith("omasgan-")
    assert loaded.history == result.history
    x = splits.test_x[:50]
    with torch.no_grad():
        for name in ("generator", "discriminator"):
            result.modules[name].eval()
        assert torch.equal(loaded.modules["discriminator"](x), result.modules["discriminator"](x))
        z = torch.randn(10, config.network.latent_dim)
        assert torch.equal(loaded.modules["generator"](z), result.modules["generator"](z))
    assert not list(tmp_path.glob(".*tmp"))


def test_truncated_checkpoint_is_rejected(tmp_path):
    config = tiny_config(**SHORT)
    splits = load_splits("synthetic", "loo", 4, synthetic_n_per_class=80)
    result = run_stage("task1", config, splits, {})
    path = tmp_path / "task1.pt"
    save_stage(path, stage_payload(result, config, (2,), False))
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(CheckpointError, match="cannot be read"):
        load_stage(path)

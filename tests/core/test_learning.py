"""Every stage learns on the synthetic 2-D mixture (normal data: four disconnected Gaussian blobs,
held-out ring as the anomaly): its loss moves the way its objective says, B ends up outside the
data's support but near it, and the final detector reaches test AUROC >= 0.95."""

import math

import pytest
import torch

from omasgan.data import load_splits
from omasgan.divergences import build_divergence
from omasgan.errors import TrainingDivergedError
from omasgan.pipeline import run_pipeline
from omasgan.stages import train_task1
from omasgan.stages.common import new_generator, seed_stage

from helpers import tiny_config


def nearest_distance(a: torch.Tensor, b: torch.Tensor, exclude_self: bool = False) -> torch.Tensor:
    distances = torch.cdist(a, b)
    if exclude_self:
        distances.fill_diagonal_(float("inf"))
    return distances.min(dim=1).values


@pytest.fixture(scope="module")
def trained():
    config = tiny_config(holdout=4)
    splits = load_splits("synthetic", "loo", 4, synthetic_n_per_class=300)
    result = run_pipeline(config, splits)
    return config, splits, result


def _samples(module, config, n=1000, seed=123):
    torch.manual_seed(seed)
    with torch.no_grad():
        return module.eval()(torch.randn(n, config.network.latent_dim))


def test_task1_generator_moves_onto_the_data(trained):
    config, splits, result = trained
    x = splits.train_x
    seed_stage(config.seed, "task1")
    untrained = new_generator(config.network, (2,), is_image=False)
    before = nearest_distance(_samples(untrained, config), x).mean()
    after = nearest_distance(_samples(result.stages["task1"].modules["generator"], config), x).mean()
    assert after < 0.3 * before
    # the critic beats chance: the GAN discriminator loss stays below 2 log 2 (its value at D = 1/2)
    losses = result.stages["task1"].history["loss_d"]
    assert sum(losses) / len(losses) < 2 * math.log(2)


def test_task2_loss_descends_and_b_lies_on_the_boundary(trained):
    config, splits, result = trained
    history = result.stages["task2"].history
    assert history["loss_b"][-1] < history["loss_b"][0]
    x = splits.train_x
    b = _samples(result.stages["task2"].modules["boundary"], config)
    b_to_data = nearest_distance(b, x).mean()
    data_nn = nearest_distance(x, x, exclude_self=True).mean()
    spread = x.std(dim=0).norm()
    assert data_nn < b_to_data < spread, (float(data_nn), float(b_to_data), float(spread))


def test_task3_critic_separates_boundary_from_data(trained):
    config, splits, result = trained
    history = result.stages["task3"].history
    assert history["loss_c"][-1] < history["loss_c"][0]
    critic = result.stages["task3"].modules["critic"].eval()
    b = _samples(result.stages["task2"].modules["boundary"], config)
    with torch.no_grad():
        assert critic(splits.train_x).mean() > critic(b).mean()


def test_j_loss_descends_and_scores_boundary_above_data(trained):
    config, splits, result = trained
    history = result.stages["j"].history["loss_j"]
    # eq. (6) at an uninformed J (all logits 0) is 2 log 2; J must get well below it
    assert history[0] == pytest.approx(2 * math.log(2), abs=0.1)
    assert history[-1] < 0.8 * history[0]
    detector = result.stages["j"].modules["detector"].eval()
    b = _samples(result.stages["task2"].modules["boundary"], config)
    with torch.no_grad():
        assert detector(b).mean() > detector(splits.train_x).mean()


def test_final_detector_auroc_on_disconnected_mixture(trained):
    _, _, result = trained
    assert result.metrics["final"]["test"]["auroc"] >= 0.95
    for detector in ("task1", "task3", "final"):
        assert set(result.metrics[detector]) == {"val", "test"}


def test_nan_loss_stops_with_stage_and_step():
    config = tiny_config(task1__epochs=2)
    x = torch.randn(64, 2)
    x[5, 0] = float("nan")
    with pytest.raises(TrainingDivergedError, match=r"stage task1: loss 'loss_d' became nan at epoch 1, step \d+"):
        train_task1(config, x, is_image=False)


def test_scores_are_finite_for_every_divergence():
    # each metric trains a short Task 1 without NaN and its Task 1 score is finite
    splits = load_splits("synthetic", "loo", 4, synthetic_n_per_class=60)
    for name in ("kl", "reverse_kl", "pearson", "neyman", "squared_hellinger", "jensen_shannon", "gan",
                 "total_variation", "klwgan", "wasserstein"):
        config = tiny_config(n_per_class=60, divergence__name=name, task1__epochs=2, task1__lr_d=1e-4,
                             task1__lr_g=1e-4)
        result = train_task1(config, splits.train_x, is_image=False)
        v = result.modules["discriminator"](splits.test_x)
        assert torch.isfinite(build_divergence(config.divergence).activation(v)).all(), name

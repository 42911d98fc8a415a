"""Issue 12's variants: every loss and score against a value computed by hand on a tiny input.

- diversity: the mean pairwise cosine of the boundary models' mean offsets;
- feature-space d and s: measured on the Task 1 critic's penultimate layer;
- refinement: the support hinge, the refinement loss and the data-scaled margin;
- the final score: j, critic and fusion (standard and robust standardisation on validation normals);
- the shortcut alarm: AUROCs of ink, contrast and nearest-neighbour distance, separability, Spearman.
"""

import math

import numpy as np
import pytest
import torch
from torch import nn

from omasgan.alarm import exceeded, ink_spearman, separability, statistic_aurocs
from omasgan.boundary import dispersion, mean_offset, nearest_bank_distance, offset_similarity
from omasgan.final_score import FinalScore, fit_scaling
from omasgan.networks import build_discriminator
from omasgan.stages.feature_space import task2_feature_map
from omasgan.stages.refine import BoundaryRefiner, median_nn_distance, refine_loss, support_hinge
from omasgan.stages.union import BoundaryUnion, boundary_members, boundary_sampler

from helpers import tiny_config


# ---- diversity -----------------------------------------------------------------------------------

def test_mean_offset_hand_computed():
    samples = torch.tensor([[1.0, 2.0], [3.0, 4.0]])
    reference = torch.tensor([[0.0, 0.0], [1.0, 1.0]])
    # differences (1, 2) and (2, 3): mean (1.5, 2.5)
    assert mean_offset(samples, reference).tolist() == [1.5, 2.5]


def test_offset_similarity_hand_computed():
    o1, o2, o3 = torch.tensor([1.0, 0.0]), torch.tensor([0.0, 1.0]), torch.tensor([1.0, 1.0])
    # cos(o1, o2) = 0, cos(o1, o3) = cos(o2, o3) = 1/sqrt(2): mean over the 3 pairs = sqrt(2) / 3
    assert offset_similarity([o1, o2, o3]).item() == pytest.approx(math.sqrt(2) / 3, rel=1e-6)
    assert offset_similarity([o1, -2 * o1]).item() == pytest.approx(-1.0)
    assert offset_similarity([o1, 5 * o1]).item() == pytest.approx(1.0)
    with pytest.raises(ValueError, match="at least 2"):
        offset_similarity([o1])


def test_offset_similarity_gradient_pushes_offsets_apart():
    a = torch.tensor([1.0, 0.2], requires_grad=True)
    b = torch.tensor([1.0, -0.1], requires_grad=True)
    offset_similarity([a, b]).backward()
    with torch.no_grad():
        after = offset_similarity([a - 0.1 * a.grad, b - 0.1 * b.grad])
    assert after < offset_similarity([a.detach(), b.detach()])


# ---- feature-space d and s -----------------------------------------------------------------------

def _identity_critic():
    """An MLP critic on 2-D inputs whose penultimate layer is LeakyReLU(0.2)(x)."""
    critic = build_discriminator("mlp", (2,), width=2, depth=1, spectral_norm=False)
    with torch.no_grad():
        critic.net[1].weight.copy_(torch.eye(2))
        critic.net[1].bias.zero_()
    return critic


def test_critic_feature_space_d_and_s_hand_computed():
    config = tiny_config(task2__feature_space="critic")
    phi, history = task2_feature_map(config, _identity_critic(), torch.zeros(4, 2))
    assert history == {}
    b = torch.tensor([[1.0, -1.0], [-1.0, 1.0]])
    bank = torch.tensor([[0.0, 0.0], [2.0, 1.0]])
    features = phi(b)  # LeakyReLU: (1, -0.2) and (-0.2, 1)
    assert features.flatten().tolist() == pytest.approx([1.0, -0.2, -0.2, 1.0])
    # d: (1, -0.2) is sqrt(1.04) from (0, 0) and sqrt(1 + 1.44) from (2, 1); (-0.2, 1) is sqrt(1.04) from (0, 0)
    assert nearest_bank_distance(features, phi(bank)).item() == pytest.approx(math.sqrt(1.04), rel=1e-6)
    # s: one pair, latent distance 3, feature distance sqrt(1.2^2 + 1.2^2)
    z = torch.tensor([[0.0], [3.0]])
    assert dispersion(z, features).item() == pytest.approx(3 / math.sqrt(2 * 1.44), rel=1e-5)
    # in pixel space the same pair is 2 sqrt(2) apart: the feature space changes s
    assert dispersion(z, b).item() == pytest.approx(3 / math.sqrt(8), rel=1e-5)


def test_pixel_feature_space_is_the_identity_and_phi_is_frozen():
    config = tiny_config()
    assert task2_feature_map(config, _identity_critic(), torch.zeros(4, 2)) == (None, {})
    critic = _identity_critic()
    phi, _ = task2_feature_map(tiny_config(task2__feature_space="critic"), critic, torch.zeros(4, 2))
    assert all(p.requires_grad for p in critic.parameters())  # Task 1's D itself is left as it was
    b = torch.tensor([[1.0, 2.0]], requires_grad=True)
    phi(b).sum().backward()
    assert b.grad is not None  # gradients reach B through phi


# ---- refinement ----------------------------------------------------------------------------------

def test_support_hinge_and_refine_loss_hand_computed():
    samples = torch.tensor([[0.0, 0.0], [3.0, 0.0]])
    reference = torch.tensor([[1.0, 0.0], [10.0, 0.0]])
    # nearest distances 1 and 2; eps = 2: max(0, 2 - 1) = 1, max(0, 2 - 2) = 0 -> mean 0.5
    assert support_hinge(samples, reference, 2.0).item() == pytest.approx(0.5)
    loss, logit, hinge = refine_loss(torch.tensor([1.0, -3.0]), samples, reference, eps=2.0, weight=2.0)
    # mean logit -1, plus 2 * 0.5
    assert (loss.item(), logit.item(), hinge.item()) == pytest.approx((0.0, -1.0, 0.5))


def test_median_nn_distance_hand_computed():
    x = torch.tensor([[0.0], [1.0], [3.0], [7.0]])
    # nearest other row: 1, 1, 2, 4 -> median 1.5
    assert median_nn_distance(x) == pytest.approx(1.5)


def test_early_stopping_freezes_after_patience_epochs_without_a_new_minimum():
    config = tiny_config(j__refine_steps=1, j__refine_patience=2)
    refiner = BoundaryRefiner(config, nn.Linear(2, 2), torch.randn(20, 2))
    for loss, active in ((1.0, True), (0.8, True), (0.9, True), (0.85, False), (0.1, False)):
        refiner.end_epoch(loss)
        assert refiner.active is active


# ---- K boundary models as one sampler ------------------------------------------------------------

def test_union_splits_the_batch_over_the_members():
    a, b = nn.Identity(), nn.Identity()
    modules = {"critic": nn.Linear(1, 1), "boundary_1": b, "boundary": a}
    assert boundary_members(modules) == [a, b]
    union = boundary_sampler(modules)
    assert isinstance(union, BoundaryUnion)
    z = torch.arange(5.0).reshape(5, 1)
    assert torch.equal(union(z), z)  # chunks of 3 and 2, concatenated in order
    assert boundary_sampler({"boundary": a}) is a  # K = 1: the module itself


# ---- the final score -----------------------------------------------------------------------------

class _Pick(nn.Module):
    """A critic whose raw output is feature ``i`` of the input."""

    def __init__(self, i):
        super().__init__()
        self.linear = nn.Linear(2, 1, bias=False)
        with torch.no_grad():
            self.linear.weight.zero_()
            self.linear.weight[0, i] = 1.0

    def forward(self, x):
        return self.linear(x).squeeze(1)


def _score(mode, scaling="standard"):
    config = tiny_config(divergence__name="pearson", j__score=mode, j__fusion_scaling=scaling)  # g_f(v) = v
    return FinalScore.from_modules(config, {"detector": _Pick(0), "critic": _Pick(1)})


NORMALS = torch.tensor([[1.0, 0.0], [2.0, -2.0], [3.0, -4.0]])  # j = 1, 2, 3; critic score -v = 0, 2, 4
POINT = torch.tensor([[4.0, -6.0]])  # j = 4, critic score 6


def test_j_and_critic_scores():
    assert _score("j").fit(NORMALS)(POINT).item() == 4.0
    assert _score("critic").fit(NORMALS)(POINT).item() == 6.0


def test_fusion_standard_hand_computed():
    score = _score("fusion").fit(NORMALS)
    # j: mean 2, SD sqrt(2/3); critic: mean 2, SD sqrt(8/3); both z-scores are sqrt(6)
    assert score.stats["j"] == pytest.approx((2.0, math.sqrt(2 / 3)))
    assert score.stats["critic"] == pytest.approx((2.0, math.sqrt(8 / 3)))
    assert score(POINT).item() == pytest.approx(math.sqrt(6), rel=1e-6)


def test_fusion_robust_hand_computed():
    score = _score("fusion", "robust").fit(NORMALS)
    # j: median 2, IQR 2.5 - 1.5 = 1 -> 2; critic: median 2, IQR 3 - 1 = 2 -> 2; mean 2
    assert score.stats == {"j": pytest.approx((2.0, 1.0)), "critic": pytest.approx((2.0, 2.0))}
    assert score(POINT).item() == pytest.approx(2.0)


def test_fusion_round_trips_through_its_spec_and_needs_fitting():
    fitted = _score("fusion").fit(NORMALS)
    config = tiny_config(divergence__name="pearson")  # j.score = j here: the spec says fusion
    restored = FinalScore.from_modules(config, {"detector": _Pick(0), "critic": _Pick(1)}, fitted.to_dict())
    assert restored(POINT).item() == fitted(POINT).item()
    with pytest.raises(RuntimeError, match="not fitted"):
        _score("fusion")(POINT)
    with pytest.raises(KeyError, match="needs Task 3's critic"):
        FinalScore.from_modules(tiny_config(j__score="fusion"), {"detector": _Pick(0)})


def test_fit_scaling_degenerate_scale_counts_as_one():
    assert fit_scaling(np.array([3.0, 3.0]), "standard") == (3.0, 1.0)
    assert fit_scaling(np.array([1.0, 2.0, 3.0, 4.0, 5.0]), "robust") == (3.0, 2.0)


# ---- the shortcut alarm --------------------------------------------------------------------------

def test_alarm_aurocs_hand_computed():
    boundary = torch.tensor([[0.0, 2.0], [1.0, 1.0]])  # ink 1, 1; contrast 1, 0
    probe = torch.tensor([[0.0, 0.0], [3.0, 3.0]])  # ink 0, 3; contrast 0, 0
    alarm = statistic_aurocs(boundary, probe, probe, torch.tensor([0, 1]))
    # ink: each B wins against 0 and loses against 3 -> 2 / 4
    assert alarm["ink_auroc"] == pytest.approx(0.5)
    # contrast: B1 (1) beats both, B2 (0) ties both -> (2 + 0.5 + 0.5) / 4
    assert alarm["contrast_auroc"] == pytest.approx(0.75)
    # nn: B at 2 and sqrt(2) from (0, 0); each x is sqrt(18) from the other (its own row left out)
    assert alarm["nn_auroc"] == pytest.approx(0.0)
    assert separability(alarm["nn_auroc"]) == 1.0 and separability(0.75) == 0.75
    # the nearest-neighbour distance is stored but never warns (B lies off the data by design)
    assert exceeded(alarm, 0.9) == [] and exceeded(alarm, 0.7) == ["contrast_auroc"]


def test_ink_spearman_hand_computed():
    x = torch.tensor([[3.0, 3.0], [2.0, 2.0], [0.0, 2.0]])  # ink 3, 2, 1
    assert ink_spearman([1.0, 2.0, 3.0], x) == pytest.approx(-1.0)
    assert ink_spearman([1.0, 3.0, 2.0], x) == pytest.approx(-0.5)
    assert math.isnan(ink_spearman([1.0, 1.0, 1.0], x))

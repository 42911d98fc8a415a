"""Issue 12's variants learn on small synthetic data: each loss moves the way its math says.

- K = 2 boundary models with the diversity penalty: their offsets' cosine similarity falls, far
  below the same pair trained without it;
- feature-space Task 2 (critic, autoencoder): the autoencoder's reconstruction loss and B's loss fall;
- refinement: B_r lowers a fixed J's logit, and the hinge keeps it farther from the data than without;
  inside the J stage it yields refined boundary models and the held-out loss;
- the final score: critic equals the Task 3 detector, fusion is standardised on validation normals
  only (changing the validation anomalies leaves its statistics alone);
- the shortcut alarm: an ink-shifted B is flagged, a B that draws from the data's own distribution is not;
- stage checkpoints of the variants (K boundary models, J's critic and refined B) load back.
"""

import dataclasses

import pytest
import torch
from torch import nn

from omasgan.alarm import separability, shortcut_alarm
from omasgan.boundary import mean_offset, offset_similarity
from omasgan.checkpoint import modules_from_payload, stage_payload
from omasgan.data import load_splits
from omasgan.evaluation import final_score
from omasgan.pipeline import run_pipeline
from omasgan.stages import train_j, train_task1, train_task2
from omasgan.stages.refine import BoundaryRefiner
from omasgan.stages.union import boundary_sampler

from helpers import tiny_config

SMALL = dict(n_per_class=120, task1__epochs=15, task2__epochs=8, task3__epochs=3, j__epochs=6)


@pytest.fixture(scope="module")
def task1():
    config = tiny_config(**SMALL)
    splits = load_splits("synthetic", "loo", 4, synthetic_n_per_class=120)
    result = train_task1(config, splits.train_x, is_image=False)
    return config, splits, result


def _task2(task1, **overrides):
    config, splits, t1 = task1
    config = config.with_overrides(overrides)
    return config, train_task2(config, t1.modules["generator"], t1.modules["discriminator"], splits.train_x)


def _cosine(result, generator, latent_dim, n=2000):
    torch.manual_seed(7)
    z = torch.randn(n, latent_dim)
    with torch.no_grad():
        g = generator.eval()(z)
        offsets = [mean_offset(result.modules[name].eval()(z), g) for name in ("boundary", "boundary_1")]
    return offset_similarity(offsets).item()


def test_diversity_drives_the_offsets_apart(task1):
    config, _, t1 = task1
    _, diverse = _task2(task1, **{"task2.boundaries": 2, "task2.diversity": 5.0})
    _, plain = _task2(task1, **{"task2.boundaries": 2, "task2.diversity": 0.0})
    history = diverse.history["diversity"]
    assert history[-1] < history[0]
    latent = config.network.latent_dim
    with_penalty = _cosine(diverse, t1.modules["generator"], latent)
    without = _cosine(plain, t1.modules["generator"], latent)
    assert with_penalty < without - 0.5, (with_penalty, without)
    assert sorted(diverse.modules) == ["boundary", "boundary_1", "critic", "critic_1"]


def test_critic_feature_space_task2_descends(task1):
    _, result = _task2(task1, **{"task2.feature_space": "critic"})
    assert result.history["loss_b"][-1] < result.history["loss_b"][0]


def test_autoencoder_feature_space_learns_its_code_then_b_descends():
    # 8x8 digits: the conv autoencoder's 16-dimensional code (2-D data would leave a 1-D code)
    from omasgan.config import default_config

    config = default_config("digits", holdout=3).with_overrides({
        "task1.epochs": 4, "task2.epochs": 6, "network.g_width": 64, "network.d_width": 64,
        "task2.feature_space": "autoencoder", "task2.ae_epochs": 8, "task2.ae_width": 8})
    splits = load_splits("digits", "loo", 3)
    t1 = train_task1(config, splits.train_x, is_image=True)
    result = train_task2(config, t1.modules["generator"], t1.modules["discriminator"], splits.train_x)
    ae = result.history["ae_loss"]
    assert len(ae) == 8 and ae[-1] < 0.5 * ae[0]
    loss_b = result.history["loss_b"]
    assert loss_b[-1] < loss_b[0], loss_b


class _Norm(nn.Module):
    """A fixed J: the logit is the distance from the origin (the data's centre)."""

    def __init__(self):
        super().__init__()
        self.scale = nn.Parameter(torch.ones(()))

    def forward(self, x):
        return self.scale * x.norm(dim=1)


def _refine(weight, steps=150):
    torch.manual_seed(0)
    data = torch.randn(400, 2)
    boundary = nn.Linear(2, 2)
    with torch.no_grad():
        boundary.weight.copy_(0.1 * torch.eye(2))
        boundary.bias.fill_(5.0)  # B starts far outside the data
    config = tiny_config(network__latent_dim=2, j__refine_steps=1, j__refine_weight=weight, j__refine_margin=3.0,
                         j__refine_lr=0.05, j__refine_bank=400)
    refiner = BoundaryRefiner(config, boundary, data)
    logits = [refiner.step(_Norm(), 128, torch.device("cpu"))[1].item() for _ in range(steps)]
    with torch.no_grad():
        samples = refiner.model(torch.randn(500, 2))
        nearest = torch.cdist(samples, data).min(dim=1).values.mean().item()
    return logits, nearest, refiner.eps


def test_refinement_lowers_j_and_the_hinge_keeps_b_off_the_data():
    logits, nearest_free, eps = _refine(weight=0.0)
    assert logits[-1] < 0.5 * logits[0]  # B_r moves to where J says "normal"
    logits_hinged, nearest_hinged, _ = _refine(weight=20.0)
    assert logits_hinged[-1] < logits_hinged[0]
    assert nearest_hinged > 2 * nearest_free and nearest_hinged > 0.3 * eps, (nearest_hinged, nearest_free, eps)


def test_refinement_inside_the_j_stage(task1):
    config, splits, t1 = task1
    config, t2 = _task2(task1)
    config = config.with_overrides({"j.refine_steps": 1, "j.refine_patience": 2, "j.epochs": 4})
    boundary = boundary_sampler(t2.modules)
    before = [p.clone() for p in boundary.parameters()]
    result = train_j(config, boundary, t1.modules["generator"], splits.train_x)
    assert set(result.modules) == {"detector", "boundary"}
    changed = any(not torch.equal(a, b) for a, b in zip(before, result.modules["boundary"].parameters()))
    assert changed and all(torch.equal(a, b) for a, b in zip(before, boundary.parameters()))  # B itself untouched
    history = result.history
    assert len(history["holdout_loss_j"]) == 4 and all(v == v for v in history["holdout_loss_j"])
    assert set(history["refine_active"]) <= {0.0, 1.0} and history["refine_active"][0] == 1.0
    assert history["loss_j"][-1] < history["loss_j"][0]


@pytest.fixture(scope="module")
def fused():
    config = tiny_config(n_per_class=80, task1__epochs=6, task2__epochs=2, task3__epochs=3, j__epochs=6,
                         task2__boundaries=2, j__score="fusion", j__refine_steps=1)
    splits = load_splits("synthetic", "loo", 4, synthetic_n_per_class=80)
    return config, splits, run_pipeline(config, splits)


def test_fusion_is_standardised_on_validation_normals_only(fused):
    config, splits, result = fused
    scorer = final_score(result.stages["j"], config, splits)
    normal = splits.val_x[splits.val_y == 0]
    assert scorer(normal).mean().item() == pytest.approx(0.0, abs=1e-4)
    moved = dataclasses.replace(splits, val_x=torch.where((splits.val_y == 1)[:, None], splits.val_x + 50.0, splits.val_x))
    assert final_score(result.stages["j"], config, moved).stats == scorer.stats
    assert result.evaluations["j"].score_spec["mode"] == "fusion"


def test_critic_score_equals_the_task3_detector(fused):
    config, splits, result = fused
    critic = dataclasses.replace(config, j=dataclasses.replace(config.j, score="critic"))
    scores = final_score(result.stages["j"], critic, splits)(splits.test_x).numpy()
    assert (scores == result.evaluations["task3"].scores["test"]).all()


def test_variant_checkpoints_load_back(fused):
    config, splits, result = fused
    for stage, expected in (("task2", {"boundary", "boundary_1", "critic", "critic_1"}),
                            ("j", {"detector", "critic", "boundary", "boundary_1"})):
        payload = stage_payload(result.stages[stage], config, splits.sample_shape, splits.is_image)
        modules = modules_from_payload(payload)
        assert set(modules) == expected
        z = torch.randn(9, config.network.latent_dim)
        with torch.no_grad():
            assert torch.equal(boundary_sampler(modules)(z), boundary_sampler(result.stages[stage].modules).eval()(z))
    assert set(result.alarms) == {"task2", "j"} and {"ink_auroc", "ink_spearman"} <= set(result.alarms["j"])


def test_the_alarm_flags_an_ink_shift_and_not_a_faithful_sampler():
    torch.manual_seed(0)
    data = torch.randn(1500, 8)
    faithful = shortcut_alarm(nn.Identity(), data, latent_dim=8, seed=1)
    for name, value in faithful.items():
        assert abs(value - 0.5) < 0.08, (name, value)

    class Fainter(nn.Module):
        def forward(self, z):
            return z - 1.0  # every feature 1 lower: less ink

    shifted = shortcut_alarm(Fainter(), data, latent_dim=8, seed=1)
    assert shifted["ink_auroc"] < 0.05 and separability(shifted["ink_auroc"]) > 0.95


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_every_variant_runs_on_cuda():
    splits = load_splits("synthetic", "loo", 4, synthetic_n_per_class=60).to("cuda")
    config = tiny_config(n_per_class=60, task1__epochs=2, task2__epochs=1, task3__epochs=1, j__epochs=2,
                         task2__boundaries=2, task2__feature_space="autoencoder", task2__ae_epochs=2,
                         j__refine_steps=1, j__refine_patience=1, j__score="fusion")
    result = run_pipeline(config, splits)
    assert result.metrics["final"]["test"]["auroc"] == result.metrics["final"]["test"]["auroc"]  # finite, not NaN
    assert set(result.alarms) == {"task2", "j"}

"""Each metric's g_f and f*(g_f) against hand-computed values, stability at |v| = 50, and the
KL-WGAN / WGAN terms."""

import math

import pytest
import torch

from omasgan.config import DIVERGENCES, DivergenceConfig
from omasgan.divergences import KLWGAN, F_DIVERGENCE_TABLE, FDivergence, Wasserstein, build_divergence

# The two columns of Nowozin et al.'s Table 2, composed naively in float64 (the reference).
G_F = {
    "kl": lambda v: v,
    "reverse_kl": lambda v: -math.exp(-v),
    "pearson": lambda v: v,
    "neyman": lambda v: 1 - math.exp(-v),
    "squared_hellinger": lambda v: 1 - math.exp(-v),
    "jensen_shannon": lambda v: math.log(2) - math.log(1 + math.exp(-v)),
    "gan": lambda v: -math.log(1 + math.exp(-v)),
    "total_variation": lambda v: 0.5 * math.tanh(v),
}
F_STAR = {
    "kl": lambda t: math.exp(t - 1),
    "reverse_kl": lambda t: -1 - math.log(-t),
    "pearson": lambda t: t * t / 4 + t,
    "neyman": lambda t: 2 - 2 * math.sqrt(1 - t),
    "squared_hellinger": lambda t: t / (1 - t),
    "jensen_shannon": lambda t: -math.log(2 - math.exp(t)),
    "gan": lambda t: -math.log(1 - math.exp(t)),
    "total_variation": lambda t: t,
}

# A few values worked out by hand (v = 1):
HAND = {
    # name: (g_f(1), f*(g_f(1)))
    "kl": (1.0, 1.0),  # exp(0) = 1
    "reverse_kl": (-math.exp(-1), 0.0),  # -1 - log(e^-1) = 0
    "pearson": (1.0, 1.25),  # 1/4 + 1
    "neyman": (1 - math.exp(-1), 2 - 2 * math.exp(-0.5)),
    "squared_hellinger": (1 - math.exp(-1), math.e - 1),
    "jensen_shannon": (math.log(2) - math.log(1 + math.exp(-1)), math.log(1 + math.e) - math.log(2)),
    "gan": (-math.log(1 + math.exp(-1)), math.log(1 + math.e)),
    "total_variation": (0.5 * math.tanh(1), 0.5 * math.tanh(1)),
}

VALUES = [-3.0, -1.0, -0.3, 0.0, 0.4, 1.0, 2.5]


def test_table_covers_the_eight_f_divergences():
    assert set(F_DIVERGENCE_TABLE) == set(G_F)
    assert set(DIVERGENCES) == set(G_F) | {"klwgan", "wasserstein"}


@pytest.mark.parametrize("name", sorted(G_F))
def test_hand_computed_values_at_one(name):
    div = FDivergence(name)
    v = torch.tensor([1.0], dtype=torch.float64)
    g, c = HAND[name]
    assert div.activation(v).item() == pytest.approx(g, rel=1e-12, abs=1e-12)
    assert div.conjugate_of_activation(v).item() == pytest.approx(c, rel=1e-12, abs=1e-12)


@pytest.mark.parametrize("name", sorted(G_F))
def test_closed_forms_match_composed_columns(name):
    div = FDivergence(name)
    v = torch.tensor(VALUES, dtype=torch.float64)
    expected_g = [G_F[name](x) for x in VALUES]
    expected_c = []
    for x in VALUES:
        t = G_F[name](x)
        try:
            expected_c.append(F_STAR[name](t))
        except (ValueError, OverflowError):
            expected_c.append(float("nan"))
    torch.testing.assert_close(div.activation(v), torch.tensor(expected_g, dtype=torch.float64))
    got = div.conjugate_of_activation(v)
    for x, want, have in zip(VALUES, expected_c, got.tolist()):
        if math.isfinite(want):
            assert have == pytest.approx(want, rel=1e-9, abs=1e-9), (name, x)


@pytest.mark.parametrize("name", sorted(G_F))
@pytest.mark.parametrize("v", [-50.0, 50.0])
def test_stable_at_large_logits(name, v):
    """|v| = 50 in float32 gives finite g_f and f*(g_f), with the asymptotic values."""
    div = FDivergence(name)
    x = torch.tensor([v], dtype=torch.float32, requires_grad=True)
    g = div.activation(x)
    c = div.conjugate_of_activation(x)
    assert torch.isfinite(g).all() and torch.isfinite(c).all()
    (g.sum() + c.sum()).backward()
    assert torch.isfinite(x.grad).all()
    # float64 references in closed form (composing the columns would give log(0) or inf here)
    ref64 = FDivergence(name).conjugate_of_activation(torch.tensor([v], dtype=torch.float64)).item()
    assert c.item() == pytest.approx(ref64, rel=1e-5)


def test_gan_composite_where_naive_composition_fails():
    # g_f(50) = -log(1 + e^-50) rounds to 0 in float32, so the naive f*(0) = -log(1 - 1) = inf;
    # the closed form softplus(50) = 50 + log(1 + e^-50) ~= 50 is the right value.
    div = FDivergence("gan")
    assert div.conjugate_of_activation(torch.tensor([50.0])).item() == pytest.approx(50.0)
    naive = -torch.log(1 - torch.exp(div.activation(torch.tensor([50.0]))))
    assert torch.isinf(naive).all()


def test_discriminator_loss_is_negative_variational_bound():
    div = FDivergence("pearson")
    v_real = torch.tensor([1.0, 2.0])
    v_fake = torch.tensor([0.0, -2.0])
    # E_P[v] = 1.5; E_Q[v^2/4 + v] = (0 + (1 - 2)) / 2 = -0.5; bound = 2.0
    assert div.variational_estimate(v_real, v_fake).item() == pytest.approx(2.0)
    assert div.discriminator_loss(v_real, v_fake).item() == pytest.approx(-2.0)


def test_generator_losses():
    v = torch.tensor([0.0, 2.0])
    gan = FDivergence("gan")
    # non-saturating: -mean log sigmoid(v)
    assert gan.generator_loss(v).item() == pytest.approx(
        -(math.log(0.5) + math.log(1 / (1 + math.exp(-2)))) / 2
    )
    saturating = FDivergence("gan", saturating_generator=True)
    # saturating: -mean softplus(v) = mean log(1 - sigmoid(v))
    assert saturating.generator_loss(v).item() == pytest.approx(-(math.log(2) + math.log(1 + math.exp(2))) / 2)


def test_klwgan_terms_by_hand():
    div = KLWGAN(tau=1.0)
    v_fake = torch.tensor([0.0, math.log(3.0)])
    # softmax([0, log 3]) = [1/4, 3/4]; r = 2 * that = [0.5, 1.5]; v~ = [0, 1.5 log 3]
    weighted = div.weighted_fake(v_fake)
    torch.testing.assert_close(weighted, torch.tensor([0.0, 1.5 * math.log(3.0)]))
    assert div.fake_cost(v_fake).item() == pytest.approx((1.0 + 1.0 + 1.5 * math.log(3.0)) / 2)
    v_real = torch.tensor([2.0, 0.0])
    assert div.real_objective(v_real).item() == pytest.approx(-(0.0 + 1.0) / 2)
    assert div.generator_loss(v_fake).item() == pytest.approx(-(1.5 * math.log(3.0)) / 2)


def test_klwgan_weights_are_not_detached():
    div = KLWGAN(tau=5.0)
    v = torch.tensor([0.3, -0.2, 1.0], requires_grad=True)
    div.generator_loss(v).backward()
    # with detached weights the gradient would be -r_i / N; the softmax adds a term
    r = 3 * torch.softmax(v.detach() / 5.0, 0)
    assert not torch.allclose(v.grad, -r / 3)


def test_wasserstein_terms():
    div = Wasserstein()
    assert div.uses_gradient_penalty
    assert div.discriminator_loss(torch.tensor([1.0, 3.0]), torch.tensor([0.0, 1.0])).item() == pytest.approx(-1.5)
    assert div.generator_loss(torch.tensor([1.0, 3.0])).item() == pytest.approx(-2.0)


@pytest.mark.parametrize("name", DIVERGENCES)
def test_build_every_divergence(name):
    div = build_divergence(DivergenceConfig(name=name))
    assert div.name == name
    v = torch.linspace(-50, 50, 11)
    assert torch.isfinite(div.discriminator_loss(v, v)).all()

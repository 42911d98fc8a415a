"""The Task 3 and J objectives with `gan` are the paper's eq. (5) and (6) written with log-sigmoids;
the other metrics weight their real / fake terms the same way."""

import pytest
import torch
import torch.nn.functional as F

from omasgan.config import DivergenceConfig
from omasgan.divergences import build_divergence
from omasgan.stages import j_loss, task3_critic_loss


def _logits(seed, n=9):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(n, generator=g, dtype=torch.float64) * 3 for _ in range(4)]


def test_task3_gan_equals_eq5():
    v_x, v_g, v_gp, v_b = _logits(0)
    alpha, beta, gamma, delta = 0.3, 1.0, 0.7, 0.4
    # eq. (5): alpha E log C(x) + beta E log(1 - C(G'(z))) + gamma E log(1 - C(B(z))) + delta E log C(G(z))
    eq5 = (
        alpha * F.logsigmoid(v_x).mean()
        + beta * F.logsigmoid(-v_gp).mean()
        + gamma * F.logsigmoid(-v_b).mean()
        + delta * F.logsigmoid(v_g).mean()
    )
    loss = task3_critic_loss(
        build_divergence(DivergenceConfig(name="gan")),
        alpha, beta, gamma, delta,
        v_data=v_x, v_generator=v_g, v_retrained=v_gp, v_boundary=v_b,
    )
    assert loss.item() == pytest.approx(-eq5.item(), rel=1e-12)


def test_task3_hand_value_at_zero_logits():
    zeros = torch.zeros(4, dtype=torch.float64)
    # every log-sigmoid term is log 1/2: loss = (alpha + beta + gamma + delta) * log 2
    loss = task3_critic_loss(
        build_divergence(DivergenceConfig(name="gan")), 0.3, 1.0, 0.7, 0.4,
        v_data=zeros, v_generator=zeros, v_retrained=zeros, v_boundary=zeros,
    )
    assert loss.item() == pytest.approx(2.4 * 0.6931471805599453)


@pytest.mark.parametrize("zeta", [0.0, 0.25, 0.5, 1.0])
def test_j_gan_equals_eq6(zeta):
    v_x, v_g, _, v_b = _logits(1)
    # eq. (6): zeta E log(1 - J(x)) + (1 - zeta) E log(1 - J(G'(z))) + E log J(B(z))
    eq6 = zeta * F.logsigmoid(-v_x).mean() + (1 - zeta) * F.logsigmoid(-v_g).mean() + F.logsigmoid(v_b).mean()
    loss = j_loss(build_divergence(DivergenceConfig(name="gan")), zeta, v_boundary=v_b, v_data=v_x, v_retrained=v_g)
    assert loss.item() == pytest.approx(-eq6.item(), rel=1e-12)


@pytest.mark.parametrize("name", ["kl", "pearson", "wasserstein", "klwgan", "total_variation"])
def test_weighting_is_the_same_for_every_metric(name):
    div = build_divergence(DivergenceConfig(name=name))
    v_x, v_g, v_gp, v_b = _logits(2)
    loss = task3_critic_loss(div, 0.3, 1.0, 0.7, 0.4, v_data=v_x, v_generator=v_g, v_retrained=v_gp, v_boundary=v_b)
    expected = -(
        0.3 * div.real_objective(v_x) + 0.4 * div.real_objective(v_g)
        - 1.0 * div.fake_cost(v_gp) - 0.7 * div.fake_cost(v_b)
    )
    assert loss.item() == pytest.approx(expected.item(), rel=1e-12)
    jl = j_loss(div, 0.3, v_boundary=v_b, v_data=v_x, v_retrained=v_g)
    expected_j = -(div.real_objective(v_b) - 0.3 * div.fake_cost(v_x) - 0.7 * div.fake_cost(v_g))
    assert jl.item() == pytest.approx(expected_j.item(), rel=1e-12)

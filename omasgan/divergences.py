"""Distribution metrics: the eight f-divergences of Nowozin et al. (2016), KL-WGAN and WGAN-GP.

A critic (discriminator) maps a sample to a raw scalar v.  Every metric here is written as a
variational objective that the critic maximises,

    F = E_P[ real_term(v) ] - E_Q[ fake_term(v) ],

where P is the side the critic should score high.  For an f-divergence real_term = g_f(v) (the
output activation) and fake_term = f*(g_f(v)) (the conjugate of the activated output):

    name               g_f(v)                  f*(g_f(v))  (closed form used here)
    kl                 v                       exp(v - 1)
    reverse_kl         -exp(-v)                v - 1                    (= -1 - log(-g_f))
    pearson            v                       v^2/4 + v
    neyman             -expm1(-v)              2 - 2 exp(-v/2)          (= 2 - 2 sqrt(1 - g_f))
    squared_hellinger  -expm1(-v)              expm1(v)                 (= g_f / (1 - g_f))
    jensen_shannon     log 2 - softplus(-v)    softplus(v) - log 2      (= -log(2 - exp(g_f)))
    gan                -softplus(-v)           softplus(v)              (= -log(1 - exp(g_f)))
    total_variation    tanh(v) / 2             tanh(v) / 2

The composites are written in closed form (softplus, expm1) so that |v| = 50 gives finite values
where composing the two columns would overflow or take log(0).

``klwgan`` (Song & Ermon 2020): hinge loss with self-normalised importance weights on the fake
side, r = N softmax(v_fake / tau), v~ = v_fake * r; real_term = -relu(1 - v), the batch fake term
is mean relu(1 + v~), and the generator loss is -mean v~ (the weights are not detached).
``wasserstein``: real_term = fake_term = v (WGAN; the gradient penalty is added by the trainer).

The generator loss is non-saturating, -E_Q[g_f(v)], or saturating, -E_Q[f*(g_f(v))].
"""

from __future__ import annotations

import math
from typing import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from .config import DIVERGENCES, DivergenceConfig
from .errors import ConfigError

_LOG2 = math.log(2.0)

ActivationFn = Callable[[Tensor], Tensor]


def _g_kl(v: Tensor) -> Tensor:
    return v


def _c_kl(v: Tensor) -> Tensor:
    return torch.exp(v - 1.0)


def _g_reverse_kl(v: Tensor) -> Tensor:
    return -torch.exp(-v)


def _c_reverse_kl(v: Tensor) -> Tensor:
    return v - 1.0


def _g_pearson(v: Tensor) -> Tensor:
    return v


def _c_pearson(v: Tensor) -> Tensor:
    return 0.25 * v * v + v


def _g_one_minus_exp(v: Tensor) -> Tensor:
    return -torch.expm1(-v)


def _c_neyman(v: Tensor) -> Tensor:
    return 2.0 - 2.0 * torch.exp(-0.5 * v)


def _c_squared_hellinger(v: Tensor) -> Tensor:
    return torch.expm1(v)


def _g_jensen_shannon(v: Tensor) -> Tensor:
    return _LOG2 - F.softplus(-v)


def _c_jensen_shannon(v: Tensor) -> Tensor:
    return F.softplus(v) - _LOG2


def _g_gan(v: Tensor) -> Tensor:
    return -F.softplus(-v)


def _c_gan(v: Tensor) -> Tensor:
    return F.softplus(v)


def _g_total_variation(v: Tensor) -> Tensor:
    return 0.5 * torch.tanh(v)


F_DIVERGENCE_TABLE: dict[str, tuple[ActivationFn, ActivationFn]] = {
    "kl": (_g_kl, _c_kl),
    "reverse_kl": (_g_reverse_kl, _c_reverse_kl),
    "pearson": (_g_pearson, _c_pearson),
    "neyman": (_g_one_minus_exp, _c_neyman),
    "squared_hellinger": (_g_one_minus_exp, _c_squared_hellinger),
    "jensen_shannon": (_g_jensen_shannon, _c_jensen_shannon),
    "gan": (_g_gan, _c_gan),
    "total_variation": (_g_total_variation, _g_total_variation),
}


class Divergence:
    """A distribution metric in variational form; subclasses fill in the three terms.

    ``real_objective`` and ``fake_cost`` return batch means (scalars), since KL-WGAN's fake term
    depends on the whole batch; ``activation`` is per sample and gives the "normality" g_f(v) that
    the Task 1 and Task 3 anomaly scores negate.
    """

    name: str
    uses_gradient_penalty: bool = False

    def __init__(self, saturating_generator: bool = False) -> None:
        self.saturating_generator = saturating_generator

    def activation(self, v: Tensor) -> Tensor:
        raise NotImplementedError

    def real_objective(self, v: Tensor) -> Tensor:
        """E_P[real_term(v)] over the batch (what the critic raises on the P side)."""
        raise NotImplementedError

    def fake_cost(self, v: Tensor) -> Tensor:
        """E_Q[fake_term(v)] over the batch (what the critic lowers on the Q side)."""
        raise NotImplementedError

    def generator_loss(self, v_fake: Tensor) -> Tensor:
        """Loss of a generator whose samples are scored v_fake (the Q side)."""
        raise NotImplementedError

    def discriminator_loss(self, v_real: Tensor, v_fake: Tensor) -> Tensor:
        """-(E_P[real_term] - E_Q[fake_term]): minimised by the critic."""
        return self.fake_cost(v_fake) - self.real_objective(v_real)

    def weighted_critic_loss(
        self, positives: Sequence[tuple[float, Tensor]], negatives: Sequence[tuple[float, Tensor]]
    ) -> Tensor:
        """-(sum_k a_k E_{P_k}[real_term] - sum_k b_k E_{Q_k}[fake_term]) for the weighted Task 3 / J objectives."""
        terms = [-weight * self.real_objective(v) for weight, v in positives if weight]
        terms += [weight * self.fake_cost(v) for weight, v in negatives if weight]
        if not terms:
            raise ConfigError("a weighted critic objective needs at least one term with a non-zero weight")
        return torch.stack(terms).sum()

    def variational_estimate(self, v_real: Tensor, v_fake: Tensor) -> Tensor:
        """The lower bound E_P[real_term] - E_Q[fake_term] the critic's outputs give."""
        return self.real_objective(v_real) - self.fake_cost(v_fake)


class FDivergence(Divergence):
    """One of Nowozin et al.'s f-divergences, defined by its activation g_f and composite f*(g_f)."""

    def __init__(self, name: str, saturating_generator: bool = False) -> None:
        super().__init__(saturating_generator)
        if name not in F_DIVERGENCE_TABLE:
            raise ConfigError(f"unknown f-divergence {name!r}; choose one of: {', '.join(F_DIVERGENCE_TABLE)}")
        self.name = name
        self._g, self._conjugate = F_DIVERGENCE_TABLE[name]

    def activation(self, v: Tensor) -> Tensor:
        """g_f(v)."""
        return self._g(v)

    def conjugate_of_activation(self, v: Tensor) -> Tensor:
        """f*(g_f(v)) in a numerically stable closed form."""
        return self._conjugate(v)

    def real_objective(self, v: Tensor) -> Tensor:
        return self._g(v).mean()

    def fake_cost(self, v: Tensor) -> Tensor:
        return self._conjugate(v).mean()

    def generator_loss(self, v_fake: Tensor) -> Tensor:
        if self.saturating_generator:
            return -self._conjugate(v_fake).mean()
        return -self._g(v_fake).mean()


class KLWGAN(Divergence):
    """KL-WGAN hinge loss (Song & Ermon 2020) with self-normalised weights r = N softmax(v/tau)."""

    name = "klwgan"

    def __init__(self, tau: float = 5.0, saturating_generator: bool = False) -> None:
        super().__init__(saturating_generator)
        self.tau = tau

    def weighted_fake(self, v_fake: Tensor) -> Tensor:
        """v~ = v_fake * N softmax(v_fake / tau) (weights not detached)."""
        weights = v_fake.shape[0] * torch.softmax(v_fake / self.tau, dim=0)
        return v_fake * weights

    def activation(self, v: Tensor) -> Tensor:
        return v

    def real_objective(self, v: Tensor) -> Tensor:
        return -F.relu(1.0 - v).mean()

    def fake_cost(self, v: Tensor) -> Tensor:
        return F.relu(1.0 + self.weighted_fake(v)).mean()

    def generator_loss(self, v_fake: Tensor) -> Tensor:
        if self.saturating_generator:
            return -self.fake_cost(v_fake)
        return -self.weighted_fake(v_fake).mean()


class Wasserstein(Divergence):
    """WGAN critic objective E_P[v] - E_Q[v]; the trainer adds lambda * GP on interpolates."""

    name = "wasserstein"
    uses_gradient_penalty = True

    def activation(self, v: Tensor) -> Tensor:
        return v

    def real_objective(self, v: Tensor) -> Tensor:
        return v.mean()

    def fake_cost(self, v: Tensor) -> Tensor:
        return v.mean()

    def generator_loss(self, v_fake: Tensor) -> Tensor:
        return -v_fake.mean()


def build_divergence(config: DivergenceConfig) -> Divergence:
    """The metric a :class:`DivergenceConfig` names."""
    saturating = config.generator_loss == "saturating"
    if config.name == "klwgan":
        return KLWGAN(tau=config.klwgan_tau, saturating_generator=saturating)
    if config.name == "wasserstein":
        return Wasserstein(saturating_generator=saturating)
    if config.name in F_DIVERGENCE_TABLE:
        return FDivergence(config.name, saturating_generator=saturating)
    raise ConfigError(f"unknown divergence {config.name!r}; choose one of: {', '.join(DIVERGENCES)}")

"""d and s of Task 2 against brute-force loops, and their gradients."""

import itertools

import pytest
import torch

from omasgan.boundary import dispersion, nearest_bank_distance


def brute_d(b, bank, p):
    total = 0.0
    for i in range(b.shape[0]):
        best = min(float(torch.linalg.vector_norm((b[i] - bank[j]).flatten(), ord=p)) for j in range(bank.shape[0]))
        total += best
    return total / b.shape[0]


def brute_s(z, b, eps):
    n = z.shape[0]
    total = 0.0
    for i in range(n):
        row = 0.0
        for j in range(n):
            if i != j:
                row += float(torch.linalg.vector_norm(z[i] - z[j])) / (
                    float(torch.linalg.vector_norm((b[i] - b[j]).flatten())) + eps
                )
        total += row / (n - 1)
    return total / n


@pytest.mark.parametrize("p", [1.0, 2.0, 3.0])
def test_d_matches_brute_force(p):
    g = torch.Generator().manual_seed(0)
    b = torch.randn(7, 3, generator=g, dtype=torch.float64)
    bank = torch.randn(11, 3, generator=g, dtype=torch.float64)
    assert nearest_bank_distance(b, bank, p).item() == pytest.approx(brute_d(b, bank, p), rel=1e-10)


def test_d_on_images_flattens():
    g = torch.Generator().manual_seed(1)
    b = torch.randn(4, 1, 3, 3, generator=g, dtype=torch.float64)
    bank = torch.randn(6, 1, 3, 3, generator=g, dtype=torch.float64)
    assert nearest_bank_distance(b, bank).item() == pytest.approx(brute_d(b, bank, 2.0), rel=1e-10)


def test_d_hand_computed():
    b = torch.tensor([[0.0, 0.0], [3.0, 4.0]])
    bank = torch.tensor([[1.0, 0.0], [3.0, 0.0]])
    # nearest: 1 (to (1,0)) and 4 (to (3,0)) -> mean 2.5
    assert nearest_bank_distance(b, bank).item() == pytest.approx(2.5)


def test_s_matches_brute_force_over_all_pairs():
    g = torch.Generator().manual_seed(2)
    z = torch.randn(6, 4, generator=g, dtype=torch.float64)
    b = torch.randn(6, 2, generator=g, dtype=torch.float64)
    assert dispersion(z, b, 1e-6).item() == pytest.approx(brute_s(z, b, 1e-6), rel=1e-10)


def test_s_uses_every_row_not_only_the_first():
    z = torch.tensor([[0.0], [1.0], [3.0]], dtype=torch.float64)
    b = torch.tensor([[0.0], [2.0], [3.0]], dtype=torch.float64)
    first_row_only = (1 / 2 + 3 / 3) / 2
    value = dispersion(z, b, 0.0 + 1e-12).item()
    # rows: i=0: (1/2 + 3/3)/2 = 0.75; i=1: (1/2 + 2/1)/2 = 1.25; i=2: (3/3 + 2/1)/2 = 1.5
    assert value == pytest.approx((0.75 + 1.25 + 1.5) / 3, rel=1e-9)
    assert value != pytest.approx(first_row_only)


def test_s_gradient_finite_with_duplicate_samples():
    z = torch.randn(5, 2, dtype=torch.float64)
    b = torch.randn(5, 2, dtype=torch.float64)
    b[1] = b[0]
    b.requires_grad_(True)
    dispersion(z, b, 1e-3).backward()
    assert torch.isfinite(b.grad).all()


def test_d_and_s_gradients_match_finite_differences():
    torch.manual_seed(3)
    z = torch.randn(4, 2, dtype=torch.float64)
    bank = torch.randn(8, 2, dtype=torch.float64)
    b = torch.randn(4, 2, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: nearest_bank_distance(t, bank), (b,))
    assert torch.autograd.gradcheck(lambda t: dispersion(z, t, 1e-3), (b,))


def test_s_brute_force_permutation_invariant():
    g = torch.Generator().manual_seed(4)
    z = torch.randn(5, 3, generator=g)
    b = torch.randn(5, 2, generator=g)
    base = dispersion(z, b).item()
    for perm in itertools.islice(itertools.permutations(range(5)), 5):
        idx = torch.tensor(perm)
        assert dispersion(z[idx], b[idx]).item() == pytest.approx(base, rel=1e-5)

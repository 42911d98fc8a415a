"""The two geometric terms of the Task 2 loss (paper eq. 3 and 4, docs/design.md 3.3).

    d(B, G) = mean_i min_{j=1..Q} || B(z_i) - G(z_j) ||_p                      (eq. 3, p = 2 default)
    s(B, z) = mean_i [ 1/(N-1) sum_{j != i} ||z_i - z_j||_2 / (||B(z_i) - B(z_j)||_2 + eps) ]   (eq. 4)

d pulls each boundary sample to the nearest of a bank of Q samples of the frozen generator; s is
small when B spreads nearby latent codes far apart, which keeps B on every mode.  s uses every row
of the N x N pairwise matrix (the public reference code used only the first row).  Both use
torch.cdist, whose backward is finite (zero) where a distance is zero, e.g. on the diagonal.
"""

from __future__ import annotations

import torch
from torch import Tensor


def _flat(x: Tensor) -> Tensor:
    return x.reshape(x.shape[0], -1)


def nearest_bank_distance(samples: Tensor, bank: Tensor, p: float = 2.0) -> Tensor:
    """d: mean over samples of the l_p distance to the nearest bank row (not squared)."""
    distances = torch.cdist(_flat(samples), _flat(bank), p=p)
    return distances.min(dim=1).values.mean()


def dispersion(z: Tensor, samples: Tensor, eps: float = 1e-6) -> Tensor:
    """s: mean over i of the mean over j != i of ||z_i - z_j|| / (||B(z_i) - B(z_j)|| + eps)."""
    n = z.shape[0]
    if n < 2:
        raise ValueError(f"dispersion needs a batch of at least 2 samples, got {n}")
    latent = torch.cdist(_flat(z), _flat(z), p=2.0)
    data = torch.cdist(_flat(samples), _flat(samples), p=2.0)
    ratio = latent / (data + eps)
    off_diagonal = ~torch.eye(n, dtype=torch.bool, device=z.device)
    return (ratio * off_diagonal).sum(dim=1).div(n - 1).mean()


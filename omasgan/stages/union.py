"""K boundary models as one sampler (``task2.boundaries``): what Task 3, J and the shortcut alarm draw
B(z) from.

A stage's modules name its boundary models ``boundary`` (k = 0), ``boundary_1``, ...,
``boundary_{K-1}``; with K = 1 the union is that one module itself, so the paper's setting draws
exactly what it drew before.  With K > 1, ``BoundaryUnion(z)`` splits the batch z into K consecutive
chunks (sizes differing by at most one) and passes chunk k through B_k: an equal mixture.
"""

from __future__ import annotations

import re

import torch
from torch import Tensor, nn

_MEMBER = re.compile(r"^boundary(?:_(\d+))?$")


def member_name(k: int) -> str:
    return "boundary" if k == 0 else f"boundary_{k}"


def boundary_members(modules: dict[str, nn.Module]) -> list[nn.Module]:
    """The boundary models of a stage's modules, in order k = 0, 1, ...; empty when it has none."""
    found = {}
    for name, module in modules.items():
        match = _MEMBER.match(name)
        if match:
            found[int(match.group(1) or 0)] = module
    return [found[k] for k in sorted(found)]


class BoundaryUnion(nn.Module):
    """The equal mixture of K boundary models (see the module docstring)."""

    def __init__(self, members: list[nn.Module]) -> None:
        super().__init__()
        self.members = nn.ModuleList(members)

    def forward(self, z: Tensor) -> Tensor:
        chunks = torch.tensor_split(z, len(self.members))
        return torch.cat([member(chunk) for member, chunk in zip(self.members, chunks) if chunk.shape[0] > 0])


def boundary_sampler(modules: dict[str, nn.Module]) -> nn.Module:
    """B for the stages after Task 2: the single boundary model, or the union of K of them."""
    members = boundary_members(modules)
    if not members:
        raise KeyError("these stage modules hold no boundary model")
    return members[0] if len(members) == 1 else BoundaryUnion(members)


def sampler_members(sampler: nn.Module) -> list[nn.Module]:
    """The boundary models inside what :func:`boundary_sampler` returned."""
    return list(sampler.members) if isinstance(sampler, BoundaryUnion) else [sampler]

"""The paper's Figure 3 for 2-D data: real samples x, G(z) and the boundary samples B(z)."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def draw_boundary_samples(ax, x: np.ndarray, g: np.ndarray | None, b: np.ndarray | None, title: str,
                          fontsize: float | None = None) -> None:
    """On the matplotlib Axes ``ax``: x (blue), G(z) (orange) and B(z) (green) as 2-D scatters (G(z)
    or B(z) left out when None), equal aspect, legend and title; the one drawing of Figure 3, used by
    ``omasgan run`` and by ``omasgan report``."""
    ax.scatter(x[:, 0], x[:, 1], s=3, c="tab:blue", alpha=0.5, label="x (normal data)")
    if g is not None:
        ax.scatter(g[:, 0], g[:, 1], s=3, c="tab:orange", alpha=0.5, label="G(z)")
    if b is not None:
        ax.scatter(b[:, 0], b[:, 1], s=4, c="tab:green", alpha=0.8, label="B(z) (boundary)")
    ax.set_aspect("equal", adjustable="datalim")
    ax.legend(loc="upper right", markerscale=3, fontsize=fontsize)
    ax.set_title(title, fontsize=fontsize)


def plot_boundary_samples(
    x: np.ndarray, g: np.ndarray, b: np.ndarray, path: str | Path, title: str = ""
) -> Path:
    """Scatter x (blue), G(z) (orange) and B(z) (green) into a PNG at ``path``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 6), dpi=100)
    draw_boundary_samples(ax, x, g, b, title or "OMASGAN Task 2: boundary samples")
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path)
    plt.close(fig)
    return path

"""The PNG figures of ``omasgan report`` (matplotlib, Agg canvas, no display, no pyplot state).

Every figure is ``WIDTH x HEIGHT`` pixels (640 x 400) and draws numbers it is given: what they are
(means over seeds, over classes, ...) is computed in :mod:`.tables` and said in the report
next to the figure.  Each function writes one PNG at ``path`` and returns the path.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Sequence

import numpy as np

WIDTH, HEIGHT, DPI = 640, 400, 100
COLOURS = {"task1": "tab:blue", "task3": "tab:orange", "final": "tab:green", "val": "tab:blue", "test": "tab:red"}
_OTHER = ("tab:purple", "tab:brown", "tab:pink", "tab:gray", "tab:olive", "tab:cyan")


def _figure():
    from matplotlib.figure import Figure

    figure = Figure(figsize=(WIDTH / DPI, HEIGHT / DPI), dpi=DPI)
    return figure, figure.subplots()


def _save(figure, path: Path, left: float = 0.1) -> Path:
    figure.subplots_adjust(left=left, right=0.97, bottom=0.13, top=0.91)  # fixed margins: cheaper than tight_layout
    figure.savefig(path, dpi=DPI, format="png")  # no bbox_inches: the pixel size stays WIDTH x HEIGHT
    return path


def _colour(name: str, index: int) -> str:
    return COLOURS.get(name, _OTHER[index % len(_OTHER)])


def grouped_bars(path: Path, groups: Sequence[str], series: dict[str, Sequence[float]], title: str,
                 ylabel: str = "test AUROC", mean_line: str | None = None,
                 errors: dict[str, Sequence[float]] | None = None) -> Path:
    """Bars of ``series[name][i]`` at group ``groups[i]``, one colour per series (NaN = no bar), with
    an error bar of +/- ``errors[name][i]`` where given and finite (what it is: the caller's caption).

    With ``mean_line`` (a series name), that series' value at the group named ``"mean"`` is also drawn
    as a dashed horizontal line across the figure."""
    figure, ax = _figure()
    names = list(series)
    width = 0.8 / max(len(names), 1)
    x = np.arange(len(groups))
    for i, name in enumerate(names):
        values = np.asarray(series[name], dtype=float)
        spread = np.asarray((errors or {}).get(name, [np.nan] * len(values)), dtype=float)
        ax.bar(x - 0.4 + width * (i + 0.5), np.nan_to_num(values, nan=0.0), width,
               color=_colour(name, i), label=name)
        if np.isfinite(spread).any():
            ax.errorbar(x - 0.4 + width * (i + 0.5), np.nan_to_num(values, nan=0.0), yerr=np.nan_to_num(spread),
                        fmt="none", ecolor="black", elinewidth=0.8, capsize=2)
        if mean_line == name and "mean" in groups and math.isfinite(values[list(groups).index("mean")]):
            ax.axhline(values[list(groups).index("mean")], color=_colour(name, i), linestyle="--", linewidth=1)
    ax.set_xticks(x, [str(g) for g in groups])
    ax.set_xlabel("held-out class")
    ax.set_ylabel(ylabel)
    ax.set_ylim(0.0, 1.05)
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8, loc="lower right", ncols=min(len(names), 4))
    return _save(figure, path)


def _hollow(ax, x, y, partial: Sequence[bool] | None, colour: str, label: str | None) -> None:
    """White-filled markers over the points ``partial`` marks (means of fewer units than planned)."""
    if partial is None or not any(partial):
        return
    marks = np.asarray(partial, dtype=bool)
    ax.plot(np.asarray(x, dtype=float)[marks], np.asarray(y, dtype=float)[marks], linestyle="none", marker="o",
            markerfacecolor="white", markeredgecolor=colour, markersize=7, zorder=3, label=label)


def seed_spread(path: Path, classes: Sequence, mean: Sequence[float], sd: Sequence[float],
                low: Sequence[float], high: Sequence[float], title: str, partial: Sequence[bool] | None = None) -> Path:
    """Per class: the mean over seeds (dot) with a +/- SD error bar, and the min..max range (grey bar),
    the paper's Figure 11; a class ``partial`` marks (fewer seeds finished than planned) gets a hollow
    dot."""
    figure, ax = _figure()
    x = np.arange(len(classes))
    ax.vlines(x, low, high, color="lightgray", linewidth=8, label="min..max over seeds")
    ax.errorbar(x, mean, yerr=np.nan_to_num(np.asarray(sd, dtype=float)), fmt="o", color="tab:green",
                capsize=4, label="mean +/- SD")
    _hollow(ax, x, mean, partial, "tab:green", "fewer units than planned")
    ax.set_xticks(x, [str(c) for c in classes])
    ax.set_xlim(-0.5, len(classes) - 0.5)
    ax.set_xlabel("held-out class")
    ax.set_ylabel("test AUROC (final detector J)")
    ax.set_ylim(0.0, 1.05)
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8, loc="lower right")
    return _save(figure, path)


def sensitivity_curve(path: Path, values: Sequence[float], curves: dict[str, tuple[Sequence[float], Sequence[float]]],
                      param: str, title: str, partial: Sequence[bool] | None = None) -> Path:
    """``curves[split] = (mean, sd)`` against the swept ``values``: a line with a +/- SD band (the
    spread over seeds); a log x axis when every value is positive and they span more than 10x.  The
    values ``partial`` marks (fewer units finished than planned) get hollow markers, and a value with no
    mean in any curve (no unit finished) an x at the top of the plot."""
    figure, ax = _figure()
    x = np.asarray(values, dtype=float)
    for i, (split, (mean, sd)) in enumerate(curves.items()):
        mean, sd = np.asarray(mean, dtype=float), np.nan_to_num(np.asarray(sd, dtype=float))
        ax.plot(x, mean, marker="o", color=_colour(split, i), label=f"{split} AUROC")
        ax.fill_between(x, mean - sd, mean + sd, color=_colour(split, i), alpha=0.2)
        _hollow(ax, x, mean, partial, _colour(split, i), "fewer units than planned" if i == 0 else None)
    finished = np.zeros(len(x), dtype=bool)
    for mean, _ in curves.values():
        finished |= np.isfinite(np.asarray(mean, dtype=float))
    if len(x) and not finished.all():  # values where no unit finished: an x at the top of the plot
        ax.plot(x[~finished], np.full((~finished).sum(), 0.97), transform=ax.get_xaxis_transform(), marker="x",
                color="black", linestyle="none", label="no unit finished")
    if len(x) and x.min() > 0 and x.max() / x.min() > 10:
        ax.set_xscale("log")
    ax.set_xlabel(param)
    ax.set_ylabel("AUROC of the final detector J")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8, loc="lower right")
    return _save(figure, path)


def search_history(path: Path, numbers: Sequence[int], values: Sequence[float], maximize: bool, title: str,
                   confirmed: dict[int, str] | None = None) -> Path:
    """The objective of each completed Optuna trial (dots) and the best value so far (step line).

    ``confirmed`` maps trial numbers that were rerun on fresh seeds to their verdict against the base
    config ("better", "not distinguishable", "worse", or "base"): they are drawn as larger marked
    points, so the unconfirmed rest reads as what it is."""
    figure, ax = _figure()
    values = np.asarray(values, dtype=float)
    best = np.maximum.accumulate(values) if maximize else np.minimum.accumulate(values)
    ax.scatter(numbers, values, s=14, color="tab:blue", label="trial (unconfirmed)")
    markers = {"better": ("tab:green", "^"), "not distinguishable": ("tab:gray", "D"), "worse": ("tab:red", "v"),
               "base": ("black", "s")}
    for verdict, (colour, marker) in markers.items():
        chosen = [n for n, v in (confirmed or {}).items() if v == verdict and n in list(numbers)]
        if chosen:
            ys = [values[list(numbers).index(n)] for n in chosen]
            ax.scatter(chosen, ys, s=60, facecolors="none", edgecolors=colour, marker=marker, linewidths=1.5,
                       label=f"confirmed: {verdict}" if verdict != "base" else "base config (confirmed)")
    ax.step(numbers, best, where="post", color="tab:red", label="best so far")
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("Optuna trial number")
    ax.set_ylabel("objective value")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8, loc="lower right" if maximize else "upper right")
    return _save(figure, path)


def importance_bars(path: Path, importances: dict[str, float], title: str) -> Path:
    """Horizontal bars of each parameter's importance (fANOVA, normalised to sum to 1)."""
    figure, ax = _figure()
    names = list(importances)[::-1]
    ax.barh(names, [importances[n] for n in names], color="tab:blue")
    ax.set_xlabel("importance (fraction of the objective's variance)")
    ax.set_title(title, fontsize=10)
    ax.tick_params(axis="y", labelsize=8)
    return _save(figure, path, left=min(0.5, 0.04 + 0.011 * max(map(len, names), default=0)))


def score_histogram(path: Path, normal: np.ndarray, anomalous: np.ndarray, title: str) -> Path:
    """Density histograms of the anomaly scores of normal (label 0) and anomalous (label 1) samples
    on shared bins (higher score = more anomalous)."""
    figure, ax = _figure()
    both = np.concatenate([normal, anomalous])
    bins = np.histogram_bin_edges(both, bins=40) if both.size else 10
    if normal.size:
        ax.hist(normal, bins=bins, density=True, alpha=0.6, color="tab:blue", label=f"normal (n={normal.size})")
    if anomalous.size:
        ax.hist(anomalous, bins=bins, density=True, alpha=0.6, color="tab:red", label=f"anomaly (n={anomalous.size})")
    ax.set_xlabel("anomaly score")
    ax.set_ylabel("density")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8)
    return _save(figure, path)


def boundary_scatter(path: Path, x: np.ndarray, generated: np.ndarray | None, boundary: np.ndarray | None,
                     title: str) -> Path:
    """The paper's Figure 3: normal data x, the Task 1 samples G(z) and the boundary samples B(z)."""
    from omasgan.plots import draw_boundary_samples

    figure, ax = _figure()
    draw_boundary_samples(ax, x, generated, boundary, title, fontsize=9)
    return _save(figure, path)

"""Sweep plots (PNG, matplotlib's Agg canvas, no pyplot state): dev F1 curves and F1 per value."""

from __future__ import annotations

import io
import math
import numbers
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import PolyCollection
from matplotlib.figure import Figure

from clf.atomic import atomic_write_bytes
from clf.results.table import group_label

Curve = tuple[np.ndarray, np.ndarray]
Band = tuple[np.ndarray, np.ndarray, np.ndarray, str]   # x, low, high, colour
MAX_LEGEND = 12
MARGINS = dict(left=0.1, right=0.97, bottom=0.12, top=0.92)  # fixed: tight_layout costs more than the plot


def new_figure(size: tuple[float, float] = (7.0, 4.5)) -> tuple[Figure, Axes]:
    """A figure on the Agg canvas (no pyplot, no GUI backend) and its one axes."""
    fig = Figure(figsize=size)
    FigureCanvasAgg(fig)
    return fig, fig.subplots()


def save_png(fig: Figure, path: Path, dpi: int = 100) -> Path:
    """Render ``fig`` to PNG in memory, then write it atomically."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    return atomic_write_bytes(path, buffer.getvalue())


def _finish(fig: Figure, ax: Axes, title: str, xlabel: str, ylabel: str, legend_entries: int, bands: list[Band],
            alpha: float) -> Figure:
    """Bands as one collection (one artist, however many groups), labels, grid, legend if short."""
    if bands:
        polygons = [np.column_stack([np.r_[x, x[::-1]], np.r_[low, high[::-1]]]) for x, low, high, _ in bands]
        ax.add_collection(PolyCollection(polygons, facecolors=[c for *_, c in bands], alpha=alpha, linewidths=0))
        ax.autoscale_view()
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    if 0 < legend_entries <= MAX_LEGEND:
        ax.legend(fontsize="small", loc="best")
    fig.subplots_adjust(**MARGINS)
    return fig


def mean_curve(curves: Sequence[Curve]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Steps (union over runs) and the mean, min and max of the runs that logged each step."""
    steps = np.unique(np.concatenate([s for s, _ in curves]))
    grid = np.full((len(curves), len(steps)), np.nan)
    for row, (s, v) in enumerate(curves):
        grid[row, np.searchsorted(steps, s)] = v
    return steps, np.nanmean(grid, axis=0), np.nanmin(grid, axis=0), np.nanmax(grid, axis=0)


def dev_f1_curves(groups: Sequence[tuple[str, Sequence[Curve]]]) -> Figure:
    """One line per group (mean over its runs) with a min-max band; groups without curves are left out."""
    fig, ax = new_figure()
    bands: list[Band] = []
    for label, curves in groups:
        if not curves:
            continue
        steps, mean, low, high = mean_curve(curves)
        (line,) = ax.plot(steps, mean, marker="o", markersize=3, label=f"{label} (n={len(curves)})")
        if len(curves) > 1:
            bands.append((steps, low, high, line.get_color()))
    return _finish(fig, ax, "dev F1 during training (mean over runs; band: min-max)", "step", "dev F1",
                   len(ax.get_lines()), bands, alpha=0.2)


def is_numeric_key(values: pd.Series) -> bool:
    """True if every non-null value is a number (not a bool) and there are at least two."""
    present = [v for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]
    numeric = all(isinstance(v, numbers.Real) and not isinstance(v, (bool, np.bool_)) for v in present)
    return numeric and len(set(present)) > 1


def f1_against(groups: pd.DataFrame, key: str, other_keys: Sequence[str]) -> Figure:
    """Dev F1 (solid, band: ± std) and test F1 (dashed) against ``key``, one series per other-key setting."""
    fig, ax = new_figure()
    rows = groups[groups[key].map(lambda v: isinstance(v, numbers.Real))]
    series = rows.groupby(list(other_keys), dropna=False, sort=False) if other_keys else [(None, rows)]
    bands: list[Band] = []
    for _, part in series:
        part = part.sort_values(key)
        x = part[key].astype(float).to_numpy()
        label = group_label(part.iloc[0], other_keys) if other_keys else "dev F1"
        mean, std = part["dev_f1_mean"].to_numpy(), part["dev_f1_std"].fillna(0).to_numpy()
        (line,) = ax.plot(x, mean, marker="o", label=label)
        bands.append((x, mean - std, mean + std, line.get_color()))
        if part["test_f1_mean"].notna().any():
            ax.plot(x, part["test_f1_mean"].to_numpy(), linestyle="--", marker="x", color=line.get_color(),
                    label=None if other_keys else "test F1")
    values = rows[key].astype(float)
    if len(values) and (values > 0).all() and values.max() / values.min() >= 10:
        ax.set_xscale("log")
    entries = len(bands) if other_keys else 1
    return _finish(fig, ax, f"F1 against {key} (mean over runs; band: ± std)", key,
                   "F1 (solid: dev, dashed: test)", entries, bands, alpha=0.15)

"""The homework's ``visualize_attention`` heatmap: tokens across, one row per head, a colour bar."""

from __future__ import annotations

from typing import Sequence

import numpy as np
from matplotlib.figure import Figure

from clf.results.plots import new_figure

MIN_WIDTH_INCHES = 4


def attention_figure(words: Sequence[str], weights: np.ndarray) -> Figure:
    """Heatmap of ``weights`` [T, H] (T = len(words)), drawn as the homework draws it."""
    weights = np.asarray(weights)
    if weights.ndim != 2 or weights.shape[0] != len(words) or not len(words):
        raise ValueError(f"need weights of shape [len(words) > 0, heads], got {weights.shape} for {len(words)} words")
    fig, ax = new_figure()
    fig.set_size_inches((max(len(words), MIN_WIDTH_INCHES), 4))
    im = ax.imshow(weights.T)
    ax.set_xticks(np.arange(len(words)))
    ax.set_xticklabels(list(words), rotation=45, ha="right", rotation_mode="anchor", fontsize=16)
    ax.set_yticks(np.arange(weights.shape[1]))
    ax.set_ylabel("Attention Head")
    colorbar = fig.colorbar(im, ax=ax, pad=0.01)
    colorbar.ax.set_ylabel("Probability", rotation=-90, va="bottom")
    fig.tight_layout()
    return fig

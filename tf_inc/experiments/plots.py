"""Figures shared by the scripts."""
from __future__ import annotations

from typing import Dict, List, Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (after selecting the Agg backend)
import numpy as np


def to_display(img: np.ndarray, bounds=(0.0, 1.0)) -> np.ndarray:
    lo, hi = bounds
    img = (np.asarray(img, np.float32) - lo) / (hi - lo)
    img = np.clip(img, 0.0, 1.0)
    return img[..., 0] if img.shape[-1] == 1 else img


def accuracy_curves(x: Sequence[float], curves: Dict[str, Sequence[float]], xlabel: str,
                    title: str, paper: Dict[str, Sequence[float]] = None):
    fig, ax = plt.subplots(figsize=(5.5, 4))
    for label, ys in curves.items():
        ax.plot(x, np.asarray(ys) * 100, marker="o", label=label)
    for label, ys in (paper or {}).items():
        ax.plot(x, np.asarray(ys) * 100, ls="--", marker="x", alpha=0.6, label=label)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("accuracy (%)")
    ax.set_ylim(-2, 102)
    ax.grid(alpha=0.3)
    ax.set_title(title)
    ax.legend()
    return fig


def image_grid(rows: List[np.ndarray], row_titles: List[str], captions: List[List[str]] = None,
               bounds=(0.0, 1.0), title: str = ""):
    """Grid with one row per image set; ``captions[r][c]`` is drawn in the corner of cell (r, c)."""
    n_rows, n_cols = len(rows), len(rows[0])
    fig, axes = plt.subplots(n_rows, n_cols, figsize=(1.3 * n_cols + 1.2, 1.35 * n_rows + 0.4), squeeze=False)
    for r in range(n_rows):
        for c in range(n_cols):
            ax = axes[r][c]
            img = to_display(rows[r][c], bounds)
            ax.imshow(img, cmap="gray" if img.ndim == 2 else None, vmin=0, vmax=1)
            ax.set_xticks([])
            ax.set_yticks([])
            if captions is not None:
                ax.text(0.02, 0.98, captions[r][c], transform=ax.transAxes, va="top", ha="left",
                        fontsize=7, color="yellow", bbox=dict(facecolor="black", alpha=0.5, pad=1, lw=0))
            if c == 0:
                ax.set_ylabel(row_titles[r], fontsize=9)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig

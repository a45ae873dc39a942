"""Figures the reports show: training curves, confusion matrices, image grids, latent maps.

Every function returns the matplotlib ``Figure`` (and draws into ``ax`` when one is given), so
notebooks display it and scripts can ``fig.savefig(...)``.
"""
from __future__ import annotations

from typing import Mapping, Sequence


import matplotlib.pyplot as plt
import numpy as np
import pandas as pd


def plot_history(
    history: pd.DataFrame,
    metrics: Sequence[str] = ("loss", "accuracy"),
    title: str = "",
    tasks: Sequence[str] | None = None,
    figsize: tuple[float, float] | None = None,
) -> plt.Figure:
    """Training vs validation curves, one panel per metric (and per task for multi-task runs).

    ``history`` is the per-epoch frame from :func:`kerasmt.training.fit` (index = epoch). With
    ``tasks``, panels plot ``<task>_<metric>``; ``loss`` without a task prefix is the total loss.
    """
    panels: list[tuple[str, str]] = []
    for metric in metrics:
        if tasks:
            for task in tasks:
                column = f"{task}_{metric}"
                if column in history:
                    panels.append((column, f"{task} {metric}"))
            if metric == "loss" and "loss" in history:
                panels.insert(0, ("loss", "total loss"))
        elif metric in history:
            panels.append((metric, metric))
    if not panels:
        raise KeyError(f"none of {list(metrics)} found in history columns {list(history.columns)}")
    figsize = figsize or (4.0 * len(panels), 3.0)
    fig, axes = plt.subplots(1, len(panels), figsize=figsize, squeeze=False)
    for ax, (column, label) in zip(axes[0], panels):
        ax.plot(history.index, history[column], marker=".", label="training")
        if f"val_{column}" in history:
            ax.plot(history.index, history[f"val_{column}"], marker=".", label="validation")
        ax.set_xlabel("epoch")
        ax.set_title(label)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_confusion_matrix(
    cm: np.ndarray,
    labels: Sequence[str],
    title: str = "",
    normalize: bool = False,
    ax: plt.Axes | None = None,
    cmap: str = "Blues",
) -> plt.Figure:
    """Heat map of a confusion matrix (rows = true, columns = predicted), counts in the cells.

    ``normalize=True`` shows row-normalised rates (recall per class) instead of counts.
    """
    import seaborn as sns

    cm = np.asarray(cm)
    data = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1) if normalize else cm
    if ax is None:
        side = max(3.0, 0.45 * len(labels) + 1.5)
        fig, ax = plt.subplots(figsize=(side + 0.8, side))
    else:
        fig = ax.figure
    sns.heatmap(
        data,
        annot=True,
        fmt=".2f" if normalize else "d",
        cmap=cmap,
        xticklabels=labels,
        yticklabels=labels,
        cbar=False,
        ax=ax,
        annot_kws={"fontsize": 7},
    )
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    if title:
        ax.set_title(title)
    ax.tick_params(axis="x", labelrotation=45, labelsize=7)
    ax.tick_params(axis="y", labelrotation=0, labelsize=7)
    fig.tight_layout()
    return fig


def image_grid(
    images: np.ndarray,
    titles: Sequence[str] | None = None,
    ncols: int = 8,
    cell: float = 1.3,
    cmap: str = "gray",
    suptitle: str = "",
) -> plt.Figure:
    """Images in a grid with optional per-image titles (e.g. "pred: Male / true: Female")."""
    images = np.asarray(images)
    n = len(images)
    ncols = max(1, min(ncols, n))
    nrows = int(np.ceil(n / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(cell * ncols, cell * nrows + (0.3 if suptitle else 0)), squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i >= n:
            continue
        image = images[i]
        if image.ndim == 3 and image.shape[-1] == 1:
            image = image[..., 0]
        ax.imshow(image, cmap=cmap if image.ndim == 2 else None, vmin=0, vmax=1 if image.dtype.kind == "f" else 255)
        if titles is not None:
            ax.set_title(titles[i], fontsize=6)
    if suptitle:
        fig.suptitle(suptitle)
    fig.tight_layout()
    return fig


def compare_rows(rows: Mapping[str, np.ndarray], cell: float = 1.1) -> plt.Figure:
    """Rows of images with a label on the left, e.g. ``{"original": x, "reconstruction": r}``."""
    names = list(rows)
    ncols = max(len(v) for v in rows.values())
    fig, axes = plt.subplots(len(names), ncols, figsize=(cell * ncols, cell * len(names)), squeeze=False)
    for r, name in enumerate(names):
        for c in range(ncols):
            ax = axes[r, c]
            ax.set_xticks([])
            ax.set_yticks([])
            for spine in ax.spines.values():
                spine.set_visible(False)
            if c < len(rows[name]):
                image = np.asarray(rows[name][c])
                ax.imshow(image[..., 0] if image.ndim == 3 and image.shape[-1] == 1 else image, cmap="gray", vmin=0, vmax=1)
        axes[r, 0].set_ylabel(name, fontsize=8)
    fig.tight_layout()
    return fig


def plot_latent(
    z: np.ndarray,
    labels: np.ndarray | None = None,
    label_names: Sequence[str] | None = None,
    title: str = "",
    method: str = "pca",
    seed: int = 0,
    ax: plt.Axes | None = None,
) -> plt.Figure:
    """2-D view of latent vectors (PCA, or t-SNE with ``method="tsne"``), coloured by label."""
    z = np.asarray(z, dtype=np.float64)
    if z.shape[1] == 2:
        xy = z
    elif method == "tsne":
        from sklearn.manifold import TSNE

        xy = TSNE(n_components=2, random_state=seed, init="pca", perplexity=min(30, max(5, len(z) // 10))).fit_transform(z)
    elif method == "pca":
        from sklearn.decomposition import PCA

        xy = PCA(n_components=2, random_state=seed).fit_transform(z)
    else:
        raise ValueError(f"method must be 'pca' or 'tsne', got {method!r}")
    if ax is None:
        fig, ax = plt.subplots(figsize=(5, 4))
    else:
        fig = ax.figure
    if labels is None:
        ax.scatter(xy[:, 0], xy[:, 1], s=4, alpha=0.6)
    else:
        labels = np.asarray(labels)
        for code in np.unique(labels):
            keep = labels == code
            name = label_names[code] if label_names is not None and code >= 0 else str(code)
            ax.scatter(xy[keep, 0], xy[keep, 1], s=4, alpha=0.6, label=name)
        ax.legend(fontsize=7, markerscale=3)
    ax.set_title(title or f"latent space ({method.upper()})")
    fig.tight_layout()
    return fig


def bar_counts(counts: Mapping[str, pd.Series], title: str = "") -> plt.Figure:
    """Class counts per task as bar charts side by side (``{task: Series indexed by class}``)."""
    fig, axes = plt.subplots(1, len(counts), figsize=(3.6 * len(counts), 3.0), squeeze=False)
    for ax, (task, series) in zip(axes[0], counts.items()):
        ax.bar(range(len(series)), series.to_numpy())
        ax.set_xticks(range(len(series)))
        ax.set_xticklabels([str(i) for i in series.index], rotation=60, ha="right", fontsize=7)
        ax.set_title(task)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig

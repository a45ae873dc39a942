"""Figures the reports show: training curves, confusion matrices, image grids, latent maps.

Every function returns the matplotlib ``Figure`` (and draws into ``ax`` when one is given), so
notebooks display it and scripts can ``fig.savefig(...)``.
"""
from __future__ import annotations

from typing import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.ticker import MaxNLocator

#: figures are drawn at least at this resolution (dots per inch)
MIN_DPI = 100
#: titles, captions, axis labels and legends are at least this size (points)
MIN_FONT = 8.0


def readable(fig: plt.Figure, min_font: float = MIN_FONT, min_dpi: int = MIN_DPI) -> plt.Figure:
    """Raise a figure's resolution to ``min_dpi`` and its titles, captions, axis labels and legend
    texts to ``min_font`` points (tick labels are left as drawn). Returns the figure."""
    if fig.get_dpi() < min_dpi:
        fig.set_dpi(min_dpi)
    texts = [fig._suptitle] if getattr(fig, "_suptitle", None) is not None else []
    for ax in fig.axes:
        texts += [ax.title, ax._left_title, ax._right_title, ax.xaxis.label, ax.yaxis.label]
        legend = ax.get_legend()
        if legend is not None:
            texts += list(legend.get_texts())
    for legend in fig.legends:
        texts += list(legend.get_texts())
    for text in texts:
        if text is not None and text.get_text() and text.get_fontsize() < min_font:
            text.set_fontsize(min_font)
    return fig


def integer_epochs(ax: plt.Axes) -> None:
    """Epoch axis with integer ticks only."""
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))


def plot_history(
    history: pd.DataFrame,
    metrics: Sequence[str] = ("loss", "accuracy"),
    title: str = "",
    tasks: Sequence[str] | None = None,
    figsize: tuple[float, float] | None = None,
    ncols: int | None = None,
) -> plt.Figure:
    """Training vs validation curves in a grid of panels, one per metric (and per task for
    multi-task runs: one row per metric, the total loss first in the loss row).

    ``history`` is the per-epoch frame from :func:`kerasmt.training.fit` (index = epoch). With
    ``tasks``, panels plot ``<task>_<metric>``; ``loss`` without a task prefix is the total loss.
    ``ncols`` caps the panels per row (default 3 for single-task histories).
    """
    rows: list[list[tuple[str, str]]] = []
    for metric in metrics:
        row: list[tuple[str, str]] = []
        if tasks:
            if metric == "loss" and "loss" in history:
                row.append(("loss", "total loss"))
            for task in tasks:
                column = f"{task}_{metric}"
                if column in history:
                    row.append((column, f"{task} {metric}"))
        elif metric in history:
            row.append((metric, metric))
        if row:
            rows.append(row)
    if not rows:
        raise KeyError(f"none of {list(metrics)} found in history columns {list(history.columns)}")
    if not tasks:  # single-task: one flat list wrapped into rows of ``ncols``
        flat = [p for r in rows for p in r]
        width = ncols or min(3, len(flat))
        rows = [flat[i:i + width] for i in range(0, len(flat), width)]
    elif ncols:
        rows = [r[i:i + ncols] for r in rows for i in range(0, len(r), ncols)]
    n_cols = max(len(r) for r in rows)
    figsize = figsize or (3.6 * n_cols, 2.8 * len(rows) + (0.3 if title else 0))
    fig, axes = plt.subplots(len(rows), n_cols, figsize=figsize, squeeze=False, dpi=MIN_DPI)
    for r, panels in enumerate(rows):
        for c in range(n_cols):
            ax = axes[r, c]
            if c >= len(panels):
                ax.axis("off")
                continue
            column, label = panels[c]
            ax.plot(history.index, history[column], marker=".", label="training")
            if f"val_{column}" in history:
                ax.plot(history.index, history[f"val_{column}"], marker=".", label="validation")
            ax.set_xlabel("epoch")
            integer_epochs(ax)
            ax.set_title(label)
            ax.grid(alpha=0.3)
            ax.legend(fontsize=MIN_FONT)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return readable(fig)


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
        side = max(3.0, 0.5 * len(labels) + 1.5)
        fig, ax = plt.subplots(figsize=(side + 0.8, side), dpi=MIN_DPI)
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
        annot_kws={"fontsize": MIN_FONT},
    )
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    if title:
        ax.set_title(title)
    ax.tick_params(axis="x", labelrotation=45, labelsize=MIN_FONT)
    ax.tick_params(axis="y", labelrotation=0, labelsize=MIN_FONT)
    fig.tight_layout()
    return readable(fig)


def most_confused_pairs(cm: np.ndarray, labels: Sequence[str], k: int = 15) -> pd.DataFrame:
    """The ``k`` most confused ordered pairs of a confusion matrix (rows = true): true class,
    predicted class, count and the share of the true class's images (off-diagonal cells only,
    largest share first; ties by count, then by class position, so the order is deterministic)."""
    cm = np.asarray(cm, dtype=float)
    if cm.ndim != 2 or cm.shape[0] != cm.shape[1] or len(labels) != len(cm):
        raise ValueError(f"cm must be square with one label per row; got {cm.shape} and {len(labels)} labels")
    rates = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1e-12)
    i, j = np.nonzero(~np.eye(len(cm), dtype=bool) & (cm > 0))
    order = np.lexsort((j, i, -cm[i, j], -rates[i, j]))[:k]
    return pd.DataFrame({"true": [labels[a] for a in i[order]], "predicted": [labels[b] for b in j[order]],
                         "count": cm[i[order], j[order]], "share of true class": rates[i[order], j[order]].round(3)})


def plot_most_confused(cm: np.ndarray, labels: Sequence[str], k: int = 15, title: str = "") -> plt.Figure:
    """Horizontal bars of the :func:`most_confused_pairs` (share of the true class predicted as the
    other), a legible summary of a confusion matrix with many classes."""
    pairs = most_confused_pairs(cm, labels, k)
    fig, ax = plt.subplots(figsize=(7.5, 0.3 * max(len(pairs), 1) + 1.2), dpi=MIN_DPI)
    names = [f"{t} → {p}" for t, p in zip(pairs["true"], pairs["predicted"])]
    ax.barh(range(len(pairs)), pairs["share of true class"], color="tab:red")
    ax.set_yticks(range(len(pairs)))
    ax.set_yticklabels(names, fontsize=MIN_FONT)
    ax.invert_yaxis()
    ax.set_xlabel("share of the true class's images predicted as the other class")
    ax.set_title(title or f"the {len(pairs)} most confused pairs")
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    return readable(fig)


def image_grid(
    images: np.ndarray,
    titles: Sequence[str] | None = None,
    ncols: int = 8,
    cell: float = 1.5,
    cmap: str = "gray",
    suptitle: str = "",
) -> plt.Figure:
    """Images in a grid with optional per-image titles (e.g. "pred: Male / true: Female")."""
    images = np.asarray(images)
    n = len(images)
    ncols = max(1, min(ncols, n))
    nrows = int(np.ceil(n / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(cell * ncols, cell * nrows + (0.3 if suptitle else 0)), squeeze=False,
                             dpi=MIN_DPI)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i >= n:
            continue
        image = images[i]
        if image.ndim == 3 and image.shape[-1] == 1:
            image = image[..., 0]
        ax.imshow(image, cmap=cmap if image.ndim == 2 else None, vmin=0, vmax=1 if image.dtype.kind == "f" else 255)
        if titles is not None:
            ax.set_title(titles[i], fontsize=MIN_FONT)
    if suptitle:
        fig.suptitle(suptitle)
    fig.tight_layout()
    return readable(fig)


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
        axes[r, 0].set_ylabel(name, fontsize=MIN_FONT)
    fig.tight_layout()
    return readable(fig)


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
        ax.legend(fontsize=MIN_FONT, markerscale=3)
    ax.set_title(title or f"latent space ({method.upper()})")
    fig.tight_layout()
    return readable(fig)


def bar_counts(counts: Mapping[str, pd.Series], title: str = "") -> plt.Figure:
    """Class counts per task as bar charts side by side (``{task: Series indexed by class}``)."""
    fig, axes = plt.subplots(1, len(counts), figsize=(3.6 * len(counts), 3.0), squeeze=False)
    for ax, (task, series) in zip(axes[0], counts.items()):
        ax.bar(range(len(series)), series.to_numpy())
        ax.set_xticks(range(len(series)))
        ax.set_xticklabels([str(i) for i in series.index], rotation=60, ha="right", fontsize=MIN_FONT)
        ax.set_title(task)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return readable(fig)

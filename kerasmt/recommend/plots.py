"""Figures of the recommender study: BIC curve, cluster centres, t-SNE maps, per-user accuracy,
genre profiles, method comparison. Each returns the matplotlib ``Figure``."""
from __future__ import annotations

from typing import Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd


def tsne_embedding(profiles: pd.DataFrame | np.ndarray, seed: int = 0, perplexity: float = 30.0) -> np.ndarray:
    """2-D t-SNE of user profiles (scikit-learn, PCA initialisation, seeded); perplexity is
    capped for small sets. For millions of users, embed a sample."""
    from sklearn.manifold import TSNE

    import contextlib

    from threadpoolctl import threadpool_limits

    X = np.asarray(profiles, dtype=np.float64)
    perplexity = float(min(perplexity, max(2.0, (len(X) - 1) / 3.0)))
    # a few thousand points: OpenMP/BLAS thread start-up costs more than it saves (10x on 2 cores)
    with threadpool_limits(1) if len(X) < 5000 else contextlib.nullcontext():
        return TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed).fit_transform(X)


def plot_embedding(xy: np.ndarray, labels: np.ndarray | None = None, title: str = "",
                   ax: plt.Axes | None = None) -> plt.Figure:
    """Scatter of a 2-D embedding, coloured by ``labels`` (e.g. GMM clusters) when given."""
    from kerasmt.plots import plot_latent

    names = None if labels is None else [f"cluster {k}" for k in range(int(np.max(labels)) + 1)]
    return plot_latent(np.asarray(xy), labels, names, title=title or "t-SNE of the users' genre profiles", ax=ax)


def plot_bic(bic: pd.DataFrame, best_k: int | None = None, title: str = "") -> plt.Figure:
    """BIC against K: the mean over seeds with a +-1 std band and each seed's values (the
    ``bic_`` table of :class:`~kerasmt.recommend.GMMRecommender`)."""
    fig, ax = plt.subplots(figsize=(5.5, 3.4))
    ks = bic.index.to_numpy()
    for column in [c for c in bic.columns if c.startswith("seed_")]:
        ax.plot(ks, bic[column], color="0.7", lw=0.8, marker=".", ms=3)
    ax.fill_between(ks, bic["mean"] - bic["std"], bic["mean"] + bic["std"], alpha=0.2)
    ax.plot(ks, bic["mean"], marker="o", label="mean over seeds")
    if best_k is not None:
        ax.axvline(best_k, color="C3", ls="--", lw=1, label=f"minimum: K = {best_k}")
    ax.set_xticks(ks)
    ax.set_xlabel("number of clusters K")
    ax.set_ylabel("BIC (lower is better)")
    ax.set_title(title or "GMM model selection")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_profiles(profiles: pd.DataFrame, title: str = "", reference: pd.Series | None = None,
                  ncols: int = 3, ylim: tuple[float, float] = (0.0, 5.0)) -> plt.Figure:
    """One bar chart per row of ``profiles`` (genres on the x axis), e.g. the cluster centres or
    a few users' genre profiles; ``reference`` (e.g. the mean profile) is drawn as a line."""
    n = len(profiles)
    ncols = max(1, min(ncols, n))
    nrows = int(np.ceil(n / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(4.2 * ncols, 2.9 * nrows), squeeze=False, sharey=True)
    genres = list(profiles.columns)
    x = np.arange(len(genres))
    for ax, (label, row) in zip(axes.flat, profiles.iterrows()):
        ax.bar(x, row.to_numpy(dtype=float), color="C0")
        if reference is not None:
            ax.plot(x, reference.reindex(genres).to_numpy(dtype=float), color="C3", lw=1, marker="_",
                    label=reference.name or "reference")
            ax.legend(fontsize=7, loc="lower right")
        ax.set_xticks(x)
        ax.set_xticklabels(genres, rotation=90, fontsize=7)
        ax.set_ylim(*ylim)
        ax.set_title(str(label), fontsize=9)
        ax.grid(axis="y", alpha=0.3)
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    axes[0, 0].set_ylabel("average rating")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_user_accuracy(per_user: pd.Series, title: str = "", ylabel: str = "accuracy") -> plt.Figure:
    """Per-user bar chart of a hold-out metric (the report's accuracy figure), users in id
    order, zero bars marked below the axis."""
    values = per_user.to_numpy(dtype=float)
    fig, ax = plt.subplots(figsize=(10, 2.8))
    x = np.arange(len(values))
    ax.bar(x, values, width=0.8, color="C0")
    zero = values == 0
    ax.scatter(x[zero], np.full(zero.sum(), -0.04), marker="^", color="C3", s=12, label="accuracy 0")
    ax.axhline(values.mean(), color="C1", lw=1, ls="--", label=f"mean {values.mean():.3f}")
    step = max(1, len(values) // 25)
    ax.set_xticks(x[::step])
    ax.set_xticklabels([str(u) for u in per_user.index[::step]], rotation=90, fontsize=7)
    ax.set_xlabel("userId")
    ax.set_ylabel(ylabel)
    ax.set_ylim(-0.08, 1.02)
    ax.set_title(title or "hold-out accuracy per user")
    ax.legend(fontsize=8, loc="upper right")
    fig.tight_layout()
    return fig


def plot_comparison(table: pd.DataFrame, metrics: Sequence[str] | None = None, title: str = "") -> plt.Figure:
    """Grouped bars of a methods x metrics table (the hold-out comparison)."""
    metrics = list(metrics or table.columns)
    fig, ax = plt.subplots(figsize=(1.6 + 1.5 * len(metrics), 3.6))
    width = 0.8 / len(table)
    x = np.arange(len(metrics))
    for i, (method, row) in enumerate(table[metrics].iterrows()):
        ax.bar(x + (i - (len(table) - 1) / 2) * width, row.to_numpy(dtype=float), width, label=str(method))
    ax.set_xticks(x)
    ax.set_xticklabels(metrics)
    ax.set_title(title or "hold-out comparison")
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=8, ncols=min(5, len(table)), loc="upper center", bbox_to_anchor=(0.5, -0.1))
    fig.tight_layout()
    return fig

"""Baselines with the recommenders' interface: global popularity, item-kNN (cosine), EASE.

All three use only who rated what (the 0/1 pattern of the rating matrix), the usual setting for
top-n recommendation. Memory and time are bounded for ml-25m-sized data (162 k users, 59 k rated
movies, 25 M ratings) on a 24 GiB machine:

- :class:`ItemKNNRecommender` keeps the ``n_neighbors`` most cosine-similar items of each item
  (a sparse items x items matrix), computed ``chunk_size`` items at a time;
- :class:`EASERecommender` solves EASE's closed form on the ``max_items`` most rated items (10 k
  by default; its item x item matrix is dense: 20 k items take 1.6 GB in float32, 3.2 GB in
  float64, and ~8x the time of 10 k); other items are not recommended.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.linalg
import scipy.sparse as sp
from sklearn.utils.validation import check_is_fitted

from kerasmt.recommend.base import BaseRecommender, popularity_order, rank_scores
from kerasmt.recommend.profiles import Interactions


class PopularityRecommender(BaseRecommender):
    """Recommends the globally most rated movies the user has not rated (ties: movie id).

    Fitted attribute ``order_``: item indices from most to least rated.
    """

    def __init__(self):
        pass

    def _fit(self, inter: Interactions) -> None:
        self.order_ = popularity_order(self.item_counts_)
        self._scores = rank_scores(self.order_)

    def _score(self, rows: sp.csr_matrix) -> np.ndarray:
        return np.broadcast_to(self._scores, (rows.shape[0], len(self._scores)))

    def _ranked_lists(self, rows: sp.csr_matrix) -> tuple[np.ndarray, np.ndarray]:
        recommendable = self.order_[: int(self.recommendable_.sum())]  # counts > 0 come first
        return recommendable[None, :], np.zeros(rows.shape[0], dtype=np.int64)


class ItemKNNRecommender(BaseRecommender):
    """Item-based k-nearest neighbours (Deshpande & Karypis 2004) with cosine similarity.

    ``similarity_[i, j]`` is the cosine between the rating patterns (0/1 user vectors) of items
    ``i`` and ``j``, kept for the ``n_neighbors`` most similar ``j`` of each ``i`` (self
    excluded). A user's score of item ``j`` is the sum of ``similarity_[i, j]`` over the items
    ``i`` they rated. The similarities are computed ``chunk_size`` items at a time (a dense
    ``chunk_size x n_items`` block), so memory stays bounded on ml-25m.
    """

    def __init__(self, n_neighbors: int = 20, chunk_size: int = 1024, dtype: str = "float32"):
        self.n_neighbors = n_neighbors
        self.chunk_size = chunk_size
        self.dtype = dtype

    def _fit(self, inter: Interactions) -> None:
        if int(self.n_neighbors) < 1:
            raise ValueError(f"n_neighbors must be >= 1, got {self.n_neighbors}")
        B = inter.binary(self.dtype)
        m = B.shape[1]
        norms = np.sqrt(self.item_counts_.astype(np.float64))
        inv = np.divide(1.0, norms, out=np.zeros_like(norms), where=norms > 0).astype(self.dtype)
        Bn = (B @ sp.diags(inv)).tocsc()
        del B
        k = min(int(self.n_neighbors), m - 1) if m > 1 else 0
        top_val = np.zeros((m, max(k, 1)), dtype=self.dtype)  # running top-k (0 = none yet)
        top_idx = np.full((m, max(k, 1)), -1, dtype=np.int64)
        # the cosine matrix is symmetric: each block of items [lo, hi) is multiplied with the items
        # from lo on only (half the sparse work); the block updates the running top-k of its own
        # items and, transposed, that of every later item
        for lo in range(0, m, int(self.chunk_size)):
            if k == 0:
                break
            hi = min(lo + int(self.chunk_size), m)
            block = (Bn[:, lo:hi].T.tocsr() @ Bn[:, lo:]).toarray()  # (hi - lo) x (m - lo)
            block[np.arange(hi - lo), np.arange(hi - lo)] = 0.0  # no self-similarity
            _merge_top_k(top_val, top_idx, slice(lo, hi), block, lo, k)
            if hi < m:
                _merge_top_k(top_val, top_idx, slice(hi, m), np.ascontiguousarray(block[:, hi - lo:].T), lo, k)
            del block
        keep = (top_val > 0) & (top_idx >= 0) if k else np.zeros((m, 1), dtype=bool)
        rows = np.repeat(np.arange(m), keep.sum(axis=1))
        self.similarity_ = sp.csr_matrix((top_val[keep], (rows, top_idx[keep])), shape=(m, m), dtype=self.dtype)

    def _score(self, rows: sp.csr_matrix) -> np.ndarray:
        pattern = rows.copy().astype(self.dtype)
        pattern.data[:] = 1
        return (pattern @ self.similarity_).toarray()


def _merge_top_k(top_val: np.ndarray, top_idx: np.ndarray, rows: slice, cand: np.ndarray,
                 offset: int, k: int) -> None:
    """Merge candidate similarities ``cand`` (rows x w, column j = item ``offset + j``) into the
    running top-``k`` of ``rows`` (in place; ``top_val`` starts at 0 with ``top_idx`` -1).

    Only candidates above a row's current k-th best can enter, so after the first blocks a cheap
    comparison replaces most of the partial sorting: the rare survivors are merged by one sort.
    """
    thr = top_val[rows].min(axis=1)
    mask = cand > thr[:, None]
    n_pass = int(np.count_nonzero(mask))
    if n_pass == 0:
        return
    if n_pass > cand.size // 16:  # early blocks: most candidates pass, a partial sort per row
        w = cand.shape[1]
        part = np.argpartition(-cand, k - 1, axis=1)[:, :k] if w > k else \
            np.broadcast_to(np.arange(w), (cand.shape[0], w))
        vals = np.concatenate([top_val[rows], np.take_along_axis(cand, part, axis=1)], axis=1)
        idx = np.concatenate([top_idx[rows], part + offset], axis=1)
        best = np.argpartition(-vals, k - 1, axis=1)[:, :k]
        top_val[rows] = np.take_along_axis(vals, best, axis=1)
        top_idx[rows] = np.take_along_axis(idx, best, axis=1)
        return
    r, c = np.nonzero(mask)
    affected = np.unique(r)  # rows (relative to ``rows``) with a candidate: merge with their top-k
    all_r = np.concatenate([r, np.repeat(affected, k)])
    all_v = np.concatenate([cand[r, c], top_val[rows][affected].ravel()])
    all_i = np.concatenate([c.astype(np.int64) + offset, top_idx[rows][affected].ravel()])
    order = np.lexsort((-all_v, all_r))  # by row, best first
    all_r, all_v, all_i = all_r[order], all_v[order], all_i[order]
    starts = np.searchsorted(all_r, affected)
    rank = np.arange(len(all_r)) - np.repeat(starts, np.diff(np.append(starts, len(all_r))))
    keep = rank < k  # every affected row holds >= k entries (its old top-k), so exactly k are kept
    target = all_r[keep] + rows.start
    top_val[target, rank[keep]] = all_v[keep]
    top_idx[target, rank[keep]] = all_i[keep]


def gram_matrix(X: sp.spmatrix, dtype: str = "float32", chunk_size: int = 2048) -> np.ndarray:
    """Dense ``X.T @ X`` of a sparse users x items matrix, ``chunk_size`` item columns at a time
    (the sparse product's memory stays bounded; the result is items x items). Only the upper
    triangle's blocks are multiplied (half the sparse work) and mirrored."""
    Xc = sp.csc_matrix(X, dtype=dtype)
    n = Xc.shape[1]
    G = np.empty((n, n), dtype=dtype)
    for lo in range(0, n, chunk_size):
        hi = min(lo + chunk_size, n)
        block = (Xc[:, lo:hi].T.tocsr() @ Xc[:, lo:]).toarray()  # rows lo:hi, columns lo:n
        G[lo:hi, lo:] = block
        G[hi:, lo:hi] = block[:, hi - lo:].T
    return G


def ease_weights(X: sp.spmatrix, l2: float = 500.0, dtype: str = "float32", solver: str = "auto") -> np.ndarray:
    """EASE's closed form (Steck 2019): ``P = (X^T X + l2 I)^-1``, ``B = I - P / diag(P)``
    (column-wise), i.e. ``B_ij = -P_ij / P_jj`` and ``B_jj = 0``.

    ``solver="cholesky"`` inverts the items x items Gram matrix (Cholesky, in place);
    ``"woodbury"`` uses ``P = (I - X^T (l2 I + X X^T)^-1 X) / l2``, cheaper when there are far
    fewer users than items (610 users x 9.7 k movies); ``"auto"`` picks the route with fewer
    floating-point operations.
    """
    if l2 <= 0:
        raise ValueError(f"l2 must be > 0, got {l2}")
    X = sp.csr_matrix(X, dtype=dtype)
    n_users, n = X.shape
    if solver == "auto":  # flop counts of the two routes
        woodbury = n_users * n * n + n_users * n_users * n + n_users**3 / 3
        solver = "woodbury" if woodbury < n**3 else "cholesky"
    if solver == "cholesky":
        G = gram_matrix(X, dtype)
        G[np.diag_indices(n)] += np.dtype(dtype).type(l2)
        # G is symmetric, so its transpose is the same matrix in Fortran order: LAPACK works in place
        potrf, potri = scipy.linalg.lapack.get_lapack_funcs(("potrf", "potri"), (G,))
        c, info = potrf(G.T, lower=False, overwrite_a=True)
        if info != 0:
            raise np.linalg.LinAlgError(f"EASE: Cholesky factorisation failed (info={info})")
        P, info = potri(c, lower=False, overwrite_c=True)
        if info != 0:
            raise np.linalg.LinAlgError(f"EASE: inversion failed (info={info})")
        _symmetrize_upper(P)
    elif solver == "woodbury":
        Xd = X.toarray()
        K = Xd @ Xd.T
        K[np.diag_indices(n_users)] += l2
        M = scipy.linalg.solve(K, Xd, assume_a="pos")
        P = -(Xd.T @ M)
        P[np.diag_indices(n)] += 1.0
        P /= l2
    else:
        raise ValueError(f"solver must be 'auto', 'cholesky' or 'woodbury', got {solver!r}")
    diag = np.diag(P).copy()
    P /= -diag[None, :]
    P[np.diag_indices(n)] = 0.0
    return P.astype(dtype, copy=False)


def _symmetrize_upper(P: np.ndarray, block: int = 2048) -> None:
    """Copy the upper triangle of a square matrix onto its lower triangle, in place, a block of
    columns at a time (no full-size temporary)."""
    n = P.shape[0]
    for lo in range(0, n, block):
        hi = min(lo + block, n)
        diag = P[lo:hi, lo:hi]
        P[lo:hi, lo:hi] = np.triu(diag) + np.triu(diag, 1).T
        P[hi:, lo:hi] = P[lo:hi, hi:].T


class EASERecommender(BaseRecommender):
    """EASE (Steck, *Embarrassingly Shallow Autoencoders for Sparse Data*, WWW 2019).

    Scores ``x_u @ B`` with ``B`` from :func:`ease_weights` on the 0/1 rating patterns of the
    ``max_items`` most rated items (``None``: every rated item). ``B`` is dense and its inverse
    costs about ``max_items**3`` operations: 10 k items (the default) take 0.4 GB in float32 and
    about a minute on 2 cores; 20 k items 1.6 GB in float32 (3.2 GB in float64) and about 8x
    that. The sparse Gram product before it costs ``sum over users of (their kept items)**2``
    (about 3 minutes on a 25 M-rating set on 2 cores). Items outside the kept set are never
    recommended. ``l2`` is the paper's regulariser (500 on ML-20M).

    Fitted attributes: ``items_`` (kept item indices into ``item_ids_``), ``weights_``.
    """

    def __init__(self, l2: float = 500.0, max_items: int | None = 10_000, dtype: str = "float32",
                 solver: str = "auto"):
        self.l2 = l2
        self.max_items = max_items
        self.dtype = dtype
        self.solver = solver

    def _fit(self, inter: Interactions) -> None:
        order = popularity_order(self.item_counts_)
        order = order[self.item_counts_[order] > 0]
        if self.max_items is not None:
            if int(self.max_items) < 1:
                raise ValueError(f"max_items must be >= 1 or None, got {self.max_items}")
            order = order[: int(self.max_items)]
        self.items_ = np.sort(order)
        X = inter.binary(self.dtype)[:, self.items_]
        self.weights_ = ease_weights(X, self.l2, self.dtype, self.solver)
        kept = np.zeros(len(self.item_ids_), dtype=bool)
        kept[self.items_] = True
        self.recommendable_ = self.recommendable_ & kept

    def _score(self, rows: sp.csr_matrix) -> np.ndarray:
        check_is_fitted(self, "weights_")
        pattern = rows[:, self.items_].astype(self.dtype)
        pattern.data[:] = 1
        scores = np.zeros((rows.shape[0], len(self.item_ids_)), dtype=self.dtype)
        scores[:, self.items_] = pattern @ self.weights_
        return scores

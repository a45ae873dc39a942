"""Merge the classes a classifier cannot tell apart (Beauty report, chapter 5), without copying files.

The report reordered its 73x73 validation confusion matrix by eye, boxed the blocks of classes the
network mixed up and merged each block into one class (42 classes), copying the images into new
folders. Here:

- :func:`derive_groups` finds the groups automatically: agglomerative clustering of the classes
  with distance ``1 - s(i, j)``, where ``s`` is the *symmetrised confusion rate*
  ``(r(i, j) + r(j, i)) / 2`` and ``r(i, j)`` is the share of class ``i``'s validation images
  predicted as ``j`` (row-normalised confusion matrix). **Average linkage** (UPGMA): two groups
  merge when their classes are, on average, confused with each other the most; single linkage
  would chain classes through one confused pair, complete linkage would need every pair to be
  confused. The tree is cut at exactly ``n_groups`` groups; its leaf order gives the reordered
  matrix of the report's figures 5.2/5.3 (groups contiguous).
- :func:`groups_from_mapping` accepts a hand-written mapping (``{group: [classes]}`` like the
  report's G1..G16 lists, or ``{class: group}``); unknown class names are an error (with the
  closest known names), never silently ignored.
- :func:`apply_mapping` relabels a manifest (same image paths, new ``label`` / ``class_name``,
  the originals kept as ``fine_label`` / ``fine_class``): the images are never copied.

A *soft* confusion matrix (:func:`soft_confusion`: summed predicted probabilities per true class)
is a less noisy input than argmax counts when the validation set is small.
"""
from __future__ import annotations

import difflib
import warnings
from dataclasses import dataclass, field
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

LINKAGE_METHOD = "average"
#: a merged group whose pairs are all confused less than this (symmetrised rate) counts as "never
#: confused": soft confusion matrices have no exact zeros, so a threshold is needed
NEVER_CONFUSED = 0.01


@dataclass
class Grouping:
    """A partition of classes into groups.

    ``classes[i]`` is the name of original label ``i``; ``group_of[i]`` its group id;
    ``names[g]`` the name of group ``g`` (a singleton keeps its class name, merged groups are
    ``G1``, ``G2``, ... plus their common category, e.g. ``G3_Facemakeup``); ``order`` lists the
    classes so that every group is contiguous (for the reordered confusion matrix).
    """

    classes: list[str]
    group_of: np.ndarray
    names: list[str]
    order: list[int]
    similarity: np.ndarray | None = None
    linkage: np.ndarray | None = field(default=None, repr=False)

    @property
    def n_groups(self) -> int:
        return len(self.names)

    def members(self, group: int | str) -> list[str]:
        """Class names of a group (by id or name), in label order."""
        g = self.names.index(group) if isinstance(group, str) else int(group)
        return [c for c, gg in zip(self.classes, self.group_of) if gg == g]

    def mapping(self) -> dict[str, str]:
        """``{class name: group name}`` for every class."""
        return {c: self.names[int(g)] for c, g in zip(self.classes, self.group_of)}

    def merged(self) -> dict[str, list[str]]:
        """``{group name: members}`` of the groups with more than one class."""
        return {self.names[g]: self.members(g) for g in range(self.n_groups) if np.sum(self.group_of == g) > 1}

    def relabel(self, labels: Sequence[int] | np.ndarray) -> np.ndarray:
        """Original labels -> group ids (``-1`` stays ``-1``)."""
        labels = np.asarray(labels, dtype=np.int64)
        out = np.full(labels.shape, -1, dtype=np.int64)
        valid = labels >= 0
        if np.any(labels[valid] >= len(self.classes)):
            raise ValueError(f"labels must be in 0..{len(self.classes) - 1}")
        out[valid] = self.group_of[labels[valid]]
        return out

    def table(self) -> pd.DataFrame:
        """One row per group: id, name, size and members."""
        rows = [{"group": g, "name": self.names[g], "size": len(self.members(g)), "members": ", ".join(self.members(g))}
                for g in range(self.n_groups)]
        return pd.DataFrame(rows).set_index("group")

    def to_json(self) -> dict:
        """``{"n_groups", "mapping": {class: group name}, "merged": {group: [classes]}}``."""
        return {"n_groups": self.n_groups, "mapping": self.mapping(), "merged": self.merged()}


def _check_square(cm: np.ndarray) -> np.ndarray:
    cm = np.asarray(cm, dtype=np.float64)
    if cm.ndim != 2 or cm.shape[0] != cm.shape[1]:
        raise ValueError(f"confusion matrix must be square, got shape {cm.shape}")
    if np.any(cm < 0) or not np.all(np.isfinite(cm)):
        raise ValueError("confusion matrix must hold finite non-negative counts or rates")
    return cm


def confusion_rates(cm: np.ndarray) -> np.ndarray:
    """Row-normalised confusion matrix (rows = true class; an empty row stays zero)."""
    cm = _check_square(cm)
    total = cm.sum(axis=1, keepdims=True)
    return np.divide(cm, total, out=np.zeros_like(cm), where=total > 0)


def symmetric_confusion(cm: np.ndarray) -> np.ndarray:
    """``s(i, j) = (r(i, j) + r(j, i)) / 2`` of the row-normalised rates ``r``, diagonal 1."""
    r = confusion_rates(cm)
    s = (r + r.T) / 2.0
    np.fill_diagonal(s, 1.0)
    return s


def soft_confusion(y_true: Sequence[int], probabilities: np.ndarray, n_classes: int | None = None) -> np.ndarray:
    """Summed predicted probabilities per true class: row ``i`` = the sum of the probability
    vectors of the images of class ``i`` (a confusion matrix of expected counts)."""
    y_true = np.asarray(y_true, dtype=np.int64).reshape(-1)
    probabilities = np.asarray(probabilities, dtype=np.float64)
    if probabilities.ndim != 2 or len(probabilities) != len(y_true):
        raise ValueError(f"probabilities must be (n, classes) with n = {len(y_true)}, got {probabilities.shape}")
    n = int(n_classes or probabilities.shape[1])
    out = np.zeros((n, probabilities.shape[1]), dtype=np.float64)
    np.add.at(out, y_true, probabilities)
    return out


def _category(name: str) -> str:
    return name.split("_", 1)[0]


def _name_groups(classes: Sequence[str], group_of: np.ndarray, given: Mapping[int, str] | None = None) -> list[str]:
    names: list[str] = []
    counter = 0
    for g in range(int(group_of.max()) + 1):
        members = [c for c, gg in zip(classes, group_of) if gg == g]
        if given and g in given:
            names.append(given[g])
        elif len(members) == 1:
            names.append(members[0])
        else:
            counter += 1
            cats = {_category(m) for m in members}
            names.append(f"G{counter}_{cats.pop()}" if len(cats) == 1 else f"G{counter}")
    if len(set(names)) != len(names):
        raise ValueError(f"group names are not unique: {names}")
    return names


def _renumber(labels: np.ndarray) -> np.ndarray:
    """Group ids in order of each group's first class (stable, deterministic)."""
    first: dict[int, int] = {}
    for lab in labels:
        first.setdefault(int(lab), len(first))
    return np.array([first[int(lab)] for lab in labels], dtype=np.int64)


def _contiguous_order(group_of: np.ndarray, leaf_order: Sequence[int] | None = None) -> list[int]:
    leaves = list(leaf_order) if leaf_order is not None else list(range(len(group_of)))
    seen: list[int] = []
    for i in leaves:
        if int(group_of[i]) not in seen:
            seen.append(int(group_of[i]))
    return [i for g in seen for i in leaves if group_of[i] == g]


def derive_groups(
    confusion: np.ndarray,
    n_groups: int,
    class_names: Sequence[str] | None = None,
    method: str = LINKAGE_METHOD,
    never_confused: float = NEVER_CONFUSED,
) -> Grouping:
    """Group classes by agglomerative clustering of their symmetrised confusion rates.

    Args:
        confusion: ``(n, n)`` validation confusion matrix (rows = true class): counts, rates or
            the expected counts of :func:`soft_confusion`.
        n_groups: number of groups to cut the tree at (the report: 42 of 73).
        class_names: names of the classes (default ``"0"``, ``"1"``, ...).
        method: SciPy linkage method on the distances ``1 - s`` (default ``"average"``).
        never_confused: merged groups whose every pair has a symmetrised confusion rate below this
            are reported in one warning (the tree had to go that far to reach ``n_groups``).

    The result does not depend on the order of the classes: they are clustered in the order of
    their names (then of their confusion rows, for equal names), so tied distances are resolved
    the same way whatever the label order, and group ids are numbered by label order afterwards.
    """
    from scipy.cluster.hierarchy import cut_tree, leaves_list, linkage
    from scipy.spatial.distance import squareform

    sim = symmetric_confusion(confusion)
    n = len(sim)
    names = [str(c) for c in (class_names if class_names is not None else range(n))]
    if len(names) != n:
        raise ValueError(f"class_names has {len(names)} names for a {n}x{n} confusion matrix")
    if not 1 <= n_groups <= n:
        raise ValueError(f"n_groups must be in 1..{n}, got {n_groups}")
    if n == 1:
        return Grouping(names, np.zeros(1, dtype=np.int64), names, [0], sim)
    # canonical order: by name, then by the class's sorted confusion profile (order-free keys)
    profile = [tuple(np.round(np.sort(sim[i]), 12)) for i in range(n)]
    canon = np.array(sorted(range(n), key=lambda i: (names[i], profile[i])), dtype=np.int64)
    sim_c = sim[np.ix_(canon, canon)]
    dist = np.clip(1.0 - sim_c, 0.0, 1.0)
    np.fill_diagonal(dist, 0.0)
    Z = linkage(squareform(dist, checks=False), method=method)
    labels_c = cut_tree(Z, n_clusters=n_groups).ravel()
    raw = np.empty(n, dtype=np.int64)
    raw[canon] = labels_c
    labels = _renumber(raw)
    blind = 0
    for g in range(n_groups):
        idx = np.flatnonzero(labels == g)
        if len(idx) > 1:
            block = sim[np.ix_(idx, idx)]
            if np.all(block[~np.eye(len(idx), dtype=bool)] < never_confused):
                blind += 1
    if blind:
        warnings.warn(f"derive_groups: {blind} group(s) merge classes that were never confused with each "
                      f"other (every pair below a symmetrised confusion rate of {never_confused}; "
                      f"n_groups={n_groups} is below the number of confusion clusters)", stacklevel=2)
    order = _contiguous_order(labels, [int(canon[i]) for i in leaves_list(Z)])
    return Grouping(names, labels, _name_groups(names, labels), order, sim, Z)


def groups_from_mapping(mapping: Mapping[str, object], class_names: Sequence[str]) -> Grouping:
    """A :class:`Grouping` from a hand-written mapping: ``{group: [classes, ...]}`` (the report's
    G1..G16 lists) or ``{class: group}``. Classes not mentioned stay alone. A name that is not a
    class, or a class in two groups, raises ``ValueError`` naming it (with the closest class names).
    """
    classes = [str(c) for c in class_names]
    index = {c: i for i, c in enumerate(classes)}
    groups: dict[str, list[str]] = {}
    if all(isinstance(v, str) for v in mapping.values()):
        for cls, grp in mapping.items():
            groups.setdefault(str(grp), []).append(str(cls))
    else:
        for grp, members in mapping.items():
            if isinstance(members, str) or not isinstance(members, Sequence):
                raise ValueError(f"group {grp!r}: expected a list of class names, got {members!r}")
            groups[str(grp)] = [str(m) for m in members]
    problems: list[str] = []
    owner: dict[str, str] = {}
    for grp, members in groups.items():
        for m in members:
            if m not in index:
                close = difflib.get_close_matches(m.strip(), classes, n=2)
                problems.append(f"group {grp!r}: unknown class {m!r}" + (f" (did you mean {close}?)" if close else ""))
            elif m in owner and owner[m] != grp:
                problems.append(f"class {m!r} is in groups {owner[m]!r} and {grp!r}")
            else:
                owner[m] = grp
    if problems:
        raise ValueError("bad group mapping:\n  - " + "\n  - ".join(problems))
    raw = np.empty(len(classes), dtype=np.int64)
    given: dict[int, str] = {}
    next_id = 0
    group_ids: dict[str, int] = {}
    for i, c in enumerate(classes):
        key = owner.get(c, f"\0{c}")
        if key not in group_ids:
            group_ids[key] = next_id
            if not key.startswith("\0"):
                given[next_id] = key
            next_id += 1
        raw[i] = group_ids[key]
    sim = None
    return Grouping(classes, raw, _name_groups(classes, raw, given), _contiguous_order(raw), sim)


def apply_mapping(
    manifest: pd.DataFrame,
    grouping: Grouping,
    label_column: str = "label",
    class_column: str = "class_name",
) -> pd.DataFrame:
    """A copy of ``manifest`` relabelled to the groups (no file is copied or moved): ``label`` =
    group id, ``class_name`` = group name, the originals kept as ``fine_label`` / ``fine_class``.
    Raises ``ValueError`` for a class the grouping does not know or a label/class mismatch."""
    for column in (label_column, class_column):
        if column not in manifest.columns:
            raise KeyError(f"manifest has no {column!r} column; columns: {list(manifest.columns)}")
    index = {c: i for i, c in enumerate(grouping.classes)}
    unknown = sorted(set(manifest[class_column]) - set(index))
    if unknown:
        raise ValueError(f"manifest classes not in the grouping: {unknown}")
    expected = manifest[class_column].map(index).to_numpy(dtype=np.int64)
    labels = manifest[label_column].to_numpy(dtype=np.int64)
    bad = np.flatnonzero(expected != labels)
    if len(bad):
        i = bad[0]
        raise ValueError(f"manifest row {i}: label {labels[i]} but class {manifest[class_column].iloc[i]!r} "
                         f"is label {expected[i]} in the grouping ({len(bad)} such row(s))")
    out = manifest.copy()
    out["fine_label"] = labels
    out["fine_class"] = manifest[class_column].to_numpy()
    groups = grouping.group_of[labels]
    out[label_column] = groups.astype(np.int64)
    out[class_column] = np.asarray(grouping.names, dtype=object)[groups]
    return out


def reorder(cm: np.ndarray, order: Sequence[int]) -> np.ndarray:
    """Rows and columns of a square matrix permuted by ``order`` (the diagonal is preserved)."""
    cm = np.asarray(cm)
    order = np.asarray(order, dtype=np.int64)
    if sorted(order.tolist()) != list(range(len(cm))):
        raise ValueError(f"order must be a permutation of 0..{len(cm) - 1}")
    return cm[np.ix_(order, order)]


def group_accuracy(cm: np.ndarray, grouping: Grouping) -> float:
    """Accuracy of a fine-class confusion matrix once predictions are counted per group (a
    prediction of a sibling class counts as correct)."""
    cm = _check_square(cm)
    g = grouping.group_of
    same = g[:, None] == g[None, :]
    total = cm.sum()
    return float(cm[same].sum() / total) if total else float("nan")


def adjusted_rand(a: Grouping | Sequence[int], b: Grouping | Sequence[int]) -> float:
    """Adjusted Rand index between two groupings of the same classes (1 = identical)."""
    from sklearn.metrics import adjusted_rand_score

    la = a.group_of if isinstance(a, Grouping) else np.asarray(a)
    lb = b.group_of if isinstance(b, Grouping) else np.asarray(b)
    return float(adjusted_rand_score(la, lb))


def plot_grouped_confusion(
    cm: np.ndarray,
    grouping: Grouping,
    title: str = "",
    ax=None,
    label_size: float = 7.0,
):
    """The reordered, row-normalised confusion matrix with each merged group boxed (report
    figures 5.2 and 5.3), large enough to read every class name (0.18 inch per class). Returns the
    figure; :func:`kerasmt.plots.plot_most_confused` lists the worst pairs legibly."""
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    rates = reorder(confusion_rates(cm), grouping.order)
    n = len(rates)
    if ax is None:
        side = max(4.0, min(16.0, 0.18 * n + 2.5))
        fig, ax = plt.subplots(figsize=(side + 0.8, side), dpi=100)
    else:
        fig = ax.figure
    image = ax.imshow(np.sqrt(rates), cmap="magma_r", vmin=0, vmax=1, interpolation="nearest")
    labels = [grouping.classes[i] for i in grouping.order]
    ax.set_xticks(range(n))
    ax.set_yticks(range(n))
    ax.set_xticklabels(labels, rotation=90, fontsize=label_size)
    ax.set_yticklabels(labels, fontsize=label_size)
    groups = grouping.group_of[grouping.order]
    start = 0
    while start < n:
        stop = start
        while stop + 1 < n and groups[stop + 1] == groups[start]:
            stop += 1
        if stop > start:
            ax.add_patch(Rectangle((start - 0.5, start - 0.5), stop - start + 1, stop - start + 1,
                                   fill=False, edgecolor="tab:red", linewidth=1.2))
        start = stop + 1
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title or f"confusion rates, reordered: {grouping.n_groups} groups")
    cbar = fig.colorbar(image, ax=ax, fraction=0.04, pad=0.02)
    cbar.set_ticks([0, 0.1 ** 0.5, 0.25 ** 0.5, 0.5 ** 0.5, 1])
    cbar.set_ticklabels(["0", ".1", ".25", ".5", "1"])
    fig.tight_layout()
    from kerasmt.plots import readable

    return readable(fig)

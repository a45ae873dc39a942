"""kerasmt.regroup: groups from a confusion matrix with known blocks, hand-made mappings, relabelling."""
from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from kerasmt import regroup
from kerasmt.datasets import folder_classes as fc

BLOCKS = [[0, 1, 2], [3, 4], [5], [6, 7], [8, 9, 10, 11]]
NAMES = ["Face_A", "Face_B", "Face_C", "Hair_A", "Hair_B", "Lips_A", "Body_A", "Lips_B", "Oral_A", "Oral_B",
         "Oral_C", "Oral_D"]


def _block_confusion(seed: int = 0, per_class: int = 100) -> np.ndarray:
    """Counts where a class is confused with the members of its block (30-60 %) and a little with
    everything else (0-3 %)."""
    rng = np.random.default_rng(seed)
    n = sum(len(b) for b in BLOCKS)
    cm = np.zeros((n, n))
    for block in BLOCKS:
        for i in block:
            row = rng.uniform(0, 0.03, n)
            for j in block:
                row[j] = rng.uniform(0.3, 0.6)
            cm[i] = np.round(per_class * row / row.sum())
    return cm


def _partition(grouping: regroup.Grouping) -> set[frozenset[int]]:
    return {frozenset(np.flatnonzero(grouping.group_of == g).tolist()) for g in range(grouping.n_groups)}


def test_derive_groups_finds_the_blocks():
    cm = _block_confusion()
    grouping = regroup.derive_groups(cm, len(BLOCKS), NAMES)
    assert _partition(grouping) == {frozenset(b) for b in BLOCKS}
    assert grouping.n_groups == 5
    # the reorder keeps every group contiguous and is a permutation
    assert sorted(grouping.order) == list(range(len(NAMES)))
    ordered = grouping.group_of[grouping.order]
    assert all(len(set(ordered[i:j])) == 1 for i, j in _runs(ordered))
    assert len(_runs(ordered)) == grouping.n_groups
    # names: singletons keep theirs, merged groups share a category when they have one
    assert grouping.mapping()["Lips_A"] == "Lips_A"
    assert grouping.mapping()["Oral_C"].endswith("_Oral")
    assert grouping.mapping()["Body_A"] == grouping.mapping()["Lips_B"] and grouping.mapping()["Body_A"].startswith("G")
    assert regroup.adjusted_rand(grouping, [next(k for k, b in enumerate(BLOCKS) if i in b) for i in range(12)]) == 1.0


def _runs(labels):
    runs, start = [], 0
    for i in range(1, len(labels) + 1):
        if i == len(labels) or labels[i] != labels[start]:
            runs.append((start, i))
            start = i
    return runs


def test_derive_groups_ignores_class_order_and_uses_both_directions():
    cm = _block_confusion(seed=3)
    perm = np.random.default_rng(1).permutation(len(NAMES))
    shuffled = regroup.derive_groups(cm[np.ix_(perm, perm)], len(BLOCKS))
    back = {frozenset(int(perm[i]) for i in group) for group in _partition(shuffled)}
    assert back == {frozenset(b) for b in BLOCKS}
    # one-directional confusion (3 -> 4 only) still groups 3 and 4: the rates are symmetrised
    one_way = np.eye(6) * 50
    one_way[3, 4] = 40
    one_way[0, 1] = one_way[1, 0] = 20
    grouping = regroup.derive_groups(one_way, 4)
    assert _partition(grouping) == {frozenset({0, 1}), frozenset({3, 4}), frozenset({2}), frozenset({5})}


def test_derive_groups_limits_and_warnings():
    cm = _block_confusion()
    assert regroup.derive_groups(cm, len(NAMES)).n_groups == len(NAMES)
    assert regroup.derive_groups(cm, 1).n_groups == 1
    with pytest.warns(UserWarning, match="never confused"):
        regroup.derive_groups(np.eye(4) * 10, 2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        regroup.derive_groups(cm, len(BLOCKS))
    with pytest.raises(ValueError, match="n_groups"):
        regroup.derive_groups(cm, 0)
    with pytest.raises(ValueError, match="square"):
        regroup.derive_groups(np.ones((3, 4)), 2)
    with pytest.raises(ValueError, match="class_names"):
        regroup.derive_groups(cm, 2, ["a", "b"])


def test_soft_confusion_and_rates():
    y = np.array([0, 0, 1, 2])
    proba = np.array([[0.5, 0.5, 0], [1, 0, 0], [0.2, 0.8, 0], [0, 0.1, 0.9]])
    soft = regroup.soft_confusion(y, proba)
    assert np.allclose(soft.sum(axis=1), [2, 1, 1])
    assert np.allclose(soft[0], [1.5, 0.5, 0])
    s = regroup.symmetric_confusion(soft)
    assert np.allclose(s, s.T) and np.allclose(np.diag(s), 1)
    assert s[0, 1] == pytest.approx((0.5 / 2 + 0.2 / 1) / 2)  # rates 0 -> 1 and 1 -> 0, averaged


def test_groups_from_mapping_both_forms_and_errors():
    by_group = regroup.groups_from_mapping({"Face": ["Face_A", "Face_B"], "Oral": ["Oral_A", "Oral_D"]}, NAMES)
    by_class = regroup.groups_from_mapping({"Face_A": "Face", "Face_B": "Face", "Oral_A": "Oral", "Oral_D": "Oral"}, NAMES)
    assert np.array_equal(by_group.group_of, by_class.group_of)
    assert by_group.n_groups == len(NAMES) - 2
    assert by_group.members("Face") == ["Face_A", "Face_B"] and by_group.mapping()["Hair_A"] == "Hair_A"
    assert by_group.merged() == {"Face": ["Face_A", "Face_B"], "Oral": ["Oral_A", "Oral_D"]}
    with pytest.raises(ValueError, match=r"unknown class 'Face_Z'.*did you mean"):
        regroup.groups_from_mapping({"G": ["Face_A", "Face_Z"]}, NAMES)
    with pytest.raises(ValueError, match="'Face_A ' "):  # a trailing space is not silently accepted
        regroup.groups_from_mapping({"G": ["Face_A "]}, NAMES)
    with pytest.raises(ValueError, match="in groups"):
        regroup.groups_from_mapping({"G1": ["Face_A"], "G2": ["Face_A"]}, NAMES)


def test_report_groups_give_45_classes():
    grouping = regroup.groups_from_mapping(fc.REPORT_GROUPS, fc.CLASSES)
    assert grouping.n_groups == 45  # 73 - 44 + 16: the report's text lists only 16 of its merges
    assert len(grouping.members("G1")) == 9
    with pytest.raises(ValueError, match="Body_Handstreatment"):  # the report's spelling is suggested away
        regroup.groups_from_mapping({"G1": ["Body_Handtreatment"]}, fc.CLASSES)


def test_apply_mapping_relabels_without_touching_paths():
    manifest = pd.DataFrame({"path": [f"/data/{c}/{i}.jpg" for c in NAMES for i in range(2)],
                             "class_name": [c for c in NAMES for _ in range(2)],
                             "label": [i for i in range(len(NAMES)) for _ in range(2)]})
    grouping = regroup.derive_groups(_block_confusion(), len(BLOCKS), NAMES)
    out = regroup.apply_mapping(manifest, grouping)
    assert out["path"].tolist() == manifest["path"].tolist()
    assert out["fine_label"].tolist() == manifest["label"].tolist()
    assert out["label"].tolist() == grouping.group_of[manifest["label"]].tolist()
    assert out["class_name"].tolist() == [grouping.names[g] for g in out["label"]]
    assert manifest["label"].max() == len(NAMES) - 1  # the input is not modified
    assert np.array_equal(grouping.relabel([0, 5, -1]), [grouping.group_of[0], grouping.group_of[5], -1])
    bad = manifest.assign(class_name=manifest["class_name"].replace("Face_A", "Nope"))
    with pytest.raises(ValueError, match="Nope"):
        regroup.apply_mapping(bad, grouping)
    swapped = manifest.assign(label=manifest["label"][::-1].to_numpy())
    with pytest.raises(ValueError, match="row 0"):
        regroup.apply_mapping(swapped, grouping)


def test_group_accuracy_and_reorder():
    cm = _block_confusion()
    grouping = regroup.derive_groups(cm, len(BLOCKS), NAMES)
    fine = np.trace(cm) / cm.sum()
    coarse = regroup.group_accuracy(cm, grouping)
    assert coarse > 0.8 and fine < 0.6
    r = regroup.reorder(cm, grouping.order)
    assert np.array_equal(np.sort(np.diag(r)), np.sort(np.diag(cm)))
    with pytest.raises(ValueError, match="permutation"):
        regroup.reorder(cm, [0, 0, 1])
    fig = regroup.plot_grouped_confusion(cm, grouping)
    assert len(fig.axes[0].patches) == 4  # one box per merged group


def _named_partition(grouping: regroup.Grouping) -> set[frozenset[str]]:
    return {frozenset(grouping.members(g)) for g in range(grouping.n_groups)}


def test_derive_groups_ties_do_not_depend_on_class_order():
    # a ring of equally confused neighbours: every merge is a tie, resolved the same for every order
    n = 12
    cm = np.eye(n) * 10
    for i in range(n):
        cm[i, (i + 1) % n] = cm[(i + 1) % n, i] = 2
    expected = _named_partition(regroup.derive_groups(cm, 5, NAMES))
    for seed in range(6):
        perm = np.random.default_rng(seed).permutation(n)
        grouping = regroup.derive_groups(cm[np.ix_(perm, perm)], 5, [NAMES[i] for i in perm])
        assert _named_partition(grouping) == expected
        ordered = grouping.group_of[grouping.order]
        assert len(_runs(ordered)) == grouping.n_groups  # still contiguous


def test_never_confused_warning_uses_a_threshold():
    # soft confusion has no exact zeros: 1e-4 between two classes still counts as never confused
    soft = np.full((4, 4), 1e-4) + np.eye(4) * 10
    with pytest.warns(UserWarning, match="never confused"):
        regroup.derive_groups(soft, 2)
    soft[0, 1] = soft[1, 0] = 3.0
    soft[2, 3] = soft[3, 2] = 3.0
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        regroup.derive_groups(soft, 2)
    with pytest.warns(UserWarning, match="never confused"):
        regroup.derive_groups(soft, 2, never_confused=0.5)

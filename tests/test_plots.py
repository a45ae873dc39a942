"""Readable figures (issue 19, item 4): grids not rows, dpi >= 100, captions >= 8 pt, integer epoch
ticks, a legible many-class confusion summary."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pandas as pd
import pytest

from kerasmt import plots


def _history(tasks, epochs=8):
    rng = np.random.default_rng(0)
    cols = {}
    for t in tasks:
        for m in ("loss", "accuracy"):
            cols[f"{t}_{m}"] = rng.random(epochs)
            cols[f"val_{t}_{m}"] = rng.random(epochs)
    cols["loss"], cols["val_loss"] = rng.random(epochs), rng.random(epochs)
    return pd.DataFrame(cols, index=pd.RangeIndex(1, epochs + 1, name="epoch"))


def _titles(fig):
    texts = [ax.title for ax in fig.axes if ax.title.get_text()]
    if fig._suptitle is not None:
        texts.append(fig._suptitle)
    return texts


def test_multitask_history_is_a_grid_with_readable_text():
    fig = plots.plot_history(_history(["gender", "age", "race"]), tasks=["gender", "age", "race"], title="t")
    width, height = fig.get_size_inches() * fig.dpi
    assert fig.dpi >= 100 and width / height < 3  # was 2781 x 299 px: one row of seven panels
    visible = [ax for ax in fig.axes if ax.axison]
    assert len(visible) == 7  # total loss + 3 losses, 3 accuracies
    assert all(t.get_fontsize() >= 8 for t in _titles(fig))
    for ax in visible:
        assert all(float(x).is_integer() for x in ax.get_xticks())
        assert ax.get_legend() is None or all(t.get_fontsize() >= 8 for t in ax.get_legend().get_texts())
    single = plots.plot_history(_history([]), metrics=("loss",))
    assert len([ax for ax in single.axes if ax.axison]) == 1
    with pytest.raises(KeyError):
        plots.plot_history(_history([]), metrics=("nope",))


def test_image_grid_captions_and_readable():
    fig = plots.image_grid(np.zeros((3, 8, 8), "uint8"), ["a", "b", "c"])
    assert fig.dpi >= 100 and all(ax.title.get_fontsize() >= 8 for ax in fig.axes if ax.title.get_text())
    small = matplotlib.pyplot.figure(dpi=50)
    small.suptitle("x", fontsize=4)
    assert plots.readable(small).dpi == 100 and small._suptitle.get_fontsize() == 8


def test_most_confused_pairs_are_ordered_and_plotted():
    cm = np.array([[8, 2, 0], [0, 5, 5], [1, 0, 9]])
    pairs = plots.most_confused_pairs(cm, ["a", "b", "c"], k=2)
    assert pairs[["true", "predicted"]].values.tolist() == [["b", "c"], ["a", "b"]]
    assert pairs["share of true class"].tolist() == [0.5, 0.2]
    fig = plots.plot_most_confused(cm, ["a", "b", "c"], k=3)
    assert fig.dpi >= 100 and all(t.get_fontsize() >= 8 for t in fig.axes[0].get_yticklabels())
    with pytest.raises(ValueError, match="square"):
        plots.most_confused_pairs(np.ones((2, 3)), ["a", "b"])


def test_73_class_confusion_is_large_enough_to_read():
    from kerasmt import regroup
    from kerasmt.datasets import folder_classes as fc

    rng = np.random.default_rng(0)
    cm = np.diag(rng.integers(3, 10, 73)).astype(float) + rng.poisson(0.3, (73, 73))
    fig = regroup.plot_grouped_confusion(cm, regroup.derive_groups(cm, 42, list(fc.CLASSES)))
    side = fig.get_size_inches().min()
    assert side >= 73 * 7 / 72 * 1.1  # every 7-pt class name has its own row
    assert fig.axes[0].get_yticklabels()[0].get_fontsize() >= 7


def test_attribute_curves_and_bad_cases_are_readable():
    from kerasmt.studies import attribute_mtl as study

    tasks = study.TASKS
    history = _history(tasks)
    y = {t: np.array([0, 1, 1, 0]) for t in tasks}
    p = {t: np.array([1, 1, 0, 0]) for t in tasks}
    res = study.AttributeResult("mtl", None, history, 0.0, y, p, {t: np.array([.9, .8, .7, .6]) for t in tasks},
                                {}, {}, {})
    fig = study.plot_curves(res)
    rows, cols = fig.axes[0].get_gridspec().get_geometry()
    assert cols == 4 and rows == 4 and fig.dpi >= 100
    assert all(t.get_fontsize() >= 8 for t in _titles(fig))
    assert all(float(x).is_integer() for x in fig.axes[0].get_xticks())

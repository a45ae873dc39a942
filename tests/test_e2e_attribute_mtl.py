"""``kerasmt run attribute_mtl --smoke`` and ``kerasmt data synth|check attribute_mtl`` end to end."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pandas as pd
import pytest

from kerasmt.datasets import STUDY_DATASETS

TASKS = ("gender", "torso_type", "torso_colour", "leg_type", "leg_colour", "luggage")


def _kerasmt(*args, **kw):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    return subprocess.run([sys.executable, "-m", "kerasmt", *args], capture_output=True, text=True, env=env, **kw)


@pytest.mark.slow
def test_run_attribute_mtl_smoke_writes_every_output(tmp_path):
    out = tmp_path / "attr"
    proc = _kerasmt("run", "attribute_mtl", "--smoke", "--out", str(out), timeout=1800)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
    for name in ("attribute_mtl.ipynb", "attribute_mtl.html", "metrics.json"):
        assert (out / name).is_file(), name
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["params"] == {"mtl": 518_190, "mtl_cw_l2": 518_190, "mtl_seg": 542_687}
    # the report's configuration first, class weights + L2 as the second row
    assert metrics["configs"]["mtl"] == {"class_weights": False, "weight_decay": 0.0, "augment": True}
    assert metrics["configs"]["mtl_cw_l2"]["class_weights"] and metrics["configs"]["mtl_cw_l2"]["weight_decay"] > 0
    for model in ("mtl", "mtl_cw_l2", "mtl_seg"):
        assert set(metrics["test"][model]) == set(TASKS)
        for values in metrics["test"][model].values():
            assert 0.0 <= values["accuracy"] <= 1.0 and 0.0 <= values["macro_f1"] <= 1.0
    assert set(metrics["mask_iou"]) == {"background", "hair", "legs", "luggage", "shoes", "torso",
                                        "skin_arms", "skin_face", "skin_legs"}
    summary = metrics["summary"]
    assert summary["params"] == 518_190 and {"mtl.mean_acc", "mtl_seg.mean_acc", "mask_miou"} <= set(summary)
    models = sorted(p.name for p in (out / "models").glob("*.keras") if not p.name.endswith(".predict.keras"))
    predictors = sorted(p.name for p in (out / "models").glob("*.predict.keras"))  # raw-image models
    assert models == ["mtl.keras", "mtl_cw_l2.keras", "mtl_seg.keras"]
    assert predictors == ["mtl.predict.keras", "mtl_cw_l2.predict.keras", "mtl_seg.predict.keras"]


@pytest.mark.skipif("attribute_mtl" not in STUDY_DATASETS,
                    reason="kerasmt.datasets.STUDY_DATASETS has no attribute_mtl entry yet")
def test_data_synth_then_check(tmp_path):
    root = tmp_path / "attr"
    proc = _kerasmt("data", "synth", "attribute_mtl", str(root), "--n", "12", "--seed", "2", timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert len(pd.read_csv(root / "Train_Data" / "Train.csv")) == 12
    ok = _kerasmt("data", "check", "attribute_mtl", str(root), timeout=600)
    assert ok.returncode == 0 and "OK" in ok.stdout, ok.stdout + ok.stderr
    (root / "Train_Data" / "Binary_Maps" / "0003_luggage.png").unlink()
    bad = _kerasmt("data", "check", "attribute_mtl", str(root), timeout=600)
    assert bad.returncode == 1 and "0003_luggage.png" in bad.stdout + bad.stderr

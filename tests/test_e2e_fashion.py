"""``kerasmt run fashion --smoke`` and ``kerasmt data synth|check fashion`` end to end."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pandas as pd
import pytest

from kerasmt.datasets import STUDY_DATASETS


def _kerasmt(*args, **kw):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    return subprocess.run([sys.executable, "-m", "kerasmt", *args], capture_output=True, text=True, env=env, **kw)


@pytest.mark.slow
def test_run_fashion_smoke_writes_every_output(tmp_path):
    out = tmp_path / "fashion"
    proc = _kerasmt("run", "fashion", "--smoke", "--out", str(out), timeout=1800)
    assert proc.returncode == 0, proc.stderr[-5000:]
    for name in ("fashion.ipynb", "fashion.html", "metrics.json"):
        assert (out / name).is_file(), name
    metrics = json.loads((out / "metrics.json").read_text())
    for model in ("multilabel", "refinenet", "mask_rcnn"):
        entry = metrics["models"][model]
        assert set(entry) >= {"emr", "oa", "jss", "map50", "f1", "seconds_per_image", "tto"}
        for key in ("emr", "oa", "jss"):
            assert 0.0 <= entry[key] <= 1.0
        assert entry["seconds_per_image"] > 0
    assert metrics["models"]["multilabel"]["tto"] is None  # no masks, no segmentation score
    assert metrics["models"]["refinenet"]["tto"] is not None
    assert metrics["models"]["mask_rcnn"]["tto"] is not None and 0.0 <= metrics["models"]["mask_rcnn"]["map50"] <= 1.0
    assert metrics["timing"]["mask_rcnn"]["size"] == 128  # smoke: IMAGE_SIZE_TIMING 128
    assert metrics["worked_examples"]["table_10_rows_ok"]["Base2"] is False
    assert metrics["worked_examples"]["table_2"]["oa"] == pytest.approx(0.8)
    assert metrics["report"]["Full4"]["tto"] == pytest.approx(1.853, abs=1e-3)
    assert "refinenet.map50" in metrics["summary"] and "mask_rcnn.map50" in metrics["summary"]
    models = sorted(p.name for p in (out / "models").glob("*.keras"))
    assert models == ["mask_rcnn_light.keras", "multilabel_light.keras", "refinenet_light.keras"]


@pytest.mark.skipif("fashion" not in STUDY_DATASETS, reason="kerasmt.datasets.STUDY_DATASETS has no 'fashion' yet")
def test_data_synth_then_check(tmp_path):
    root = tmp_path / "fashion"
    proc = _kerasmt("data", "synth", "fashion", str(root), "--n", "6", "--seed", "3", timeout=600)
    assert proc.returncode == 0, proc.stderr
    frame = pd.read_csv(root / "train.csv", dtype=str, keep_default_na=False)
    assert frame["ImageId"].nunique() == 6
    ok = _kerasmt("data", "check", "fashion", str(root), timeout=600)
    assert ok.returncode == 0 and "OK" in ok.stdout, ok.stdout + ok.stderr

    frame.loc[2, "EncodedPixels"] = "1 2 3"
    frame.loc[4, "ClassId"] = "46"
    frame.to_csv(root / "train.csv", index=False)
    bad = _kerasmt("data", "check", "fashion", str(root), timeout=600)
    assert bad.returncode == 1
    text = bad.stdout + bad.stderr
    assert "line 4" in text and "EncodedPixels" in text and "odd number" in text
    assert "line 6" in text and "unknown category id 46" in text

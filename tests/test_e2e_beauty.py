"""``kerasmt run beauty --smoke`` end to end, and ``kerasmt data synth|check beauty``."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from kerasmt.datasets import STUDY_DATASETS


def _kerasmt(*args, **kw):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    return subprocess.run([sys.executable, "-m", "kerasmt", *args], capture_output=True, text=True, env=env, **kw)


@pytest.mark.slow
def test_run_beauty_smoke_writes_every_output(tmp_path):
    out = tmp_path / "beauty"
    proc = _kerasmt("run", "beauty", "--smoke", "--out", str(out), timeout=1800)
    assert proc.returncode == 0, proc.stderr[-5000:]
    for name in ("beauty.ipynb", "beauty.html", "metrics.json"):
        assert (out / name).is_file(), name
    metrics = json.loads((out / "metrics.json").read_text())
    assert set(metrics["sweep"]) == {"full", "grouped"}
    assert set(metrics["sweep"]["full"]) == {"tl", "ft-1"}
    for results in metrics["sweep"].values():
        for values in results.values():
            assert 0.0 <= values["val_accuracy"] <= values["val_top5"] <= 1.0
    for tag, n in (("full", 73), ("grouped", 42)):
        test = metrics["test"][tag]
        assert test["n_classes"] == n and test["best_regime"] in metrics["sweep"][tag]
        assert 0.0 <= test["accuracy"] <= test["top5"] <= 1.0
    groups = metrics["groups"]
    assert groups["n_groups"] == 42 and len(groups["mapping"]) == 73
    assert len(set(groups["mapping"].values())) == 42
    assert set(metrics["scratch"]) == {"InceptionV3", "ResNet50", "SimpleNet"}
    summary = metrics["summary"]
    assert summary["classes"] == 73 and summary["groups"] == 42
    assert {"tl_val_acc", "best_val_acc", "test_acc", "grouped_test_acc"} <= set(summary)
    assert all(not isinstance(v, (dict, list)) for v in summary.values())
    models = sorted(p.name for p in (out / "models").glob("*.keras") if not p.name.endswith(".predict.keras"))
    predictors = sorted(p.name for p in (out / "models").glob("*.predict.keras"))  # raw-image models
    best_full, best_grouped = metrics["test"]["full"]["best_regime"], metrics["test"]["grouped"]["best_regime"]
    assert models == sorted([f"full_{best_full.replace('-', '')}.keras", f"grouped_{best_grouped.replace('-', '')}.keras",
                             "scratch_inceptionv3.keras", "scratch_resnet50.keras", "scratch_simplenet.keras"])
    assert predictors == sorted([f"full_{best_full.replace('-', '')}.predict.keras",
                                 f"grouped_{best_grouped.replace('-', '')}.predict.keras"])


@pytest.mark.skipif("beauty" not in STUDY_DATASETS,
                    reason="register 'beauty': 'kerasmt.datasets.folder_classes' in STUDY_DATASETS")
def test_data_synth_then_check(tmp_path):
    root = tmp_path / "beauty"
    proc = _kerasmt("data", "synth", "beauty", str(root), "--n", "10", "--seed", "3", timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert len([p for p in root.iterdir() if p.is_dir()]) == 73
    ok = _kerasmt("data", "check", "beauty", str(root), timeout=600)
    assert ok.returncode == 0 and "OK" in ok.stdout, ok.stdout + ok.stderr
    folder = root / "boxes_Setline_Setline_1205"
    (folder / "0001.jpg").write_bytes(b"not a jpeg")  # no image header: load skips it (a warning)
    (folder / "notes.txt").write_text("x")
    skipped = _kerasmt("data", "check", "beauty", str(root), timeout=600)
    text = skipped.stdout + skipped.stderr
    assert skipped.returncode == 0, text
    assert "0001.jpg: not an image file" in text and "notes.txt: not an image file" in text
    assert _kerasmt("data", "check", "beauty", str(root), "--strict", timeout=600).returncode == 1
    (folder / "0002.jpg").write_bytes((folder / "0003.jpg").read_bytes()[:300])  # a JPEG cut short
    bad = _kerasmt("data", "check", "beauty", str(root), timeout=600)
    assert bad.returncode == 1
    assert "0002.jpg: image cannot be decoded" in bad.stdout + bad.stderr

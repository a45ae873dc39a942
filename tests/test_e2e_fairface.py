"""``kerasmt run fairface --smoke`` and ``kerasmt data synth|check fairface`` end to end."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pandas as pd
import pytest


def _kerasmt(*args, **kw):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    return subprocess.run([sys.executable, "-m", "kerasmt", *args], capture_output=True, text=True, env=env, **kw)


@pytest.mark.slow
def test_run_fairface_smoke_writes_every_output(tmp_path):
    out = tmp_path / "ff"
    proc = _kerasmt("run", "fairface", "--smoke", "--out", str(out), timeout=1800)
    assert proc.returncode == 0, proc.stderr[-5000:]
    for name in ("fairface.ipynb", "fairface.html", "metrics.json"):
        assert (out / name).is_file(), name
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["params"]["dense_gender"] == 1_625_902
    assert metrics["params"]["multitask"] == 106_315 and metrics["params"]["multitask_race"] == 147_922
    assert metrics["params"]["vae"] == 104_341
    assert set(metrics["val_accuracy"]["multitask"]) == {"gender", "age"}
    assert set(metrics["val_accuracy"]["multitask_race"]) == {"gender", "age", "race"}
    assert metrics["weights"]["small_cnn_gender"].startswith("final epoch")
    for accuracies in metrics["val_accuracy"].values():
        assert all(0.0 <= v <= 1.0 for v in accuracies.values())
    models = sorted(p.name for p in (out / "models").glob("*.keras") if not p.name.endswith(".predict.keras"))
    predictors = sorted(p.name for p in (out / "models").glob("*.predict.keras"))  # raw-image models
    assert models == sorted(
        ["dense_gender.keras", "dense_age.keras", "small_cnn_gender.keras", "small_cnn_age.keras",
         "own_cnn_gender.keras", "own_cnn_age.keras", "multitask_gender_age.keras",
         "multitask_gender_age_race.keras", "vae.keras"]
    )
    assert predictors == sorted(m.replace(".keras", ".predict.keras") for m in models if m != "vae.keras")


def test_data_synth_then_check(tmp_path):
    root = tmp_path / "ff"
    proc = _kerasmt("data", "synth", "fairface", str(root), "--n", "24", "--seed", "3", timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert len(pd.read_csv(root / "fairface_label_train.csv")) == 24
    ok = _kerasmt("data", "check", "fairface", str(root), timeout=600)
    assert ok.returncode == 0 and "OK" in ok.stdout, ok.stdout + ok.stderr

    # break it three ways: a bad label, a missing image, a missing column
    train = pd.read_csv(root / "fairface_label_train.csv")
    train.loc[2, "age"] = "200-300"
    train.to_csv(root / "fairface_label_train.csv", index=False)
    (root / train.loc[5, "file"]).unlink()
    val = pd.read_csv(root / "fairface_label_val.csv").drop(columns=["race"])
    val.to_csv(root / "fairface_label_val.csv", index=False)
    bad = _kerasmt("data", "check", "fairface", str(root), timeout=600)
    assert bad.returncode == 1
    text = bad.stdout + bad.stderr
    assert "200-300" in text
    assert train.loc[5, "file"] in text
    assert "race" in text and "fairface_label_val.csv" in text

"""kerasmt.scale (real sizes, real-size synthetic datasets, workloads), `kerasmt data synth --real`
and the two benchmarks at tiny sizes (they must run on a CPU; their figures are not checked here)."""
from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from kerasmt import scale
from kerasmt.datasets import fairface, fashion, folder_classes, utkface

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def _benchmark(name: str):
    spec = importlib.util.spec_from_file_location(f"bench_{name}", BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_real_sizes_and_fractions():
    assert scale.REAL["fairface"].images == sum(scale.FAIRFACE_SPLIT) == 97_698
    assert scale.n_images("beauty", 0.1) == 7_288 and scale.n_images("utkface") == 23_708
    with pytest.raises(ValueError, match="known"):
        scale.n_images("recommender")


def test_distinct_copies_keep_labels_and_real_image_sizes(tmp_path):
    root = scale.synthesize_real("fairface", tmp_path / "ff", n=40, distinct=4)
    train = fairface.load(root, "train")
    assert len(train) + len(fairface.load(root, "val")) == 40
    first = Path(train["path"][0]).read_bytes()
    assert Path(train["path"][4]).read_bytes() == first and Image.open(train["path"][0]).size == (224, 224)
    assert (train[["gender", "age", "race"]].iloc[4] == train[["gender", "age", "race"]].iloc[0]).all()
    with pytest.warns(utkface.MalformedNameWarning, match="skipped 3 of 33"):  # the real set's three
        utk = utkface.load(scale.synthesize_real("utkface", tmp_path / "utk", n=30, distinct=5))
    assert len(utk) == 30 and Image.open(utk["path"].iloc[0]).size == (200, 200)
    beauty = folder_classes.load(folder_classes.synthesize(tmp_path / "b", n=3, image_size=40, distinct=1), split=None)
    per_class = beauty.groupby("class_name")["path"].apply(lambda p: len({Path(q).read_bytes() for q in p}))
    assert (per_class == 1).all()
    segments = fashion.load(fashion.synthesize(tmp_path / "f", n=6, distinct=2, image_scale=2.5))
    images = fashion.image_table(fashion.reduce_labels(segments, "full")[0])
    assert len(images) == 6 and images["height"].max() > 512
    with pytest.raises(ValueError, match="distinct"):
        fairface.synthesize(tmp_path / "bad", n_train=4, n_val=2, distinct=0)


def test_cli_synth_real(tmp_path, capsys):
    from kerasmt import cli

    assert cli.main(["data", "synth", "utkface", str(tmp_path / "u"), "--real", "--n", "12"]) == 0
    assert "real-size synthetic utkface dataset (12 images, 200x200 colour)" in capsys.readouterr().out
    assert len(list((tmp_path / "u").glob("*.jpg"))) == 12 + 3  # + the three malformed names


def test_scale_benchmark_runs_a_tiny_fraction(tmp_path, capsys):
    bench = _benchmark("scale")
    assert bench.main(["--studies", "fairface", "--fractions", "0.0004", "--steps", "1",
                       "--root", str(tmp_path), "--workers", "1"]) == 0
    out = capsys.readouterr().out
    results = json.loads(out.strip().splitlines()[-1])["results"]["fairface"]
    assert [r["images"] for r in results] == [39] and results[0]["pass_images"] == results[0]["train_images"]
    assert all(r["peak_rss_mb"] > 0 and r["pass_ips"] > 0 and r["train_ips"] > 0 for r in results)
    assert "every peak within 4 GiB" in out


def test_gpu_benchmark_says_no_gpu_and_still_measures(tmp_path, capsys):
    bench = _benchmark("gpu")
    assert bench.main(["--studies", "fairface", "--n", "40", "--warmup", "1", "--steps", "1",
                       "--root", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    rows = json.loads(out.strip().splitlines()[-1])["results"]
    assert [r["policy"] for r in rows] == ["float32", "mixed_bfloat16"]
    assert all(r["finite"] and r["images_per_s"] > 0 and 0 <= r["input_wait_share"] <= 1 for r in rows)
    assert "no GPU" in out
    import keras

    assert keras.config.dtype_policy().name == "float32"
    assert np.isfinite(rows[1]["final_loss"])

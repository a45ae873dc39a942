"""Real dataset sizes, real-size synthetic datasets and per-study workloads for the scale and GPU
benchmarks (``benchmarks/scale.py``, ``benchmarks/gpu.py``) and ``kerasmt data synth --real``.

:data:`REAL` holds each image study's real dataset: image count, image size of the files and the
size the study trains at. :func:`synthesize_real` writes a synthetic dataset of that size (or a
``fraction`` of it) at the real file image size quickly: only a few hundred images per split are
drawn and the rest are byte copies (``distinct``), so decoding, caching and streaming cost what
they cost on the real data. :func:`workload` loads a study's data the way the study does and
returns its training dataset and a model of the study (built by the study's own builders).
"""
from __future__ import annotations

import os
import resource
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable


@dataclass(frozen=True)
class RealSize:
    """A real dataset's size: ``images`` in all; ``file_size`` of its image files; ``train_size``
    the side the study's model sees; ``note`` where the numbers come from."""

    images: int
    file_size: str
    train_size: int
    note: str


#: the image studies' real datasets (issue 16 and the reports)
REAL: dict[str, RealSize] = {
    "fairface": RealSize(97_698, "224 px colour", 32, "86,744 train + 10,954 val, used at 32x32 grey"),
    "utkface": RealSize(23_708, "200x200 colour", 128, "aligned & cropped faces, every one used (the study's subset: 5,000)"),
    "beauty": RealSize(72_880, "299 px colour", 299, "73 classes, 1,000 per class (toothbrushes 880)"),
    "fashion": RealSize(45_195, "512-1024 px colour", 512, "iMaterialist 2019 train images, letterboxed to 512"),
}
#: FairFace's real split sizes
FAIRFACE_SPLIT = (86_744, 10_954)
#: images drawn per split (the rest are byte copies) by :func:`synthesize_real`
DISTINCT = {"fairface": 512, "utkface": 512, "beauty": 6, "fashion": 96}


def n_images(study: str, fraction: float = 1.0) -> int:
    """Images of ``study``'s real dataset times ``fraction`` (at least 1)."""
    return max(1, int(round(_real(study).images * float(fraction))))


def _real(study: str) -> RealSize:
    if study not in REAL:
        raise ValueError(f"no real size known for study {study!r}; known: {sorted(REAL)}")
    return REAL[study]


def synthesize_real(study: str, root: str | os.PathLike, n: int | None = None, fraction: float | None = None,
                    seed: int = 0, workers: int | None = None, distinct: int | None = None) -> Path:
    """Write a synthetic ``study`` dataset of ``n`` images (default: ``fraction`` of the real count,
    default all of it) at the real files' image size, drawing only ``distinct`` images per split
    (per class for Beauty; default :data:`DISTINCT`) and copying the rest. Returns the folder."""
    from kerasmt.datasets import fairface, fashion, folder_classes, utkface

    _real(study)
    if n is None:
        n = n_images(study, 1.0 if fraction is None else fraction)
    n = int(n)
    if n < 2:
        raise ValueError(f"n must be >= 2 images, got {n}")
    workers = workers or max(1, os.cpu_count() or 1)
    distinct = int(distinct or DISTINCT[study])
    root = Path(root)
    if study == "fairface":
        n_val = max(1, int(round(n * FAIRFACE_SPLIT[1] / sum(FAIRFACE_SPLIT))))
        return fairface.synthesize(root, n_train=n - n_val, n_val=n_val, seed=seed, image_size=224, workers=workers,
                                   distinct=distinct)
    if study == "utkface":
        return utkface.synthesize(root, n=n, seed=seed, image_size=200, workers=workers, distinct=distinct)
    if study == "beauty":
        per_class = max(1, int(round(n * 1000 / REAL["beauty"].images)))
        return folder_classes.synthesize(root, n=per_class, seed=seed, image_size=299, distinct=distinct,
                                         workers=workers)
    return fashion.synthesize(root, n=n, seed=seed, workers=workers, distinct=distinct, image_scale=2.5)


def _status_bytes(field: str) -> int | None:
    """``field`` (``VmHWM``, ``VmRSS``, ...) of ``/proc/self/status`` in bytes; None where unknown."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith(f"{field}:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def peak_rss_bytes() -> int:
    """Peak resident set size of this process (``VmHWM`` of ``/proc/self/status``; ``ru_maxrss``
    elsewhere)."""
    peak = _status_bytes("VmHWM")
    return peak if peak is not None else int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024


def rss_bytes() -> int:
    """Current resident set size of this process (``VmRSS``; 0 where unknown)."""
    return _status_bytes("VmRSS") or 0


@dataclass
class Workload:
    """A study's training input and model: ``train`` (a ``tf.data`` dataset of batches),
    ``n_train`` images in it, ``batch_size``, ``build`` (a fresh compiled model) and ``data`` (the
    study's data object)."""

    study: str
    train: Any
    n_train: int
    batch_size: int
    build: Callable[..., Any]
    data: Any


def workload(study: str, root: str | os.PathLike, cache_dir: str | os.PathLike | None = None,
             batch_size: int | None = None, jit_compile: bool | str = "auto") -> Workload:
    """Load ``study``'s data from ``root`` as the study does (decode caches under ``cache_dir``)
    and return its training input and a builder of the study's model (random weights, compiled as
    the study compiles it; ``jit_compile`` passed to ``compile``):

    - fairface: 32x32 grey, the report's multi-task CNN (gender, age, race), batch 128;
    - utkface: every image at 128 px, VGG model A (age and gender), batch 32;
    - beauty: 299 px with the report's augmentation, InceptionV3 TL head training, batch 64;
    - fashion: 512 px letterboxed with the report's augmentation, the multi-label classifier
      (light backbone), batch 8; a test split of 100 images (the study's is 1,000, fixed).
    """
    import keras

    from kerasmt import training

    _real(study)
    if study == "fairface":
        from kerasmt.datasets import fairface as ff
        from kerasmt.models import classifiers
        from kerasmt.studies import fairface as st

        data = st.load_data(root, cache_dir=cache_dir)
        bs = batch_size or 128
        tasks = ["gender", "age", "race"]
        ds = data.dataset("train", tasks, batch_size=bs)

        def build():
            model = classifiers.multitask_cnn(tasks={t: ff.N_CLASSES[t] for t in tasks})
            training.compile_classifier(model)
            training.set_jit_compile(model, jit_compile)
            return model

        return Workload(study, ds, len(data.train), bs, build, data)
    if study == "utkface":
        from kerasmt.models.vgg import compile_age_gender, model_a
        from kerasmt.studies import utkface as st

        data = st.load_data(root, subset=None, image_size=128, cache_dir=cache_dir)
        bs = batch_size or 32
        ds = data.dataset("final", "train", batch_size=bs)

        def build():
            model = model_a((128, 128, 3))
            compile_age_gender(model)
            training.set_jit_compile(model, jit_compile)
            return model

        return Workload(study, ds, len(data.frame("final", "train")), bs, build, data)
    if study == "beauty":
        from kerasmt.models import finetune as ft
        from kerasmt.studies import beauty as st

        data = st.load_data(root, image_size=299, cache_dir=cache_dir)
        bs = batch_size or 64
        ds = data.dataset("train", bs, augment=ft.report_augmentation(seed=0))

        def build():
            model = ft.finetune_model((299, 299, 3), None, n_classes=data.n_classes, backbone="InceptionV3", regime="tl")
            ft.compile_report(model)
            training.set_jit_compile(model, jit_compile)
            return model

        return Workload(study, ds, len(data.manifests["train"]), bs, build, data)
    import warnings

    from kerasmt.models.multilabel import compile_multilabel, multilabel_classifier
    from kerasmt.studies import fashion as st

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        total = len(list((Path(root) / "train").glob("*.jpg")))
        # the test split (the study's 1,000 images, held in memory with their instance masks) does not
        # grow with the dataset; a fixed 100 here keeps the data path's growth visible
        data = st.load_data(root, image_size=512, n_test=min(100, max(1, total // 4)), cache_dir=cache_dir)
    bs = batch_size or 8
    ds = data.train_dataset("multilabel", batch_size=bs)

    def build():
        model = multilabel_classifier((512, 512, 3), None, n_classes=data.n_classes, backbone="light")
        compile_multilabel(model)
        training.set_jit_compile(model, jit_compile)
        keras.utils.set_random_seed(0)
        return model

    return Workload(study, ds, len(data.train), bs, build, data)

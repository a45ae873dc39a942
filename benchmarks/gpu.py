"""Training speed per study in float32 vs mixed precision, and the share of step time spent
waiting for input, on the accelerator of this machine (a GPU; on a CPU it says so and still
measures, with mixed_bfloat16).

For every study: a synthetic dataset at the real file image size (``kerasmt.scale.synthesize_real``,
``--n`` images, reused when it exists), loaded as the study loads it (``kerasmt.scale.workload``),
then for each precision a fresh model of the study trained step by step with ``train_on_batch``:
after ``--warmup`` steps (compilation), ``--steps`` steps are timed, split into the time spent
waiting for the next input batch and the time in the training step. Prints images/s per study
and precision, the mixed/float32 speed-up and the input-wait share.

    python benchmarks/gpu.py                                     # every study, 2,048 images each
    python benchmarks/gpu.py --studies fairface,beauty --n 512 --steps 5 --jit true
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
from pathlib import Path


def measure(work, policy: str, warmup: int, steps: int, jit: bool | str) -> dict:
    """Images/s and input-wait share of ``steps`` training steps of a fresh model under ``policy``."""
    import keras
    import numpy as np

    from kerasmt import training

    with training.precision(policy, jit_compile=jit):
        keras.utils.set_random_seed(0)
        model = work.build()
        training.float32_outputs(model)
        training.set_jit_compile(model, jit)
        batches = work.train.repeat()
        iterator = iter(batches)
        wait = step = 0.0
        images = 0
        losses = []
        for i in range(warmup + steps):
            t0 = time.perf_counter()
            x, y = next(iterator)
            t1 = time.perf_counter()
            out = model.train_on_batch(x, y, return_dict=True)
            t2 = time.perf_counter()
            if i >= warmup:
                wait += t1 - t0
                step += t2 - t1
                images += int(x.shape[0])
                losses.append(float(out["loss"]))
        return {"policy": policy, "images": images, "seconds": round(wait + step, 3),
                "images_per_s": round(images / max(wait + step, 1e-9), 2),
                "input_wait_share": round(wait / max(wait + step, 1e-9), 3),
                "final_loss": round(losses[-1], 4) if losses else None,
                "finite": bool(np.all(np.isfinite(losses)))}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--studies", default="fairface,utkface,beauty,fashion", help="comma-separated studies")
    parser.add_argument("--n", type=int, default=2048, help="images per study dataset")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps (compilation)")
    parser.add_argument("--steps", type=int, default=10, help="timed steps")
    parser.add_argument("--jit", default="auto", choices=["auto", "true", "false"], help="XLA (JIT_COMPILE)")
    parser.add_argument("--root", help="folder for the datasets (default: a temporary one, deleted)")
    args = parser.parse_args(argv)

    import tensorflow as tf

    from kerasmt import scale, training

    gpus = tf.config.list_physical_devices("GPU")
    if gpus:
        names = [tf.config.experimental.get_device_details(g).get("device_name", g.name) for g in gpus]
        print(f"GPU: {', '.join(names)}")
    else:
        print("no GPU: measuring on the CPU (mixed precision = mixed_bfloat16, slower than float32 on "
              "most CPUs); these are not GPU figures")
    mixed = training.precision_policy(True)
    jit = {"auto": "auto", "true": True, "false": False}[args.jit]
    studies = [s.strip() for s in args.studies.split(",") if s.strip()]
    root = Path(args.root) if args.root else Path(tempfile.mkdtemp(prefix="kerasmt-gpu-"))
    rows = []
    print(f"{'study':<9} {'policy':<15} {'img/s':>9} {'input wait':>10} {'speed-up':>8} {'final loss':>10}", flush=True)
    try:
        for study in studies:
            data = root / f"{study}-{args.n}"
            scale.synthesize_real(study, data, n=args.n)
            work = scale.workload(study, data, cache_dir=root / f"{study}-{args.n}-cache")
            base = None
            for policy in ("float32", mixed):
                r = measure(work, policy, args.warmup, args.steps, jit)
                r["study"] = study
                base = base or r["images_per_s"]
                r["speedup"] = round(r["images_per_s"] / max(base, 1e-9), 2)
                rows.append(r)
                print(f"{study:<9} {policy:<15} {r['images_per_s']:>9} {r['input_wait_share']:>9.1%} "
                      f"{r['speedup']:>7}x {r['final_loss']:>10}", flush=True)
    finally:
        if not args.root:
            shutil.rmtree(root, ignore_errors=True)
    print(json.dumps({"device": "gpu" if gpus else "cpu", "jit": args.jit, "results": rows}))
    return 0


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    raise SystemExit(main())

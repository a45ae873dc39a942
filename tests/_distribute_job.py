"""One training job of tests/test_distribute.py, run in its own process (TensorFlow's devices and
collective ops are configured once per process).

    python tests/_distribute_job.py --strategy default|mirrored|multi_worker --run-dir D --result R.json
        [--cpus N] [--workers H:P,H:P --index I] [--epochs E] [--interrupt-after K] [--model mt|joint|bn]
        [--sync-bn]

Trains the FairFace multi-task CNN (gender, age with 30 % missing labels, race) on a seeded toy
set with a global batch of 32 and writes R.json: the per-epoch history, the strategy's replicas,
whether this process is the chief, the epochs run after a resume and a few checks. ``--model
joint``: the attribute study's ResNet v2 with its mask decoder (masked CE + Dice on part masks that
only half of the images have, class-weighted masked CE on a task) instead; ``--model bn``: the
multi-task CNN with BatchNormalization after each convolution (``--sync-bn``: synchronized over
the replicas by ``distribute.synchronize_batchnorm``).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time


def toy(n: int = 256, seed: int = 0):
    import numpy as np

    rng = np.random.default_rng(seed)
    x = rng.random((n, 32, 32, 1)).astype("float32")
    bright = x.mean(axis=(1, 2, 3))
    y = {
        "gender": (bright > np.median(bright)).astype("int32"),
        "age": np.where(rng.random(n) < 0.3, -1, rng.integers(0, 9, n)).astype("int32"),
        "race": (x[:, :16].mean(axis=(1, 2, 3)) * 7 % 7).astype("int32"),
    }
    x[y["gender"] == 1] += 0.2
    return x, y


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--strategy", required=True)
    parser.add_argument("--run-dir", required=True)
    parser.add_argument("--result", required=True)
    parser.add_argument("--cpus", type=int, default=1)
    parser.add_argument("--workers")
    parser.add_argument("--index", type=int, default=0)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--interrupt-after", type=int)
    parser.add_argument("--model", choices=("mt", "joint", "bn"), default="mt")
    parser.add_argument("--sync-bn", action="store_true")
    args = parser.parse_args()
    start = time.perf_counter()

    from kerasmt import distribute

    if args.workers:
        os.environ["TF_CONFIG"] = distribute.tf_config(args.workers.split(","), args.index)
    if args.cpus > 1:
        distribute.set_logical_cpus(args.cpus)
    strategy = distribute.get_strategy(args.strategy)  # before TensorFlow runs anything else

    import keras
    import numpy as np
    import tensorflow as tf

    import kerasmt
    from kerasmt.models import classifiers
    from kerasmt.training import _StopAfter, compile_classifier, fit, predict_classes

    checks: dict = {"describe": distribute.describe(strategy)}
    if args.cpus > 1:  # too late now: TensorFlow has initialised its devices
        try:
            distribute.set_logical_cpus(args.cpus + 1)
            checks["late_logical_cpus"] = "no error"
        except RuntimeError as exc:
            checks["late_logical_cpus"] = str(exc)
    if args.strategy == "mirrored":  # the replicas' shares add up to the global masked mean
        values = tf.constant([1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0])
        weights = tf.constant([1.0, 1.0, 1.0, 0.0, 1.0, 0.0, 0.0, 0.0])  # 3 labelled rows, then 1
        halves = strategy.experimental_distribute_values_from_function(
            lambda ctx: (values[4 * ctx.replica_id_in_sync_group: 4 * ctx.replica_id_in_sync_group + 4],
                         weights[4 * ctx.replica_id_in_sync_group: 4 * ctx.replica_id_in_sync_group + 4]))
        shares = strategy.run(lambda v, w: distribute.global_masked_mean(v, w), args=halves)
        checks["replica_share_sum"] = float(strategy.reduce("SUM", shares, axis=None))
        checks["global_masked_mean"] = float(np.sum(values.numpy() * weights.numpy()) / weights.numpy().sum())

    x, y = toy()
    if args.model == "joint":  # 32x24 person-like crops with 9-class part masks on half of them
        x = np.repeat(x[:, :, 4:28], 3, axis=-1)
        rng = np.random.default_rng(1)
        mask = (x[..., 0] * 9).astype("int32").clip(0, 8)
        mask[rng.random(len(x)) < 0.5] = -1  # images without a mask: every pixel unlabelled
        y = {"gender": y["gender"], "age": y["age"], "mask": mask}
    ds = tf.data.Dataset.from_tensor_slices((x, y)).batch(32)

    def fresh():
        kerasmt.set_seed(0)
        if args.model == "joint":
            from kerasmt.models.resnet import simple_resnet_v2
            from kerasmt.models.segmentation import add_mask_decoder, compile_joint

            def joint():
                base = simple_resnet_v2((32, 24, 3), tasks={"gender": 2, "age": 9}, blocks_per_stage=1,
                                        pool_size=2, name="mt")
                return compile_joint(add_mask_decoder(base, n_classes=9), class_weights={"age": [1.0 + i / 8 for i in range(9)]})
            return distribute.build_in_scope(joint, strategy)
        if args.model == "bn":
            def with_bn():
                inputs = keras.Input((32, 32, 1))
                h = inputs
                for filters in (8, 16):
                    h = keras.layers.Conv2D(filters, 3, use_bias=False)(h)
                    h = keras.layers.ReLU()(keras.layers.BatchNormalization(momentum=0.5)(h))
                    h = keras.layers.MaxPooling2D()(h)
                h = keras.layers.Flatten()(h)
                outputs = {t: keras.layers.Dense(n, activation="softmax", name=t)(h)
                           for t, n in (("gender", 2), ("age", 9), ("race", 7))}
                model = keras.Model(inputs, outputs, name="mt")
                if args.sync_bn:
                    checks["synchronized_layers"] = distribute.synchronize_batchnorm(model)
                return compile_classifier(model, strategy=strategy)
            return distribute.build_in_scope(with_bn, strategy)
        return distribute.build_in_scope(
            lambda: compile_classifier(classifiers.multitask_cnn(tasks={"gender": 2, "age": 9, "race": 7}, name="mt"),
                                       strategy=strategy), strategy)

    resumed_epochs: list[int] = []
    if args.interrupt_after:
        try:
            fit(fresh(), ds, ds, epochs=args.epochs, run_dir=args.run_dir, verbose=0, strategy=strategy,
                callbacks=[_StopAfter(args.interrupt_after)])
            checks["interrupted"] = False
        except KeyboardInterrupt:
            checks["interrupted"] = True
        checks["backup_after_interrupt"] = os.path.isdir(os.path.join(args.run_dir, "backup", "mt"))
    record = keras.callbacks.LambdaCallback(on_epoch_begin=lambda epoch, logs: resumed_epochs.append(epoch + 1))
    model = fresh()
    result = fit(model, ds, ds, epochs=args.epochs, run_dir=args.run_dir, verbose=0, strategy=strategy,
                 callbacks=[record])
    predictions = predict_classes(model, ds)
    if args.model == "bn":  # the setting is saved with the model
        checks["saved_synchronized"] = [layer.synchronized for layer in keras.saving.load_model(result.checkpoint).layers
                                        if isinstance(layer, keras.layers.BatchNormalization)]
    history = result.history.reset_index()
    payload = {
        "replicas": int(strategy.num_replicas_in_sync),
        "chief": distribute.is_chief(strategy),
        "history": {c: history[c].astype(float).tolist() for c in history.columns},
        "epochs_run": resumed_epochs,
        "checkpoint": str(result.checkpoint),
        "log": str(result.log),
        "prediction_rows": {k: int(v.shape[0]) for k, v in predictions.items() if k != "mask"},
        "gender_pred": predictions["gender"].astype(int).tolist(),
        "checks": checks,
        "seconds": time.perf_counter() - start,
    }
    with open(args.result, "w") as f:
        json.dump(payload, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())

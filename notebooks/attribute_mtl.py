# %% [markdown]
# # Multi-task attribute learning on person images (with a segmentation decoder)
#
# Reproduces Problem 2 of the report *Assignment 1C* (seed 000): six traits of a person crop —
# gender, torso clothing type and colour, leg clothing type and colour, luggage — predicted by one
# ResNet v2 built from scratch with a 64-32-16 dense head per trait (**518,190 parameters**, every
# layer as in the report's appendix, checked below), trained with a masked cross-entropy that
# ignores missing labels (`-1`), the report's augmentation and a 10 % validation split. Then the
# report's unbuilt idea: a **decoder from the shared latent feature map to the 9-channel part mask**
# (8 parts + background), trained jointly with the six heads, compared with the plain network.
# Beyond the report: class weights for the imbalanced colours with an L2 penalty (a second run: the
# first is the report's configuration), macro-F1 beside accuracy, and no NaN loss when a batch has
# no label for a task.
#
# **Outputs shown here come from the synthetic dataset** that kerasmt writes in the real layout
# (drawn people whose clothing, gender cues and luggage follow the labels, exact part masks, the
# report's class imbalance and missing labels), produced by the demo run `kerasmt run attribute_mtl`
# on a 2-core CPU with few epochs and a BatchNorm momentum suited to them (see `kerasmt.runner.DEMO_PARAMETERS`).
# The numbers are not comparable with the report's; the report's are shown beside ours.
#
# **Real data:** the course dataset is not public. With a copy in the layout of
# `data/attribute_mtl/README.md` (`Train_Data/Train.csv`, `Originals/`, `Binary_Maps/`,
# `Test_Data/Test.csv`), run `kerasmt run attribute_mtl --data /path/to/dataset` or set `DATA_DIR`
# below; the defaults are then the report's configuration (Adam 1e-3, batch 32, 60 epochs: the report
# does not state its epochs).

# %% tags=["parameters"]
DATA_DIR = None          # folder holding Train_Data/ and Test_Data/; None: synthetic dataset
SMOKE = False            # tiny sizes for CI (also switched on by the env variable KERASMT_SMOKE)
OUT_DIR = None           # where models/*.keras and metrics.json go; None: runs/attribute_mtl
SEED = 0
EPOCHS = 60              # fixed epochs, final weights (the report does not state its epochs)
BATCH_SIZE = 32
LEARNING_RATE = 1e-3     # Adam
LR_SCHEDULE = "constant" # or "cosine": one warm-up epoch, then cosine decay to zero
BN_MOMENTUM = 0.99       # BatchNorm moving-average momentum (Keras default, as in the report)
CLASS_WEIGHTS = True     # train the improved run too: balanced colour class weights + L2 (the first run is the report's)
WEIGHT_DECAY = 1e-4      # L2 on the convolution kernels of the improved run (the report had none)
AUGMENT = True           # the report's augmentation: rotation 3 degrees, shifts and zoom 1 percent, flips
MASK_LOSS_WEIGHT = 1.0   # weight of the mask loss beside the six equally weighted task losses
MERGE_SKIN = False       # fold skin_arms, skin_face and skin_legs into one mask class
N_TRAIN = 520            # synthetic dataset size (ignored with DATA_DIR), as the real set
N_TEST = 196
CACHE_DIR = None         # keep decoded images and masks here between runs (.npy files)
STRATEGY = "default"     # tf.distribute: "mirrored" (all GPUs here), "multi_worker" (TF_CONFIG); BATCH_SIZE is global
MIXED_PRECISION = False  # True: mixed_float16 on a GPU, mixed_bfloat16 on a CPU (outputs and losses stay float32)
JIT_COMPILE = "auto"     # XLA: "auto" (Keras decides: on a GPU only), True or False

# %%
import time

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

import kerasmt
from kerasmt import distribute, plots
from kerasmt.augment import PairedAugmentation, report_augmentation
from kerasmt.datasets import person_attributes as pa
from kerasmt.studies import attribute_mtl as study

SMOKE = SMOKE or kerasmt.env_smoke()
PRECISION = kerasmt.training.configure(MIXED_PRECISION, JIT_COMPILE)  # every model built from here on; reset at the end
LIMIT = None
# smoke: a few dozen images, one epoch (checks that every cell runs); an explicit -p NAME=VALUE wins
kerasmt.smoke_sizes(globals(), EPOCHS=1, LIMIT=40, N_TRAIN=60, N_TEST=24)
OUT = kerasmt.resolve_out_dir(OUT_DIR, "attribute_mtl")
strategy = distribute.get_strategy(STRATEGY)
kerasmt.set_seed(SEED)
plt.rcParams.update({"figure.dpi": 100, "savefig.dpi": 100})
START = time.perf_counter()
print(f"data: {DATA_DIR or 'synthetic'} | smoke: {SMOKE} | epochs: {EPOCHS} | outputs: {OUT}")
print(distribute.describe(strategy))

# %% [markdown]
# ## Data characteristics
#
# Labels are integer codes (`-1` = missing). The CSV columns `gender, tortyp, torcol, legtyp,
# legcol, luggage` become the tasks below; the colour codes are the 11 colours in alphabetical order
# (consistent with every colour the report names for a code: 8 = red, 0 = black).

# %%
# NBVAL_CHECK_OUTPUT
pd.DataFrame({f"{task} ({pa.TASK_COLUMNS[task]})": pd.Series(names) for task, names in pa.LABELS.items()}).fillna("")

# %%
data = study.load_data(DATA_DIR, N_TRAIN, N_TEST, seed=SEED, merge_skin=MERGE_SKIN, cache_dir=CACHE_DIR, limit=LIMIT)
print(f"root: {data.root}")
print(f"images {data.x_train.shape[1:]} uint8, masks {data.m_train.shape[1:]} int8 with classes {list(data.mask_classes)}")
data.describe()

# %% [markdown]
# **Class imbalance** (training split): short torso clothing, long leg clothing and no luggage
# dominate; a few colours (orange, purple, yellow legs) are rare.

# %%
plots.bar_counts({task: pa.class_counts(data.train, task) for task in study.TASKS}, title="training class counts");

# %% [markdown]
# **Missing labels**: "unknown" torso and leg colours are frequent in the training set; the
# test set, like the report's, has every label.

# %%
study.plot_missing(data);

# %% [markdown]
# Images and masks are letterboxed together to 100x60 (aspect kept, black padding); the eight
# binary part masks become one label map with background = 1 − Σ parts:

# %%
study.plot_samples(data, n=10);

# %% [markdown]
# ## Augmentation
#
# The report's `ImageDataGenerator(rotation_range=3, width_shift_range=0.01, height_shift_range=0.01,
# zoom_range=0.01, horizontal_flip=True)` as Keras preprocessing layers that draw one transform per
# image and apply it to the image (bilinear) and its mask (nearest). Horizontal flips change no label
# (no trait or part is left/right specific). The exaggerated row shows that image and mask move
# together.

# %%
study.plot_augmentation(data, {"report": report_augmentation(SEED),
                               "exaggerated": PairedAugmentation(30, 0.15, 0.15, 0.15, seed=SEED)}, n=5, seed=SEED);

# %% [markdown]
# ## The network: `simple_resnet_v2`
#
# Stem Conv 3x3 (8) → 3 stages x 3 pre-activation bottleneck blocks (8/16/32 filters, outputs
# 32/32/64, stride 2 at stages 2 and 3) → BN-ReLU (the latent map, 25x15x64) → AveragePooling 4 →
# Flatten (1152) → per trait Dense 64 → 32 → 16 (ReLU) → logits. The segmentation decoder
# (Conv 3x3-BN-ReLU with 32/16/8 filters, upsampling x2 twice: 25x15 → 100x60, 1x1 conv to 9
# per-pixel logits) adds 24,497 parameters.

# %%
# NBVAL_CHECK_OUTPUT
study.param_table()

# %%
# NBVAL_CHECK_OUTPUT
check = study.compare_with_appendix(study.build_model("mtl"))
print(f"{int(check['match'].sum())} of {len(check)} layers match the report's appendix (type, output shape, parameters, inputs)")
check.iloc[[0, 1, 10, 11, 12, 103, 104, 105, 117, 122]]

# %%
study.build_model("mtl", len(data.mask_classes)).summary(line_length=110)

# %% [markdown]
# ## Loss
#
# Masked categorical cross-entropy from logits: rows whose label is `-1` are dropped (the
# report's idea) — and a batch where a task has no label at all gives 0, not the report's NaN. The
# mask loss (cross-entropy + Dice) ignores unlabelled pixels the same way, so test images and any
# image without masks add nothing. Values on fixed inputs:

# %%
# NBVAL_CHECK_OUTPUT
from kerasmt.losses import MaskedSegmentationLoss, MaskedSparseCategoricalCrossentropy

logits = np.array([[2.0, 0.5], [0.1, 1.0], [1.0, 1.0]], "float32")
ce = MaskedSparseCategoricalCrossentropy(from_logits=True)
print(f"labels [0, -1, 1]  : {float(ce(np.array([0, -1, 1]), logits)):.4f}")
print(f"labels [-1, -1, -1]: {float(ce(np.array([-1, -1, -1]), logits)):.4f}")
seg = MaskedSegmentationLoss(from_logits=True, dice_weight=1.0)
print(f"mask loss of an image without mask: {float(seg(-np.ones((1, 4, 4)), np.zeros((1, 4, 4, 9), 'float32'))):.4f}")

# %% [markdown]
# The report trained without class weights and without L2 (its network as printed); that is the
# first run, `mtl`. The improvement, `mtl_cw_l2`, adds class weights for the imbalanced colours
# ("balanced": n / (k · count), clipped to [0.1, 10]; the other tasks unweighted) and L2
# `WEIGHT_DECAY` on the convolution kernels. Loss weights are equal, as in the report.

# %%
WEIGHTS = study.class_weights(data.train) if CLASS_WEIGHTS else None
study.class_weight_table(WEIGHTS).round(2) if WEIGHTS else "no class weights"

# %% [markdown]
# ## 1. The report's network: six heads, the report's configuration

# %%
settings = dict(batch_size=BATCH_SIZE, learning_rate=LEARNING_RATE, seed=SEED, augment=AUGMENT,
                bn_momentum=BN_MOMENTUM, lr_schedule=LR_SCHEDULE, strategy=strategy)
results = {}
results["mtl"] = study.train("mtl", data, EPOCHS, OUT, weights=None, weight_decay=0.0, **settings)
print(f"trained {len(results['mtl'].history)} epochs in {results['mtl'].seconds:.0f} s "
      f"(no class weights, no L2: the report's configuration)")

# %%
study.plot_curves(results["mtl"]);

# %% [markdown]
# Per-task classification reports on the test set (196 images in the real set); their "macro avg"
# F1 is the table's: the mean over the classes present in the truth or the predictions.

# %%
for task in study.TASKS:
    print(f"--- {task}: accuracy {results['mtl'].accuracy[task]:.3f} (report {study.REPORT_TEST_ACCURACY[task]:.2f})")
    print(results["mtl"].classification_report(task))

# %%
study.plot_confusions(results["mtl"]);

# %% [markdown]
# **Bad cases**: for each trait, the most confident mistakes, with predicted and actual values of
# all six traits (`x` marks the wrong ones), as in the report's tables.

# %%
study.plot_bad_cases(results["mtl"], data, n=2);

# %% [markdown]
# ## 1b. The improvement: class weights + L2

# %%
if WEIGHTS:
    results["mtl_cw_l2"] = study.train("mtl", data, EPOCHS, OUT, weights=WEIGHTS, weight_decay=WEIGHT_DECAY,
                                       name="mtl_cw_l2", **settings)
    print(f"trained {len(results['mtl_cw_l2'].history)} epochs in {results['mtl_cw_l2'].seconds:.0f} s "
          f"(class weights on {list(WEIGHTS)}, L2 {WEIGHT_DECAY:g})")

# %% [markdown]
# ## 2. With a segmentation decoder (the report's unbuilt idea)
#
# The decoder reads the latent map the six heads share and predicts the part mask of every training
# image; the joint loss is the six task losses plus the mask loss. Only training images have masks
# (the test set has none), so the mask IoU is measured on the validation split.

# %%
results["mtl_seg"] = study.train("mtl_seg", data, EPOCHS, OUT, weights=None, weight_decay=0.0,
                                 mask_loss_weight=MASK_LOSS_WEIGHT, **settings)
print(f"trained {len(results['mtl_seg'].history)} epochs in {results['mtl_seg'].seconds:.0f} s")

# %%
study.plot_curves(results["mtl_seg"]);

# %%
for task in study.TASKS:
    print(f"--- {task}: accuracy {results['mtl_seg'].accuracy[task]:.3f} (report {study.REPORT_TEST_ACCURACY[task]:.2f})")
    print(results["mtl_seg"].classification_report(task))

# %%
study.plot_confusions(results["mtl_seg"]);

# %%
study.plot_bad_cases(results["mtl_seg"], data, n=2);

# %% [markdown]
# Predicted masks beside the true ones (validation), and on test images (no truth):

# %%
study.plot_masks(results["mtl_seg"], data, n=10);

# %%
study.plot_iou(results["mtl_seg"])
results["mtl_seg"].mask_iou.round(3).to_frame().T

# %% [markdown]
# ## Comparison
#
# Test accuracy and macro-F1 per trait: the report's configuration (`mtl`), the improvement
# (`mtl_cw_l2`) and the decoder (`mtl_seg`, report configuration); the majority baseline (the
# **training** split's majority class, scored on test: the test labels are not known when choosing
# it) and the report's numbers beside the majority rate of the report's own test set. Macro-F1 is
# one definition everywhere: the mean F1 over the classes present in the truth or the predictions
# (the report's "macro avg").

# %%
comparison = study.comparison_table(results, data)
below = [t for t in study.TASKS if comparison.loc[t, "report below majority"]]
print("; ".join(f"the report's {t} accuracy {study.REPORT_TEST_ACCURACY[t]:.2f} is below its test set's majority "
                f"rate {study.REPORT_TEST_MAJORITY[t]:.3f}" for t in below))
comparison

# %%
study.learning_check(results, data)

# %% [markdown]
# Does a change help? Per task, the accuracy difference with a paired bootstrap 95 % interval over
# the test images (on 196 images one image is 0.5 points); an interval that contains 0 is a tie.

# %%
diffs = {f"{a} vs {b}": study.difference_table(results, a, b, seed=SEED)
         for a, b in (("mtl_cw_l2", "mtl"), ("mtl_seg", "mtl")) if a in results}
for name, table in diffs.items():
    verdicts = table["verdict"].value_counts().to_dict()
    print(f"{name}: " + ", ".join(f"{n} task(s) {v}" for v, n in verdicts.items()))
pd.concat(diffs, axis=1) if diffs else None

# %% [markdown]
# How to read this: the majority baseline is what a network that learned nothing scores; the
# colour tasks are where class weights and macro-F1 matter (a majority predictor has a small
# macro-F1). The committed demo is short (synthetic data, 6 CPU epochs, sized for `make demo`'s
# 15-minute budget); all of these need the longer runs of the default configuration (60 epochs).

# %% [markdown]
# The saved `.keras` files reload with every custom object (losses, metrics, augmentation are
# registered) and give the same predictions:

# %%
import keras

reloaded = keras.saving.load_model(results["mtl_seg"].model_path)
x = data.x_test[:8].astype("float32") / 255.0
before, after = results["mtl_seg"].model(x, training=False), reloaded(x, training=False)
same = all(np.allclose(np.asarray(after[k]), np.asarray(before[k]), atol=1e-5) for k in before)
print(f"{results['mtl_seg'].model_path.name}: reloaded predictions identical: {same}")

# %%
metrics = study.metrics_summary(results, data, wall_seconds=time.perf_counter() - START,
                                settings={"epochs": EPOCHS, "batch_size": BATCH_SIZE, "learning_rate": LEARNING_RATE,
                                          "bn_momentum": BN_MOMENTUM, "lr_schedule": LR_SCHEDULE, "class_weights": bool(CLASS_WEIGHTS),
                                          "weight_decay_improved": WEIGHT_DECAY,
                                          "augment": bool(AUGMENT), "mask_loss_weight": MASK_LOSS_WEIGHT})
path = kerasmt.save_metrics(metrics, OUT)
print(path)
print(metrics["summary"])
sorted(p.name for p in (OUT / "models").glob("*.keras"))

# %%
kerasmt.training.reset()  # float32 and Keras' own XLA choice again for whatever runs next

# %% [markdown]
# ## Apply a trained model to new photos
# Each network is also saved as `models/<name>.predict.keras`: it takes photos of any size (the
# letterbox resize is inside) and returns the six attributes and the part masks, which `predict`
# maps back to each photo's resolution and writes as PNGs. From a shell:
# `kerasmt predict MODEL.predict.keras PHOTO_OR_FOLDER... --out DIR`.

# %%
kerasmt.predict(OUT / "models" / "mtl_seg.predict.keras", data.test["path"].head(4).tolist(), out_dir=OUT / "predictions")

"""Loading saved kerasmt models with plain ``keras.models.load_model`` after ``import kerasmt``.

Keras finds a custom class of a ``.keras`` file by its registered name (``"kerasmt>DiceLoss"``) in
its table of registered objects, which a class enters when the module defining it is imported. So
that ``import kerasmt`` alone suffices without importing TensorFlow or every kerasmt module (the
CLI must start fast), kerasmt puts a *placeholder* under each registered name of
:data:`CUSTOM_OBJECTS`: on first use its ``from_config`` imports the defining module (whose decorator
replaces the placeholder by the real class) and delegates to the real class.

The placeholders are entered as soon as Keras is imported: at ``import kerasmt`` when Keras is
already loaded, else right after Keras's own import finishes (a one-shot import hook). Nothing here
imports Keras. ``tests/test_saving.py`` checks that :data:`CUSTOM_OBJECTS` lists every registered
kerasmt class with its module.
"""
from __future__ import annotations

import importlib
import sys
from typing import Any

#: registered name -> module that defines (and registers) the class
CUSTOM_OBJECTS: dict[str, str] = {
    "kerasmt>PairedAugmentation": "kerasmt.augment",
    "kerasmt>MaskedSparseCategoricalCrossentropy": "kerasmt.losses",
    "kerasmt>MaskedBinaryCrossentropy": "kerasmt.losses",
    "kerasmt>MaskedSegmentationLoss": "kerasmt.losses",
    "kerasmt>DiceLoss": "kerasmt.losses",
    "kerasmt>PixelCrossentropyDice": "kerasmt.losses_segmentation",
    "kerasmt>MaskedSparseCategoricalAccuracy": "kerasmt.metrics",
    "kerasmt>MaskedMeanIoU": "kerasmt.metrics",
    "kerasmt>CrossStitch": "kerasmt.models.cross_stitch",
    "kerasmt>FinetunePreprocess": "kerasmt.models.finetune",
    "kerasmt>RandomAffine": "kerasmt.models.finetune",
    "kerasmt>MeanPixelNormalization": "kerasmt.models.refinenet",
    "kerasmt>BilinearUpsampling": "kerasmt.models.refinenet",
    "kerasmt>BackbonePreprocess": "kerasmt.models.transfer",
    "kerasmt>FoldedBatchNormalization": "kerasmt.models.fold",
    "kerasmt>Sampling": "kerasmt.models.vae",
    "kerasmt>VAE": "kerasmt.models.vae",
    "kerasmt.maskrcnn>MaskRCNN": "kerasmt.models.maskrcnn.model",
    "kerasmt.maskrcnn>ProposalLayer": "kerasmt.models.maskrcnn.layers",
    "kerasmt.maskrcnn>PyramidRoIAlign": "kerasmt.models.maskrcnn.layers",
    "kerasmt.maskrcnn>UnflattenRois": "kerasmt.models.maskrcnn.layers",
    "kerasmt.maskrcnn>DetectionTargetLayer": "kerasmt.models.maskrcnn.layers",
    "kerasmt.maskrcnn>DetectionLayer": "kerasmt.models.maskrcnn.layers",
    "kerasmt.maskrcnn>SelectClassMask": "kerasmt.models.maskrcnn.layers",
    "kerasmt.maskrcnn>SliceRois": "kerasmt.models.maskrcnn.layers",
    "kerasmt.maskrcnn>ConfigCarrier": "kerasmt.models.maskrcnn.layers",
    "kerasmt>RawImagePreprocess": "kerasmt.modelinfo",
    "kerasmt>ModelInfo": "kerasmt.modelinfo",
}


class LazyCustomObject:
    """Stands for a kerasmt class in Keras's registry until a saved model needs it."""

    def __init__(self, name: str, module: str):
        self.name, self.module = name, module

    def resolve(self) -> Any:
        """Import the defining module and return the class it registered under :attr:`name`."""
        import keras

        try:
            importlib.import_module(self.module)
        except ImportError as exc:
            raise ImportError(f"loading a model that uses {self.name!r} needs {self.module}, which failed "
                              f"to import: {exc}") from exc
        obj = keras.saving.get_custom_objects().get(self.name)
        if obj is None or obj is self:
            raise TypeError(f"{self.module} did not register {self.name!r} (kerasmt.saving.CUSTOM_OBJECTS is "
                            "out of date)")
        return obj

    def from_config(self, config: dict, *args: Any, **kwargs: Any) -> Any:
        return self.resolve().from_config(config, *args, **kwargs)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.resolve()(*args, **kwargs)

    def __repr__(self) -> str:
        return f"<kerasmt lazy custom object {self.name} from {self.module}>"


def register_lazily() -> int:
    """Enter a :class:`LazyCustomObject` for every name of :data:`CUSTOM_OBJECTS` not registered yet
    (imports Keras). Returns how many were entered."""
    import keras

    table = keras.saving.get_custom_objects()
    added = 0
    for name, module in CUSTOM_OBJECTS.items():
        if name not in table:
            table[name] = LazyCustomObject(name, module)
            added += 1
    return added


class _LoaderThenRegister:
    """Wraps Keras's loader (duck-typed: importlib.abc would add to the import time)."""

    def __init__(self, loader: Any):
        self.loader = loader

    def create_module(self, spec: Any) -> Any:
        return self.loader.create_module(spec)

    def exec_module(self, module: Any) -> None:
        self.loader.exec_module(module)
        register_lazily()

    def __getattr__(self, name: str) -> Any:  # get_resource_reader, is_package, ...
        return getattr(self.loader, name)


class _AfterKerasImport:
    """One-shot import hook: lets Keras import as usual, then calls :func:`register_lazily`."""

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> Any:
        if fullname != "keras":
            return None
        if self in sys.meta_path:
            sys.meta_path.remove(self)
        for finder in sys.meta_path:
            find = getattr(finder, "find_spec", None)
            spec = find(fullname, path, target) if find is not None else None
            if spec is not None:
                if spec.loader is not None and hasattr(spec.loader, "exec_module"):
                    spec.loader = _LoaderThenRegister(spec.loader)
                return spec
        return None


def install() -> None:
    """Make saved kerasmt models loadable with ``keras.models.load_model`` (called by ``import kerasmt``)."""
    keras = sys.modules.get("keras")
    if keras is not None and hasattr(keras, "saving"):
        register_lazily()
    elif not any(isinstance(f, _AfterKerasImport) for f in sys.meta_path):
        sys.meta_path.insert(0, _AfterKerasImport())

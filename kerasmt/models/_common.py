"""The one builder convention, in the style of ``keras.applications``::

    builder(input_shape=<report default>, weights=None, name="<default>", *, <task arguments>)

:func:`model_builder` wraps a builder so that every one checks ``input_shape`` and ``weights``
the same way and loads a weights file the same way; :data:`BUILDERS` lists them all.

``weights``: ``None`` (random initialisation), ``"imagenet"`` (builders with a pretrained
backbone only; Keras downloads it once) or the path of a weights file (``.weights.h5``, a legacy
``.h5`` or a ``.keras`` model whose weights are taken), loaded after the model is built. For
builders with a pretrained backbone the file may also be one of the backbone alone (the nested
``keras.Model``), as ``keras.applications`` accepts.
"""
from __future__ import annotations

import functools
import inspect
import numbers
import os
import reprlib
import warnings
from typing import Any, Callable, Sequence

import keras

#: every public model builder by name, filled by :func:`model_builder` as the modules are imported
BUILDERS: dict[str, Callable[..., keras.Model]] = {}

WEIGHT_SUFFIXES = (".weights.h5", ".h5", ".keras")


def check_input_shape(input_shape: Any, builder: str, rank: int = 3, example: str = "(32, 32, 1)",
                      task_args: Sequence[str] = ()) -> tuple[int | None, ...]:
    """``input_shape`` as a tuple of ``rank`` positive ints (or None), else ``TypeError`` /
    ``ValueError`` naming the builder and, for a bare number or name (the old positional call),
    the keyword-only task arguments."""
    ok_type = isinstance(input_shape, (tuple, list)) and all(
        d is None or (isinstance(d, numbers.Integral) and not isinstance(d, bool)) for d in input_shape)
    if not ok_type:
        got = reprlib.repr(input_shape)  # a config object's repr can run to pages
        hint = ""
        if task_args:
            hint = (f"; the task arguments ({', '.join(task_args)}) are keyword-only, "
                    f"e.g. {builder}({task_args[0]}={got})")
        raise TypeError(f"{builder}: input_shape must be a shape like {example}, got {got}{hint}")
    shape = tuple(None if d is None else int(d) for d in input_shape)
    if len(shape) != rank or any(d is not None and d < 1 for d in shape):
        raise ValueError(f"{builder}: input_shape must be {rank} positive sizes like {example}, got {shape}")
    return shape


def check_weights(weights: Any, builder: str, imagenet: bool) -> str | None:
    """What to build the model with: ``"imagenet"`` or None (a file is loaded afterwards).
    ``ValueError`` naming ``weights`` and ``builder`` for a missing file, an unknown suffix, or
    ``"imagenet"`` on a model trained from scratch."""
    if weights is None:
        return None
    if isinstance(weights, str) and weights == "imagenet":
        if not imagenet:
            raise ValueError(f"{builder}: weights='imagenet', but {builder} has no ImageNet weights (no "
                             "pretrained backbone); expected None or a weights file (.weights.h5 / .keras)")
        return "imagenet"
    choices = "None, 'imagenet'" if imagenet else "None"
    if not isinstance(weights, (str, os.PathLike)):
        raise ValueError(f"{builder}: weights must be {choices} or a weights file path, got {weights!r}")
    path = os.fspath(weights)
    if not path.endswith(WEIGHT_SUFFIXES):
        raise ValueError(f"{builder}: weights={path}: expected a file ending in {' / '.join(WEIGHT_SUFFIXES)}")
    if not os.path.isfile(path):
        raise ValueError(f"{builder}: weights: file {path} not found (expected {choices} or an existing weights file)")
    return None


def load_weights_file(model: keras.Model, path: str | os.PathLike, builder: str, backbone: bool = False) -> None:
    """Load ``path`` into ``model`` (or, with ``backbone``, into its one nested model when the file
    holds only that). A file whose layers or shapes do not match leaves the model as built and
    raises ``ValueError`` naming ``weights``, ``builder`` and what was expected."""
    path = os.fspath(path)
    targets = [model]
    if backbone:
        targets += [layer for layer in model.layers if isinstance(layer, keras.Model)]
    errors = []
    for target in targets:
        before = target.get_weights()
        try:
            with warnings.catch_warnings(record=True) as caught:  # a failed try's warnings are noise
                warnings.simplefilter("always")
                target.load_weights(path)
        except Exception as error:  # noqa: BLE001 - Keras raises ValueError, h5py KeyError/OSError
            target.set_weights(before)
            errors.append(f"{target.name}: {str(error).splitlines()[0]}")
            continue
        for warning in caught:
            warnings.warn_explicit(warning.message, warning.category, warning.filename, warning.lineno)
        return
    expected = f"the weights of {builder}(...) built with the same arguments ({model.count_params():,} parameters)"
    if backbone and len(targets) > 1:
        expected += f", or of its backbone {targets[1].name!r}"
    raise ValueError(f"{builder}: weights={path} does not match the model: expected {expected}; "
                     + "; ".join(errors))


def model_builder(*, imagenet: bool = False, rank: int = 3, example: str | None = None,
                  load: Callable[[keras.Model, str, str], None] | None = None):
    """Decorate a builder ``fn(input_shape, weights, name, *, ...)``: register it in
    :data:`BUILDERS`, check ``input_shape`` (:func:`check_input_shape`) and ``weights``
    (:func:`check_weights`; ``imagenet``: whether it has a pretrained backbone), call ``fn`` with
    ``weights`` set to ``"imagenet"`` or None, then load a weights file (``load(model, path,
    builder)``, default :func:`load_weights_file`). ``example``: the shape shown in errors
    (default: the builder's default ``input_shape``)."""

    def wrap(fn: Callable[..., keras.Model]) -> Callable[..., keras.Model]:
        sig = inspect.signature(fn)
        params = list(sig.parameters.values())
        if [p.name for p in params[:3]] != ["input_shape", "weights", "name"] or any(
                p.kind is not p.KEYWORD_ONLY for p in params[3:] if p.kind is not p.VAR_KEYWORD):
            raise TypeError(f"{fn.__name__}: a builder's signature is (input_shape, weights, name, *, ...)")
        required = [p.name for p in params[3:] if p.kind is p.KEYWORD_ONLY and p.default is p.empty]
        task_args = required or [p.name for p in params[3:] if p.kind is p.KEYWORD_ONLY][:3]
        builder = fn.__name__
        default = sig.parameters["input_shape"].default
        shown = example or str(tuple(default))

        @functools.wraps(fn)
        def build(*args: Any, **kwargs: Any) -> keras.Model:
            if args:  # the old positional calls fail here with the hint, not with Python's message
                check_input_shape(args[0], builder, rank, shown, task_args)
            try:
                bound = sig.bind(*args, **kwargs)
            except TypeError as error:
                raise TypeError(f"{builder}: {error}; the signature is {builder}{sig}") from None
            given = bound.arguments.get("input_shape", default)
            if given is not None:
                bound.arguments["input_shape"] = check_input_shape(given, builder, rank, shown, task_args)
            weights = bound.arguments.get("weights", sig.parameters["weights"].default)
            bound.arguments["weights"] = check_weights(weights, builder, imagenet)
            model = fn(*bound.args, **bound.kwargs)
            if weights is not None and bound.arguments["weights"] is None:
                (load or functools.partial(load_weights_file, backbone=imagenet))(model, weights, builder)
            return model

        BUILDERS[builder] = build
        return build

    return wrap

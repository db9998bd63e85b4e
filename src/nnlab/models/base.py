"""The model registry, shared parameter checks, and task-appropriate output layers."""

from __future__ import annotations

from typing import Annotated, Any, Callable

from pydantic import AfterValidator

from nnlab.errors import ConfigError
from nnlab.registry import Registry

MODELS: Registry[Callable[..., Any]] = Registry("model", verb="build_")

_DEFAULT_OUTPUT_ACTIVATION = {
    "multiclass": "softmax",
    "binary": "sigmoid",
    "regression": "linear",
    "sequence_regression": "linear",
    "seq2seq": "softmax",
}


def per_layer(value: Any, count: int, key: str) -> list:
    """One value for all `count` layers, or a list with one value per layer."""
    if isinstance(value, list):
        if len(value) != count:
            raise ConfigError(f"model.{key}: has {len(value)} values for {count} layers")
        return value
    return [value] * count


def one_or_list(value: Any, kind: type) -> Any:
    """Pydantic helper: accept a single `kind` or a list of them, with a clear message otherwise."""
    kinds = (int, float) if kind is float else (kind,)
    ok = lambda v: isinstance(v, kinds) and not (kind is not bool and isinstance(v, bool))  # noqa: E731
    if ok(value) or (isinstance(value, list) and value and all(ok(v) for v in value)):
        return [float(v) for v in value] if kind is float and isinstance(value, list) else value
    raise ValueError(f"expected a {kind.__name__} or a list of them (got {value!r})")


FRAME_HEAD = "frame_labels"  # the auxiliary per-frame classification output (model.frame_loss_weight)


def has_frame_head(model) -> bool:
    """Does the model also predict a class per frame (outputs {"output": ..., FRAME_HEAD: ...})?"""
    return any(layer.name == FRAME_HEAD for layer in model.layers)


def default_output_activation(task: str) -> str:
    return _DEFAULT_OUTPUT_ACTIVATION[task]


def _check_units(value: Any) -> Any:
    value = one_or_list(value, int)
    if any(units < 1 for units in (value if isinstance(value, list) else [value])):
        raise ValueError(f"every layer needs at least 1 unit (got {value!r})")
    return value


def _check_rates(value: Any) -> Any:
    value = one_or_list(value, float)
    if any(not 0 <= rate < 1 for rate in (value if isinstance(value, list) else [value])):
        raise ValueError(f"dropout rates must be in [0, 1) (got {value!r})")
    return value


# Parameter types shared by builders: one value for every layer, or a list with one per layer.
LayerUnits = Annotated[Any, AfterValidator(_check_units)]
LayerActivations = Annotated[Any, AfterValidator(lambda value: one_or_list(value, str))]
LayerDropout = Annotated[Any, AfterValidator(_check_rates)]


def output_layer(spec, activation: str | None = None):
    """The Dense layer that gives the task's outputs: units and activation follow `spec.task`.

    On a sequence of vectors Dense works per step, which is what sequence targets need.
    """
    import keras

    units = 1 if spec.task == "binary" else spec.output_dim
    return keras.layers.Dense(units, activation=activation or _DEFAULT_OUTPUT_ACTIVATION[spec.task], name="output")


def flat_output_layers(spec, activation: str | None = None) -> list:
    """Output layers after a flat feature vector: for sequence targets one Dense reshaped into steps."""
    import keras

    if spec.output_length is None:
        return [output_layer(spec, activation)]
    return [
        keras.layers.Dense(spec.output_length * spec.output_dim),
        keras.layers.Reshape((spec.output_length, spec.output_dim)),
        keras.layers.Activation(activation or _DEFAULT_OUTPUT_ACTIVATION[spec.task], name="output"),
    ]

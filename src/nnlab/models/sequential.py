"""sequential: any notebook model written out layer by layer, in Keras's own class and argument names."""

from __future__ import annotations

import difflib
from typing import Any

from pydantic import Field, field_validator

from nnlab.errors import ConfigError, first_line
from nnlab.models.base import MODELS
from nnlab.registry import Params


class SequentialParams(Params):
    layers: list[Any] = Field(description="items like `Dense: {units: 10, activation: softmax}` or `Flatten`")

    @field_validator("layers")
    @classmethod
    def _one_layer_per_item(cls, value: list[Any]) -> list[Any]:
        if not value:
            raise ValueError("needs at least one layer")
        for i, item in enumerate(value):
            if isinstance(item, str):
                continue
            if not (isinstance(item, dict) and len(item) == 1):
                raise ValueError(f"item {i}: write one layer as `ClassName: {{kwargs}}` (got {item!r})")
            kwargs = next(iter(item.values()))
            if kwargs is not None and not isinstance(kwargs, dict):
                raise ValueError(f"item {i}: the arguments of {next(iter(item))} must be a mapping (got {kwargs!r})")
        return value


@MODELS.register(SequentialParams)
def build_sequential(spec, layers):
    """keras.Sequential from a list of layer class names and kwargs; the last layer is the output."""
    import keras

    model = keras.Sequential(name="sequential")
    model.add(keras.Input(spec.input_shape))
    for i, item in enumerate(layers):
        name, kwargs = (item, {}) if isinstance(item, str) else next(iter(item.items()))
        layer_cls = getattr(keras.layers, name, None)
        if not (isinstance(layer_cls, type) and issubclass(layer_cls, keras.layers.Layer)):
            close = difflib.get_close_matches(name, dir(keras.layers), n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            raise ConfigError(f"model.layers[{i}]: unknown Keras layer {name!r}{hint}")
        try:
            model.add(layer_cls(**(kwargs or {})))
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"model.layers[{i}]: {name}: {first_line(exc)}") from None
    _check_output(model, spec, len(layers))
    return model


def _check_output(model, spec, count: int) -> None:
    """The last layer must give what the data's task needs: caught here, not as a graph error in fit."""
    units = 1 if spec.task == "binary" else spec.output_dim
    expected = (units,) if spec.output_length is None else (spec.output_length, units)
    got = tuple(model.output_shape[1:])
    if got == expected or (len(got) == len(expected) and None in got and all(
            g in (None, e) for g, e in zip(got, expected))):
        return
    what = {"multiclass": f"{units} classes", "binary": "a binary label", "seq2seq": f"{units} symbols per step"}.get(
        spec.task, f"{units} target value{'s' * (units > 1)}")
    example = {"multiclass": "softmax", "binary": "sigmoid", "seq2seq": "softmax"}.get(spec.task, "linear")
    raise ConfigError(f"model.layers[{count - 1}]: the model's output has shape {got}, but {spec.task} data with "
                      f"{what} needs {expected}; end with e.g. Dense: {{units: {units}, activation: {example}}}")

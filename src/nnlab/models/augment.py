"""Image augmentation at the model input: Keras preprocessing layers that act only while training."""

from __future__ import annotations

from typing import Any


def augmentation_layers(augment: dict[str, Any]) -> list:
    """RandomFlip / RandomTranslation / RandomRotation for the options DatasetSpec.augment holds."""
    from keras import layers

    out = []
    if augment.get("flip"):
        out.append(layers.RandomFlip(augment["flip"], name="augment_flip"))
    if augment.get("shift"):
        shift = augment["shift"]
        out.append(layers.RandomTranslation(shift, shift, fill_mode="nearest", name="augment_shift"))
    if augment.get("rotate"):
        out.append(layers.RandomRotation(augment["rotate"] / 360.0, fill_mode="nearest", name="augment_rotate"))
    return out


def with_augmentation(model, spec):
    """`model` with the augmentation layers inserted right after its input (a flat Sequential stays flat)."""
    import keras

    extra = augmentation_layers(spec.augment or {})
    if not extra:
        return model
    if isinstance(model, keras.Sequential):
        return keras.Sequential([keras.Input(spec.input_shape), *extra, *model.layers], name=model.name)
    inputs = keras.Input(spec.input_shape)
    x = inputs
    for layer in extra:
        x = layer(x)
    return keras.Model(inputs, model(x), name=model.name)


def without_augmentation(model):
    """The model as used for inference: the same layers (and weights) minus the augmentation layers.

    They are the identity outside training, but their random ops stay in a traced graph (which ONNX
    converters lack). `with_augmentation` puts them in a straight chain after the input, so the chain
    is rebuilt from the other layers; a model without them is returned as it is.
    """
    import keras

    names = {layer.name for layer in augmentation_layers({"flip": "horizontal", "shift": 0.1, "rotate": 1.0})}
    if not any(layer.name in names for layer in model.layers):
        return model
    inputs = keras.Input(tuple(model.inputs[0].shape[1:]))
    x = inputs
    for layer in model.layers:
        if layer.name not in names and not isinstance(layer, keras.layers.InputLayer):
            x = layer(x)
    return keras.Model(inputs, x, name=model.name)

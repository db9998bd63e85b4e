"""mlp: a multilayer perceptron (Dense layers) for any task; images are flattened first."""

from __future__ import annotations


from pydantic import Field, field_validator

from nnlab.models.base import MODELS, LayerActivations, LayerDropout, flat_output_layers, per_layer
from nnlab.registry import Params


class MLPParams(Params):
    hidden: list[int] = Field([32], description="units of each hidden Dense layer")
    activation: LayerActivations = Field("relu", description="Keras activation, one for all layers or one per layer")
    dropout: LayerDropout = Field(0.0, description="dropout rate after each hidden layer (one or one per layer)")
    batch_norm: bool = Field(False, description="BatchNormalization before each hidden activation")
    output_activation: str | None = Field(None, description="default from the task (softmax, sigmoid, linear)")
    kernel_initializer: str = Field("glorot_uniform", description="Keras initializer name")

    @field_validator("hidden")
    @classmethod
    def _positive(cls, value: list[int]) -> list[int]:
        if any(units < 1 for units in value):
            raise ValueError(f"every layer needs at least 1 unit (got {value})")
        return value


@MODELS.register(MLPParams)
def build_mlp(spec, hidden=(32,), activation="relu", dropout=0.0, batch_norm=False, output_activation=None,
              kernel_initializer="glorot_uniform"):
    """Dense layers with one activation, dropout and optional batch norm per layer, then the task's output."""
    import keras
    from keras import layers

    activations = per_layer(activation, len(hidden), "activation")
    rates = per_layer(dropout, len(hidden), "dropout")
    model = keras.Sequential(name="mlp")
    model.add(keras.Input(spec.input_shape))
    if len(spec.input_shape) > 1:
        model.add(layers.Flatten())
    for units, act, rate in zip(hidden, activations, rates):
        model.add(layers.Dense(units, kernel_initializer=kernel_initializer, activation=None if batch_norm else act))
        if batch_norm:
            model.add(layers.BatchNormalization())
            model.add(layers.Activation(act))
        if rate:
            model.add(layers.Dropout(rate))
    for layer in flat_output_layers(spec, output_activation):
        model.add(layer)
    return model

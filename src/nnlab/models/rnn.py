"""rnn: stacked SimpleRNN/LSTM/GRU layers with a per-step or a sequence-to-label head."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from nnlab.errors import ConfigError
from nnlab.models.base import (
    MODELS,
    LayerActivations,
    LayerDropout,
    LayerUnits,
    flat_output_layers,
    output_layer,
    per_layer,
)
from nnlab.registry import Params

CELLS = {"simple": "SimpleRNN", "lstm": "LSTM", "gru": "GRU"}
SEQUENCE_TASKS = ("sequence_regression",)  # tasks with one target per time step


class RNNParams(Params):
    cell: Literal["simple", "lstm", "gru"] = Field("lstm", description="recurrent cell type")
    units: LayerUnits = Field([32], description="units of each recurrent layer (an int means one layer)")
    activation: LayerActivations = Field("tanh", description="recurrent activation, one for all layers or one per layer")
    dropout: LayerDropout = Field(0.0, description="dropout on each recurrent layer's inputs (one or one per layer)")
    recurrent_dropout: float = Field(0.0, ge=0, lt=1, description="dropout on the recurrent state")
    bidirectional: bool = Field(False, description="wrap every recurrent layer in Bidirectional")
    dense: list[int] = Field([], description="hidden Dense layers between the last RNN and the output")
    dense_activation: str = Field("relu", description="activation of the hidden Dense layers")
    output_activation: str | None = Field(None, description="default from the task (softmax, sigmoid, linear)")


def recurrent_stack(units, cell="lstm", activation="tanh", dropout=0.0, recurrent_dropout=0.0,
                    bidirectional=False, return_sequences=False, stateful=False) -> list:
    """The recurrent layers of an rnn/cnn_rnn model; the last returns sequences only when asked."""
    from keras import layers

    units = units if isinstance(units, list) else [units]
    activations = per_layer(activation, len(units), "activation")
    rates = per_layer(dropout, len(units), "dropout")
    rnn = getattr(layers, CELLS[cell])
    out = []
    for i, (n, act, rate) in enumerate(zip(units, activations, rates)):
        last = i == len(units) - 1
        layer = rnn(n, activation=act, dropout=rate, recurrent_dropout=recurrent_dropout,
                    return_sequences=return_sequences or not last, stateful=stateful, name=f"{cell}_{i + 1}")
        out.append(layers.Bidirectional(layer, name=f"bidirectional_{i + 1}") if bidirectional else layer)
    return out


@MODELS.register(RNNParams)
def build_rnn(spec, cell="lstm", units=(32,), activation="tanh", dropout=0.0, recurrent_dropout=0.0,
              bidirectional=False, dense=(), dense_activation="relu", output_activation=None,
              stateful=False, batch_size=None):
    """Recurrent layers, then a Dense per time step (sequence targets) or Dense layers on the last state.

    `stateful` and `batch_size` are for truncated BPTT (training/tbptt.py), which builds a stateful
    twin of the model: states carry over between consecutive windows of the same sequences.
    """
    import keras
    from keras import layers

    if len(spec.input_shape) != 2:
        raise ConfigError(f"model.name: rnn needs sequences (time, features); this dataset's inputs are {spec.input_shape}")
    if stateful and not batch_size:
        raise ConfigError("model.stateful: a stateful RNN needs a fixed batch_size")
    per_step = spec.task in SEQUENCE_TASKS
    if per_step and dense:
        raise ConfigError("model.dense: hidden Dense layers are for sequence-to-label tasks")
    features = spec.input_shape[-1]
    model = keras.Sequential(name=f"rnn_{cell}")
    # The time axis is left open, so the same model reads windows (truncated BPTT) and whole sequences.
    if stateful:
        model.add(keras.Input(batch_shape=(batch_size, None, features)))
    else:
        model.add(keras.Input((None, features)))
    for layer in recurrent_stack(list(units) if not isinstance(units, int) else units, cell, activation, dropout,
                                 recurrent_dropout, bidirectional, return_sequences=per_step, stateful=stateful):
        model.add(layer)
    for n in dense:
        model.add(layers.Dense(n, activation=dense_activation))
    # Dense acts on every step of a 3-D input; after the last state, sequence targets are reshaped.
    for layer in [output_layer(spec, output_activation)] if per_step else flat_output_layers(spec, output_activation):
        model.add(layer)
    return model

"""seq2seq: encoder RNN -> RepeatVector -> decoder RNN layers -> TimeDistributed softmax."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from nnlab.errors import ConfigError
from nnlab.models.base import MODELS, default_output_activation
from nnlab.registry import Params

CELLS = {"lstm": "LSTM", "gru": "GRU", "simple": "SimpleRNN"}


class Seq2SeqParams(Params):
    cell: Literal["lstm", "gru", "simple"] = Field("lstm", description="recurrent cell type")
    units: int = Field(128, ge=1, description="units of every recurrent layer")
    encoder_layers: int = Field(1, ge=1)
    decoder_layers: int = Field(1, ge=1, description="decoder RNN layers after the RepeatVector")
    dropout: float = Field(0.0, ge=0, lt=1, description="dropout on each recurrent layer's inputs")


@MODELS.register(Seq2SeqParams)
def build_seq2seq(spec, cell="lstm", units=128, encoder_layers=1, decoder_layers=1, dropout=0.0):
    """The classic encoder-decoder for string-to-string tasks such as addition (seed 000)."""
    import keras
    from keras import layers

    if spec.output_length is None:
        raise ConfigError(f"model.name: seq2seq needs sequence targets; this dataset's task is {spec.task}")
    rnn = getattr(layers, CELLS[cell])
    model = keras.Sequential(name="seq2seq")
    model.add(keras.Input(spec.input_shape))
    for i in range(encoder_layers):
        model.add(rnn(units, dropout=dropout, return_sequences=i < encoder_layers - 1))
    model.add(layers.RepeatVector(spec.output_length))
    for _ in range(decoder_layers):
        model.add(rnn(units, dropout=dropout, return_sequences=True))
    activation = default_output_activation(spec.task)  # softmax over characters; linear for numbers per step
    model.add(layers.TimeDistributed(layers.Dense(spec.output_dim, activation=activation), name="output"))
    return model

"""cnn_rnn: a small CNN applied to every frame (TimeDistributed), an RNN over the frames, a dense head."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from nnlab.errors import ConfigError
from nnlab.models.base import FRAME_HEAD, MODELS, LayerUnits, output_layer
from nnlab.models.rnn import SEQUENCE_TASKS, recurrent_stack
from nnlab.registry import Params


class CNNRNNParams(Params):
    filters: list[int] = Field([16, 32], description="filters of each Conv2D block (conv, relu, max-pool 2)")
    kernel: int = Field(3, ge=1, description="square kernel size of every Conv2D")
    frame_dense: int = Field(64, ge=0, description="units of the Dense layer that ends the frame encoder (0: none)")
    frame_dropout: float = Field(0.0, ge=0, lt=1, description="dropout after the frame encoder")
    batch_norm: bool = Field(False, description="BatchNormalization after each Conv2D")
    cell: Literal["simple", "lstm", "gru"] = Field("lstm", description="recurrent cell over the frames")
    units: LayerUnits = Field([64], description="units of each recurrent layer (an int means one layer)")
    activation: str = Field("tanh", description="recurrent activation")
    dropout: float = Field(0.0, ge=0, lt=1, description="dropout on the recurrent layers' inputs")
    bidirectional: bool = False
    dense: list[int] = Field([], description="hidden Dense layers of the head")
    dense_activation: str = "relu"
    output_activation: str | None = Field(None, description="default from the task")
    output_bias: float = Field(0.0, description="initial bias of the output layer, e.g. the mean of a regression target")
    frame_loss_weight: float = Field(0.0, ge=0, description="weight of an auxiliary per-frame classification loss "
                                     "(datasets with frame labels, e.g. digitsum); 0: off")
    frame_sum: bool = Field(False, description="add to the output what the per-frame head reads, summed over the "
                                               "frames (each frame: the expected class index, digitsum's digit; "
                                               "only the frames' own loss trains the head); needs "
                                               "frame_loss_weight; set output_bias to 0")

    @model_validator(mode="after")
    def _frame_sum_reads_the_frame_head(self) -> CNNRNNParams:
        if self.frame_sum and not self.frame_loss_weight:
            raise ValueError("frame_sum adds up the per-frame head's readings: it needs frame_loss_weight > 0")
        return self


@MODELS.register(CNNRNNParams)
def build_cnn_rnn(spec, filters=(16, 32), kernel=3, frame_dense=64, frame_dropout=0.0, batch_norm=False, cell="lstm",
                  units=(64,), activation="tanh", dropout=0.0, bidirectional=False, dense=(), dense_activation="relu",
                  output_activation=None, output_bias=0.0, frame_loss_weight=0.0, frame_sum=False):
    """Per-frame Conv2D blocks + Flatten (+ Dense) wrapped in TimeDistributed, then RNN layers and the task's head."""
    import keras
    from keras import layers

    if len(spec.input_shape) != 4:
        raise ConfigError(f"model.name: cnn_rnn needs sequences of images (time, height, width, channels); "
                          f"this dataset's inputs are {spec.input_shape}")
    frame_shape = tuple(spec.input_shape[1:])
    encoder = keras.Sequential(name="frame_encoder")
    encoder.add(keras.Input(frame_shape))
    for n in filters:
        encoder.add(layers.Conv2D(n, kernel, padding="same", use_bias=not batch_norm))
        if batch_norm:
            encoder.add(layers.BatchNormalization())
        encoder.add(layers.Activation("relu"))
        encoder.add(layers.MaxPooling2D(2))
    encoder.add(layers.Flatten())
    if frame_dense:
        encoder.add(layers.Dense(frame_dense, activation="relu"))
    if frame_dropout:
        encoder.add(layers.Dropout(frame_dropout))

    if frame_loss_weight and not spec.frame_classes:
        raise ConfigError("model.frame_loss_weight: this dataset has no per-frame labels to learn from")
    per_step = spec.task in SEQUENCE_TASKS
    if frame_sum and (spec.task != "regression" or spec.output_dim != 1):
        raise ConfigError(f"model.frame_sum: needs one number per sequence (task regression); this dataset's task "
                          f"is {spec.task}")
    inputs = keras.Input(spec.input_shape)
    frames = layers.TimeDistributed(encoder, name="frames")(inputs)
    x = frames
    for layer in recurrent_stack(units if isinstance(units, int) else list(units), cell, activation, dropout,
                                 bidirectional=bidirectional, return_sequences=per_step):
        x = layer(x)
    for n in dense:
        x = layers.Dense(n, activation=dense_activation)(x)
    head = output_layer(spec, output_activation)
    if output_bias:
        head.bias_initializer = keras.initializers.Constant(output_bias)
    outputs = head(x)
    if frame_loss_weight:  # each frame's own class from its encoding: an auxiliary loss (seed 003's idea)
        frame_head = layers.Dense(spec.frame_classes, activation="softmax")
        readings = layers.TimeDistributed(frame_head, name=FRAME_HEAD)(frames)
        if frame_sum:
            from nnlab.models.layers import FrameSum

            outputs = layers.Add()([outputs, FrameSum(name="frame_sum")(readings)])
        outputs = {"output": outputs, FRAME_HEAD: readings}
    return keras.Model(inputs, outputs, name=f"cnn_{cell}")

"""cnn: convolution blocks (conv, batch norm, pooling, dropout), then Dense layers and the task's output."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from nnlab.errors import ConfigError
from nnlab.models.base import MODELS, output_layer, per_layer
from nnlab.registry import Params

Padding = Literal["valid", "same"]


class ConvBlock(Params):
    """`convs` Conv2D layers with the same filters, then optional pooling and dropout."""

    filters: int = Field(ge=1, description="filters of each conv (times the model's width)")
    kernel: int | list[int] = Field(3, description="kernel size: n or [height, width]")
    strides: int | list[int] = Field(1, description="conv strides: n or [height, width]")
    padding: Padding | list[Padding] = Field("valid", description="valid or same, one for all convs or one per conv")
    convs: int = Field(1, ge=1, description="Conv2D layers in this block")
    activation: str | None = Field(None, description="default: the model's activation")
    use_bias: bool = True
    batch_norm: bool = Field(False, description="BatchNormalization after each conv's activation")
    pool: int | list[int] | None = Field(None, description="pool size after the convs; none: no pooling")
    pool_kind: Literal["max", "avg"] = "max"
    pool_stride: int | list[int] | None = Field(None, description="default: the pool size")
    pool_padding: Padding = "valid"
    dropout: float = Field(0.0, ge=0, lt=1, description="dropout rate at the end of the block")
    dropout_at: Literal["end", "after_conv"] = Field(
        "end", description="end: after pooling; after_conv: right after the last conv, before its batch norm")

    @field_validator("kernel", "strides", "pool", "pool_stride")
    @classmethod
    def _sizes(cls, value):
        sizes = value if isinstance(value, list) else [value]
        if value is not None and (len(sizes) not in (1, 2) or any(s < 1 for s in sizes)):
            raise ValueError(f"expected a positive size n or [height, width] (got {value!r})")
        return value


class DenseLayer(Params):
    """A hidden Dense layer with optional batch norm and dropout (in that order, after the activation)."""

    units: int = Field(ge=1)
    activation: str | None = Field(None, description="default: the model's activation")
    batch_norm: bool = False
    dropout: float = Field(0.0, ge=0, lt=1)


class CNNParams(Params):
    blocks: list[ConvBlock] = Field(min_length=1, description="conv blocks, input side first")
    dense: list[int | DenseLayer] = Field([], description="hidden Dense layers after flattening: units or {units, dropout, ...}")
    activation: str = Field("relu", description="activation of convs and Dense layers unless a layer says otherwise")
    global_pool: Literal["avg", "max"] | None = Field(None, description="global pooling instead of Flatten")
    width: float = Field(1.0, gt=0, description="multiplies every block's filters (sweep 'filters per layer')")
    output_activation: str | None = Field(None, description="default from the task (softmax, sigmoid, linear)")
    kernel_initializer: str = Field("glorot_uniform", description="Keras initializer name")


def scaled(filters: int, width: float) -> int:
    """Filters after the width multiplier: rounded, at least 1."""
    return max(1, round(filters * width))


@MODELS.register(CNNParams)
def build_cnn(spec, blocks, dense=(), activation="relu", global_pool=None, width=1.0, output_activation=None,
              kernel_initializer="glorot_uniform"):
    """Conv blocks (Conv2D x n, batch norm, pooling, dropout), Flatten or global pooling, Dense layers, output."""
    import keras
    from keras import layers

    if len(spec.input_shape) != 3:
        raise ConfigError(f"model.name: cnn needs images (height, width, channels); this dataset gives shape "
                          f"{tuple(spec.input_shape)} (unset data.flatten?)")
    model = keras.Sequential(name="cnn")
    model.add(keras.Input(spec.input_shape))
    for b, block in enumerate(blocks, start=1):
        block = ConvBlock.model_validate(block) if isinstance(block, dict) else block
        paddings = per_layer(block.padding, block.convs, f"blocks[{b - 1}].padding")
        for c, padding in enumerate(paddings, start=1):
            model.add(layers.Conv2D(scaled(block.filters, width), _pair(block.kernel), strides=_pair(block.strides),
                                    padding=padding, activation=block.activation or activation,
                                    use_bias=block.use_bias, kernel_initializer=kernel_initializer,
                                    name=f"conv{b}_{c}" if block.convs > 1 else f"conv{b}"))
            last = c == block.convs
            if last and block.dropout and block.dropout_at == "after_conv":
                model.add(layers.Dropout(block.dropout))
            if block.batch_norm:
                model.add(layers.BatchNormalization())
        if block.pool is not None:
            pool = layers.MaxPooling2D if block.pool_kind == "max" else layers.AveragePooling2D
            model.add(pool(_pair(block.pool), strides=_pair(block.pool_stride) if block.pool_stride else None,
                           padding=block.pool_padding, name=f"pool{b}"))
        if block.dropout and block.dropout_at == "end":
            model.add(layers.Dropout(block.dropout))
    if global_pool == "avg":
        model.add(layers.GlobalAveragePooling2D())
    elif global_pool == "max":
        model.add(layers.GlobalMaxPooling2D())
    else:
        model.add(layers.Flatten())
    for item in dense:
        item = DenseLayer(units=item) if isinstance(item, int) else item
        item = DenseLayer.model_validate(item) if isinstance(item, dict) else item
        model.add(layers.Dense(item.units, activation=item.activation or activation,
                               kernel_initializer=kernel_initializer))
        if item.batch_norm:
            model.add(layers.BatchNormalization())
        if item.dropout:
            model.add(layers.Dropout(item.dropout))
    model.add(output_layer(spec, output_activation))
    return model


def _pair(value):
    return tuple(value) if isinstance(value, list) else value

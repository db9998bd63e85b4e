"""autoencoder: the seed-001 sparse autoencoder, one sigmoid hidden layer with weight decay and KL sparsity."""

from __future__ import annotations

import math

from pydantic import Field

from nnlab.errors import ConfigError
from nnlab.models.base import MODELS
from nnlab.registry import Params


class AutoencoderParams(Params):
    hidden: int = Field(64, ge=1, description="hidden units (the seed: L_hid = 64)")
    weight_decay: float = Field(5e-4, ge=0, description="Tikhonov lambda on both weight matrices (not the biases)")
    beta: float = Field(0.01, ge=0, description="weight of the KL sparsity term")
    rho: float = Field(0.2, gt=0, lt=1, description="target mean activation of every hidden unit")
    output_activation: str = Field("sigmoid", description="the seed reconstructs in [0.1, 0.9] with sigmoid outputs")


@MODELS.register(AutoencoderParams)
def build_autoencoder(spec, hidden=64, weight_decay=5e-4, beta=0.01, rho=0.2, output_activation="sigmoid"):
    """Input -> Dense(hidden, sigmoid) -> Dense(inputs): minimises the seed's cost J_ae with Keras's mse.

    The seed's cost is 1/(2N) sum ||d - o||^2 + lambda/2 (|W1|^2 + |W2|^2) + beta sum_b KL(rho || rho_hat_b).
    Keras's mse averages over the n inputs too, so both penalties are divided by n/2 here: the total
    loss is J_ae * 2/n, with the same minimum, and lambda, beta, rho mean what they meant in the seed.
    """
    import keras
    from keras import layers

    from nnlab.models.layers import KLSparsity

    if len(spec.input_shape) != 1 or spec.output_dim != spec.input_shape[0]:
        raise ConfigError(f"model.name: autoencoder needs flat inputs that are also the targets (a dataset such "
                          f"as patches); this dataset maps {spec.input_shape} to {spec.output_dim} outputs")
    n = spec.input_shape[0]
    scale = 2.0 / n
    decay = keras.regularizers.L2(weight_decay / 2 * scale) if weight_decay else None
    limit = math.sqrt(6 / (n + hidden))  # the seed's uniform init, +-sqrt(6 / (L_pre + L_post))
    init = keras.initializers.RandomUniform(-limit, limit)
    model = keras.Sequential(name="autoencoder")
    model.add(keras.Input((n,)))
    model.add(layers.Dense(hidden, activation="sigmoid", kernel_initializer=init, kernel_regularizer=decay, name="hidden"))
    if beta:
        model.add(KLSparsity(rho=rho, beta=beta, scale=scale, name="sparsity"))
    model.add(layers.Dense(n, activation=output_activation, kernel_initializer=init, kernel_regularizer=decay,
                           name="output"))
    return model

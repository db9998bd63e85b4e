"""Custom Keras objects nnlab's builders use; imports Keras, so builders import this in their bodies.

Every object is registered under the package name "nnlab", so a saved model.keras reloads
once this module is imported (`nnlab.models.layers`).
"""

from __future__ import annotations

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="nnlab")
class KLSparsity(keras.layers.Layer):
    """Identity layer that adds beta * sum_b KL(rho || mean activation of unit b) to the loss (seed 001).

    The mean activation rho_hat_b is taken over the batch; inputs must lie in (0, 1) (sigmoid units).
    `scale` multiplies the penalty, to match how the reconstruction term is normalised.
    """

    def __init__(self, rho: float = 0.05, beta: float = 0.1, scale: float = 1.0, **kwargs):
        super().__init__(**kwargs)
        self.rho, self.beta, self.scale = float(rho), float(beta), float(scale)

    def call(self, inputs):
        rho_hat = ops.clip(ops.mean(inputs, axis=0), 1e-6, 1 - 1e-6)
        rho = self.rho
        kl = rho * ops.log(rho / rho_hat) + (1 - rho) * ops.log((1 - rho) / (1 - rho_hat))
        self.add_loss(self.scale * self.beta * ops.sum(kl))
        return inputs

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "rho": self.rho, "beta": self.beta, "scale": self.scale}


@keras.saving.register_keras_serializable(package="nnlab")
class FrameSum(keras.layers.Layer):
    """What a per-frame classifier reads, summed over the frames: sum_t sum_k p_tk * k (digitsum: the expected
    digits added up), shape (batch, 1). The gradient stops here: the frames' own loss trains the classifier,
    and the sum's error cannot pull its probabilities away from the right class (when it could, the per-image
    validation accuracy was 0.87 after 6 epochs, against 0.99 without the sum: benchmarks/RESULTS.md)."""

    def call(self, readings):
        values = ops.arange(ops.shape(readings)[-1], dtype=readings.dtype)
        return ops.sum(ops.stop_gradient(readings) * values, axis=(1, 2))[:, None]

    def compute_output_shape(self, input_shape):
        return (input_shape[0], 1)

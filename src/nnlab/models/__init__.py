"""Models: registered builders `build_<name>(spec, **params) -> keras.Model` (importing this loads no Keras)."""

from nnlab.models import autoencoder, cnn, cnn_rnn, mlp, rnn, seq2seq, sequential  # noqa: F401  (registers the builders)
from nnlab.models.base import MODELS


def build(config, spec):
    """Build the uncompiled keras.Model a `model:` section names, for data described by `spec`."""
    model = MODELS.get(config.name).fn(spec, **config.params)
    if getattr(spec, "augment", None):
        from nnlab.models.augment import with_augmentation

        model = with_augmentation(model, spec)
    return model


__all__ = ["MODELS", "build"]

"""Augmentation layers (models/augment.py): saved with the model, random while training, idle at inference."""

from __future__ import annotations

import numpy as np

from conftest import CONFIGS
from nnlab import experiment, runs

TINY = ["train.epochs=1", "output.plots=false"]


def test_augmentation_layers_are_saved_and_idle_at_inference(tmp_path, runs_dir):
    import keras

    run_dir = experiment.train(CONFIGS / "crt_cnn.yaml",
                               [*TINY, "data.n_train=30", "data.n_val=15", "data.augment={flip: horizontal, shift: 0.1, rotate: 20}"],
                               runs_dir=runs_dir)
    model = keras.models.load_model(run_dir / runs.MODEL)
    names = [layer.name for layer in model.layers]
    assert names[:3] == ["augment_flip", "augment_shift", "augment_rotate"]
    x = np.random.default_rng(0).random((4, 64, 64, 1)).astype("float32")
    stripped = keras.Sequential([keras.Input((64, 64, 1)), *model.layers[3:]])
    np.testing.assert_allclose(model(x, training=False), stripped(x, training=False), rtol=1e-5)
    assert not np.allclose(model.layers[1](x, training=True), x)  # random shifts do act while training

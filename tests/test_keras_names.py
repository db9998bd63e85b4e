"""The Keras names nnlab checks without Keras: the tables are what the installed Keras accepts, and a typo is
refused, with the name meant, before Keras is imported."""

from __future__ import annotations

import pytest

from conftest import tiny_digits_config, write_config
from nnlab.keras_names import KINDS, keras_tables
from test_import_cost import probe


@pytest.mark.parametrize("key, value, message", [
    ("model.activation", "rleu", "model.activation: unknown Keras activation 'rleu' (did you mean 'relu'?)"),
    ("model.kernel_initializer", "glorot_unifrom", "model.kernel_initializer: unknown Keras initializer "
                                                   "'glorot_unifrom' (did you mean 'glorot_uniform'?)"),
    ("train.metrics", "[acuracy]", "train.metrics[0]: unknown Keras metric 'acuracy' (did you mean 'accuracy'?)"),
], ids=["activation", "initializer", "metric"])
def test_a_keras_name_typo_is_refused_before_keras_is_imported(tmp_path, key, value, message):
    config = write_config(tmp_path / "x.yaml", tiny_digits_config())
    code, loaded, stderr = probe("train", str(config), f"{key}={value}")
    assert loaded == ""  # what took ~9 s: TensorFlow was imported before the names were checked
    assert code == "2"
    assert stderr == f"error: {config}: {message} (from override '{key}={value}')\n"


def test_the_name_tables_are_the_names_the_installed_keras_accepts():
    """nnlab.keras_names must never go stale: each table is exactly what Keras's `get(name)` looks names up in."""
    import keras

    assert KINDS == keras_tables()
    modules = {"activation": keras.activations, "initializer": keras.initializers, "loss": keras.losses,
               "metric": keras.metrics}
    for kind, names in KINDS.items():
        for name in sorted(names):
            assert modules[kind].get(name) is not None, (kind, name)
        with pytest.raises(ValueError):
            modules[kind].get("rleu_not_a_name")

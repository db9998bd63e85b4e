"""Every registered model builds for each kind of data it supports, every dataset loads (tiny data), and
every entry is documented and listed.

A new model or dataset must add an entry to MODEL_EXAMPLES below or to DATASET_EXAMPLES (conftest.py): the
completeness tests fail until it does, so each component is exercised here without further work.
"""

from __future__ import annotations

import numpy as np
import pytest
from typer.testing import CliRunner

from nnlab.cli.main import app
from nnlab import datasets
from nnlab.datasets import DATASETS, TASKS
from nnlab.datasets.base import DatasetSpec
from nnlab.errors import ConfigError
from nnlab.models import MODELS
from nnlab.registry import Params, Registry
from conftest import DATASET_EXAMPLES

IMAGE = (12, 12, 1)
# kind of data -> (spec, expected output shape)
SPECS = {
    "image_multiclass": (DatasetSpec("multiclass", IMAGE, 4), (None, 4)),
    "image_binary": (DatasetSpec("binary", IMAGE, 1), (None, 1)),
    "image_regression": (DatasetSpec("regression", IMAGE, 2), (None, 2)),
    "seq2seq": (DatasetSpec("seq2seq", (7, 12), 12, output_length=4), (None, 4, 12)),
    "sequence_multiclass": (DatasetSpec("multiclass", (10, 3), 6), (None, 6)),
    "sequence_regression": (DatasetSpec("sequence_regression", (10, 1), 1, output_length=10), (None, 10, 1)),
    "frames_regression": (DatasetSpec("regression", (5, *IMAGE), 1), (None, 1)),
    "flat_regression": (DatasetSpec("regression", (16,), 16), (None, 16)),
}

# model name -> (kinds of data it supports, tiny parameters)
MODEL_EXAMPLES = {
    "mlp": (("image_multiclass", "image_binary", "image_regression", "seq2seq", "sequence_multiclass"), {"hidden": [4]}),
    "cnn": (("image_multiclass", "image_binary", "image_regression"), {"blocks": [{"filters": 2, "pool": 2}], "dense": [4]}),
    "seq2seq": (("seq2seq",), {"units": 4}),
    "sequential": (("image_multiclass",), {"layers": ["Flatten", {"Dense": {"units": 4, "activation": "softmax"}}]}),
    "rnn": (("sequence_multiclass", "sequence_regression", "seq2seq"), {"cell": "gru", "units": [3]}),
    "cnn_rnn": (("frames_regression",), {"filters": [2], "frame_dense": 4, "units": [3]}),
    "autoencoder": (("flat_regression",), {"hidden": 4}),
}



def test_every_model_has_an_example():
    missing = sorted(set(MODELS.names()) - set(MODEL_EXAMPLES))
    assert not missing, f"add {missing} to MODEL_EXAMPLES in {__file__}"


def test_every_dataset_has_an_example():
    missing = sorted(set(DATASETS.names()) - set(DATASET_EXAMPLES))
    assert not missing, f"add {missing} to DATASET_EXAMPLES in tests/conftest.py"


def _params(name: str, params: dict) -> dict:
    return MODELS.get(name).params.model_validate(params).model_dump()  # with the defaults a config gets


@pytest.mark.parametrize("name", MODELS.names())
def test_model_builds_for_each_kind_of_data(name):
    kinds, params = MODEL_EXAMPLES[name]
    for kind in kinds:
        spec, expected = SPECS[kind]
        model = MODELS.get(name).fn(spec, **_params(name, params))
        out = model.predict(np.zeros((2, *spec.input_shape), dtype="float32"), verbose=0)
        assert out.shape == (2, *expected[1:]), (name, kind)
        assert np.isfinite(out).all()


@pytest.mark.parametrize("name", sorted(set(MODELS.names()) - {"sequential"}))  # sequential outputs what it is told
def test_model_refuses_other_data_or_still_fits_the_task(name):
    kinds, params = MODEL_EXAMPLES[name]
    for kind in sorted(set(SPECS) - set(kinds)):
        try:
            model = MODELS.get(name).fn(SPECS[kind][0], **_params(name, params))
        except ConfigError as exc:
            assert str(exc).startswith("model."), str(exc)  # names the key, so the file prefix makes sense
        else:
            out = model.predict(np.zeros((2, *SPECS[kind][0].input_shape), dtype="float32"), verbose=0)
            assert out.shape == (2, *SPECS[kind][1][1:]), (name, kind)


@pytest.mark.parametrize("name", DATASETS.names())
def test_dataset_loads(name, request):
    fixtures, params = DATASET_EXAMPLES[name]
    for fixture in fixtures:
        request.getfixturevalue(fixture)
    dataset = DATASETS.get(name).fn(**params)
    assert len(dataset.x_train) == len(dataset.y_train) > 0
    assert len(dataset.x_val) == len(dataset.y_val) > 0
    assert dataset.x_train.shape[1:] == tuple(dataset.spec.input_shape)
    assert dataset.meta.get("source") in ("real", "generated", "synthetic")
    assert dataset.task in TASKS
    assert dataset.spec.image_format == datasets.image_format(name, params)  # declared without loading data


@pytest.mark.parametrize("registry", [DATASETS, MODELS], ids=["datasets", "models"])
def test_every_entry_is_documented_and_listed(registry):
    listing = CliRunner().invoke(app, ["list"]).stdout
    for entry in registry:
        assert entry.description, f"{entry.name} needs a docstring"
        assert issubclass(entry.params, Params)
        assert f"  {entry.name:<12}{entry.description}" in listing


def test_registry_keys_by_function_name_and_rejects_unknown_names():
    registry = Registry("widget", verb="make_")

    @registry.register(Params)
    def make_gear():
        """A gear."""

    assert registry.names() == ["gear"]
    with pytest.raises(ConfigError, match=r"unknown widget 'cog' \(choose from: gear\)"):
        registry.get("cog")
    with pytest.raises(ValueError, match="registered twice"):
        registry.register(Params, name="gear")(make_gear)

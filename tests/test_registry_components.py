"""Every registered model builds for each task it supports, and every registered dataset loads (tiny data).

A new model or dataset must add an entry to MODEL_EXAMPLES or DATASET_EXAMPLES below: the completeness tests
fail until it does, so each component is exercised here without further work.
"""

from __future__ import annotations

import numpy as np
import pytest

from nnlab.datasets import DATASETS
from nnlab.datasets.base import DatasetSpec
from nnlab.models import MODELS
from vision_data import write_cifar_batches

IMAGE = (12, 12, 1)
SPECS = {
    "multiclass": DatasetSpec("multiclass", IMAGE, 4),
    "binary": DatasetSpec("binary", IMAGE, 1),
    "regression": DatasetSpec("regression", IMAGE, 2),
    "seq2seq": DatasetSpec("seq2seq", (7, 12), 12, output_length=4),
}
EXPECTED_OUTPUT = {"multiclass": (None, 4), "binary": (None, 1), "regression": (None, 2), "seq2seq": (None, 4, 12)}

# model name -> (tasks it supports, tiny parameters)
MODEL_EXAMPLES = {
    "mlp": (("multiclass", "binary", "regression"), {"hidden": [4]}),
    "cnn": (("multiclass", "binary", "regression"), {"blocks": [{"filters": 2, "pool": 2}], "dense": [4]}),
    "seq2seq": (("seq2seq",), {"units": 4}),
    "sequential": (("multiclass",), {"layers": ["Flatten", {"Dense": {"units": 4, "activation": "softmax"}}]}),
}

# dataset name -> (fixture names it needs, tiny parameters)
DATASET_EXAMPLES = {
    "digits": ((), {"n_train": 40, "n_val": 20}),
    "addition": ((), {"n": 60, "val_split": 0.5}),
    "mnist": (("mnist_idx",), {"n_train": 40}),
    "mnist56": (("mnist_idx",), {"n_train": 20}),
    "crt": ((), {"n_train": 12, "n_val": 6}),
    "r3": ((), {"n_train": 12, "n_val": 6}),
    "cifar10": (("cifar_batches",), {}),
}


@pytest.fixture
def cifar_batches(tmp_path):
    return write_cifar_batches(tmp_path / "data" / "cifar10")


def test_every_model_has_an_example():
    missing = sorted(set(MODELS.names()) - set(MODEL_EXAMPLES))
    assert not missing, f"add {missing} to MODEL_EXAMPLES in {__file__}"


def test_every_dataset_has_an_example():
    missing = sorted(set(DATASETS.names()) - set(DATASET_EXAMPLES))
    assert not missing, f"add {missing} to DATASET_EXAMPLES in {__file__}"


@pytest.mark.parametrize("name", MODELS.names())
def test_model_builds_for_each_task(name):
    tasks, params = MODEL_EXAMPLES[name]
    for task in tasks:
        model = MODELS.get(name).fn(SPECS[task], **params)
        assert model.output_shape == EXPECTED_OUTPUT[task], (name, task)
        x = np.zeros((2, *SPECS[task].input_shape), dtype="float32")
        assert np.isfinite(model.predict(x, verbose=0)).all()


@pytest.mark.parametrize("name", DATASETS.names())
def test_dataset_loads(name, request):
    fixtures, params = DATASET_EXAMPLES[name]
    for fixture in fixtures:
        request.getfixturevalue(fixture)
    dataset = DATASETS.get(name).fn(**params)
    assert len(dataset.x_train) == len(dataset.y_train) > 0
    assert len(dataset.x_val) == len(dataset.y_val) > 0
    assert dataset.x_train.shape[1:] == tuple(dataset.spec.input_shape)
    assert dataset.meta.get("source") in ("real", "generated")
    assert dataset.task in ("binary", "multiclass", "regression", "sequence_regression", "seq2seq")

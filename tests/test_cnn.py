"""The cnn builder: the seeds' models layer for layer (parameter counts), width, pooling and errors."""

from __future__ import annotations

import keras
import pytest

from conftest import CONFIGS
from nnlab.config import load_config
from nnlab.datasets.base import DatasetSpec
from nnlab.errors import ConfigError
from nnlab.models import build
from nnlab.models.cnn import build_cnn

MNIST56 = DatasetSpec("binary", (28, 28, 1), 1)
SHAPES = DatasetSpec("multiclass", (64, 64, 1), 3)
CIFAR10 = DatasetSpec("multiclass", (32, 32, 3), 10)


def config_model(name: str, spec: DatasetSpec, *overrides: str) -> keras.Model:
    return build(load_config(CONFIGS / f"{name}.yaml", list(overrides)).model, spec)


@pytest.mark.parametrize(("config", "spec", "params"), [
    ("mnist56_cnn", MNIST56, 185),          # seed 002, question 3
    ("mnist56_cnn_small", MNIST56, 109),    # seed 002, question 2 (trimmed)
    ("cifar10_cnn12", CIFAR10, 942_314),    # seed 000, 12 conv layers with 32 filters
    ("cifar10_cnn", CIFAR10, 122_570),      # seed 004, question 9
    ("cifar10_cnn_bn", CIFAR10, 346_858),   # seed 004, question 10 (batch norm + dropout)
    ("crt_cnn_seed", SHAPES, 1671),         # seed 002, question 4
    ("r3_cnn_seed", SHAPES, 1237),          # seed 002, question 5
])
def test_seed_configs_have_the_seeds_parameter_counts(config, spec, params):
    assert config_model(config, spec).count_params() == params


def test_seed_000_parameter_count_grows_with_width_as_in_its_plot():
    # The seed's table for 32, 64, 128 filters per layer: 942,314, 3,224,522, 11,825,546.
    for width, params in ((1, 942_314), (2, 3_224_522), (4, 11_825_546)):
        assert config_model("cifar10_cnn12", CIFAR10, f"model.width={width}").count_params() == params


@pytest.mark.parametrize(("filters", "params"), [(4, 1671), (3, 1237)])  # seed 002's CRT and R3 answers
def test_seed_shape_models(filters, params):
    block = {"filters": filters, "kernel": 3, "pool": 3}
    model = build_cnn(SHAPES, [block, block], dense=[10])
    assert model.count_params() == params
    assert model.output_shape == (None, 3)
    assert model.layers[-1].activation.__name__ == "softmax"


def test_seed_004_bn_model_layer_order():
    kinds = [type(layer).__name__ for layer in config_model("cifar10_cnn_bn", CIFAR10).layers]
    assert kinds[:4] == ["Conv2D", "Dropout", "BatchNormalization", "MaxPooling2D"]  # dropout before its batch norm
    assert kinds[-3:] == ["Dense", "BatchNormalization", "Dense"]
    assert kinds.count("Conv2D") == 5 and kinds.count("Dropout") == 3


def test_global_pooling_strides_and_average_pooling():
    model = build_cnn(CIFAR10, [{"filters": 8, "strides": 2, "padding": "same", "pool": 2, "pool_kind": "avg"}],
                      global_pool="avg")
    kinds = [type(layer).__name__ for layer in model.layers]
    assert "AveragePooling2D" in kinds and "GlobalAveragePooling2D" in kinds and "Flatten" not in kinds
    assert model.get_layer("conv1").output.shape == (None, 16, 16, 8)
    assert model.count_params() == (3 * 9 * 8 + 8) + (8 * 10 + 10)


def test_pool_stride_differs_from_pool_size():
    model = build_cnn(MNIST56, [{"filters": 2, "pool": 3, "pool_stride": 2}])
    assert model.get_layer("pool1").output.shape == (None, 12, 12, 2)  # (26 - 3) // 2 + 1


def test_cnn_rejects_flat_input_and_mismatched_paddings():
    with pytest.raises(ConfigError, match="needs images"):
        build_cnn(DatasetSpec("multiclass", (784,), 10), [{"filters": 2}])
    with pytest.raises(ConfigError, match=r"model.blocks\[0\].padding: has 2 values for 3 layers"):
        build_cnn(CIFAR10, [{"filters": 2, "convs": 3, "padding": ["same", "valid"]}])


def test_bad_block_is_a_config_error_with_the_key_path(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("data: {name: digits}\nmodel: {name: cnn, blocks: [{filters: 2, pool_kind: median}]}\n")
    with pytest.raises(ConfigError, match=r"model.blocks\[0\].pool_kind"):
        load_config(bad)

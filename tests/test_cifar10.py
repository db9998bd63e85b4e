"""cifar10 (datasets/cifar10.py): Keras's pickled batches (with the opt-in), an .npz file, val_split, and what
missing or damaged files say."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import nnlab
from nnlab.datasets.cifar10 import load_cifar10
from nnlab.errors import ConfigError
from vision_data import read_batch_images, write_cifar_batches


def test_cifar10_reads_keras_pickle_batches(tmp_path):
    batches = write_cifar_batches(tmp_path / "data" / "cifar10", per_batch=4, test=10)
    dataset = load_cifar10(download=False, allow_pickle=True)
    images, labels = read_batch_images(batches / "data_batch_1")
    assert dataset.x_train.shape == (20, 32, 32, 3) and dataset.x_val.shape == (10, 32, 32, 3)
    np.testing.assert_allclose(dataset.x_train[:4], images / 255.0, rtol=1e-6)  # pixel layout (rows, cols, rgb)
    np.testing.assert_array_equal(dataset.y_train[:4], labels)
    assert dataset.meta["subset"] is True and dataset.meta["path"] == str(batches)
    assert dataset.class_names[0] == "airplane" and dataset.x_test is None


def test_cifar10_npz_and_val_split(tmp_path):
    rng = np.random.default_rng(1)
    path = tmp_path / "c.npz"
    np.savez(path, x_train=rng.integers(0, 256, (40, 32, 32, 3), dtype=np.uint8), y_train=np.arange(40)[:, None] % 10,
             x_test=rng.integers(0, 256, (10, 32, 32, 3), dtype=np.uint8), y_test=np.arange(10) % 10)
    dataset = load_cifar10(path=str(path), val_split=0.25, download=False)
    assert (len(dataset.x_train), len(dataset.x_val), len(dataset.x_test)) == (30, 10, 10)
    assert dataset.meta["subset"] is True and dataset.y_train.ndim == 1


def test_cifar10_missing_files_exit_2_with_one_line(tmp_path):
    result = nnlab("train", "configs/cifar10_cnn.yaml", "data.download=false")
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ")
    assert "cifar-10-batches-py/" in lines[0] and "$NNLAB_DATA_DIR/cifar10/" in lines[0]


def test_cifar10_bad_batch_is_a_config_error(tmp_path):
    batches = write_cifar_batches(tmp_path / "data" / "cifar10")
    (batches / "test_batch").write_bytes(b"not a pickle")
    with pytest.raises(ConfigError, match="test_batch: not a pickle file"):
        load_cifar10(download=False, allow_pickle=True)

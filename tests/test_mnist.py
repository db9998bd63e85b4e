"""mnist and mnist56 (datasets/mnist.py): IDX files plain and gzipped, mnist.npz, what a missing file says, the
5-vs-6 subset from the MNIST files and from the course's mnist56.npy."""

from __future__ import annotations

import numpy as np
import pytest

from nnlab.datasets.mnist import load_mnist, load_mnist56, read_idx
from nnlab.errors import ConfigError, DataNotFoundError

from conftest import make_digit_images, nnlab, write_idx


def test_idx_round_trip_plain_and_gzipped(tmp_path):
    images = make_digit_images(np.array([3, 7]))
    for name in ("x-idx3-ubyte", "x-idx3-ubyte.gz"):
        assert np.array_equal(read_idx(write_idx(tmp_path / name, images)), images)


def test_mnist_reads_idx_files_from_the_data_dir(mnist_idx):
    data = load_mnist()
    assert data.x_train.shape == (300, 28, 28, 1) and data.x_val.shape == (100, 28, 28, 1)
    assert data.x_train.dtype == np.float32 and data.x_train.max() == 1.0
    assert data.x_test is None and data.meta["path"] == str(mnist_idx)
    split = load_mnist(val_split=0.2, flatten=True)
    assert split.x_train.shape == (240, 784) and split.x_val.shape == (60, 784) and split.x_test.shape == (100, 784)


def test_mnist_reads_an_npz_given_as_path(tmp_path, monkeypatch):
    monkeypatch.delenv("NNLAB_DATA_DIR")
    arrays = {"x_train": make_digit_images(np.arange(10)), "y_train": np.arange(10, dtype=np.uint8),
              "x_test": make_digit_images(np.arange(5)), "y_test": np.arange(5, dtype=np.uint8)}
    np.savez(tmp_path / "mnist.npz", **arrays)
    data = load_mnist(path=str(tmp_path / "mnist.npz"))
    assert data.meta["path"] == str(tmp_path / "mnist.npz") and len(data.x_val) == 5


def test_missing_mnist_names_files_and_folders(tmp_path):
    with pytest.raises(DataNotFoundError) as caught:
        load_mnist(download=False)
    message = str(caught.value)
    assert "train-images-idx3-ubyte.gz" in message and "mnist.npz" in message
    assert str(tmp_path / "data" / "mnist") in message


def test_mnist56_from_mnist_files(mnist_idx):
    data = load_mnist56(n_train=20)
    labels = read_idx(mnist_idx / "t10k-labels-idx1-ubyte.gz")
    assert len(data.x_val) == int(((labels == 5) | (labels == 6)).sum())
    assert set(np.unique(data.y_val)) <= {0.0, 1.0} and data.task == "binary"
    assert data.class_names == ("5", "6") and len(data.x_train) == 20


# ---------------------------------------------------------------------------------------------
# mnist56 from the course's .npy
def test_mnist56_reads_the_course_npy(tmp_path):
    rng = np.random.default_rng(0)
    parts = np.empty(4, dtype=object)
    parts[0], parts[1] = rng.random((30, 28, 28)).astype("float32"), (np.arange(30) % 2).astype("float64")
    parts[2], parts[3] = rng.random((12, 28, 28)).astype("float32"), (np.arange(12) % 2).astype("float64")
    path = tmp_path / "mnist56.npy"
    np.save(path, parts, allow_pickle=True)
    dataset = load_mnist56(path=str(path), n_train=20, allow_pickle=True)
    assert dataset.task == "binary" and dataset.class_names == ("5", "6")
    assert dataset.x_train.shape == (20, 28, 28, 1) and dataset.x_val.shape == (12, 28, 28, 1)
    np.testing.assert_allclose(dataset.x_train[:, :, :, 0], parts[0][:20])  # already in [0, 1]: not rescaled
    np.testing.assert_array_equal(dataset.y_val, np.arange(12) % 2)
    np.testing.assert_array_equal(dataset.y_train, (np.arange(30) % 2)[:20])


def test_mnist56_rejects_a_npy_with_other_labels(tmp_path):
    parts = np.empty(4, dtype=object)
    parts[0], parts[1] = np.zeros((4, 28, 28)), np.array([5, 6, 5, 6])
    parts[2], parts[3] = np.zeros((2, 28, 28)), np.array([5, 6])
    np.save(tmp_path / "m.npy", parts, allow_pickle=True)
    with pytest.raises(ConfigError, match="labels must be 0"):
        load_mnist56(path=str(tmp_path / "m.npy"), allow_pickle=True)


def test_mnist56_from_idx_is_fives_against_sixes(mnist_idx):
    dataset = load_mnist56()
    test_labels = read_idx(mnist_idx / "t10k-labels-idx1-ubyte.gz")
    assert len(dataset.x_val) == np.isin(test_labels, [5, 6]).sum()
    assert dataset.y_val.sum() == (test_labels == 6).sum()


def test_augment_with_flattened_mnist_is_an_error(mnist_idx):
    result = nnlab("train", "configs/mnist_mlp.yaml", "data.flatten=true", "data.augment={shift: 0.1}")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [result.stderr.strip()] and "data.augment: needs images" in result.stderr

"""The sparse autoencoder and the patches dataset (seed 001)."""

from __future__ import annotations

import h5py
import keras
import numpy as np
import pytest

from conftest import nnlab, write_config
from nnlab.datasets.base import DatasetSpec
from nnlab.datasets.patches import load_patches, preprocess
from nnlab.models.autoencoder import build_autoencoder


def test_preprocess_follows_the_seed():
    rng = np.random.default_rng(0)
    rgb = rng.uniform(0, 1, size=(50, 3, 16, 16))
    rgb[0, :, 0, 0] = 50.0  # an outlier that the +-3 std clip must catch
    x = preprocess(rgb)
    assert x.shape == (50, 16, 16)
    assert x.min() == pytest.approx(0.1) and x.max() == pytest.approx(0.9)
    gray = 0.2126 * rgb[:, 0] + 0.7152 * rgb[:, 1] + 0.0722 * rgb[:, 2]
    centred = gray - gray.mean(axis=(1, 2), keepdims=True)
    limit = 3 * centred.std()
    expected = np.clip(centred, -limit, limit)
    expected = 0.1 + 0.8 * (expected - expected.min()) / (expected.max() - expected.min())
    np.testing.assert_allclose(x, expected, rtol=1e-5)


def test_patches_reads_the_course_h5(tmp_path):
    folder = tmp_path / "data" / "patches"
    folder.mkdir(parents=True)
    with h5py.File(folder / "assign3_data1.h5", "w") as f:
        f["data"] = np.random.default_rng(0).uniform(0, 1, size=(40, 3, 16, 16))
        f["invXForm"] = np.zeros((105, 768))
        f["xForm"] = np.zeros((768, 105))
    data = load_patches(val_split=0.25)
    assert data.meta["format"] == "course h5" and data.meta["patch_shape"] == [16, 16]
    assert data.sizes() == {"train": 30, "val": 10}
    assert data.x_train.shape == (30, 256) and data.y_train is data.x_train


def test_patches_cut_from_mnist(mnist_idx):
    data = load_patches(n_patches=100, size=12)
    assert data.x_train.shape == (90, 144) and data.meta["patch_shape"] == [12, 12]
    assert "cut from MNIST" in data.meta["format"]


def test_sparsity_and_decay_enter_the_loss():
    spec = DatasetSpec("regression", (16,), 16)
    keras.utils.set_random_seed(0)
    plain = build_autoencoder(spec, hidden=4, weight_decay=0.0, beta=0.0)
    sparse = build_autoencoder(spec, hidden=4, weight_decay=0.01, beta=1.0, rho=0.05)
    sparse.set_weights(plain.get_weights())
    x = np.random.default_rng(0).uniform(0.1, 0.9, (32, 16)).astype("float32")
    for m in (plain, sparse):
        m.compile(loss="mse")
    gap = sparse.evaluate(x, x, verbose=0) - plain.evaluate(x, x, verbose=0)
    w1, w2 = plain.get_layer("hidden").get_weights()[0], plain.get_layer("output").get_weights()[0]
    hidden = 1 / (1 + np.exp(-(x @ w1 + plain.get_layer("hidden").get_weights()[1])))
    rho_hat = hidden.mean(axis=0)
    kl = np.sum(0.05 * np.log(0.05 / rho_hat) + 0.95 * np.log(0.95 / (1 - rho_hat)))
    expected = (2 / 16) * (0.01 / 2 * (np.sum(w1**2) + np.sum(w2**2)) + 1.0 * kl)
    assert gap == pytest.approx(expected, rel=1e-3)


def test_sparse_autoencoder_run_reloads_and_inspect_draws_hidden_weights(mnist_idx, tmp_path):
    env = {"NNLAB_RUNS_DIR": str(tmp_path / "runs")}
    config = write_config(tmp_path / "ae.yaml", {
        "name": "ae", "data": {"name": "patches", "n_patches": 200, "size": 8},
        "model": {"name": "autoencoder", "hidden": 9, "beta": 0.1, "rho": 0.2},
        "train": {"epochs": 2, "batch_size": 16},
    })
    result = nnlab("train", str(config), env=env)
    assert result.returncode == 0, result.stderr
    run_dir = next((tmp_path / "runs").iterdir())
    from nnlab.models import layers  # noqa: F401  (registers KLSparsity)

    model = keras.models.load_model(run_dir / "model.keras")
    assert model.get_layer("sparsity").rho == pytest.approx(0.2)
    inspected = nnlab("inspect", "latest", env=env)
    assert inspected.returncode == 0, inspected.stderr
    assert inspected.stdout.strip().endswith("plots/hidden_weights.png")

"""digitsum and cnn_rnn: sequences of MNIST images -> digit sums, on small IDX files."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from conftest import nnlab, write_config
from nnlab.datasets.digitsum import load_digitsum
from nnlab.datasets.mnist import read_mnist


def test_digitsum_groups_images_in_order_and_keeps_frame_labels(mnist_idx):
    arrays, _ = read_mnist()
    data = load_digitsum(length=10, val_images=100)
    assert data.sizes() == {"train": 20, "val": 10, "test": 10}
    assert data.x_train.shape == (20, 10, 28, 28, 1) and data.task == "regression"
    np.testing.assert_array_equal(data.frame_labels["train"][0], arrays["y_train"][:10])
    np.testing.assert_array_equal(data.y_train[:, 0], arrays["y_train"][:200].reshape(20, 10).sum(axis=1))
    np.testing.assert_array_equal(data.y_test[:, 0], arrays["y_test"].reshape(10, 10).sum(axis=1))
    np.testing.assert_array_equal(data.frame_labels["val"].ravel(), arrays["y_train"][200:])  # the last 100 images
    assert "test: the 10,000 test images in order" in data.meta["split"]


def test_digitsum_resample_and_running_sum(mnist_idx):
    data = load_digitsum(length=5, val_images=50, resample=2, running_sum=True)
    assert len(data.x_train) == 3 * 50  # 250 images / 5, three groupings
    assert data.task == "sequence_regression" and data.y_train.shape == (150, 5, 1)
    np.testing.assert_array_equal(data.y_train[..., 0], np.cumsum(data.frame_labels["train"], axis=1))
    # the regroupings reuse training images only: their digit counts match the first grouping's
    counts = [np.bincount(data.frame_labels["train"][i * 50 : (i + 1) * 50].ravel(), minlength=10) for i in range(3)]
    assert (counts[0] == counts[1]).all() and (counts[0] == counts[2]).all()


def test_cnn_rnn_trains_on_digitsum_and_reports_test_mae(mnist_idx, tmp_path):
    config = write_config(tmp_path / "ds.yaml", {
        "name": "ds", "data": {"name": "digitsum", "length": 4, "val_images": 60},
        "model": {"name": "cnn_rnn", "filters": [4], "frame_dense": 8, "cell": "gru", "units": 8, "output_bias": 18.0},
        "train": {"epochs": 2, "batch_size": 16},
    })
    result = nnlab("train", str(config), env={"NNLAB_RUNS_DIR": str(tmp_path / "runs")})
    assert result.returncode == 0, result.stderr
    run_dir = next((tmp_path / "runs").iterdir())
    scores = json.loads((run_dir / "metrics.json").read_text())
    assert set(scores) == {"train", "val", "test"}
    assert 0 < scores["test"]["mae"] < 30
    summary = (run_dir / "summary.txt").read_text()
    assert "TimeDistributed" in summary and "GRU" in summary
    inspected = nnlab("inspect", "latest", "--sample", "1", env={"NNLAB_RUNS_DIR": str(tmp_path / "runs")})
    assert inspected.returncode == 0, inspected.stderr
    assert inspected.stdout.count(".png") == 2


def test_cnn_rnn_rejects_flat_inputs(tmp_path):
    config = write_config(tmp_path / "bad.yaml", {"name": "bad", "data": {"name": "digits"}, "model": {"name": "cnn_rnn"}})
    result = nnlab("train", str(config), "--dry-run")
    assert result.returncode == 2 and "cnn_rnn needs sequences of images" in result.stderr


def test_auxiliary_per_frame_loss_learns_each_digit_beside_the_sum(mnist_idx, tmp_path):
    config = write_config(tmp_path / "aux.yaml", {
        "name": "aux", "data": {"name": "digitsum", "length": 4, "val_images": 60},
        "model": {"name": "cnn_rnn", "filters": [4], "frame_dense": 8, "cell": "gru", "units": 8, "output_bias": 18.0,
                  "frame_loss_weight": 0.5},
        "train": {"epochs": 3, "batch_size": 16, "optimizer": {"name": "adam", "learning_rate": 0.01},
                  "early_stopping": {"monitor": "val_output_mae", "mode": "min", "patience": 5}},
    })
    runs_dir = tmp_path / "runs"
    result = nnlab("train", str(config), env={"NNLAB_RUNS_DIR": str(runs_dir)})
    assert result.returncode == 0, result.stderr
    run_dir = next(runs_dir.iterdir())
    with open(run_dir / "history.csv") as f:
        rows = list(csv.DictReader(f))
    assert {"output_loss", "output_mae", "frame_labels_accuracy", "val_frame_labels_accuracy", "nmse", "val_nmse"} <= set(rows[0])
    # the synthetic fixture digits are easy bars: the frame head learns them
    assert float(rows[-1]["frame_labels_accuracy"]) > float(rows[0]["frame_labels_accuracy"])
    scores = json.loads((run_dir / "metrics.json").read_text())
    assert {"mae", "nmse", "frame_labels_accuracy"} <= set(scores["test"])
    assert json.loads((run_dir / "meta.json").read_text())["status"] == "completed"
    with np.load(run_dir / "predictions.npz") as predictions:
        assert predictions["val_y_pred"].shape == predictions["val_y_true"].shape  # the sum, not the digits


def test_frame_loss_needs_frame_labels():
    from nnlab.datasets.base import DatasetSpec
    from nnlab.errors import ConfigError
    from nnlab.models.cnn_rnn import build_cnn_rnn

    spec = DatasetSpec("regression", (3, 8, 8, 1), 1)  # image sequences without per-frame labels
    with pytest.raises(ConfigError, match="model.frame_loss_weight: this dataset has no per-frame labels"):
        build_cnn_rnn(spec, filters=[2], frame_dense=4, units=[2], frame_loss_weight=0.5)


def test_frame_sum_adds_up_what_the_frame_head_reads_and_loads_in_safe_mode(tmp_path):
    """With the sum head's last layer at zero, the output is exactly the per-frame readings summed: sum over
    frames of sum_k p_k * k. The sum passes no gradient back to the frame head, and the model reloads."""
    import keras

    from nnlab.datasets.base import DatasetSpec
    from nnlab.models.cnn_rnn import build_cnn_rnn
    from nnlab.models.layers import FrameSum

    spec = DatasetSpec("regression", (3, 8, 8, 1), 1, frame_classes=10)
    model = build_cnn_rnn(spec, filters=[2], frame_dense=4, units=[2], frame_loss_weight=0.5, frame_sum=True)
    (head,) = [layer for layer in model.layers if isinstance(layer, keras.layers.Dense)]
    head.set_weights([np.zeros_like(w) for w in head.get_weights()])  # the recurrent sum head says 0
    x = np.random.default_rng(0).random((5, 3, 8, 8, 1), dtype="float32")
    out = model.predict(x, verbose=0)
    expected = (out["frame_labels"] * np.arange(10)).sum(axis=(1, 2))
    np.testing.assert_allclose(out["output"][:, 0], expected, rtol=1e-5)
    model.save(tmp_path / "m.keras")
    again = keras.models.load_model(tmp_path / "m.keras")  # safe_mode=True: a registered layer, no Lambda
    np.testing.assert_allclose(again.predict(x, verbose=0)["output"], out["output"], rtol=1e-6)

    readings = np.full((2, 3, 10), 0.1, dtype="float32")
    assert float(np.abs(_gradient(lambda r: keras.ops.sum(FrameSum()(r)), readings)).max()) == 0.0
    assert float(np.abs(_gradient(lambda r: keras.ops.sum(r * 2.0), readings)).max()) == 2.0  # the probe works


def _gradient(f, x: np.ndarray) -> np.ndarray:
    """d f(x) / dx on the running Keras backend."""
    import keras

    if keras.backend.backend() == "jax":
        import jax

        return np.asarray(jax.grad(f)(x))
    import tensorflow as tf

    x = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = f(x)
    g = tape.gradient(y, x)
    return np.zeros(x.shape) if g is None else g.numpy()


def test_frame_sum_needs_the_frame_head_and_one_sum_per_sequence(tmp_path):
    from nnlab.config import load_config
    from nnlab.datasets.base import DatasetSpec
    from nnlab.errors import ConfigError
    from nnlab.models.cnn_rnn import build_cnn_rnn

    path = write_config(tmp_path / "fs.yaml", {"name": "fs", "data": {"name": "digitsum"},
                                              "model": {"name": "cnn_rnn", "frame_sum": True}})
    with pytest.raises(ConfigError, match="model: .*frame_sum adds up the per-frame head's readings: it needs "
                                          "frame_loss_weight > 0"):
        load_config(path)
    spec = DatasetSpec("sequence_regression", (3, 8, 8, 1), 1, output_length=3, frame_classes=10)
    with pytest.raises(ConfigError, match="model.frame_sum: needs one number per sequence .* sequence_regression"):
        build_cnn_rnn(spec, filters=[2], frame_dense=4, units=[2], frame_loss_weight=0.5, frame_sum=True)

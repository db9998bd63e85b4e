"""har: the course .h5 and WISDM raw text formats, and the labelled synthetic generator."""

from __future__ import annotations

import json

import h5py
import numpy as np
import pytest

from conftest import nnlab, write_config
from nnlab.datasets.har import ACTIVITIES, load_har, make_activity_windows
from nnlab.errors import ConfigError


def write_course_h5(path, n_train=60, n_test=12, steps=150, seed=0):
    rng = np.random.default_rng(seed)
    labels = {"tr": np.arange(n_train) % 6, "tst": np.arange(n_test) % 6}
    with h5py.File(path, "w") as f:
        for prefix, n in (("tr", n_train), ("tst", n_test)):
            f[f"{prefix}X"] = rng.normal(size=(n, steps, 3)).astype("float64")
            f[f"{prefix}Y"] = np.eye(6)[labels[prefix]]  # one-hot, as the course stores it
    return labels


def test_har_reads_the_course_h5(tmp_path):
    folder = tmp_path / "data" / "har"
    folder.mkdir(parents=True)
    labels = write_course_h5(folder / "assign3_data3.h5")
    data = load_har(val_split=0.25)
    assert data.meta["source"] == "real" and data.meta["format"] == "course h5"
    assert data.sizes() == {"train": 45, "val": 15, "test": 12}
    assert data.x_train.shape[1:] == (150, 3) and data.x_train.dtype == np.float32
    np.testing.assert_array_equal(data.y_test, labels["tst"])
    assert data.class_names == ACTIVITIES and ACTIVITIES[0] == "downstairs"


def test_har_reads_wisdm_raw_text_in_150_step_windows(tmp_path):
    lines = []
    # user 1 walks 320 records (2 windows + 20 left over), then jogs 150 (1 window); user 2 sits 160 (1 window)
    for user, activity, n in (("1", "Walking", 320), ("1", "Jogging", 150), ("2", "Sitting", 160)):
        for i in range(n):
            lines.append(f"{user},{activity},{1000 + i},{i * 0.01:.4f},9.81,-0.5;")
    lines.insert(5, "1,Walking,999,,;")  # WISDM has a few malformed records
    path = tmp_path / "WISDM_ar_v1.1_raw.txt"
    path.write_text("\n".join(lines) + "\n")
    data = load_har(path=str(path), test_split=0.25, val_split=0.34)
    assert data.meta["format"] == "WISDM raw text"
    assert sum(data.sizes().values()) == 4  # windows never cross a user or activity change
    everything = np.concatenate([data.y_train, data.y_val, data.y_test])
    assert sorted(ACTIVITIES[i] for i in everything) == ["jogging", "sitting", "walking", "walking"]
    assert data.x_train.shape[1:] == (150, 3)
    assert np.allclose(data.x_train[..., 1], 9.81)


def test_har_synthetic_is_labelled_as_such_in_meta_and_output(tmp_path):
    config = write_config(tmp_path / "h.yaml", {
        "name": "h", "data": {"name": "har", "n_train_generated": 60, "n_test_generated": 12, "window": 30},
        "model": {"name": "rnn", "cell": "gru", "units": [4]},
        "train": {"epochs": 1, "batch_size": 16, "class_weight": "balanced"},
    })
    result = nnlab("train", str(config), env={"NNLAB_RUNS_DIR": str(tmp_path / "runs")})
    assert result.returncode == 0, result.stderr
    assert "(synthetic data" in result.stdout
    run_dir = next((tmp_path / "runs").iterdir())
    meta = json.loads((run_dir / "meta.json").read_text())
    assert meta["data"]["source"] == "synthetic"
    header = (run_dir / "confusion_matrix.csv").read_text().splitlines()[0]
    assert header == "true \\ predicted," + ",".join(ACTIVITIES)


def test_har_generator_is_balanced_and_deterministic():
    x1, y1 = make_activity_windows(60, 150, np.random.default_rng(3))
    x2, y2 = make_activity_windows(60, 150, np.random.default_rng(3))
    np.testing.assert_array_equal(x1, x2)
    assert np.bincount(y1).tolist() == [10] * 6
    moving = x1[np.isin(y1, [1])].std(axis=1).mean()  # jogging shakes far more than sitting
    still = x1[np.isin(y1, [2])].std(axis=1).mean()
    assert moving > 3 * still


def test_har_real_only_without_files_says_where_to_put_them():
    with pytest.raises(ConfigError, match=r"har: no data found: put assign3_data3.h5 or WISDM_ar_v1.1_raw.txt"):
        load_har(synthetic=False)


def test_class_weight_needs_class_labels(tmp_path):
    config = write_config(tmp_path / "p.yaml", {
        "name": "p", "data": {"name": "pulse", "n_train": 20, "n_val": 10, "length": 10},
        "model": {"name": "rnn", "cell": "gru", "units": 2}, "train": {"epochs": 1, "class_weight": "balanced"},
    })
    result = nnlab("train", str(config), env={"NNLAB_RUNS_DIR": str(tmp_path / "runs")})
    assert result.returncode == 2
    assert "train.class_weight: needs class labels" in result.stderr
    assert not (tmp_path / "runs").exists()  # caught before a run folder is made


def test_balanced_class_weights():
    from nnlab.config import TrainConfig
    from nnlab.datasets.base import Dataset, DatasetSpec
    from nnlab.training.compile import class_weights

    y = np.array([0] * 6 + [1] * 2 + [2] * 4)
    data = Dataset(np.zeros((12, 5, 3)), y, np.zeros((2, 5, 3)), y[:2], DatasetSpec("multiclass", (5, 3), 3))
    assert class_weights(TrainConfig(), data) is None
    weights = class_weights(TrainConfig(class_weight="balanced"), data)
    assert weights == pytest.approx({0: 12 / 18, 1: 12 / 6, 2: 12 / 12})

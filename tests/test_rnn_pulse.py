"""The rnn builder and the pulse dataset: shapes, weight counts, generator rules, course files."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import nnlab, write_config
from nnlab.datasets.base import DatasetSpec
from nnlab.datasets.pulse import load_pulse, make_pulses
from nnlab.models.rnn import build_rnn

SEQ = DatasetSpec("sequence_regression", (100, 1), 1, output_length=100)


@pytest.mark.parametrize("cell, units, weights", [("simple", [12], 181), ("gru", [6], 169), ("lstm", [6], 199)])
def test_pulse_models_have_the_lab_sizes(cell, units, weights):
    model = build_rnn(SEQ, cell=cell, units=units)
    assert model.count_params() == weights
    assert model.output_shape == (None, None, 1)  # one output per step, any length


def test_rnn_sequence_to_label_head_and_options():
    spec = DatasetSpec("multiclass", (150, 3), 6)
    model = build_rnn(spec, cell="gru", units=[8, 4], dropout=[0.1, 0.0], bidirectional=True, dense=[5])
    assert model.output_shape == (None, 6)
    assert model.layers[-1].activation.__name__ == "softmax"
    assert [layer.name for layer in model.layers[:2]] == ["bidirectional_1", "bidirectional_2"]
    assert model.predict(np.zeros((2, 150, 3), "float32"), verbose=0).shape == (2, 6)


def test_make_pulses_follows_the_lab_rules():
    x, d = make_pulses(50, 100, np.random.default_rng(1), min_width=2, max_width=6, max_extra_gap=5)
    assert x.shape == d.shape == (50, 100)
    for row_x, row_d in zip(x, d):
        t = 0
        while t < 100:
            if row_x[t] == 0:
                t += 1
                continue
            height, width = row_x[t], 0
            while t + width < 100 and row_x[t + width] == height:
                width += 1
            end = t + width
            assert 2 <= width <= 6
            triangle = row_d[end : end + 2 * width]
            if end + 2 * width <= 100:
                assert triangle.max() == pytest.approx(height)  # the peak equals the pulse height
                assert np.argmax(triangle) == width - 1  # rises for w steps, falls for w
                assert not row_x[end : end + 2 * width].any()  # the next pulse waits >= 2w steps
            t = end


def test_pulse_reverse_swaps_and_reverses_time():
    forward = load_pulse(n_train=10, n_val=5, length=30)
    backward = load_pulse(n_train=10, n_val=5, length=30, reverse=True)
    np.testing.assert_array_equal(backward.x_train, forward.y_train[:, ::-1])
    np.testing.assert_array_equal(backward.y_val, forward.x_val[:, ::-1])
    assert forward.meta["source"] == "generated" and forward.spec.task == "sequence_regression"
    assert forward.x_train.shape == (10, 30, 1)


def test_pulse_reads_the_course_npy_files(tmp_path, monkeypatch):
    folder = tmp_path / "data" / "pulse"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    arrays = {}
    for split, n in (("trn", 8), ("val", 6)):
        x, d = make_pulses(n, 40, rng)
        np.save(folder / f"pulsedata1-{split}.npy", np.stack([x, d]))  # the lab: x, d = np.load(...)
        arrays[split] = (x, d)
    data = load_pulse()
    assert data.meta["source"] == "real" and data.meta["path"] == str(folder)
    np.testing.assert_array_equal(data.x_train[..., 0], arrays["trn"][0])
    np.testing.assert_array_equal(data.y_val[..., 0], arrays["val"][1])
    assert data.sizes() == {"train": 8, "val": 6}


def test_pulse_run_reports_normalised_error(tmp_path):
    config = write_config(tmp_path / "p.yaml", {
        "name": "p", "data": {"name": "pulse", "n_train": 30, "n_val": 10, "length": 20},
        "model": {"name": "rnn", "cell": "simple", "units": 4},
        "train": {"epochs": 2, "batch_size": 10},  # plain full-sequence training
    })
    result = nnlab("train", str(config), env={"NNLAB_RUNS_DIR": str(tmp_path / "runs")})
    assert result.returncode == 0, result.stderr
    assert "val_nmse: " in result.stdout and " val_nmse " in result.stdout


def test_bad_rnn_params_are_one_line_errors(tmp_path):
    config = write_config(tmp_path / "p.yaml", {
        "name": "p", "data": {"name": "pulse"}, "model": {"name": "rnn", "cell": "transformer"},
    })
    result = nnlab("train", str(config), "--dry-run")
    assert result.returncode == 2
    assert result.stderr.startswith(f"error: {config}: model.cell: ") and len(result.stderr.splitlines()) == 1

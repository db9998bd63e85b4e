"""Truncated BPTT: window steps per epoch, state resets between batches of sequences, run files."""

from __future__ import annotations

import csv
import json

import keras
import numpy as np
import pytest

from conftest import nnlab, write_config
from nnlab.training import tbptt


def tiny_pulse_config(**train) -> dict:
    return {
        "name": "tiny_pulse",
        "seed": 0,
        "data": {"name": "pulse", "n_train": 40, "n_val": 24, "length": 20, "max_width": 3, "max_extra_gap": 2},
        "model": {"name": "rnn", "cell": "gru", "units": [4]},
        "train": {"epochs": 2, "batch_size": 10, "tbptt": {"window": 6}, **train},
    }


def test_window_slices_cover_each_batch_in_order():
    order = np.arange(25)
    slices = list(tbptt.window_slices(order, length=20, batch_size=10, window=6))
    # 2 full batches (5 sequences left over), 4 windows each (the last one 2 steps long)
    assert len(slices) == 8
    assert [(start, stop) for _, start, stop in slices[:4]] == [(0, 6), (6, 12), (12, 18), (18, 20)]
    assert all((rows == np.arange(10)).all() for rows, _, _ in slices[:4])
    assert all((rows == np.arange(10, 20)).all() for rows, _, _ in slices[4:])


def test_tbptt_steps_per_epoch_and_state_resets(tmp_path, monkeypatch):
    from nnlab import experiment

    calls = []  # (window length, states all zero before the step?)
    original = keras.Model.train_on_batch

    def spy(self, x, y=None, **kwargs):
        states = [np.asarray(v) for layer in self.layers if getattr(layer, "stateful", False) for v in layer.states]
        calls.append((x.shape[1], all(not s.any() for s in states), x.shape[0]))
        return original(self, x, y, **kwargs)

    monkeypatch.setattr(keras.Model, "train_on_batch", spy)
    config = write_config(tmp_path / "tiny_pulse.yaml", tiny_pulse_config())
    run_dir = experiment.train(config, runs_dir=tmp_path / "runs")

    # 40 sequences / batch 10 = 4 batches; 20 steps / window 6 = 4 windows -> 16 steps per epoch, 2 epochs
    assert len(calls) == 2 * 16
    assert [length for length, _, _ in calls[:4]] == [6, 6, 6, 2]
    assert all(batch == 10 for _, _, batch in calls)
    for i, (_, zero, _) in enumerate(calls):
        if i % 4 == 0:
            assert zero, f"step {i}: the states were not reset at the start of a batch of sequences"
        else:
            assert not zero, f"step {i}: the states did not carry over from the previous window"

    with open(run_dir / "history.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 2
    assert {"loss", "nmse", "val_loss", "val_nmse"} <= set(rows[0])
    assert 0 < float(rows[-1]["val_nmse"]) < 5
    # The windowed validation of the last epoch is the full-sequence evaluation of the saved model.
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert float(rows[-1]["val_loss"]) == pytest.approx(metrics["val"]["loss"], rel=1e-4)
    assert (run_dir / "checkpoint" / "state.json").is_file()
    assert (run_dir / "model.keras").is_file()
    saved = keras.models.load_model(run_dir / "model.keras")
    assert not any(getattr(layer, "stateful", False) for layer in saved.layers)  # the plain model is saved


def test_tbptt_validation_matches_full_sequence_prediction():
    """Windowed stateful prediction, reset per batch, equals one pass over the whole sequence."""
    from nnlab.datasets.base import DatasetSpec
    from nnlab.models.rnn import build_rnn

    keras.utils.set_random_seed(0)
    spec = DatasetSpec("sequence_regression", (20, 1), 1, output_length=20)
    model = build_rnn(spec, cell="lstm", units=[3])
    twin = build_rnn(spec, cell="lstm", units=[3], stateful=True, batch_size=4)
    tbptt.track_states(twin)  # as stateful_twin does: without it JAX starts every window from zeros
    tbptt.set_model_weights(twin, model.get_weights())
    x = np.random.default_rng(0).normal(size=(10, 20, 1)).astype("float32")  # 10 = 2 full batches + 2
    windowed = tbptt.predict_windows(twin, x, batch_size=4, window=7)
    assert windowed.shape == (10, 20, 1)
    np.testing.assert_allclose(windowed, model.predict(x, verbose=0), atol=1e-5)


def test_tbptt_resume_continues_from_checkpoint(tmp_path):
    config = write_config(tmp_path / "tiny_pulse.yaml", tiny_pulse_config(epochs=3))
    env = {"NNLAB_RUNS_DIR": str(tmp_path / "runs")}
    first = nnlab("train", str(config), "train.epochs=2", env=env)
    assert first.returncode == 0, first.stderr
    run_dir = next((tmp_path / "runs").iterdir())
    # pretend the run was stopped after epoch 2 of 3
    meta = json.loads((run_dir / "meta.json").read_text())
    meta["status"] = "interrupted"
    (run_dir / "meta.json").write_text(json.dumps(meta))
    (run_dir / "config.yaml").write_text((run_dir / "config.yaml").read_text().replace("epochs: 2", "epochs: 3"))
    resumed = nnlab("train", "--resume", run_dir.name, env=env)
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming tiny_pulse after epoch 2/3" in resumed.stdout
    with open(run_dir / "history.csv") as f:
        assert [int(r["epoch"]) for r in csv.DictReader(f)] == [1, 2, 3]


@pytest.mark.parametrize("change, message", [
    ({"model": {"name": "rnn", "cell": "gru", "units": [4], "bidirectional": True}}, "train.tbptt: a bidirectional"),
    ({"data": {"name": "digits"}, "model": {"name": "mlp"}}, "train.tbptt: needs one target per time step"),
    ({"train": {"epochs": 1, "batch_size": 100, "tbptt": {"window": 5}}}, "train.batch_size: 100 is more than"),
])
def test_tbptt_bad_input_is_one_line_exit_2(tmp_path, change, message):
    config = write_config(tmp_path / "bad.yaml", {**tiny_pulse_config(), **change})
    result = nnlab("train", str(config), env={"NNLAB_RUNS_DIR": str(tmp_path / "runs")})
    assert result.returncode == 2
    assert result.stderr.startswith("error: ") and message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1

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


def lab_loop(twin: keras.Model, x: np.ndarray, y: np.ndarray, seed: int, epochs: int, batch_size: int, window: int,
             carry: bool = True) -> list[float]:
    """Seed 002's loop written out: per epoch a seeded order, per full batch the states reset, then one
    train_on_batch per window (the states carried over unless `carry` is False). Returns each epoch's
    training loss, weighted by window length."""
    losses = []
    for epoch in range(epochs):
        order = np.random.default_rng([seed, epoch]).permutation(len(x))
        total = steps = 0
        for b in range(len(x) // batch_size):
            rows = np.sort(order[b * batch_size : (b + 1) * batch_size])
            tbptt.reset_states(twin)
            for start in range(0, x.shape[1], window):
                if not carry:
                    tbptt.reset_states(twin)
                part = slice(start, start + window)
                loss = float(twin.train_on_batch(x[rows, part], y[rows, part]))
                total, steps = total + loss * x[:, part].shape[1], steps + x[:, part].shape[1]
        losses.append(total / steps)
    return losses


def test_tbptt_trains_exactly_the_lab_loop(tmp_path):
    """On each backend (JAX trains a batch's windows in one compiled call), two epochs of fit_tbptt end with the
    weights and losses of the lab's loop written out with train_on_batch: states reset per batch of sequences,
    carried from window to window, a shorter last window, leftover sequences skipped."""
    from nnlab import datasets, models
    from nnlab.config import load_config
    from nnlab.training.compile import compile_model

    config = load_config(write_config(tmp_path / "tiny_pulse.yaml", tiny_pulse_config(epochs=2)))
    config.data.n_train = 45  # 4 batches of 10, 5 sequences left over; 20 steps = windows of 6, 6, 6, 2
    data = datasets.load(config.data)
    assert data.x_train.shape == (45, 20, 1)
    keras.utils.set_random_seed(0)
    model = models.build(config.model, data.spec)
    compile_model(model, config, data)
    start_weights = model.get_weights()

    def reference(carry: bool) -> tuple[list[np.ndarray], list[float]]:
        twin = models.MODELS.get("rnn").fn(data.spec, **config.model.params, stateful=True, batch_size=10)
        tbptt.track_states(twin)
        tbptt.set_model_weights(twin, start_weights)
        twin.compile(optimizer=keras.optimizers.Adam(), loss="mse")
        losses = lab_loop(twin, data.x_train, data.y_train, config.seed, 2, 10, 6, carry)
        return tbptt.model_weights(twin), losses

    epochs, batches = [], []
    logger = keras.callbacks.LambdaCallback(on_epoch_end=lambda e, logs: epochs.append(dict(logs)),
                                            on_train_batch_end=lambda b, logs: batches.append(b))
    tbptt.fit_tbptt(model, config, data, [logger])
    assert batches == [0, 1, 2, 3] * 2  # a step is one batch of sequences, all its windows trained
    want, want_losses = reference(carry=True)
    for got, expected in zip(model.get_weights(), want):
        np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5)
    assert [e["loss"] for e in epochs] == pytest.approx(want_losses, rel=1e-4)
    assert {"loss", "mae", "val_loss", "val_mae"} <= set(epochs[-1])
    # The comparison can fail: windows that each start from zero states train other weights.
    unchained, _ = reference(carry=False)
    assert not all(np.allclose(g, u, rtol=1e-4, atol=1e-5) for g, u in zip(model.get_weights(), unchained))


def test_tbptt_run_files(tmp_path):
    from nnlab import experiment

    config = write_config(tmp_path / "tiny_pulse.yaml", tiny_pulse_config())
    run_dir = experiment.train(config, runs_dir=tmp_path / "runs")
    with open(run_dir / "history.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 2
    assert {"loss", "nmse", "val_loss", "val_nmse"} <= set(rows[0])
    assert 0 < float(rows[-1]["val_nmse"]) < 5
    # The last epoch's validation is the full-sequence evaluation of the saved model.
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

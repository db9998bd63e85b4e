"""nnlab inspect on recurrent runs: the sequence and hidden-activation plots."""

from __future__ import annotations

import keras
import numpy as np

from conftest import nnlab, write_config
from nnlab.datasets.base import DatasetSpec


def tiny_pulse(tmp_path, **model) -> dict:
    return {
        "name": "tiny_pulse",
        "seed": 0,
        "data": {"name": "pulse", "n_train": 20, "n_val": 10, "length": 20, "max_width": 3, "max_extra_gap": 2},
        "model": {"name": "rnn", "cell": "gru", "units": [3, 2], **model},
        "train": {"epochs": 1, "batch_size": 10, "tbptt": {"window": 10}},
    }


def test_inspect_writes_pulse_sequence_and_hidden_plots(tmp_path):
    env = {"NNLAB_RUNS_DIR": str(tmp_path / "runs")}
    config = write_config(tmp_path / "tiny_pulse.yaml", tiny_pulse(tmp_path))
    trained = nnlab("train", str(config), env=env)
    assert trained.returncode == 0, trained.stderr
    result = nnlab("inspect", "latest", "--sample", "2", env=env)
    assert result.returncode == 0, result.stderr
    paths = [line for line in result.stdout.splitlines() if line.endswith(".png")]
    assert [p.rsplit("/", 1)[1] for p in paths] == ["sequence_val2.png", "hidden_val2.png"]
    for path in paths:
        data = open(path, "rb").read()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000

    wrong = nnlab("inspect", "latest", "--sample", "10", env=env)
    assert wrong.returncode == 2
    assert wrong.stderr.strip() == "error: --sample: 10 is out of range (the validation set has 10 examples)"
    wrong_layer = nnlab("inspect", "latest", "--layer", "nope", env=env)
    assert wrong_layer.returncode == 2 and "choose from: gru_1, gru_2" in wrong_layer.stderr


def test_hidden_activations_cover_every_step_of_every_recurrent_layer():
    from nnlab.trained.inspect.sequences import hidden_activations
    from nnlab.models.rnn import build_rnn

    keras.utils.set_random_seed(0)
    spec = DatasetSpec("multiclass", (12, 3), 4, class_names=("a", "b", "c", "d"))
    model = build_rnn(spec, cell="lstm", units=[5, 2], bidirectional=True)  # the last layer returns one state
    x = np.random.default_rng(0).normal(size=(1, 12, 3)).astype("float32")
    hidden = hidden_activations(model, x)
    assert [(name, a.shape) for name, a in hidden] == [("bidirectional_1", (12, 10)), ("bidirectional_2", (12, 4))]
    # the forward half of the last step is what the model's own layer returns
    inner = keras.Sequential(model.layers[:2])
    np.testing.assert_allclose(hidden[1][1][-1, :2], inner.predict(x, verbose=0)[0, :2], atol=1e-5)

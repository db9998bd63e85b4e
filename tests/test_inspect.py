"""nnlab inspect without $NNLAB_DATA_DIR, argument checks before TensorFlow, seq2seq shown as characters."""

from __future__ import annotations

import io

import numpy as np
import pytest
from typer.testing import CliRunner

from nnlab import experiment
from nnlab.cli.main import app

from conftest import write_config


@pytest.fixture
def cnn_run(tmp_path, mnist_idx, runs_dir):
    config = write_config(tmp_path / "c.yaml", {
        "name": "c", "data": {"name": "mnist", "n_train": 60, "n_val": 20, "download": False},
        "model": {"name": "cnn", "blocks": [{"filters": 2, "kernel": 3, "pool": 2}]},
        "train": {"epochs": 1}, "output": {"plots": False}})
    return experiment.train(config, runs_dir=runs_dir, stream=io.StringIO())


def test_inspect_uses_the_data_place_the_run_recorded(cnn_run, monkeypatch):
    monkeypatch.delenv("NNLAB_DATA_DIR")  # it found the IDX files there while training
    result = CliRunner().invoke(app, ["inspect", cnn_run.name, "--sample", "3"])
    assert result.exit_code == 0, result.stderr
    assert (cnn_run / "plots" / "inspect_3_conv1.png").is_file()


def test_bad_sample_and_layer_are_refused_before_tensorflow_loads(cnn_run, monkeypatch):
    def no_backend(*args, **kwargs):
        raise AssertionError("the backend was started")

    monkeypatch.setattr("nnlab.training.backend.configure", no_backend)
    result = CliRunner().invoke(app, ["inspect", cnn_run.name, "--sample", "20"])
    assert (result.exit_code, result.stderr) == (2, "error: --sample: 20 is out of range (the validation set has 20 "
                                                    "examples)\n")
    result = CliRunner().invoke(app, ["inspect", cnn_run.name, "--layer", "conv9"])
    assert result.exit_code == 2
    assert result.stderr == "error: --layer: no conv or pooling layer 'conv9' in this model (choose from: conv1, pool1)\n"


def test_seq2seq_examples_are_drawn_as_characters():
    from nnlab.datasets.addition import VOCABULARY, decode
    from nnlab.trained.inspect.sequences import _plot_decoded

    def one_hot(text):
        return np.eye(len(VOCABULARY))[[VOCABULARY.index(c) for c in text]]

    x = one_hot("1+2")[None]
    y_true = np.array([VOCABULARY.index(c) for c in "3 "])
    y_pred = one_hot("4 ") * 0.9
    ax = _plot_decoded(x, y_true, y_pred, decode, 0).axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["'4'\ntrue '3'", "' '\ntrue ' '"]
    assert ax.get_title() == "validation example 0: '1+2' -> '4 ' (true '3 ')"

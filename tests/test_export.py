"""`nnlab export`: Keras file, SavedModel and ONNX of an MLP and a small CNN, loaded back here and compared."""

from __future__ import annotations

import re

import numpy as np
import pytest
from typer.testing import CliRunner

from conftest import copy_run, write_config
from nnlab import datasets, runs
from nnlab.cli.main import app
from nnlab.config import load_config


def invoke(*args: str):
    return CliRunner().invoke(app, list(args))


def keras_outputs(run_dir, n: int = 32):
    """The run's Keras model on its first `n` validation examples, computed here, not by nnlab export."""
    import keras

    x = datasets.load(load_config(run_dir / runs.CONFIG).data).x_val[:n]
    return x, keras.models.load_model(run_dir / runs.MODEL, compile=False).predict(x, verbose=0)


def reload(fmt: str, path, x: np.ndarray) -> np.ndarray:
    if fmt == "onnx":
        import onnxruntime

        session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        return session.run(None, {session.get_inputs()[0].name: x})[0]
    import tensorflow as tf

    loaded = tf.saved_model.load(str(path))
    return loaded.serve(tf.constant(x)).numpy()


@pytest.mark.parametrize("kind, fmt", [("mlp", "onnx"), ("mlp", "savedmodel"), ("cnn", "onnx"), ("cnn", "savedmodel"),
                                       ("cnn_augment", "onnx")])
def test_export_loads_back_and_matches_keras_within_the_printed_tolerance(trained_run, tmp_path, kind, fmt):
    run_dir = trained_run(kind)
    out = tmp_path / ("model.onnx" if fmt == "onnx" else "served")

    result = invoke("export", str(run_dir), "--format", fmt, "--out", str(out))

    assert result.exit_code == 0, result.output
    runtime = {"onnx": "onnxruntime", "savedmodel": "tf.saved_model.load"}[fmt]
    first, second = result.stdout.splitlines()
    assert first == f"exported {fmt}: {out}"
    match = re.fullmatch(rf"checked: reloaded with {re.escape(runtime)} and run on 8 validation examples: "
                         r"max \|difference\| (\S+) \(tolerance (\S+)\)", second)
    assert match, second
    tolerance = float(match.group(2))
    assert float(match.group(1)) <= tolerance == 1e-5
    x, expected = keras_outputs(run_dir)
    got = reload(fmt, out, x)
    assert got.shape == expected.shape
    assert np.max(np.abs(got - expected)) <= tolerance
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary leftovers


def test_keras_export_is_the_run_s_file_and_defaults_to_the_exports_folder(trained_run, tmp_path):
    run_dir = copy_run(trained_run("mlp"), tmp_path)
    result = invoke("export", str(run_dir), "--format", "keras")
    assert result.exit_code == 0, result.output
    target = run_dir / "exports" / "model.keras"
    assert result.stdout.splitlines() == [
        f"exported keras: {target}",
        "checked: reloaded with keras.models.load_model and run on 8 random inputs: "
        "max |difference| 0 (tolerance 1e-05)",
    ]
    assert target.read_bytes() == (run_dir / "model.keras").read_bytes()


@pytest.mark.parametrize("args, message", [
    (["--format", "tflite"], "error: --format: expected one of keras, savedmodel, onnx (got 'tflite')"),
    (["--format", "savedmodel", "--out", "{tmp}"],
     "error: --out {tmp}: is a folder that holds no SavedModel; give a new path"),
], ids=["format", "out folder"])
def test_bad_export_input_is_one_line_and_exit_2(trained_run, tmp_path, args, message):
    result = invoke("export", str(trained_run("mlp")), *[a.format(tmp=tmp_path) for a in args])
    assert result.exit_code == 2
    assert result.stderr == message.format(tmp=tmp_path) + "\n"


def test_onnx_without_its_packages_says_which_extra_to_install(trained_run, monkeypatch):
    monkeypatch.setattr("nnlab.trained.export.ONNX_PACKAGES", ("onnx", "an_absent_converter"))
    result = invoke("export", str(trained_run("mlp")), "--format", "onnx")
    assert result.exit_code == 2
    assert result.stderr == "error: --format onnx needs an_absent_converter: pip install 'nnlab[onnx]'\n"


def test_a_graph_the_converter_cannot_handle_is_one_line_and_exit_2(trained_run, tmp_path, monkeypatch):
    """Kept in the graph, the augmentation layers' random ops have no ONNX equivalent (export leaves them out)."""
    monkeypatch.setattr("nnlab.models.augment.without_augmentation", lambda model: model)
    out = tmp_path / "out" / "m.onnx"
    result = invoke("export", str(trained_run("cnn_augment")), "--format", "onnx", "--out", str(out))
    assert result.exit_code == 2
    assert len(result.stderr.splitlines()) == 1
    assert result.stderr.startswith("error: --format onnx: this model does not convert: ")
    assert "StatelessRandomUniformV2" in result.stderr
    assert list(out.parent.iterdir()) == []  # nothing written


def test_keras_needs_no_data_and_the_others_use_the_place_the_run_recorded(mnist_idx, tmp_path, monkeypatch):
    """Trained on MNIST found through $NNLAB_DATA_DIR; then that variable points elsewhere, then the files go."""
    import io
    import shutil

    from nnlab import experiment

    config = write_config(tmp_path / "m.yaml", {
        "name": "m", "data": {"name": "mnist", "n_train": 40, "n_val": 16, "flatten": True, "download": False},
        "model": {"name": "mlp", "hidden": [4]}, "train": {"epochs": 1}, "output": {"plots": False}})
    run_dir = experiment.train(config, runs_dir=tmp_path / "runs", stream=io.StringIO())
    monkeypatch.setenv("NNLAB_DATA_DIR", str(tmp_path / "elsewhere"))

    moved = invoke("export", str(run_dir), "--format", "savedmodel", "--out", str(tmp_path / "served"))
    assert moved.exit_code == 0, moved.output
    assert "run on 8 validation examples" in moved.stdout

    shutil.rmtree(mnist_idx)
    gone = invoke("export", str(run_dir), "--format", "savedmodel", "--out", str(tmp_path / "served2"))
    assert gone.exit_code == 2
    assert gone.stderr.startswith(f"error: {run_dir / 'config.yaml'}: mnist: no data found")
    assert gone.stderr.endswith(f"; run {run_dir.name} trained on {mnist_idx}, which is gone\n")
    assert not (tmp_path / "served2").exists()

    keras_file = invoke("export", str(run_dir), "--format", "keras")
    assert keras_file.exit_code == 0, keras_file.output
    assert (run_dir / "exports" / "model.keras").read_bytes() == (run_dir / "model.keras").read_bytes()

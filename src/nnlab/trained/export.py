"""Export a trained run's model (Keras file, TensorFlow SavedModel, ONNX), checked before it is reported done.

Every artifact is written under a temporary name, loaded back with the runtime that will serve it (Keras,
TensorFlow, onnxruntime), run on the first validation examples (the Keras file, a copy of the run's own, on
random inputs: it needs no data), and compared with the Keras model's own outputs; only when every output is
within TOLERANCE is it renamed to its final path.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import TextIO

import numpy as np

from nnlab import runs
from nnlab.errors import ConfigError, RunFailedError, first_line, in_file

FORMATS = ("keras", "savedmodel", "onnx")
DEFAULT_NAMES = {"keras": "model.keras", "savedmodel": "savedmodel", "onnx": "model.onnx"}
ONNX_PACKAGES = ("tf2onnx", "onnx", "onnxruntime")  # the `nnlab[onnx]` extra
TOLERANCE = 1e-5  # largest absolute difference allowed between the export's outputs and the Keras model's
CHECK_EXAMPLES = 8
EXPORTS = "exports"
RUNTIMES = {"keras": "keras.models.load_model", "savedmodel": "tf.saved_model.load", "onnx": "onnxruntime"}


def export_run(ref: str, fmt: str, *, out: str | None = None, runs_dir: str | Path | None = None,
               allow_incomplete: bool = False, device: str = "auto", stream: TextIO | None = None) -> Path:
    """Export run `ref`'s model as `fmt` to `out` (default: the run's exports/ folder); return the path."""
    from nnlab.trained.run import open_run

    stream = stream or sys.stdout
    if fmt not in FORMATS:
        raise ConfigError(f"--format: expected one of {', '.join(FORMATS)} (got {fmt!r})")
    if fmt == "onnx":
        missing = [name for name in ONNX_PACKAGES if importlib.util.find_spec(name) is None]
        if missing:
            raise ConfigError(f"--format onnx needs {', '.join(missing)}: pip install 'nnlab[onnx]'")
        if importlib.util.find_spec("tensorflow") is None:
            raise ConfigError("--format onnx converts through TensorFlow: pip install 'nnlab[tf-cpu]'")
    run = open_run(ref, runs_dir, allow_incomplete=allow_incomplete)
    target = Path(out) if out else run.run_dir / EXPORTS / DEFAULT_NAMES[fmt]
    if target.is_dir() and not (fmt == "savedmodel" and (target / "saved_model.pb").is_file()):
        raise ConfigError(f"--out {target}: is a folder that holds no SavedModel; give a new path")
    if target.is_file() and fmt == "savedmodel":
        raise ConfigError(f"--out {target}: is a file; a SavedModel is a folder")
    if run.note:
        print(run.note, file=stream)

    from nnlab.models.augment import without_augmentation
    from nnlab.trained.run import load_data, load_model

    # ONNX goes through tf2onnx, so the model is loaded on TensorFlow whatever it was trained on (Keras's
    # ONNX export on JAX needs jax2onnx, which brings flax, orbax and more).
    model = load_model(run, device, backend_name="tensorflow" if fmt == "onnx" else None)
    if fmt == "keras":  # the run's own file, copied: checked on made-up inputs, so no data is needed
        x, inputs = _random_inputs(model), f"{CHECK_EXAMPLES} random inputs"
    else:
        with in_file(str(run.run_dir / runs.CONFIG)):
            x = np.asarray(load_data(run.run_dir, run.config, run.meta).x_val[:CHECK_EXAMPLES])
        inputs = f"{len(x)} validation examples"
    expected = _outputs(model.predict(x, verbose=0))
    if fmt != "keras":
        model = without_augmentation(model)  # the file served: the same weights, no training-only layers
        model(x, training=False)  # Keras exports only a model that has been called (JAX's predict does not count)
    target.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        artifact = work / DEFAULT_NAMES[fmt]
        got = {"keras": _keras, "savedmodel": _savedmodel, "onnx": _onnx}[fmt](model, run.model_path, artifact, x)
        difference = _difference(expected, got, fmt)
        check = (f"checked: reloaded with {RUNTIMES[fmt]} and run on {inputs}: "
                 f"max |difference| {difference:.3g} (tolerance {TOLERANCE:g})")
        if not difference <= TOLERANCE:
            raise RunFailedError(f"export check failed: the {fmt} export differs from the Keras model by "
                                 f"{difference:.3g} (tolerance {TOLERANCE:g}); nothing was written")
        if target.is_dir():
            shutil.rmtree(target)
        os.replace(artifact, target)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"exported {fmt}: {target}", file=stream)
    print(check, file=stream)
    return target


def _random_inputs(model) -> np.ndarray:
    """CHECK_EXAMPLES inputs of the model's shape (a free length taken as 8) from a generator of their own:
    the global random streams are left alone."""
    shape = tuple(8 if d is None else int(d) for d in model.inputs[0].shape[1:])
    return np.random.default_rng(0).uniform(0, 1, size=(CHECK_EXAMPLES, *shape)).astype("float32")


def _outputs(y) -> list[np.ndarray]:
    """A model's outputs as a list of arrays (dict outputs in key order)."""
    if isinstance(y, dict):
        return [np.asarray(y[k]) for k in sorted(y)]
    if isinstance(y, (list, tuple)):
        return [np.asarray(v) for v in y]
    return [np.asarray(y)]


def _difference(expected: list[np.ndarray], got: list[np.ndarray], fmt: str) -> float:
    if len(expected) != len(got) or any(e.shape != g.shape for e, g in zip(expected, got)):
        shapes = [e.shape for e in expected], [g.shape for g in got]
        raise RunFailedError(f"export check failed: the {fmt} export gives outputs shaped {shapes[1]}, "
                             f"the Keras model {shapes[0]}; nothing was written")
    return max(float(np.max(np.abs(e.astype("float64") - g.astype("float64")), initial=0.0))
               for e, g in zip(expected, got))


def _keras(model, model_path: Path, artifact: Path, x: np.ndarray) -> list[np.ndarray]:
    """The run's own .keras file, copied as is and reloaded with Keras."""
    import keras

    shutil.copyfile(model_path, artifact)
    return _outputs(keras.models.load_model(artifact, compile=False).predict(x, verbose=0))


def _savedmodel(model, model_path: Path, artifact: Path, x: np.ndarray) -> list[np.ndarray]:
    """Keras's own `model.export(format="tf_saved_model")`, reloaded with tf.saved_model.load and its `serve`."""
    import tensorflow as tf

    try:
        model.export(str(artifact), format="tf_saved_model", verbose=False)
    except Exception as exc:  # a layer or signature the exporter cannot trace
        raise ConfigError(f"--format savedmodel: Keras cannot export this model: {first_line(exc, 300)}") from None
    loaded = tf.saved_model.load(str(artifact))  # kept in a name: its variables die with it
    served = loaded.serve(tf.constant(x))
    return _outputs({k: v.numpy() for k, v in served.items()} if isinstance(served, dict) else
                    [v.numpy() for v in served] if isinstance(served, (list, tuple)) else served.numpy())


def _onnx(model, model_path: Path, artifact: Path, x: np.ndarray) -> list[np.ndarray]:
    """Keras's `model.export(format="onnx")` (tf2onnx under TensorFlow), reloaded with onnxruntime."""
    import logging
    import warnings

    import onnxruntime

    logging.getLogger("tf2onnx").setLevel(logging.CRITICAL)  # its per-op log lines; a failure is one line below
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model.export(str(artifact), format="onnx", verbose=False)
        session = onnxruntime.InferenceSession(str(artifact), providers=["CPUExecutionProvider"])
    except Exception as exc:  # an op the converter lacks, or a graph onnxruntime cannot run
        raise ConfigError(f"--format onnx: this model does not convert: {first_line(exc, 300)}") from None
    feeds = {session.get_inputs()[0].name: x.astype("float32")}
    return _outputs(session.run(None, feeds))


__all__ = ["FORMATS", "TOLERANCE", "export_run"]

"""Everything backend-specific (TensorFlow today): device choice, determinism, thread pools."""

from __future__ import annotations

import contextlib
import os
import sys
from typing import Any

from nnlab.errors import ConfigError

DEVICES = ("auto", "cpu", "gpu")


def configure(device: str = "auto", *, seed: int = 0, deterministic: bool = False) -> dict[str, Any]:
    """Pick the device, seed Python/NumPy/Keras and optionally make ops deterministic; say what was used."""
    if device not in DEVICES:
        raise ConfigError(f"--device: expected one of {', '.join(DEVICES)} (got {device!r})")
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep TensorFlow's start-up chatter out of logs
    if device == "cpu":
        os.environ["CUDA_VISIBLE_DEVICES"] = "-1"  # only effective before TensorFlow is imported
    with _quiet_stderr():
        import keras

    keras.utils.set_random_seed(seed)
    backend = keras.backend.backend()
    info: dict[str, Any] = {"requested": device, "backend": backend, "keras": keras.__version__}
    if backend != "tensorflow":
        info["used"] = "cpu" if device == "cpu" else "auto"
        return info

    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    if device == "cpu" and gpus:
        tf.config.set_visible_devices([], "GPU")
        gpus = []
    if device == "gpu" and not gpus:
        raise ConfigError("--device gpu: TensorFlow sees no GPU on this machine (install nnlab[cuda] on a GPU host)")
    for gpu in gpus:
        try:
            tf.config.experimental.set_memory_growth(gpu, True)
        except RuntimeError:  # already initialised in this process
            pass
    if deterministic:
        tf.config.experimental.enable_op_determinism()
    info.update(
        used="gpu" if gpus else "cpu",
        gpus=[gpu.name for gpu in gpus],
        tensorflow=tf.__version__,
        deterministic=deterministic,
    )
    return info


@contextlib.contextmanager
def _quiet_stderr():
    """Silence the C++ log lines TensorFlow prints at import (TF_CPP_MIN_LOG_LEVEL no longer stops them)."""
    if "tensorflow" in sys.modules or os.environ.get("NNLAB_DEBUG"):
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)

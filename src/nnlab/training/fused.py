"""Fused steps: several training steps per call (and validation steps within fit), Keras's `steps_per_execution`.

On a CPU a small model's step costs less than launching it: for the MNIST MLP at 32 hidden units most of
an epoch is Python and dispatch, one step at a time. Keras runs K steps per call when compiled with
`steps_per_execution=K`: TensorFlow in one graph (a while loop over the steps), JAX as a Python loop over
its compiled step, with the per-batch callbacks called once per K steps.

K changes no number: every step runs the same compiled step on the batch and the state it would see one
call at a time, so the history and the weights equal the one-step run's (tests/test_fused.py). (Compiling
the K steps of a JAX call as one `lax.scan` would be faster still, but XLA then rounds some models' sums
differently: benchmarks/RESULTS.md, "Fused steps".) That is what lets `auto` choose K from a timing: the
model's forward pass on one training batch is timed (after a call that compiles it), a step is taken to
cost three of those (forward and backward), and K is the number of steps that fill `CALL_S` seconds, at
most `MAX_STEPS` and at most one epoch. A call of about 0.1 s keeps the progress bar and a Ctrl-C (noticed
between calls) prompt.
"""

from __future__ import annotations

import math
import time
from typing import Any

import keras
import numpy as np

from nnlab.config import ExperimentConfig
from nnlab.datasets.base import Dataset
from nnlab.training.compile import steps_per_epoch

CALL_S = 0.1  # auto: steps per call so that a call takes about this long
MAX_STEPS = 64  # auto: at most this many (the MNIST MLP's epoch: 8 steps per call -> 64 gains 0-25%, issue 19)
_TIMED: dict[tuple, float] = {}  # step seconds measured in this process, per model shape (a sweep's host reuses them)


def choose(model: keras.Model, config: ExperimentConfig, dataset: Dataset) -> dict[str, Any]:
    """Set the compiled model's steps per call (`train.steps_per_execution`, or `auto`: from its measured
    step time) before its first fit; return what meta.json records: the value and how it was chosen."""
    setting = config.train.steps_per_execution
    if config.train.tbptt is not None:  # windows are trained in nnlab's own loop (on JAX: one scan per batch)
        return use(model, 1, "truncated BPTT trains window by window")
    epoch = steps_per_epoch(dataset, config.train.batch_size)
    if setting != "auto":
        return use(model, min(setting, epoch), "train.steps_per_execution")
    step_s = step_seconds(model, dataset, config.train.batch_size)
    steps = max(1, min(MAX_STEPS, epoch, math.floor(CALL_S / step_s)))
    return {**use(model, steps, "auto"), "step_ms": round(step_s * 1000, 3)}


def use(model: keras.Model, steps: int, why: str) -> dict[str, Any]:
    """Give the model `steps` per call from its next fit, evaluate or predict on (the functions Keras built for
    the old value are dropped); return what meta.json records."""
    model.steps_per_execution = steps
    for name in ("train_function", "test_function", "predict_function"):  # built (if at all) for one step per call
        setattr(model, name, None)
    return {"steps_per_execution": steps, "chosen_by": why}


def after_training(model: keras.Model) -> None:
    """One step per call again for what follows training (the final evaluation and predictions, saved models):
    on TensorFlow a multi-step evaluation or prediction graph costs seconds to trace for each new input shape
    (the addition LSTM's final evaluation: 2.5-5.0 s against 1.1-1.3 s), and it would gain little there."""
    use(model, 1, "after training")


def step_seconds(model: keras.Model, dataset: Dataset, batch_size: int) -> float:
    """About one training step's seconds: three forward passes over a training batch (the best of three,
    after a call that compiles). Measured once per process for each model shape and batch size."""
    x = _first_rows(dataset.x_train, batch_size)
    key = (keras.config.backend(), tuple(tuple(w.shape) for w in model.weights), _shapes(x))
    if key not in _TIMED:
        model.predict_on_batch(x)
        times = []
        for _ in range(3):
            start = time.perf_counter()
            np.asarray(keras.tree.flatten(model.predict_on_batch(x))[0])
            times.append(time.perf_counter() - start)
        _TIMED[key] = 3 * min(times)
    return _TIMED[key]


def _first_rows(x, n: int):
    return {k: v[:n] for k, v in x.items()} if isinstance(x, dict) else x[:n]


def _shapes(x) -> tuple:
    return tuple((k, v.shape) for k, v in sorted(x.items())) if isinstance(x, dict) else (x.shape,)


__all__ = ["CALL_S", "MAX_STEPS", "after_training", "choose", "step_seconds", "use"]

"""Truncated BPTT: train a stateful twin of the model on consecutive time windows, like the seed-002 lab loop.

For each batch of `batch_size` sequences the recurrent states are reset, then the windows
[0, w), [w, 2w), ... are trained one `train_on_batch` each, the states carrying over from one
window to the next (gradients stop at window borders). The carried states are made explicit
model state (`track_states`): Keras creates a stateful RNN's state variables untracked, and the
JAX trainer, which passes every variable in and out of its compiled step, would otherwise start
every window from zeros. Validation runs the same windows and
resets. The model that is checkpointed, evaluated and saved stays the ordinary (non-stateful)
one: it gets the twin's weights and optimizer state at every epoch end, so history.csv, the
checkpoint, resume, early stopping and the progress line work as in a normal run.
"""

from __future__ import annotations

import inspect
import math
from typing import Iterator

import keras
import numpy as np

from nnlab.config import ExperimentConfig
from nnlab.datasets.base import Dataset
from nnlab.errors import ConfigError

SEQUENCE_TASKS = ("sequence_regression",)


def window_slices(order: np.ndarray, length: int, batch_size: int, window: int) -> Iterator[tuple[np.ndarray, int, int]]:
    """(rows, start, stop) for every window of every full batch of sequences, in training order.

    Sequences left over after the last full batch are skipped this epoch (a stateful model has a
    fixed batch size), as in the lab's loop; with shuffling, different ones each epoch.
    """
    for b in range(len(order) // batch_size):
        rows = np.sort(order[b * batch_size : (b + 1) * batch_size])
        for start in range(0, length, window):
            yield rows, start, min(start + window, length)


def reset_states(model: keras.Model) -> None:
    """Zero the states of every stateful recurrent layer (Keras 3 has no Model.reset_states)."""
    for layer in model.layers:
        if hasattr(layer, "reset_state") and getattr(layer, "stateful", False):
            layer.reset_state()


def track_states(model: keras.Model) -> None:
    """Make the state variables of the stateful recurrent layers part of the model's non-trainable
    variables, so that every backend's train and predict steps read them and write them back."""
    for layer in model.layers:
        states = getattr(layer, "states", None) if getattr(layer, "stateful", False) else None
        if not states:
            continue
        layer._tracker.unlock()
        try:
            for variable in states:
                layer._track_variable(variable)
        finally:
            layer._tracker.lock()


def _state_ids(model: keras.Model) -> set[int]:
    return {id(v) for layer in model.layers if getattr(layer, "stateful", False) for v in (layer.states or [])}


def model_weights(twin: keras.Model) -> list[np.ndarray]:
    """The twin's weights without its carried states: what the plain model's set_weights takes."""
    states = _state_ids(twin)
    return [np.asarray(v) for v in twin.weights if id(v) not in states]


def set_model_weights(twin: keras.Model, weights: list[np.ndarray]) -> None:
    states = _state_ids(twin)
    variables = [v for v in twin.weights if id(v) not in states]
    if len(variables) != len(weights):
        raise AssertionError("the stateful twin's weights do not match the model's")
    for variable, value in zip(variables, weights):
        variable.assign(np.asarray(value))


def check_tbptt(config: ExperimentConfig, dataset: Dataset) -> None:
    """Raise ConfigError (before any run folder exists) when truncated BPTT cannot train this experiment."""
    from nnlab.models import MODELS

    train = config.train
    if dataset.task not in SEQUENCE_TASKS:
        raise ConfigError(f"train.tbptt: needs one target per time step (task sequence_regression); "
                          f"this dataset's task is {dataset.task}")
    builder = MODELS.get(config.model.name).fn
    if "stateful" not in inspect.signature(builder).parameters:
        raise ConfigError(f"train.tbptt: model {config.model.name!r} has no stateful form (use model.name: rnn)")
    if config.model.params.get("bidirectional"):
        raise ConfigError("train.tbptt: a bidirectional RNN cannot carry its states forward from window to window")
    if len(dataset.x_train) < train.batch_size:
        raise ConfigError(f"train.batch_size: {train.batch_size} is more than the {len(dataset.x_train)} training sequences")


def stateful_twin(model: keras.Model, config: ExperimentConfig, dataset: Dataset) -> keras.Model:
    """The same architecture built stateful with the training batch size, with the model's weights."""
    from nnlab.models import MODELS
    from nnlab.training.fit import compile_model

    check_tbptt(config, dataset)
    train = config.train
    builder = MODELS.get(config.model.name).fn
    twin = builder(dataset.spec, **config.model.params, stateful=True, batch_size=train.batch_size)
    track_states(twin)
    set_model_weights(twin, model.get_weights())
    compile_model(twin, config, dataset)
    for m in (model, twin):
        if not m.optimizer.built:
            m.optimizer.build(m.trainable_variables)
    _copy_optimizer(model, twin)  # a resumed run continues with its saved optimizer state
    return twin


def _copy_optimizer(source: keras.Model, target: keras.Model) -> None:
    pairs = list(zip(source.optimizer.variables, target.optimizer.variables))
    if len(source.optimizer.variables) != len(target.optimizer.variables):
        raise AssertionError("the stateful twin's optimizer does not match the model's")
    for a, b in pairs:
        b.assign(np.asarray(a))  # a copy: JAX donates the buffers of the variables it trains


def predict_windows(twin: keras.Model, x: np.ndarray, batch_size: int, window: int) -> np.ndarray:
    """Predictions for all of `x` through the stateful twin, window by window, reset per batch.

    The last batch is filled up with copies of its first sequence; their predictions are dropped.
    """
    n, length = len(x), x.shape[1]
    out = []
    for b in range(math.ceil(n / batch_size)):
        rows = np.arange(b * batch_size, min((b + 1) * batch_size, n))
        rows = np.concatenate([rows, np.full(batch_size - len(rows), rows[0])])
        reset_states(twin)
        parts = [np.asarray(twin.predict_on_batch(x[rows, start : start + window])) for start in range(0, length, window)]
        out.append(np.concatenate(parts, axis=1)[: min(batch_size, n - b * batch_size)])
    reset_states(twin)
    return np.concatenate(out)


def _scores(y: np.ndarray, y_pred: np.ndarray, loss: str, metric_names: list[str]) -> dict[str, float]:
    scores = {"loss": float(np.mean(keras.ops.convert_to_numpy(keras.losses.get(loss)(y, y_pred))))}
    for name in metric_names:
        fn = keras.metrics.get(name)
        scores[name] = float(np.mean(keras.ops.convert_to_numpy(fn(y, y_pred))))
    return scores


def fit_tbptt(model: keras.Model, config: ExperimentConfig, dataset: Dataset, callbacks: list, initial_epoch: int = 0,
              twin: keras.Model | None = None) -> keras.Model:
    """Train `model` by truncated BPTT for the configured epochs, calling the Keras callbacks; return the twin."""
    from nnlab.training.fit import DEFAULT_METRICS, loss_name

    train = config.train
    window, batch_size = train.tbptt.window, train.batch_size
    twin = twin or stateful_twin(model, config, dataset)
    loss = loss_name(train, dataset.task)
    metric_names = train.metrics or DEFAULT_METRICS[dataset.task]
    x, y = dataset.x_train, dataset.y_train
    length = x.shape[1]
    steps = (len(x) // batch_size) * math.ceil(length / window)
    callback_list = keras.callbacks.CallbackList(callbacks, model=model, epochs=train.epochs, steps=steps, verbose=0)
    model.stop_training = False
    callback_list.on_train_begin()
    for epoch in range(initial_epoch, train.epochs):
        callback_list.on_epoch_begin(epoch)
        # Seeded per epoch, so a resumed run sees the same order an uninterrupted one would.
        order = np.random.default_rng([config.seed, epoch]).permutation(len(x)) if train.shuffle else np.arange(len(x))
        sums: dict[str, float] = {}
        seen = 0  # time steps trained, so a shorter last window weighs less
        for step, (rows, start, stop) in enumerate(window_slices(order, length, batch_size, window)):
            if start == 0:
                reset_states(twin)  # a new batch of sequences starts from zero states
            callback_list.on_train_batch_begin(step)
            logs = twin.train_on_batch(x[rows, start:stop], y[rows, start:stop], return_dict=True)
            for k, v in logs.items():
                sums[k] = sums.get(k, 0.0) + float(v) * (stop - start)
            seen += stop - start
            callback_list.on_train_batch_end(step, logs)
            if not math.isfinite(float(logs["loss"])):  # as RunCheckpoint would at the epoch end: stop now
                break
        logs = {k: v / seen for k, v in sums.items()}
        model.set_weights(model_weights(twin))
        val = _scores(dataset.y_val, predict_windows(twin, dataset.x_val, batch_size, window), loss, metric_names)
        logs.update({f"val_{k}": v for k, v in val.items()})
        _copy_optimizer(twin, model)  # the checkpoint saves the model with this optimizer state
        callback_list.on_epoch_end(epoch, logs)
        if model.stop_training:
            break
        _copy_optimizer(model, twin)  # callbacks may have changed the learning rate
    callback_list.on_train_end()
    return twin


__all__ = ["check_tbptt", "fit_tbptt", "model_weights", "predict_windows", "reset_states", "set_model_weights",
           "stateful_twin", "track_states", "window_slices"]

"""Truncated BPTT: train a stateful twin of the model on consecutive time windows, like the seed-002 lab loop.

For each batch of `batch_size` sequences the recurrent states are reset, then the windows
[0, w), [w, 2w), ... are trained one step each, the states carrying over from one window to the
next (gradients stop at window borders). The carried states are made explicit model state
(`track_states`): Keras creates a stateful RNN's state variables untracked, and the JAX trainer,
which passes every variable in and out of its compiled step, would otherwise start every window
from zeros. TensorFlow trains each window with `train_on_batch`; JAX trains all the windows of a
batch in one compiled call (`backend.JaxWindowSteps`). The model that is checkpointed, evaluated
and saved stays the ordinary (non-stateful) one: it gets the twin's weights and optimizer state
at every epoch end, so validation, history.csv, the checkpoint, resume, early stopping and the
progress line work as in a normal run.
"""

from __future__ import annotations

import math

import keras
import numpy as np

from nnlab.config import ExperimentConfig
from nnlab.datasets.base import Dataset
from nnlab.models import MODELS
from nnlab.training.compile import check_tbptt, compile_model, eval_batch_size


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


def stateful_twin(model: keras.Model, config: ExperimentConfig, dataset: Dataset) -> keras.Model:
    """The same architecture built stateful with the training batch size, with the model's weights."""
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


class WindowSteps:
    """One batch of sequences trained window after window: states reset, then one `train_on_batch` per window.

    The JAX backend trains the same steps in one compiled call per batch (`backend.JaxWindowSteps`);
    TensorFlow's per-call cost is small next to its recurrent loop, so it keeps this one.
    """

    def __init__(self, twin: keras.Model, window: int, length: int):
        self.twin, self.window, self.length = twin, window, length

    def load(self) -> None:
        pass

    def store(self) -> None:
        pass

    def train(self, x: np.ndarray, y: np.ndarray) -> list[tuple[dict[str, float], int]]:
        """Each window's logs and length, in order."""
        reset_states(self.twin)
        out = []
        for start in range(0, self.length, self.window):
            stop = min(start + self.window, self.length)
            logs = self.twin.train_on_batch(x[:, start:stop], y[:, start:stop], return_dict=True)
            out.append(({k: float(v) for k, v in logs.items()}, stop - start))
        return out


def window_steps(twin: keras.Model, window: int, x: np.ndarray, y: np.ndarray):
    """The fastest correct window trainer for this backend; `x`, `y`: one batch of whole training sequences."""
    if keras.backend.backend() == "jax":
        from nnlab.training.backend import JaxWindowSteps

        return JaxWindowSteps(twin, _state_ids(twin), window, (x, y))
    return WindowSteps(twin, window, x.shape[1])


def fit_tbptt(model: keras.Model, config: ExperimentConfig, dataset: Dataset, callbacks: list, initial_epoch: int = 0,
              twin: keras.Model | None = None) -> keras.Model:
    """Train `model` by truncated BPTT for the configured epochs, calling the Keras callbacks; return the twin.

    A step (for the callbacks and the progress bar) is one batch of sequences, all its windows trained.
    Validation evaluates the ordinary model on whole sequences: the same numbers as the windows joined
    (a stateful pass carries the state exactly; tests/test_tbptt.py), in far fewer calls.
    """
    train = config.train
    window, batch_size = train.tbptt.window, train.batch_size
    twin = twin or stateful_twin(model, config, dataset)
    x, y = dataset.x_train, dataset.y_train
    steps = len(x) // batch_size  # leftover sequences are skipped (a stateful model has a fixed batch size)
    trainer = window_steps(twin, window, x[:batch_size], y[:batch_size])
    callback_list = keras.callbacks.CallbackList(callbacks, model=model, epochs=train.epochs, steps=steps, verbose=0)
    model.stop_training = False
    callback_list.on_train_begin()
    for epoch in range(initial_epoch, train.epochs):
        callback_list.on_epoch_begin(epoch)
        # Seeded per epoch, so a resumed run sees the same order an uninterrupted one would.
        order = np.random.default_rng([config.seed, epoch]).permutation(len(x)) if train.shuffle else np.arange(len(x))
        sums: dict[str, float] = {}
        seen = 0  # time steps trained, so a shorter last window weighs less
        trainer.load()
        try:
            for step in range(steps):
                rows = np.sort(order[step * batch_size : (step + 1) * batch_size])
                callback_list.on_train_batch_begin(step)
                for logs, size in trainer.train(x[rows], y[rows]):
                    for k, v in logs.items():
                        sums[k] = sums.get(k, 0.0) + v * size
                    seen += size
                logs = {k: v / seen for k, v in sums.items()}
                callback_list.on_train_batch_end(step, logs)
                if not math.isfinite(logs["loss"]):  # as RunCheckpoint would at the epoch end: stop now
                    break
        finally:
            trainer.store()
        model.set_weights(model_weights(twin))
        val = model.evaluate(dataset.x_val, dataset.y_val, batch_size=eval_batch_size(train), verbose=0, return_dict=True)
        logs.update({f"val_{k}": float(v) for k, v in val.items()})
        _copy_optimizer(twin, model)  # the checkpoint saves the model with this optimizer state
        callback_list.on_epoch_end(epoch, logs)
        if model.stop_training:
            break
        _copy_optimizer(model, twin)  # callbacks may have changed the learning rate
    callback_list.on_train_end()
    return twin


__all__ = ["WindowSteps", "fit_tbptt", "model_weights", "predict_windows", "reset_states",
           "set_model_weights", "stateful_twin", "track_states", "window_steps"]

"""The benchmark models in plain Keras: the reference nnlab's times are compared with (benchmarks/backends.py).

Usage: KERAS_BACKEND=jax python benchmarks/plain_keras.py CONFIG SEED key=value ...

CONFIG and the key=value overrides are the ones backends.py also gives `nnlab train`;
`train.steps_per_execution=K` compiles with K steps per call (otherwise Keras's default, one).
The data arrays and the layers come from nnlab's loader and builder (so both
sides train exactly the same thing); everything after that is plain Keras: compile, fit (or
the truncated-BPTT window loop of seed 002), evaluate and predict on validation. Prints one
JSON line: epoch_times (s, one epoch end to the next) and the validation metric (accuracy,
or the normalised error MSE / variance for sequences).
"""

from __future__ import annotations

import json
import os
import sys
import time

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402

from nnlab import datasets, models  # noqa: E402
from nnlab.config import load_config  # noqa: E402


class EpochTimes(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.times, self.last = [], time.perf_counter()

    def on_train_begin(self, logs=None):
        self.last = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        now = time.perf_counter()
        self.times.append(now - self.last)
        self.last = now


def run(config_path: str, seed: int, overrides: list[str]) -> dict:
    config = load_config(config_path, [*overrides, f"seed={seed}"])
    keras.utils.set_random_seed(seed)
    data = datasets.load(config.data)
    model = models.build(config.model, data.spec)
    train = config.train
    task = data.task
    loss = {"multiclass": "sparse_categorical_crossentropy", "binary": "binary_crossentropy",
            "sequence_regression": "mse", "seq2seq": "sparse_categorical_crossentropy"}[task]
    metric = "mae" if task == "sequence_regression" else "accuracy"
    y_train, y_val = data.y_train, data.y_val
    if task == "binary":
        y_train, y_val = y_train.reshape(-1, 1).astype("float32"), y_val.reshape(-1, 1).astype("float32")
    learning_rate = train.optimizer.learning_rate or 0.001
    if train.lr_schedule is not None:  # cosine_decay over the whole run, as nnlab converts it
        steps = -(-len(data.x_train) // train.batch_size)
        learning_rate = keras.optimizers.schedules.CosineDecay(learning_rate, decay_steps=train.epochs * steps)
    steps = train.steps_per_execution if isinstance(train.steps_per_execution, int) else 1  # Keras's default: 1
    model.compile(optimizer=keras.optimizers.Adam(learning_rate), loss=loss, metrics=[metric],
                  steps_per_execution=steps)
    timer = EpochTimes()
    if train.tbptt is not None:
        val = fit_windows(model, config, data, timer)
    else:
        model.fit(data.x_train, y_train, batch_size=train.batch_size, epochs=train.epochs, shuffle=True,
                  validation_data=(data.x_val, y_val), callbacks=[timer], verbose=0)
        for x, y in ((data.x_train, y_train), (data.x_val, y_val)):  # the splits nnlab evaluates
            scores = model.evaluate(x, y, batch_size=max(train.batch_size, 256), verbose=0, return_dict=True)
            model.predict(x, batch_size=max(train.batch_size, 256), verbose=0)
        val = scores[metric]
    return {"epoch_times": timer.times, "val": float(val)}


def fit_windows(model, config, data, timer: EpochTimes) -> float:
    """Seed 002's loop: a stateful twin, states reset per batch of sequences, one train_on_batch per window."""
    from nnlab.training.tbptt import track_states

    train = config.train
    batch, window = train.batch_size, train.tbptt.window
    from nnlab.models import MODELS

    twin = MODELS.get(config.model.name).fn(data.spec, **config.model.params, stateful=True, batch_size=batch)
    track_states(twin)  # without it Keras's JAX trainer starts every window from zeros (Keras creates them untracked)
    twin.compile(optimizer=keras.optimizers.Adam(train.optimizer.learning_rate), loss="mse", metrics=["mae"],
                 jit_compile=keras.backend.backend() == "jax")
    x, y, length = data.x_train, data.y_train, data.x_train.shape[1]
    rng = np.random.default_rng(config.seed)

    def reset():
        for layer in twin.layers:
            if getattr(layer, "stateful", False):
                layer.reset_state()

    timer.on_train_begin()
    nmse = float("nan")
    for epoch in range(train.epochs):
        order = rng.permutation(len(x))
        for b in range(len(x) // batch):
            rows = np.sort(order[b * batch:(b + 1) * batch])
            reset()
            for start in range(0, length, window):
                twin.train_on_batch(x[rows, start:start + window], y[rows, start:start + window])
        predictions = []
        for b in range(-(-len(data.x_val) // batch)):
            rows = np.arange(b * batch, min((b + 1) * batch, len(data.x_val)))
            rows = np.concatenate([rows, np.full(batch - len(rows), rows[0])])
            reset()
            parts = [np.asarray(twin.predict_on_batch(data.x_val[rows, s:s + window])) for s in range(0, length, window)]
            predictions.append(np.concatenate(parts, axis=1)[: min(batch, len(data.x_val) - b * batch)])
        y_pred = np.concatenate(predictions)
        nmse = float(np.mean((y_pred - data.y_val) ** 2) / np.var(data.y_val))
        timer.on_epoch_end(epoch)
    return nmse


if __name__ == "__main__":
    config_path, seed, *rest = sys.argv[1:]
    print(json.dumps(run(config_path, int(seed), rest)))

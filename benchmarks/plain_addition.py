"""The addition model in a plain Keras script: the baseline nnlab's per-epoch time is compared with.

Same data size, model, loss, optimizer and batch size as configs/addition_lstm.yaml.
Prints one JSON line: {"epoch_times": [...]} (seconds from one epoch end to the next).
"""

import json
import os
import sys
import time

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
from keras import layers  # noqa: E402

EPOCHS = int(sys.argv[1]) if len(sys.argv) > 1 else 5
DIGITS, N, VOCAB = 3, 50000, "0123456789+ "

# Prepare the data: distinct 'a+b' questions, left-padded; answers right-padded.
rng = np.random.default_rng(0)
pairs = rng.choice(10 ** (2 * DIGITS), size=N, replace=False)
a, b = np.divmod(pairs, 10**DIGITS)
questions = [f"{x}+{y}".rjust(2 * DIGITS + 1) for x, y in zip(a, b)]
answers = [str(s).ljust(DIGITS + 1) for s in a + b]
index = {c: i for i, c in enumerate(VOCAB)}
x = np.eye(len(VOCAB), dtype="float32")[[[index[c] for c in q] for q in questions]]
y = np.array([[index[c] for c in s] for s in answers], dtype="int32")
split = int(0.8 * N)
x_train, x_val, y_train, y_val = x[:split], x[split:], y[:split], y[split:]

# Build the model: encoder LSTM -> RepeatVector -> decoder LSTM -> per-step softmax.
keras.utils.set_random_seed(0)
model = keras.Sequential([
    keras.Input((2 * DIGITS + 1, len(VOCAB))),
    layers.LSTM(128),
    layers.RepeatVector(DIGITS + 1),
    layers.LSTM(128, return_sequences=True),
    layers.TimeDistributed(layers.Dense(len(VOCAB), activation="softmax")),
])
model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])


class EpochTimes(keras.callbacks.Callback):
    def on_train_begin(self, logs=None):
        self.times, self.last = [], time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        now = time.perf_counter()
        self.times.append(now - self.last)
        self.last = now


timer = EpochTimes()
model.fit(x_train, y_train, batch_size=128, epochs=EPOCHS, validation_data=(x_val, y_val), callbacks=[timer], verbose=0)
print(json.dumps({"epoch_times": timer.times}))

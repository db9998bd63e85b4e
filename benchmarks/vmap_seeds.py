"""Ten seeds of one model: ten separate programs against one `jax.vmap`-ed program, per epoch.

Usage (JAX; real MNIST from $NNLAB_DATA_DIR/mnist):
    NNLAB_DATA_DIR=../shared/datasets .venv/bin/python benchmarks/vmap_seeds.py [--hidden 32,256] [--seeds 10]
        [--epochs 3] [--batch-size 32]

Both sides train the MNIST MLP of seed 004 (Flatten -> Dense(n, relu) -> Dense(10, softmax), Adam 1e-3,
batch 32) with the same hand-written step (Keras's `stateless_call` and `optimizer.stateless_apply`,
data on the device, each seed its own shuffle): `separate` runs it jitted for one seed after another,
`vmapped` runs all seeds' steps as one program (`jax.jit(jax.vmap(step))`). Prints, per hidden size,
seconds per epoch of all seeds together (median over every epoch but the first) and their ratio, on
whatever device JAX uses: on this project's 2-core CPU the vmapped program was no faster (RESULTS.md);
on a GPU, where one small model leaves the device idle, batching the seeds is where it should pay.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time

os.environ.setdefault("KERAS_BACKEND", "jax")

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import keras  # noqa: E402
import numpy as np  # noqa: E402

from nnlab import datasets  # noqa: E402
from nnlab.config import ComponentConfig  # noqa: E402


def build(hidden: int, seed: int) -> keras.Model:
    keras.utils.set_random_seed(seed)
    return keras.Sequential([keras.Input((28, 28, 1)), keras.layers.Flatten(),
                             keras.layers.Dense(hidden, activation="relu"),
                             keras.layers.Dense(10, activation="softmax")])


def make_step(model: keras.Model, optimizer: keras.optimizers.Optimizer, x, y):
    def loss_fn(trainable, non_trainable, rows):
        pred, non_trainable = model.stateless_call(trainable, non_trainable, x[rows], training=True)
        return jnp.mean(keras.losses.sparse_categorical_crossentropy(y[rows], pred)), non_trainable

    grad = jax.value_and_grad(loss_fn, has_aux=True)

    def step(trainable, non_trainable, opt_vars, rows):
        (loss, non_trainable), grads = grad(trainable, non_trainable, rows)
        trainable, opt_vars = optimizer.stateless_apply(opt_vars, grads, trainable)
        return trainable, non_trainable, opt_vars, loss

    return step


def run(hidden: int, seeds: int, epochs: int, batch: int, x_all: np.ndarray, y_all: np.ndarray) -> dict:
    x, y = jnp.asarray(x_all), jnp.asarray(y_all)
    steps = len(x_all) // batch
    models = [build(hidden, s) for s in range(seeds)]
    optimizer = keras.optimizers.Adam(1e-3)
    optimizer.build(models[0].trainable_variables)
    step = make_step(models[0], optimizer, x, y)
    states = [jax.tree.map(jnp.copy, ([v.value for v in m.trainable_variables],  # own buffers: steps donate them
                                      [v.value for v in m.non_trainable_variables],
                                      [v.value for v in optimizer.variables])) for m in models]
    initial = [jax.tree.map(jnp.copy, s) for s in states]  # the vmapped side starts from the same weights
    rngs = [np.random.default_rng(s) for s in range(seeds)]
    out = {}

    one = jax.jit(step, donate_argnums=(0, 1, 2))
    times = []
    for _ in range(epochs):
        start = time.perf_counter()
        for s in range(seeds):
            order = rngs[s].permutation(len(x_all))[: steps * batch].reshape(steps, batch)
            state = states[s]
            for rows in order:
                *state, loss = one(*state, rows)
            loss.block_until_ready()
            states[s] = state
        times.append(time.perf_counter() - start)
    out["separate"] = times

    many = jax.jit(jax.vmap(step), donate_argnums=(0, 1, 2))
    stacked = jax.tree.map(lambda *a: jnp.stack(a), *(jax.tree.map(jnp.copy, s) for s in initial))
    times = []
    for _ in range(epochs):
        start = time.perf_counter()
        orders = np.stack([r.permutation(len(x_all))[: steps * batch].reshape(steps, batch) for r in rngs], axis=1)
        state = stacked
        for rows in orders:
            *state, loss = many(*state, rows)
        loss.block_until_ready()
        stacked = state
        times.append(time.perf_counter() - start)
    out["vmapped"] = times
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hidden", default="32,256")
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=32)
    args = parser.parse_args()
    data = datasets.load(ComponentConfig(name="mnist"))
    print(f"device: {jax.devices()[0]} ({jax.device_count()} devices); {args.seeds} seeds, batch {args.batch_size}, "
          f"{len(data.x_train)} training images; seconds per epoch of all seeds (median, first epoch left out)")
    print("| hidden | separate s/epoch | vmapped s/epoch | separate / vmapped |\n|---|---|---|---|")
    for hidden in (int(h) for h in args.hidden.split(",")):
        res = run(hidden, args.seeds, args.epochs, args.batch_size, data.x_train, data.y_train)
        sep, vm = (statistics.median(res[k][1:] or res[k]) for k in ("separate", "vmapped"))
        print(f"| {hidden} | {sep:.2f} | {vm:.2f} | **{sep / vm:.2f}x** |", flush=True)
        print(json.dumps({"hidden": hidden, **res}), file=__import__("sys").stderr)


if __name__ == "__main__":
    main()

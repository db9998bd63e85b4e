"""Sequence plots for recurrent runs: input, target and prediction over time, and every hidden unit's activation."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from nnlab import runs
from nnlab.errors import ConfigError


def is_recurrent(layer) -> bool:
    """A Keras RNN layer (SimpleRNN, LSTM, GRU...) or a Bidirectional wrapper around one."""
    import keras

    return isinstance(layer, (keras.layers.RNN, keras.layers.Bidirectional))


def recurrent_layers(model) -> list:
    return [layer for layer in model.layers if is_recurrent(layer)]


def _sequence_probe(layer):
    """A copy of a recurrent layer that returns its output at every step, with the same weights."""
    config = layer.get_config()
    if "layer" in config:  # Bidirectional: the wrapped layers carry return_sequences
        for key in ("layer", "backward_layer"):
            if isinstance(config.get(key), dict):
                config[key]["config"].update(return_sequences=True, stateful=False)
    else:
        config.update(return_sequences=True, stateful=False)
    config.pop("name", None)
    return type(layer).from_config(config)


def hidden_activations(model, x: np.ndarray) -> list[tuple[str, np.ndarray]]:
    """(layer name, activations (time, units)) for each recurrent layer, feeding `x` (one sequence) through
    the model's layers in order. LSTMs show their output h; the cell memory is not shown."""
    import keras

    h = keras.ops.convert_to_tensor(x)
    out = []
    recurrent = recurrent_layers(model)
    for layer in model.layers:
        if isinstance(layer, keras.layers.InputLayer):
            continue
        if len(out) == len(recurrent):  # the head (and any auxiliary head) adds nothing to show
            break
        if is_recurrent(layer):
            probe = layer if layer.return_sequences else _sequence_probe(layer)
            if probe is not layer:
                probe.build(tuple(h.shape))
                probe.set_weights(layer.get_weights())
            out.append((layer.name, keras.ops.convert_to_numpy(probe(h))[0]))
        h = layer(h)
    return out


def inspect_sequences(run_dir: str | Path, model, dataset, sample: int, layer: str | None = None) -> list[Path]:
    """Plot validation sequence `sample`: the input, target and prediction over time
    (`plots/sequence_val<N>.png`) and each recurrent layer's units over time (`plots/hidden_val<N>.png`)."""
    from nnlab.reports.plots import save_figure  # first: it selects the Agg backend

    import matplotlib.pyplot as plt

    run_dir = Path(run_dir)
    n = len(dataset.x_val)
    if not 0 <= sample < n:
        raise ConfigError(f"--sample: {sample} is not a validation sequence (0..{n - 1})")
    names = [lay.name for lay in recurrent_layers(model)]
    if layer is not None and layer not in names:
        raise ConfigError(f"--layer: {layer!r} is not a recurrent layer of this model (choose from: {', '.join(names)})")
    x = dataset.x_val[sample : sample + 1]
    y_true = np.asarray(dataset.y_val[sample])
    y_pred = np.asarray(model.predict(x, verbose=0))[0]
    hidden = [(name, a) for name, a in hidden_activations(model, x) if layer is None or name == layer]
    folder = run_dir / runs.PLOTS
    folder.mkdir(exist_ok=True)
    paths = []

    # 1. input, target and prediction over time (seq2seq: as characters)
    if dataset.task == "seq2seq" and dataset.decode is not None:
        paths.append(save_figure(_plot_decoded(x, y_true, y_pred, dataset.decode, sample),
                                 folder / f"sequence_val{sample}.png", dpi=90))
    else:
        paths.append(save_figure(_plot_series(x, y_true, y_pred, dataset, sample), folder / f"sequence_val{sample}.png",
                                 dpi=90))

    # 2. every hidden unit over time, one panel per recurrent layer
    fig, axes = plt.subplots(len(hidden), 1, figsize=(12, 3 * len(hidden)), squeeze=False)
    for ax, (name, activations) in zip(axes[:, 0], hidden):
        lines = ax.plot(np.arange(len(activations)), activations, marker=".", markersize=3)
        if len(lines) <= 16:
            ax.legend(lines, [f"unit {i}" for i in range(len(lines))], loc="upper right", ncol=min(len(lines), 8),
                      fontsize="small")
        ax.set_title(f"{name}: {activations.shape[1]} hidden unit outputs")
        ax.set_xlabel("time step")
        ax.grid(alpha=0.3)
    fig.tight_layout()
    paths.append(save_figure(fig, folder / f"hidden_val{sample}.png", dpi=90))
    return paths


def _plot_decoded(x, y_true, y_pred, decode, sample: int):
    """A seq2seq example as text: the question, then per output step the predicted character, the true one
    and how sure the model was (green where right, red where wrong)."""
    import matplotlib.pyplot as plt

    question, answer, guess = decode(x)[0], decode(y_true[None])[0], decode(y_pred[None])[0]
    steps = np.arange(len(guess))
    fig, ax = plt.subplots(figsize=(max(6.0, 0.9 * len(guess) + 2), 3.6))
    ax.bar(steps, y_pred.max(axis=-1), color=["tab:green" if g == a else "tab:red" for g, a in zip(guess, answer)])
    ax.set_xticks(steps, [f"{g!r}\ntrue {a!r}" for g, a in zip(guess, answer)])
    ax.set_ylim(0, 1)
    ax.set_xlabel("output step: predicted character, true character")
    ax.set_ylabel("probability of the prediction")
    ax.set_title(f"validation example {sample}: {question!r} -> {guess!r} (true {answer!r})")
    fig.tight_layout()
    return fig


def _plot_series(x, y_true, y_pred, dataset, sample: int):
    """Input over time (or the input frames), and the target against the prediction."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 1, figsize=(12, 6), squeeze=False)
    top, bottom = axes[0, 0], axes[1, 0]
    frames = x[0]
    if frames.ndim > 2:  # a sequence of images: show them side by side
        strip = np.concatenate([f[..., 0] if f.shape[-1] == 1 else f for f in frames], axis=1)
        top.imshow(strip, cmap="gray")
        top.set_axis_off()
        top.set_title("input frames")
    else:
        steps = np.arange(len(frames))
        for c in range(frames.shape[-1]):
            top.plot(steps, frames[:, c], marker=".", label=f"input {c}" if frames.shape[-1] > 1 else "input")
        top.legend(loc="upper right")
        top.set_title(f"validation sequence {sample}: input")
        top.grid(alpha=0.3)
    if y_true.ndim >= 1 and y_pred.ndim == 2 and len(y_pred) == len(frames):  # one target per step
        steps = np.arange(len(y_pred))
        bottom.plot(steps, y_true.reshape(len(steps), -1)[:, 0], marker=".", label="target")
        bottom.plot(steps, y_pred[:, 0], marker=".", label="prediction")
        bottom.set_xlabel("time step")
        bottom.legend(loc="upper right")
        bottom.grid(alpha=0.3)
        bottom.set_title("target and prediction")
    else:
        labels = list(dataset.class_names or [])
        if labels and y_pred.size > 1:
            bottom.bar(labels, y_pred.ravel())
            bottom.set_title(f"predicted probabilities (true: {labels[int(np.ravel(y_true)[0])]})")
        else:
            target, guess = float(np.ravel(y_true)[0]), float(np.ravel(y_pred)[0])
            bottom.bar(["target", "prediction"], [target, guess])
            bottom.set_title(f"target {target:g}, prediction {guess:.2f}")
    fig.tight_layout()
    return fig


def handles(model) -> bool:
    return bool(recurrent_layers(model))


def inspect(model, dataset, run_dir: Path, *, sample: int, layer: str | None = None, after_pool: bool = False) -> list[Path]:
    if after_pool:
        raise ConfigError("--after-pool: is for convolutional runs; this run's model is recurrent")
    return inspect_sequences(run_dir, model, dataset, sample, layer)

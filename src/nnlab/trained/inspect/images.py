"""Inside an image model: the input, every channel of each conv (or pooling) layer's output, first-layer kernels."""

from __future__ import annotations

import re
from pathlib import Path

import keras
import numpy as np

from nnlab import runs
from nnlab.errors import ConfigError
from nnlab.trained.inspect import pick_sample

POOLING = (keras.layers.MaxPooling2D, keras.layers.AveragePooling2D)


def handles(model) -> bool:
    return any(isinstance(layer, keras.layers.Conv2D) for layer in model.layers)


def inspect(model, dataset, run_dir: Path, *, sample: int, layer: str | None = None,
            after_pool: bool = False) -> list[Path]:
    """One PNG for the input, one grid PNG per chosen layer, one for the first conv layer's kernels."""
    from nnlab.reports.plots import save_figure

    x, y = pick_sample(dataset, sample)
    chosen = choose_layers(model, layer, after_pool)
    probe = keras.Model(model.inputs, [item.output for item in chosen])
    outputs = probe.predict(x, verbose=0)
    outputs = outputs if isinstance(outputs, list) else [outputs]
    prediction = model.predict(x, verbose=0)[0]
    plots = Path(run_dir) / runs.PLOTS
    written = [save_figure(plot_input(x[0], _caption(dataset, sample, y, prediction)),
                           plots / f"inspect_{sample}_input.png")]
    for item, output in zip(chosen, outputs):
        fig = plot_channels(output[0], title=f"{item.name} ({type(item).__name__}), validation example {sample}")
        written.append(save_figure(fig, plots / f"inspect_{sample}_{_safe(item.name)}.png"))
    first = next(item for item in model.layers if isinstance(item, keras.layers.Conv2D))
    written.append(save_figure(plot_kernels(first), plots / f"inspect_kernels_{_safe(first.name)}.png"))
    return written


def choose_layers(model, layer: str | None, after_pool: bool) -> list:
    """The named layer, else every pooling layer (after_pool) or every Conv2D layer, input side first."""
    candidates = [item for item in model.layers if isinstance(item, (keras.layers.Conv2D, *POOLING))]
    if layer is not None:
        for item in candidates:
            if item.name == layer:
                return [item]
        names = ", ".join(item.name for item in candidates)
        raise ConfigError(f"--layer: no conv or pooling layer {layer!r} in this model (choose from: {names})")
    kind = POOLING if after_pool else (keras.layers.Conv2D,)
    chosen = [item for item in candidates if isinstance(item, kind)]
    if not chosen:
        raise ConfigError("--after-pool: this model has no pooling layers")
    return chosen


def plot_input(image: np.ndarray, caption: str):
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(3.2, 3.6))
    _show(ax, image)
    ax.set_title(caption, fontsize=9)
    fig.tight_layout()
    return fig


def plot_channels(maps: np.ndarray, *, title: str = ""):
    """Every channel of a (height, width, channels) activation as a grid of grey images, nearly square."""
    from nnlab.reports.plots import plot_image_grid

    return plot_image_grid(np.moveaxis(maps, -1, 0), title=title, colorbar=True)


def plot_kernels(conv):
    """The layer's filters: grey for one input channel, colour for three, the channel mean otherwise."""
    from nnlab.reports.plots import plot_image_grid

    kernel = keras.ops.convert_to_numpy(conv.kernel)  # (height, width, in, out)
    tiles = []
    for weights in np.moveaxis(kernel, -1, 0):
        if weights.shape[-1] == 3:
            low, high = weights.min(), weights.max()
            tiles.append((weights - low) / (high - low or 1.0))
        else:
            tiles.append(weights.mean(axis=-1))
    title = f"kernels of {conv.name} ({kernel.shape[0]}x{kernel.shape[1]}, {kernel.shape[2]} in)"
    return plot_image_grid(tiles, title=title, cell=1.5)


def _show(ax, image: np.ndarray) -> None:
    ax.axis("off")
    if image.shape[-1] == 3:
        low, high = image.min(), image.max()
        ax.imshow((image - low) / (high - low or 1.0), interpolation="nearest")
    else:
        ax.imshow(image[..., 0], cmap="gray", interpolation="nearest")


def _caption(dataset, sample: int, y, prediction: np.ndarray) -> str:
    names = dataset.class_names
    if dataset.task == "binary":
        label = names[int(y)] if names else str(int(y))
        return f"example {sample}: true {label}, p({names[1] if names else 1}) = {float(prediction[0]):.3f}"
    if dataset.task == "multiclass":
        guess = int(np.argmax(prediction))
        truth = int(y)
        return f"example {sample}: true {names[truth] if names else truth}, predicted {names[guess] if names else guess}"
    return f"example {sample}"


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", name)

"""The autoencoder's hidden units as images: each unit's input weights on the patch grid (seed 001)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from nnlab import runs


def hidden_weight_images(model, patch_shape: tuple[int, int]) -> np.ndarray:
    """(units, height, width): the input weights of each unit of the layer named "hidden"."""
    kernel = np.asarray(model.get_layer("hidden").get_weights()[0])  # (inputs, units)
    return kernel.T.reshape(kernel.shape[1], *patch_shape)


def plot_hidden_weights(run_dir: str | Path, model, patch_shape: tuple[int, int]) -> list[Path]:
    """Write plots/hidden_weights.png: one grayscale tile per hidden unit, each scaled to its own range."""
    from nnlab.reports.plots import plot_image_grid, save_figure

    images = hidden_weight_images(model, patch_shape)
    fig = plot_image_grid(images, title=f"input weights of the {len(images)} hidden units", cell=1.2, numbered=False)
    return [save_figure(fig, Path(run_dir) / runs.PLOTS / "hidden_weights.png", dpi=90)]


def handles(model) -> bool:
    return model.name == "autoencoder"


def inspect(model, dataset, run_dir: Path, *, sample: int, layer: str | None = None, after_pool: bool = False) -> list[Path]:
    """The autoencoder has one picture to show, whatever the sample: its hidden units' input weights."""
    return plot_hidden_weights(run_dir, model, tuple(dataset.meta["patch_shape"]))

"""Figures drawn from run files: learning curves and confusion matrices (matplotlib, Agg)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from nnlab import runs  # noqa: E402
from nnlab.reports.summary import Confusion, Curves, read_confusion, read_curves  # noqa: E402


def plot_curves(curves: Curves, *, title: str = "") -> plt.Figure:
    """Loss and each metric per epoch, training against validation, one panel each."""
    names = curves.metric_names()
    fig, axes = plt.subplots(1, len(names), figsize=(5 * len(names), 3.8), squeeze=False)
    for ax, name in zip(axes[0], names):
        ax.plot(curves.epochs, curves.series[name], marker=".", label="train")
        if f"val_{name}" in curves.series:
            ax.plot(curves.epochs, curves.series[f"val_{name}"], marker=".", label="validation")
        ax.set_xlabel("epoch")
        ax.set_title(name)
        ax.grid(alpha=0.3)
        ax.legend()
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_confusion_matrix(confusion: Confusion, *, normalize: bool = False, title: str = "") -> plt.Figure:
    """Counts (or rows normalised to 1) with the class names on both axes."""
    matrix = confusion.matrix.astype("float64")
    if normalize:
        matrix = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)
    n = len(confusion.class_names)
    size = max(4.0, 0.5 * n + 2)
    fig, ax = plt.subplots(figsize=(size + 1, size))
    image = ax.imshow(matrix, cmap="Blues")
    fig.colorbar(image, ax=ax, fraction=0.046)
    ax.set_xticks(range(n), confusion.class_names, rotation=45, ha="right")
    ax.set_yticks(range(n), confusion.class_names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    threshold = matrix.max() / 2 if matrix.size else 0
    for i in range(n):
        for j in range(n):
            text = f"{matrix[i, j]:.2f}" if normalize else f"{int(matrix[i, j])}"
            ax.text(j, i, text, ha="center", va="center", fontsize=8,
                    color="white" if matrix[i, j] > threshold else "black")
    ax.set_title(title or ("confusion matrix (normalised)" if normalize else "confusion matrix"))
    fig.tight_layout()
    return fig


def save_figure(fig: plt.Figure, path: str | Path, *, dpi: int = 100) -> Path:
    """Write the figure atomically as PNG and close it."""
    with runs.atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=dpi, format="png")
    plt.close(fig)
    return Path(path)


def write_run_plots(run_dir: str | Path, *, title: str = "") -> list[Path]:
    """Draw every standard plot the run's files allow into `run_dir/plots/`."""
    plots = Path(run_dir) / runs.PLOTS
    written = []
    curves = read_curves(run_dir)
    if curves.epochs:
        written.append(save_figure(plot_curves(curves, title=title), plots / "curves.png"))
    confusion = read_confusion(run_dir)
    if confusion is not None:
        written.append(save_figure(plot_confusion_matrix(confusion), plots / "confusion_matrix.png"))
        written.append(save_figure(plot_confusion_matrix(confusion, normalize=True), plots / "confusion_matrix_normalized.png"))
    return written

"""Figures drawn from run files: learning curves, confusion matrices, predictions (matplotlib, Agg)."""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from nnlab import runs  # noqa: E402
from nnlab.reports.summary import (  # noqa: E402
    Confusion,
    Curves,
    read_confusion,
    read_curves,
    read_meta,
    read_predictions,
    standard_plots,
)


def plot_curves(curves: Curves, *, title: str = "") -> plt.Figure:
    """Loss and each metric per epoch, training against validation, one panel each; the learning rate per
    epoch too when it changed (a schedule). One legend, above the panels, where it covers no data."""
    names = curves.metric_names()
    rates = curves.series.get("learning_rate") or []
    scheduled = len({round(r, 12) for r in rates if r is not None}) > 1
    panels = len(names) + scheduled
    fig, axes = plt.subplots(1, panels, figsize=(5 * panels, 4.1), squeeze=False)
    for ax, name in zip(axes[0], names):
        ax.plot(curves.epochs, curves.series[name], marker=".", label="train")
        if f"val_{name}" in curves.series:
            ax.plot(curves.epochs, curves.series[f"val_{name}"], marker=".", label="validation")
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_title(name)
        ax.grid(alpha=0.3)
    if scheduled:
        ax = axes[0][-1]
        ax.plot(curves.epochs, rates, marker=".", color="tab:green")
        positive = [r for r in rates if r]
        if positive and max(positive) / min(positive) >= 10:
            ax.set_yscale("log")
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_title("learning rate (the schedule)")
        ax.grid(alpha=0.3)
    handles, labels = axes[0][0].get_legend_handles_labels()
    top = 1 - (0.55 if title else 0.35) / 4.1  # inches kept free above the panels, for the title and the legend
    fig.tight_layout(rect=(0, 0, 1, top))
    if title:
        fig.suptitle(title, y=0.985, va="top")
    if handles:
        fig.legend(handles, labels, loc="lower center", ncol=len(labels), bbox_to_anchor=(0.5, top - 0.01),
                   frameon=False)
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


def plot_predictions(y_true: np.ndarray, y_pred: np.ndarray, task: str, *, title: str = "",
                     class_names: list[str] | None = None) -> plt.Figure | None:
    """Predictions against targets: a scatter (regression), time series (sequence regression) or the
    score histogram per true class (binary); None for tasks better shown otherwise."""
    y_true = np.asarray(y_true, dtype="float64")
    y_pred = np.asarray(y_pred, dtype="float64")
    if task == "binary":
        fig, ax = plt.subplots(figsize=(6, 3.8))
        scores, labels = y_pred.ravel(), y_true.ravel().astype(int)
        bins = np.linspace(0, 1, 21)
        names = list(class_names or ["0", "1"])[:2]
        for label, color in ((0, "tab:blue"), (1, "tab:orange")):
            ax.hist(scores[labels == label], bins=bins, alpha=0.6, color=color, label=f"true {names[label]}")
        ax.axvline(0.5, color="black", linewidth=1, linestyle="--")
        ax.set_xlabel(f"predicted probability of {names[1]}")
        ax.set_ylabel("examples")
        ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)  # beside the bars
        ax.set_title(title or "predicted probabilities by true class")
    elif task == "regression":
        fig, ax = plt.subplots(figsize=(5, 4.5))
        truth, guess = y_true.ravel(), y_pred.reshape(y_true.shape).ravel()
        ax.scatter(truth, guess, s=8, alpha=0.6)
        low, high = float(min(truth.min(), guess.min())), float(max(truth.max(), guess.max()))
        ax.plot([low, high], [low, high], color="black", linewidth=1, linestyle="--", label="perfect")
        ax.set_xlabel("true")
        ax.set_ylabel("predicted")
        ax.legend(fontsize=8, loc="lower center", bbox_to_anchor=(0.5, 1.01), borderaxespad=0, frameon=False)
        ax.set_title(title or "predicted against true", pad=22)
    elif task == "sequence_regression":
        guess = y_pred.reshape(y_true.shape)
        per_example = y_true.reshape(len(y_true), -1)
        fig, ax = plt.subplots(figsize=(8, 3.8))
        if per_example.shape[1] == 1:  # one value per example: the examples are the time axis
            n = min(len(y_true), 300)
            ax.plot(np.arange(n), per_example[:n, 0], label="true")
            ax.plot(np.arange(n), guess.reshape(len(guess), -1)[:n, 0], label="predicted", alpha=0.8)
            ax.set_xlabel("example (time order)")
        else:
            flat_guess = guess.reshape(len(guess), -1)
            for i, color in zip(range(min(3, len(y_true))), ("tab:blue", "tab:orange", "tab:green")):
                ax.plot(per_example[i], color=color, label=f"example {i} true")
                ax.plot(flat_guess[i], color=color, linestyle="--", label=f"example {i} predicted")
            ax.set_xlabel("time step")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)  # beside, not on, the data
        ax.set_title(title or "predicted against true (validation)")
    else:
        return None
    fig.tight_layout()
    return fig


def roc_points(y_true: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """False and true positive rates at every threshold, from (0, 0) to (1, 1) (ties taken together)."""
    labels = np.asarray(y_true).ravel().astype(int)
    scores = np.asarray(scores, dtype="float64").ravel()
    order = np.argsort(-scores, kind="stable")
    labels, scores = labels[order], scores[order]
    last = np.r_[np.nonzero(np.diff(scores))[0], len(scores) - 1]  # the last example of each distinct score
    tp = np.cumsum(labels)[last]
    fp = (last + 1) - tp
    positives, negatives = max(int(labels.sum()), 1), max(int(len(labels) - labels.sum()), 1)
    return np.r_[0.0, fp / negatives], np.r_[0.0, tp / positives]


def plot_roc(y_true: np.ndarray, y_pred: np.ndarray, *, title: str = "", auc: float | None = None) -> plt.Figure:
    """The ROC curve of a binary classifier's scores, the chance diagonal, and the area under it."""
    fpr, tpr = roc_points(y_true, y_pred)
    area = float(np.trapezoid(tpr, fpr)) if auc is None else auc
    fig, ax = plt.subplots(figsize=(5, 4.6))
    ax.plot(fpr, tpr, color="tab:blue", linewidth=2, label=f"ROC (AUC {area:.4f})")
    ax.plot([0, 1], [0, 1], color="grey", linestyle="--", linewidth=1, label="chance")
    ax.set_xlim(-0.01, 1.01)
    ax.set_ylim(-0.01, 1.01)
    ax.set_xlabel("false positive rate (1 - specificity)")
    ax.set_ylabel("true positive rate (sensitivity)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower center", bbox_to_anchor=(0.5, 1.01), ncol=2, borderaxespad=0, frameon=False)
    ax.set_title(title or "ROC curve", pad=22)
    fig.tight_layout()
    return fig


def plot_curves_overlaid(curves: dict[str, Curves], *, max_panels: int = 3, title: str = "") -> plt.Figure:
    """Several runs' learning curves on shared axes: one colour per run, validation solid, training dashed."""
    names = list(dict.fromkeys(n for c in curves.values() for n in c.metric_names()))[:max_panels] or ["loss"]
    fig, axes = plt.subplots(1, len(names), figsize=(5 * len(names), 3.8), squeeze=False)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for ax, name in zip(axes[0], names):
        for i, (label, run_curves) in enumerate(curves.items()):
            color = colors[i % len(colors)]
            if f"val_{name}" in run_curves.series:
                ax.plot(run_curves.epochs, run_curves.series[f"val_{name}"], color=color, label=f"{label} validation")
            if name in run_curves.series:
                ax.plot(run_curves.epochs, run_curves.series[name], color=color, linestyle="--", alpha=0.7,
                        label=f"{label} train")
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_title(name)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def figure_png(fig: plt.Figure, *, dpi: int = 90) -> bytes:
    """The figure as PNG bytes (for embedding in a page); closes it."""
    import io

    buffer = io.BytesIO()
    _laid_out(fig).savefig(buffer, dpi=dpi, format="png")
    plt.close(fig)
    return buffer.getvalue()


def plot_image_grid(images, *, title: str = "", cell: float = 1.8, numbered: bool = True,
                    colorbar: bool = False) -> plt.Figure:
    """Images (grey 2-D or RGB in [0, 1]) in a nearly square grid, optionally numbered in order.

    `colorbar`: every grey tile on one shared scale, shown beside the grid (activations, where a tile's
    brightness should mean the same value in every channel).
    """
    count = len(images)
    cols = math.ceil(math.sqrt(count))
    rows = math.ceil(count / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(cell * cols + (1.2 if colorbar else 0.4), cell * rows + 0.6),
                             squeeze=False)
    scale = {}
    if colorbar and count:
        low, high = float(np.min([np.min(i) for i in images])), float(np.max([np.max(i) for i in images]))
        scale = {"vmin": low, "vmax": high if high > low else low + 1e-6}
    shown = None
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i < count:
            shown = ax.imshow(images[i], cmap="gray", interpolation="nearest", **scale)  # cmap is ignored for RGB
            if numbered:
                ax.set_title(str(i), fontsize=8)
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    if colorbar and shown is not None:
        fig.subplots_adjust(right=0.85)
        fig.colorbar(shown, cax=fig.add_axes([0.88, 0.15, 0.025, 0.7]))
    return fig


def save_figure(fig: plt.Figure, path: str | Path, *, dpi: int = 100) -> Path:
    """Write the figure atomically as PNG and close it."""
    with runs.atomic_path(path) as tmp:
        _laid_out(fig).savefig(tmp, dpi=dpi, format="png")
    plt.close(fig)
    return Path(path)


def _laid_out(fig: plt.Figure) -> plt.Figure:
    """The figure without the layout engine `tight_layout` leaves behind: the layout is done, and
    with an engine set savefig draws the whole figure once more first (a fifth of a run's plot time)."""
    fig.set_layout_engine(None)
    return fig


def write_run_plots(run_dir: str | Path, *, title: str = "", only: list[str] | None = None,
                    task: str | None = None) -> list[Path]:
    """Draw the run's standard plots into `run_dir/plots/` from its files (those named in `only`, else all).

    `task` defaults to meta.json's; an evaluation folder (which has none) passes it.
    """
    run_dir = Path(run_dir)
    folder = run_dir / runs.PLOTS
    if task is None and (run_dir / runs.META).is_file():
        task = read_meta(run_dir).get("task")
    wanted = standard_plots(run_dir, task)
    names = [n for n in wanted if only is None or n in only]
    written = []
    if "curves.png" in names:
        written.append(save_figure(plot_curves(read_curves(run_dir), title=title), folder / "curves.png"))
    if "confusion_matrix.png" in names or "confusion_matrix_normalized.png" in names:
        confusion = read_confusion(run_dir)
        written.append(save_figure(plot_confusion_matrix(confusion), folder / "confusion_matrix.png"))
        written.append(save_figure(plot_confusion_matrix(confusion, normalize=True),
                                   folder / "confusion_matrix_normalized.png"))
    prediction_plots = [n for n in names if n.startswith("predictions_")]
    if prediction_plots:
        predictions = read_predictions(run_dir)
        for name in prediction_plots:
            split = name.removeprefix("predictions_").removesuffix(".png")
            label = {"val": "validation", "train": "training"}.get(split, split)
            names = read_confusion(run_dir).class_names if task == "binary" and (run_dir / runs.CONFUSION).is_file() \
                else None
            fig = plot_predictions(predictions[f"{split}_y_true"], predictions[f"{split}_y_pred"], task,
                                   title=f"{label}: predicted against true", class_names=names)
            if fig is not None:
                written.append(save_figure(fig, folder / name))
            if f"roc_{split}.png" in wanted and (only is None or f"roc_{split}.png" in only):
                written.append(save_figure(plot_roc(predictions[f"{split}_y_true"], predictions[f"{split}_y_pred"],
                                                    title=f"{label}: ROC curve"), folder / f"roc_{split}.png"))
    return written

"""Task metrics as pure functions of numpy arrays (y_true, y_pred); no Keras here."""

from __future__ import annotations

from typing import Any

import numpy as np

# The number `nnlab runs` shows for each task, taken from the validation split.
MAIN_METRIC = {
    "multiclass": "accuracy",
    "binary": "accuracy",
    "seq2seq": "char_accuracy",
    "regression": "nmse",
    "sequence_regression": "nmse",
}

LOWER_IS_BETTER = ("loss", "error", "mae", "mse", "nmse", "rmse")  # metric names ending so: smaller is better


def lower_is_better(name: str) -> bool:
    """Whether a metric (`val_loss`, `test_accuracy`, `nmse`, ...) improves as it shrinks: the one rule for
    sweeps' default goal, `nnlab runs --sort` and the best epoch."""
    return name.endswith(LOWER_IS_BETTER)


def accuracy(labels: np.ndarray, predicted: np.ndarray) -> float:
    return float(np.mean(np.asarray(labels) == np.asarray(predicted)))


def log_loss(labels: np.ndarray, probabilities: np.ndarray, eps: float = 1e-7) -> float:
    """Mean negative log probability of the true class."""
    p = np.clip(np.asarray(probabilities, dtype="float64"), eps, 1.0)
    p = p / p.sum(axis=-1, keepdims=True)
    return float(-np.mean(np.log(np.take_along_axis(p, np.asarray(labels)[..., None], axis=-1))))


def confusion_matrix(labels: np.ndarray, predicted: np.ndarray, num_classes: int) -> np.ndarray:
    """Rows: true class, columns: predicted class."""
    matrix = np.zeros((num_classes, num_classes), dtype="int64")
    np.add.at(matrix, (np.asarray(labels, dtype=int), np.asarray(predicted, dtype=int)), 1)
    return matrix


def per_class_scores(matrix: np.ndarray, class_names: list[str]) -> dict[str, dict[str, float]]:
    """Precision, recall, F1 and support per class from a confusion matrix (0 where undefined)."""
    matrix = np.asarray(matrix, dtype="float64")
    true_positive = np.diag(matrix)
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.nan_to_num(true_positive / matrix.sum(axis=0))
        recall = np.nan_to_num(true_positive / matrix.sum(axis=1))
        f1 = np.nan_to_num(2 * precision * recall / (precision + recall))
    return {
        name: {"precision": float(p), "recall": float(r), "f1": float(f), "support": int(s)}
        for name, p, r, f, s in zip(class_names, precision, recall, f1, matrix.sum(axis=1))
    }


def roc_auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """Area under the ROC curve (the probability a positive outranks a negative); NaN with one class."""
    labels = np.asarray(labels).ravel().astype(bool)
    scores = np.asarray(scores, dtype="float64").ravel()
    positives, negatives = labels.sum(), (~labels).sum()
    if positives == 0 or negatives == 0:
        return float("nan")
    order = np.argsort(scores, kind="mergesort")
    ranks = np.empty(len(scores))
    sorted_scores = scores[order]
    # average ranks over ties
    _, first, counts = np.unique(sorted_scores, return_index=True, return_counts=True)
    mean_rank = first + (counts + 1) / 2.0
    ranks[order] = np.repeat(mean_rank, counts)
    return float((ranks[labels].sum() - positives * (positives + 1) / 2) / (positives * negatives))


def multiclass_scores(labels: np.ndarray, probabilities: np.ndarray) -> dict[str, Any]:
    labels = np.asarray(labels).ravel().astype(int)
    predicted = np.asarray(probabilities).argmax(axis=-1)
    return {"accuracy": accuracy(labels, predicted), "log_loss": log_loss(labels, probabilities)}


def binary_scores(labels: np.ndarray, probabilities: np.ndarray, threshold: float = 0.5) -> dict[str, Any]:
    """Accuracy, sensitivity (true positive rate), specificity (true negative rate) and ROC AUC."""
    labels = np.asarray(labels).ravel().astype(int)
    scores = np.asarray(probabilities).ravel()
    predicted = (scores > threshold).astype(int)
    tn, fp, fn, tp = confusion_matrix(labels, predicted, 2).ravel()
    return {
        "accuracy": accuracy(labels, predicted),
        "sensitivity": float(tp / (tp + fn)) if tp + fn else float("nan"),
        "specificity": float(tn / (tn + fp)) if tn + fp else float("nan"),
        "roc_auc": roc_auc(labels, scores),
    }


def seq2seq_scores(labels: np.ndarray, probabilities: np.ndarray) -> dict[str, Any]:
    """Per-character accuracy and whole-sequence (every character right) accuracy."""
    labels = np.asarray(labels)
    predicted = np.asarray(probabilities).argmax(axis=-1)
    right = predicted == labels
    return {"char_accuracy": float(right.mean()), "sequence_accuracy": float(right.all(axis=-1).mean())}


def regression_scores(targets: np.ndarray, predictions: np.ndarray) -> dict[str, Any]:
    """MSE, MAE and the normalised error NMSE = MSE / variance of the targets."""
    targets = np.asarray(targets, dtype="float64")
    predictions = np.asarray(predictions, dtype="float64").reshape(targets.shape)
    mse = float(np.mean((targets - predictions) ** 2))
    variance = float(np.var(targets))
    return {
        "mse": mse,
        "mae": float(np.mean(np.abs(targets - predictions))),
        "nmse": mse / variance if variance > 0 else float("nan"),
    }


TASK_SCORES = {
    "multiclass": multiclass_scores,
    "binary": binary_scores,
    "seq2seq": seq2seq_scores,
    "regression": regression_scores,
    "sequence_regression": regression_scores,
}


def task_scores(task: str, y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, Any]:
    return TASK_SCORES[task](y_true, y_pred)

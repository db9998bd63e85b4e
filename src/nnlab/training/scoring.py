"""Evaluate a trained model on every split and write metrics.json, predictions and the task's extras."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

import keras
import numpy as np

from nnlab import metrics, runs
from nnlab.config import ExperimentConfig
from nnlab.datasets.base import Dataset
from nnlab.training.callbacks import NNLAB_LOGS
from nnlab.training.compile import eval_batch_size, loss_name, split_targets


def evaluate(model: keras.Model, config: ExperimentConfig, dataset: Dataset, run_dir: Path,
             history: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """Scores per split (Keras loss and metrics, plus the task's own); writes the files; returns the scores.

    The validation loss and metrics of the last epoch in `history` are reused when the model still
    has that epoch's weights: fit computed exactly these numbers already.
    """
    scores: dict[str, dict[str, Any]] = {}
    predictions: dict[str, np.ndarray] = {}
    for split in dataset.splits():
        known = _last_validation(config, history) if split == "val" else None
        scores[split], y, y_pred = score_split(model, config, dataset, split, known)
        if split != "train":
            predictions[f"{split}_y_true"], predictions[f"{split}_y_pred"] = y, y_pred
    runs.write_json(run_dir / runs.METRICS, scores)
    with runs.atomic_path(run_dir / runs.PREDICTIONS) as tmp:
        np.savez_compressed(tmp, **predictions)
    write_extras(config, dataset, run_dir, "val", predictions["val_y_true"], predictions["val_y_pred"])
    return scores


def score_split(model: keras.Model, config: ExperimentConfig, dataset: Dataset, split: str,
                keras_scores: dict[str, float] | None = None) -> tuple[dict[str, Any], np.ndarray, np.ndarray]:
    """One split's scores (Keras loss and metrics, then the task's), its targets and the model's predictions.

    `keras_scores` already known (fit's last validation) are used instead of another model.evaluate pass.
    """
    x, y = dataset.splits()[split]
    batch_size = eval_batch_size(config.train)
    if keras_scores is None:
        y_fit = split_targets(model, dataset, split, y, loss_name(config.train, dataset.task))
        keras_scores = model.evaluate(x, y_fit, batch_size=batch_size, verbose=0, return_dict=True)
    y_pred = predict(model, x, batch_size)
    if isinstance(y_pred, dict):  # an auxiliary per-frame head: the task's scores are on the main output
        y_pred = y_pred["output"]
    scores = {**{k: float(v) for k, v in keras_scores.items()}, **metrics.task_scores(dataset.task, y, y_pred)}
    return scores, y, y_pred


def _last_validation(config: ExperimentConfig, history: list[dict[str, Any]] | None) -> dict[str, float] | None:
    """Keras's val_ numbers of the last epoch, unless early stopping may have put other weights back."""
    stop = config.train.early_stopping
    if not history or (stop is not None and stop.restore_best_weights):
        return None
    row = history[-1]
    return {k[4:]: v for k, v in row.items() if k.startswith("val_") and k not in NNLAB_LOGS} or None


def predict(model: keras.Model, x: np.ndarray, batch_size: int):
    """model.predict with every batch the same shape (the last one padded), so a compiled backend (JAX)
    traces the step once for all splits instead of once per leftover batch size."""
    full = len(x) // batch_size * batch_size
    parts = [model.predict(x[:full], batch_size=batch_size, verbose=0)] if full else []
    if full < len(x):
        rest = x[full:]
        padded = np.concatenate([rest, np.repeat(rest[:1], batch_size - len(rest), axis=0)])
        out = model.predict(padded, batch_size=batch_size, verbose=0)
        parts.append(keras.tree.map_structure(lambda a: a[: len(rest)], out))
    return keras.tree.map_structure(lambda *a: np.concatenate(a), *parts) if len(parts) > 1 else parts[0]


def write_extras(config: ExperimentConfig, dataset: Dataset, folder: Path, split: str, y_true: np.ndarray,
                 y_pred: np.ndarray) -> None:
    """Confusion matrix and per-class scores (classification) or decoded examples (seq2seq) of one split."""
    if dataset.task in ("multiclass", "binary"):
        names = list(dataset.class_names or [str(i) for i in range(max(dataset.spec.output_dim, 2))])
        predicted = (y_pred.ravel() > 0.5).astype(int) if dataset.task == "binary" else y_pred.argmax(axis=-1)
        matrix = metrics.confusion_matrix(y_true.ravel().astype(int), predicted, len(names))
        text = io.StringIO()
        writer = csv.writer(text, lineterminator="\n")
        writer.writerow(["true \\ predicted", *names])
        writer.writerows([name, *row] for name, row in zip(names, matrix.tolist()))
        runs.write_text(folder / runs.CONFUSION, text.getvalue())
        runs.write_json(folder / runs.CLASS_REPORT, metrics.per_class_scores(matrix, names))
    elif dataset.task == "seq2seq" and dataset.decode is not None and config.output.examples:
        n = min(config.output.examples, len(y_true))
        questions = dataset.decode(dataset.splits()[split][0][:n])
        answers, guesses = dataset.decode(y_true[:n]), dataset.decode(y_pred[:n])
        runs.write_examples(folder, [{"input": q, "predicted": g, "true": a, "right": g == a}
                                     for q, a, g in zip(questions, answers, guesses)])

"""Fit a compiled model with resumable callbacks (Keras's fit, or truncated BPTT), and load a stopped run's checkpoint."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import keras

from nnlab import runs
from nnlab.config import ExperimentConfig
from nnlab.datasets.base import Dataset
from nnlab.errors import RunDamagedError, RunFailedError
from nnlab.models.base import has_frame_head
from nnlab.runs import read_checkpoint, read_history, stopped_early
from nnlab.training import backend, fused
from nnlab.training.callbacks import (
    EpochLogger,
    NormalizedError,
    ProgressBar,
    RunCheckpoint,
    StopCheck,
    noticed_signals,
    read_weights,
)
from nnlab.training.compile import DEFAULT_METRICS, class_weights, eval_batch_size, loss_name, split_targets
from nnlab.training.tbptt import fit_tbptt


def _callbacks(config: ExperimentConfig) -> list[keras.callbacks.Callback]:
    """The stock Keras callbacks whose state must survive a resume."""
    out = []
    stop = config.train.early_stopping
    if stop is not None:
        out.append(keras.callbacks.EarlyStopping(**stop.model_dump()))
    schedule = config.train.lr_schedule
    if schedule is not None and schedule.name == "reduce_on_plateau":
        out.append(keras.callbacks.ReduceLROnPlateau(**schedule.kwargs()))
    return out


def fit(model: keras.Model, config: ExperimentConfig, dataset: Dataset, run_dir: Path,
        resume_state: dict[str, Any] | None = None, stream=None,
        extra_callbacks: list[keras.callbacks.Callback] = ()) -> tuple[list[dict[str, Any]], float]:
    """Train, writing history.csv at every epoch end and a checkpoint at most every `train.checkpoint_every`
    seconds (and after the last epoch); return the history rows and the seconds spent checkpointing.
    `extra_callbacks` run after nnlab's own (an epoch's row and checkpoint are written when they see it)."""
    train = config.train
    loss = loss_name(train, dataset.task)
    initial_epoch = resume_state["epoch"] if resume_state else 0
    history = [row for row in read_history(run_dir) if row["epoch"] <= initial_epoch]
    stateful = _callbacks(config)
    checkpoint = RunCheckpoint(run_dir, stateful, history, resume_state, every=train.checkpoint_every)
    bar = ProgressBar(stream)
    callbacks = [
        *_normalized_error(config, dataset, loss, model),
        *stateful,
        checkpoint,
        # Before EpochLogger: it clears its line before the epoch's line is printed. Only on a terminal: a
        # per-batch hook stops Keras from dispatching steps asynchronously (measurably slower on JAX).
        *([bar] if bar.enabled else []),
        EpochLogger(history, stream),
        StopCheck(),
        *extra_callbacks,
    ]
    if train.tensorboard:
        callbacks.append(keras.callbacks.TensorBoard(log_dir=str(Path(run_dir) / runs.TENSORBOARD)))
    if stopped_early(resume_state):
        _restore_best_weights(model, config, run_dir, resume_state)  # killed after stopping, before the end
    elif initial_epoch < train.epochs and train.tbptt is not None:
        with noticed_signals():
            fit_tbptt(model, config, dataset, callbacks, initial_epoch)
    elif initial_epoch < train.epochs:
        with noticed_signals():
            _fit(model, config, dataset, loss, callbacks, initial_epoch)
    fused.after_training(model)
    if history and not all(math.isfinite(v) for v in history[-1].values()):
        raise RunFailedError(f"the loss became NaN or infinite in epoch {history[-1]['epoch']}")
    return history, checkpoint.seconds


def _fit(model: keras.Model, config: ExperimentConfig, dataset: Dataset, loss: str, callbacks: list,
         initial_epoch: int) -> None:
    """Keras's own fit over the run's arrays."""
    train = config.train
    model.fit(
        dataset.x_train,
        split_targets(model, dataset, "train", dataset.y_train, loss),
        batch_size=train.batch_size,
        epochs=train.epochs,
        initial_epoch=initial_epoch,
        shuffle=train.shuffle,
        validation_data=(dataset.x_val, split_targets(model, dataset, "val", dataset.y_val, loss)),
        validation_batch_size=eval_batch_size(train),
        callbacks=callbacks,
        class_weight=class_weights(train, dataset),
        verbose=0,
    )


def _normalized_error(config: ExperimentConfig, dataset: Dataset, loss: str, model: keras.Model) -> list[keras.callbacks.Callback]:
    """The lab's normalised error (MSE / target variance) per epoch for regression tasks trained on MSE."""
    metric_names = config.train.metrics or DEFAULT_METRICS[dataset.task]
    key = "loss" if loss in ("mse", "mean_squared_error") else "mse" if "mse" in metric_names else None
    if dataset.task not in ("regression", "sequence_regression") or key is None:
        return []
    if has_frame_head(model):  # Keras names each output's loss and metrics after the output
        key = f"output_{key}"
    return [NormalizedError(dataset.y_train, dataset.y_val, key)]


def _restore_best_weights(model: keras.Model, config: ExperimentConfig, run_dir: Path, state: dict[str, Any]) -> None:
    stop = config.train.early_stopping
    if stop is not None and stop.restore_best_weights and state.get("best_weights"):
        model.set_weights(read_weights(Path(run_dir) / runs.CHECKPOINT / state["best_weights"]))


def load_checkpoint(run_dir: Path) -> tuple[keras.Model | None, dict[str, Any] | None]:
    """The model (with optimizer state) and callback state of the last finished epoch, if any.

    The checkpoint must agree with history.csv (every epoch up to it recorded) and its model must load;
    a damaged newest model falls back to the previous epoch's. RunDamagedError (one line) otherwise.
    """
    from nnlab.models import layers  # noqa: F401  (registers the custom layers a checkpoint may hold)

    state = read_checkpoint(run_dir)
    if state is None:
        return None, None
    epochs = [row["epoch"] for row in read_history(run_dir)]
    problems = []
    for candidate in (state, state.get("previous")):
        if not candidate:
            continue
        done = candidate["epoch"]
        if [e for e in epochs if e <= done] != list(range(1, done + 1)):
            problems.append(f"{runs.HISTORY} lacks epochs up to {done}")
            continue
        path = Path(run_dir) / runs.CHECKPOINT / candidate["model"]
        try:
            model = keras.models.load_model(path)
        except Exception as exc:  # noqa: BLE001  (a truncated or foreign file: try the previous epoch)
            problems.append(f"{candidate['model']} does not load ({type(exc).__name__})")
            continue
        backend.set_jit(model)  # this backend's choice, not the flag stored with the checkpoint
        return model, candidate
    raise RunDamagedError(f"{Path(run_dir) / runs.CHECKPOINT}: cannot resume: {'; '.join(problems)}")


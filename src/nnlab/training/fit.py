"""Compile with task defaults, fit with resumable callbacks, and continue a stopped run."""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path
from typing import Any

import keras
import numpy as np

from nnlab import runs
from nnlab.config import ExperimentConfig, ScheduleConfig, TrainConfig
from nnlab.datasets.base import Dataset, one_hot
from nnlab.errors import ConfigError, RunDamagedError, RunFailedError, first_line
from nnlab.models.base import FRAME_HEAD, has_frame_head
from nnlab.runs import read_history
from nnlab.training import backend
from nnlab.training.callbacks import (
    EpochLogger,
    NormalizedError,
    ProgressBar,
    RunCheckpoint,
    StopCheck,
    noticed_signals,
    read_checkpoint,
    read_weights,
)

DEFAULT_LOSS = {
    "multiclass": "sparse_categorical_crossentropy",
    "binary": "binary_crossentropy",
    "regression": "mse",
    "sequence_regression": "mse",
    "seq2seq": "sparse_categorical_crossentropy",
}
DEFAULT_METRICS = {
    "multiclass": ["accuracy"],
    "binary": ["accuracy"],
    "regression": ["mae"],
    "sequence_regression": ["mae"],
    "seq2seq": ["accuracy"],
}
OPTIMIZERS = {
    "sgd": "SGD",
    "adam": "Adam",
    "adamw": "AdamW",
    "nadam": "Nadam",
    "rmsprop": "RMSprop",
    "adadelta": "Adadelta",
    "adagrad": "Adagrad",
}


def loss_name(config: TrainConfig, task: str) -> str:
    return config.loss or DEFAULT_LOSS[task]


def targets(y: np.ndarray, dataset: Dataset, loss: str) -> np.ndarray:
    """Labels in the form the loss expects: one-hot for non-sparse losses on class labels."""
    if dataset.task in ("multiclass", "seq2seq") and not loss.startswith("sparse_"):
        return one_hot(y, dataset.spec.output_dim)
    if dataset.task == "binary":
        return y.reshape(-1, 1).astype("float32")
    return y


def split_targets(model: keras.Model, dataset: Dataset, split: str, y: np.ndarray, loss: str):
    """`targets`, plus each frame's label for a model with an auxiliary per-frame head."""
    y = targets(y, dataset, loss)
    return {"output": y, FRAME_HEAD: dataset.frame_labels[split]} if has_frame_head(model) else y


def eval_batch_size(train: TrainConfig) -> int:
    """The batch size of fit's validation and of evaluation: larger than training's (no gradients are kept), and
    the same in both, so a compiled backend (JAX) builds the evaluation step once for both."""
    return max(train.batch_size, 256)


def steps_per_epoch(dataset: Dataset, batch_size: int) -> int:
    return math.ceil(len(dataset.x_train) / batch_size)


def _steps(train: TrainConfig, dataset: Dataset) -> int:
    """Optimizer steps per epoch, which learning-rate schedules count in (truncated BPTT: one per window)."""
    if train.tbptt is None:
        return steps_per_epoch(dataset, train.batch_size)
    windows = math.ceil(dataset.x_train.shape[1] / train.tbptt.window)
    return max(1, len(dataset.x_train) // train.batch_size) * windows


def make_optimizer(config: TrainConfig, steps: int) -> keras.optimizers.Optimizer:
    cls = getattr(keras.optimizers, OPTIMIZERS[config.optimizer.name])
    kwargs = config.optimizer.kwargs()
    schedule = config.lr_schedule
    if schedule is not None and schedule.name != "reduce_on_plateau":
        initial = kwargs.get("learning_rate") or float(keras.ops.convert_to_numpy(cls().learning_rate))
        kwargs["learning_rate"] = _schedule(schedule, initial, steps, config.epochs)
    return cls(**kwargs)


def _schedule(schedule: ScheduleConfig, initial: float, steps: int, epochs: int):
    s = keras.optimizers.schedules
    if schedule.name == "exponential_decay":
        return s.ExponentialDecay(initial, decay_steps=max(1, round((schedule.decay_epochs or 1) * steps)),
                                  decay_rate=schedule.decay_rate, staircase=bool(schedule.staircase))
    if schedule.name == "cosine_decay":
        warmup = (schedule.warmup_epochs or 0) * steps
        return s.CosineDecay(0.0 if warmup else initial, decay_steps=max(1, epochs * steps - warmup),
                             alpha=schedule.alpha or 0.0, warmup_target=initial if warmup else None,
                             warmup_steps=warmup)
    if schedule.name == "piecewise_constant":
        return s.PiecewiseConstantDecay([b * steps for b in schedule.boundaries], schedule.values)
    raise AssertionError(schedule.name)


def compile_model(model: keras.Model, config: ExperimentConfig, dataset: Dataset) -> bool:
    """Compile with the configured (or the task's default) optimizer, loss and metrics; return jit_compile."""
    train = config.train
    try:
        optimizer = make_optimizer(train, _steps(train, dataset))
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"train.optimizer: {first_line(exc)}") from None
    if train.tensorboard and importlib.util.find_spec("tensorboard") is None:
        raise ConfigError("train.tensorboard: true needs the tensorboard package (pip install tensorboard)")
    loss = loss_name(train, dataset.task)  # loss and metric names were checked by config.check_keras_names
    if train.tbptt is not None:
        from nnlab.training.tbptt import check_tbptt

        check_tbptt(config, dataset)
    class_weights(train, dataset)  # a bad class_weight stops here, before a run folder exists
    metrics = train.metrics or DEFAULT_METRICS[dataset.task]
    if has_frame_head(model):
        if dataset.frame_labels is None:
            raise ConfigError("model.frame_loss_weight: this dataset has no per-frame labels to learn from")
        weight = config.model.params["frame_loss_weight"]
        model.compile(optimizer=optimizer, loss={"output": loss, FRAME_HEAD: "sparse_categorical_crossentropy"},
                      loss_weights={"output": 1.0, FRAME_HEAD: weight},
                      metrics={"output": metrics, FRAME_HEAD: ["accuracy"]})
    else:
        model.compile(optimizer=optimizer, loss=loss, metrics=metrics)
    return backend.set_jit(model)


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
    if resume_state and _stopped_early(resume_state):
        _restore_best_weights(model, config, run_dir, resume_state)  # killed after stopping, before the end
    elif initial_epoch < train.epochs and train.tbptt is not None:
        from nnlab.training.tbptt import fit_tbptt

        with noticed_signals():
            fit_tbptt(model, config, dataset, callbacks, initial_epoch)
    elif initial_epoch < train.epochs:
        with noticed_signals():
            _fit(model, config, dataset, loss, callbacks, initial_epoch)
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


def class_weights(config: TrainConfig, dataset: Dataset) -> dict[int, float] | None:
    """`class_weight: balanced`: n / (classes * count) per class, as scikit-learn defines it."""
    if config.class_weight is None:
        return None
    if dataset.task not in ("multiclass", "binary"):
        raise ConfigError(f"train.class_weight: needs class labels; this dataset's task is {dataset.task}")
    labels = np.asarray(dataset.y_train).ravel().astype(int)
    counts = np.bincount(labels, minlength=max(dataset.spec.output_dim, 2))
    return {i: float(len(labels) / (len(counts) * c)) for i, c in enumerate(counts) if c > 0}


def _stopped_early(state: dict[str, Any]) -> bool:
    return any(cb.get("stopped_epoch", 0) > 0 for cb in state.get("callbacks", []))


def _restore_best_weights(model: keras.Model, config: ExperimentConfig, run_dir: Path, state: dict[str, Any]) -> None:
    stop = config.train.early_stopping
    if stop is not None and stop.restore_best_weights and state.get("best_weights"):
        model.set_weights(read_weights(Path(run_dir) / runs.CHECKPOINT / state["best_weights"]))


def load_checkpoint(run_dir: Path) -> tuple[keras.Model | None, dict[str, Any] | None]:
    """The model (with optimizer state) and callback state of the last finished epoch, if any.

    The checkpoint must agree with history.csv (every epoch up to it recorded) and its model must load;
    a damaged newest model falls back to the previous epoch's. RunDamagedError (one line) otherwise.
    """
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


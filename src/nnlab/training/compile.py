"""Compiling a model for its task: loss and metric defaults, the optimizer and its schedule, the targets the loss
expects, class weights, and the checks that must fail before a run folder exists (truncated BPTT's included)."""

from __future__ import annotations

import importlib.util
import inspect
import math

import keras
import numpy as np

from nnlab.config import OPTIMIZERS, ExperimentConfig, ScheduleConfig, TrainConfig
from nnlab.datasets.base import Dataset, one_hot
from nnlab.errors import ConfigError, first_line
from nnlab.models import MODELS
from nnlab.models.base import FRAME_HEAD, has_frame_head
from nnlab.models.rnn import SEQUENCE_TASKS
from nnlab.training import backend

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
    cls = getattr(keras.optimizers, OPTIMIZERS[config.optimizer.name][0])
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
    loss = loss_name(train, dataset.task)  # loss and metric names were checked by keras_names.check_keras_names
    if train.tbptt is not None:
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


def class_weights(config: TrainConfig, dataset: Dataset) -> dict[int, float] | None:
    """`class_weight: balanced`: n / (classes * count) per class, as scikit-learn defines it."""
    if config.class_weight is None:
        return None
    if dataset.task not in ("multiclass", "binary"):
        raise ConfigError(f"train.class_weight: needs class labels; this dataset's task is {dataset.task}")
    labels = np.asarray(dataset.y_train).ravel().astype(int)
    counts = np.bincount(labels, minlength=max(dataset.spec.output_dim, 2))
    return {i: float(len(labels) / (len(counts) * c)) for i, c in enumerate(counts) if c > 0}


def check_tbptt(config: ExperimentConfig, dataset: Dataset) -> None:
    """Raise ConfigError (before any run folder exists) when truncated BPTT cannot train this experiment."""
    train = config.train
    if dataset.task not in SEQUENCE_TASKS:
        raise ConfigError(f"train.tbptt: needs one target per time step (task sequence_regression); "
                          f"this dataset's task is {dataset.task}")
    builder = MODELS.get(config.model.name).fn
    if "stateful" not in inspect.signature(builder).parameters:
        raise ConfigError(f"train.tbptt: model {config.model.name!r} has no stateful form (use model.name: rnn)")
    if config.model.params.get("bidirectional"):
        raise ConfigError("train.tbptt: a bidirectional RNN cannot carry its states forward from window to window")
    if len(dataset.x_train) < train.batch_size:
        raise ConfigError(f"train.batch_size: {train.batch_size} is more than the {len(dataset.x_train)} training sequences")


__all__ = ["DEFAULT_LOSS", "DEFAULT_METRICS", "check_tbptt", "class_weights", "compile_model", "eval_batch_size",
           "loss_name", "make_optimizer", "split_targets", "steps_per_epoch", "targets"]

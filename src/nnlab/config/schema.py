"""The experiment file's schema: pydantic models for each section, strict (unknown keys are errors)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from nnlab.errors import shown

MAX_SEED = 2**32 - 1  # NumPy's and TensorFlow's seeds are 32-bit


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)


class ComponentConfig(BaseModel):
    """`name` picks a registered dataset or model; its parameters sit flat beside it."""

    model_config = ConfigDict(extra="allow")

    name: str = Field(strict=True)

    @property
    def params(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


# The optimizers a config may name: each one's Keras class and its own keyword arguments.
OPTIMIZERS = {
    "sgd": ("SGD", {"momentum", "nesterov"}),
    "adam": ("Adam", {"beta_1", "beta_2", "epsilon", "amsgrad"}),
    "adamw": ("AdamW", {"beta_1", "beta_2", "epsilon", "amsgrad"}),
    "nadam": ("Nadam", {"beta_1", "beta_2", "epsilon"}),
    "rmsprop": ("RMSprop", {"rho", "momentum", "epsilon", "centered"}),
    "adadelta": ("Adadelta", {"rho", "epsilon"}),
    "adagrad": ("Adagrad", {"epsilon", "initial_accumulator_value"}),
}
_COMMON_OPTIMIZER_ARGS = {"name", "learning_rate", "weight_decay", "clipnorm", "clipvalue", "global_clipnorm"}


class OptimizerConfig(_Strict):
    """A Keras optimizer by name with its own keyword arguments; a bare name means Keras defaults."""

    name: Literal[tuple(OPTIMIZERS)] = "adam"
    learning_rate: float | None = Field(None, gt=0, description="initial learning rate")
    momentum: float | None = Field(None, ge=0, lt=1)
    nesterov: bool | None = None
    beta_1: float | None = Field(None, ge=0, lt=1)
    beta_2: float | None = Field(None, ge=0, lt=1)
    epsilon: float | None = Field(None, gt=0)
    amsgrad: bool | None = None
    rho: float | None = Field(None, ge=0, lt=1)
    centered: bool | None = None
    initial_accumulator_value: float | None = Field(None, ge=0)
    weight_decay: float | None = Field(None, ge=0)
    clipnorm: float | None = Field(None, gt=0)
    clipvalue: float | None = Field(None, gt=0)
    global_clipnorm: float | None = Field(None, gt=0)

    @model_validator(mode="before")
    @classmethod
    def _from_name(cls, value: Any) -> Any:
        return {"name": value} if isinstance(value, str) else value

    @model_validator(mode="after")
    def _args_fit_optimizer(self) -> OptimizerConfig:
        allowed = OPTIMIZERS[self.name][1] | _COMMON_OPTIMIZER_ARGS
        wrong = sorted(k for k in self.model_fields_set - allowed if getattr(self, k) is not None)
        if wrong:
            raise ValueError(
                f"{self.name} takes no {', '.join(wrong)} (it takes: {', '.join(sorted(allowed - {'name'}))})"
            )
        return self

    def kwargs(self) -> dict[str, Any]:
        return self.model_dump(exclude={"name"}, exclude_none=True)


_SCHEDULE_ARGS = {
    "exponential_decay": {"decay_epochs", "decay_rate", "staircase"},
    "cosine_decay": {"alpha", "warmup_epochs"},
    "piecewise_constant": {"boundaries", "values"},
    "reduce_on_plateau": {"monitor", "factor", "patience", "min_delta", "cooldown", "min_lr"},
}


class ScheduleConfig(_Strict):
    """A learning-rate schedule; epochs are converted to optimizer steps when training starts."""

    name: Literal["exponential_decay", "cosine_decay", "piecewise_constant", "reduce_on_plateau"]
    decay_epochs: float | None = Field(None, gt=0, description="exponential_decay: epochs per decay_rate step")
    decay_rate: float | None = Field(None, gt=0, le=1)
    staircase: bool | None = None
    alpha: float | None = Field(None, ge=0, le=1, description="cosine_decay: final fraction of the rate")
    warmup_epochs: int | None = Field(None, ge=0)
    boundaries: list[int] | None = Field(None, description="piecewise_constant: epochs where the rate changes")
    values: list[float] | None = None
    monitor: str | None = None
    factor: float | None = Field(None, gt=0, lt=1)
    patience: int | None = Field(None, ge=0)
    min_delta: float | None = Field(None, ge=0)
    cooldown: int | None = Field(None, ge=0)
    min_lr: float | None = Field(None, ge=0)

    @model_validator(mode="after")
    def _args_fit_schedule(self) -> ScheduleConfig:
        allowed = _SCHEDULE_ARGS[self.name] | {"name"}
        wrong = sorted(k for k in self.model_fields_set - allowed if getattr(self, k) is not None)
        if wrong:
            raise ValueError(f"{self.name} takes no {', '.join(wrong)} (it takes: {', '.join(sorted(allowed - {'name'}))})")
        if self.name == "exponential_decay" and self.decay_rate is None:
            raise ValueError("exponential_decay needs decay_rate")
        if self.name == "piecewise_constant":
            if not self.boundaries or not self.values or len(self.values) != len(self.boundaries) + 1:
                raise ValueError("piecewise_constant needs boundaries and one more value than boundaries")
        return self

    def kwargs(self) -> dict[str, Any]:
        return self.model_dump(exclude={"name"}, exclude_none=True)


class EarlyStoppingConfig(_Strict):
    """Keras EarlyStopping; its state survives --resume."""

    monitor: str = "val_loss"
    patience: int = Field(10, ge=0)
    min_delta: float = Field(0.0, ge=0)
    mode: Literal["auto", "min", "max"] = "auto"
    restore_best_weights: bool = False
    start_from_epoch: int = Field(0, ge=0)


class TBPTTConfig(_Strict):
    """Truncated backpropagation through time: a stateful twin of the model learns from consecutive windows."""

    window: int = Field(50, ge=1, description="time steps per window; states carry over within a batch of sequences")


class TrainConfig(_Strict):
    epochs: int = Field(10, ge=1, description="passes over the training data")
    batch_size: int = Field(32, ge=1)
    shuffle: bool = True
    optimizer: OptimizerConfig = OptimizerConfig()
    lr_schedule: ScheduleConfig | None = None
    loss: str | None = Field(None, description="Keras loss name; default from the task")
    metrics: list[str] | None = Field(None, description="Keras metric names; default from the task")
    early_stopping: EarlyStoppingConfig | None = None
    deterministic: bool = Field(False, description="deterministic ops (slower); seeds are always set")
    tensorboard: bool = Field(False, description="write TensorBoard logs into the run folder's tensorboard/")
    tbptt: TBPTTConfig | None = Field(None, description="truncated BPTT over windows (sequence targets, rnn model)")
    class_weight: Literal["balanced"] | None = Field(None, description="balanced: weight classes by n / (k * count)")
    steps_per_execution: Literal["auto"] | int = Field(
        "auto", description="training steps per call (Keras's steps_per_execution; the same numbers, faster for "
                            "small models); auto: chosen from the model's measured step time")
    checkpoint_every: float = Field(10.0, ge=0, description="seconds between resume checkpoints (0: every epoch); "
                                                             "the last epoch is always checkpointed")

    @field_validator("steps_per_execution", mode="before")
    @classmethod
    def _steps(cls, value: Any) -> Any:
        if value == "auto" or (isinstance(value, int) and not isinstance(value, bool) and value >= 1):
            return value
        raise ValueError(f"expected auto or a whole number >= 1 (got {shown(value)})")

    @field_validator("steps_per_execution")
    @classmethod
    def _steps_fit_tbptt(cls, value: Any, info: ValidationInfo) -> Any:
        if value not in ("auto", 1) and info.data.get("tbptt") is not None:
            raise ValueError("truncated BPTT trains each batch window by window in its own loop (leave it auto)")
        return value


class OutputConfig(_Strict):
    runs_dir: str | None = Field(None, description="--runs-dir beats this, this beats $NNLAB_RUNS_DIR; default ./runs")
    save_model: bool = True
    plots: bool = True
    examples: int = Field(20, ge=0, description="decoded seq2seq predictions in examples.txt")


class ExperimentConfig(_Strict):
    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", max_length=64)
    description: str = ""
    seed: int = Field(0, ge=0, le=MAX_SEED)
    backend: Literal["tensorflow", "jax"] | None = Field(None, description="Keras backend; default $KERAS_BACKEND "
                                                                            "or tensorflow (nnlab train --backend wins)")
    max_params: int | None = Field(None, ge=1, description="a parameter budget: refuse to train a model with more "
                                                        "parameters (in a sweep, such a point is pruned)")
    data: ComponentConfig
    model: ComponentConfig
    train: TrainConfig = TrainConfig()
    output: OutputConfig = OutputConfig()

    @field_validator("data", "model", mode="before")
    @classmethod
    def _needs_name(cls, value: Any) -> Any:
        if isinstance(value, dict) and "name" not in value:
            raise ValueError("needs a name")
        return value

    def to_dict(self) -> dict[str, Any]:
        """Plain data for config.yaml; unset optimizer and schedule arguments are left out."""
        data = self.model_dump(mode="json")
        for key in ("optimizer", "lr_schedule"):
            if isinstance(data["train"].get(key), dict):
                data["train"][key] = {k: v for k, v in data["train"][key].items() if v is not None}
        return data


__all__ = ["MAX_SEED", "OPTIMIZERS", "ComponentConfig", "EarlyStoppingConfig", "ExperimentConfig", "OptimizerConfig",
           "OutputConfig", "ScheduleConfig", "TBPTTConfig", "TrainConfig"]

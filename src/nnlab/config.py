"""Experiment config: pydantic models for the YAML file users write, loading and key=value overrides."""

from __future__ import annotations

import contextlib
import difflib
import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from nnlab.errors import ConfigError, one_line, shown
from nnlab.registry import Params, Registry


MAX_SEED = 2**32 - 1  # NumPy's and TensorFlow's seeds are 32-bit


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)


# ---------------------------------------------------------------------------------------------
# YAML: the one place nnlab reads YAML text. PyYAML follows YAML 1.1, where "1e-3" is a string;
# users mean a float. Duplicate keys are an error, and aliases may not expand past a small bound.
MAX_YAML_BYTES = 1 << 20  # a config is a short text file; nothing bigger is read
MAX_YAML_VALUES = 100_000  # scalars, lists and mappings after aliases are expanded


class _Loader(yaml.SafeLoader):
    def construct_mapping(self, node, deep=False):
        seen: dict[Any, Any] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            with contextlib.suppress(TypeError):  # an unhashable key fails below with PyYAML's own message
                if key in seen:
                    raise yaml.constructor.ConstructorError(
                        None, None, f"duplicate key {shown(key)} (first on line {seen[key].line + 1})",
                        key_node.start_mark)
                seen[key] = key_node.start_mark
        return super().construct_mapping(node, deep=deep)


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(
        r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
        |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
        |\.[0-9_]+(?:[eE][-+]?[0-9]+)?
        |[-+]?\.(?:inf|Inf|INF)
        |\.(?:nan|NaN|NAN))$""",
        re.X,
    ),
    list("-+0123456789."),
)


def parse_yaml(text: str) -> Any:
    """YAML text to plain data; raises yaml.YAMLError (aliases that expand too far included)."""
    data = yaml.load(text, Loader=_Loader)
    _check_expansion(data)
    return data


def _check_expansion(data: Any) -> None:
    """Aliases share objects, so a few hundred bytes can stand for billions of values (a 'YAML bomb')."""
    budget, stack = MAX_YAML_VALUES, [data]
    while stack:
        budget -= 1
        if budget < 0:
            raise yaml.YAMLError(f"more than {MAX_YAML_VALUES:,} values once aliases (*name) are expanded")
        item = stack.pop()
        if isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, (list, tuple)):
            stack.extend(item)


def read_yaml(path: str | Path) -> Any:
    """A YAML file (at most MAX_YAML_BYTES of UTF-8 text) to plain data; one-line ConfigError naming it otherwise."""
    path = Path(path)
    try:
        with path.open("rb") as f:
            data = f.read(MAX_YAML_BYTES + 1)
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise ConfigError(f"{path}: is a folder, not a config file") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror or type(exc).__name__}") from None
    if len(data) > MAX_YAML_BYTES:
        raise ConfigError(f"{path}: larger than {MAX_YAML_BYTES // 1024} KiB; a config is a short YAML text file")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text (byte 0x{data[exc.start]:02x} at offset {exc.start})") from None
    if "\x00" in text:
        raise ConfigError(f"{path}: not a text file (it holds NUL bytes)")
    try:
        return parse_yaml(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}: " if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(f"{path}: {where}invalid YAML: {one_line(problem)}") from None


def dump_yaml(data: Any) -> str:
    return yaml.safe_dump(data, sort_keys=False, default_flow_style=None, width=100)


# ---------------------------------------------------------------------------------------------
# Sections of the experiment file.
class ComponentConfig(BaseModel):
    """`name` picks a registered dataset or model; its parameters sit flat beside it."""

    model_config = ConfigDict(extra="allow")

    name: str = Field(strict=True)

    @property
    def params(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


_OPTIMIZER_ARGS = {
    "sgd": {"momentum", "nesterov"},
    "adam": {"beta_1", "beta_2", "epsilon", "amsgrad"},
    "adamw": {"beta_1", "beta_2", "epsilon", "amsgrad"},
    "nadam": {"beta_1", "beta_2", "epsilon"},
    "rmsprop": {"rho", "momentum", "epsilon", "centered"},
    "adadelta": {"rho", "epsilon"},
    "adagrad": {"epsilon", "initial_accumulator_value"},
}
_COMMON_OPTIMIZER_ARGS = {"name", "learning_rate", "weight_decay", "clipnorm", "clipvalue", "global_clipnorm"}


class OptimizerConfig(_Strict):
    """A Keras optimizer by name with its own keyword arguments; a bare name means Keras defaults."""

    name: Literal["sgd", "adam", "adamw", "nadam", "rmsprop", "adadelta", "adagrad"] = "adam"
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
        allowed = _OPTIMIZER_ARGS[self.name] | _COMMON_OPTIMIZER_ARGS
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
    checkpoint_every: float = Field(10.0, ge=0, description="seconds between resume checkpoints (0: every epoch); "
                                                             "the last epoch is always checkpointed")


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


# ---------------------------------------------------------------------------------------------
# Loading.
def load_config(path: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> ExperimentConfig:
    """Read an experiment file, apply `key.sub=value` overrides and validate everything.

    Raises ConfigError with one line naming the file and the key path.
    """
    path = Path(path)
    raw = read_yaml(path)
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of keys (name, data, model, train)")
    raw.setdefault("name", path.stem)
    overridden = apply_overrides(raw, overrides, source=str(path))
    return validate_config(raw, source=str(path), overridden=overridden)


def apply_overrides(raw: dict[str, Any], overrides: list[str] | tuple[str, ...], source: str) -> dict[str, str]:
    """Set each `a.b.c=value` (value parsed as YAML) in `raw`; return key path -> override text."""
    applied = {}
    for item in overrides:
        key, sep, text = item.partition("=")
        if not sep or not key or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*", key):
            raise ConfigError(f"{source}: override {shown(item)}: expected key.sub=value, e.g. train.epochs=5")
        try:
            value = parse_yaml(text) if text else None
        except yaml.YAMLError as exc:
            problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
            raise ConfigError(f"{source}: override {shown(item)}: the value is not valid YAML ({one_line(problem)})") from None
        node = raw
        parts = key.split(".")
        for depth, part in enumerate(parts[:-1]):
            child = node.setdefault(part, {})
            if isinstance(child, str) and part == "optimizer":  # `optimizer: adam` then optimizer.x=...
                child = node[part] = {"name": child}
            if not isinstance(child, dict):
                raise ConfigError(f"{source}: override {shown(item)}: {'.'.join(parts[: depth + 1])} is not a mapping")
            node = child
        node[parts[-1]] = value
        applied[key] = item
    return applied


def validate_config(raw: dict[str, Any], source: str, overridden: dict[str, str] | None = None) -> ExperimentConfig:
    """Validate a config dict, including the parameters of the named dataset and model."""
    from nnlab.datasets import DATASETS
    from nnlab.models import MODELS

    overridden = overridden or {}
    try:
        config = ExperimentConfig.model_validate(raw)
    except ValidationError as exc:
        raise _config_error(exc, source, (), ExperimentConfig, overridden) from None
    for section, registry in (("data", DATASETS), ("model", MODELS)):
        component: ComponentConfig = getattr(config, section)
        entry = _get_entry(registry, component.name, source, section, overridden)
        try:
            params = entry.params.model_validate(component.params)
        except ValidationError as exc:
            raise _config_error(exc, source, (section,), entry.params, overridden) from None
        setattr(config, section, ComponentConfig(name=component.name, **params.model_dump(mode="json")))
    check_keras_names(config, source, overridden)
    return config


# ---------------------------------------------------------------------------------------------
# Keras identifiers (activations, initializers, losses, metrics): checked against the names Keras's own
# lookups accept (nnlab.keras_names, compared with Keras by a test), without importing Keras, so a typo is
# reported in a fraction of a second.
_IDENTIFIER_SUFFIXES = ("activation", "initializer")  # model keys ending so name Keras objects
_COMPILE_METRICS = frozenset({"accuracy", "acc"})  # names compile() accepts beside keras.metrics.get's


def check_keras_names(config: ExperimentConfig, source: str, overridden: dict[str, str] | None = None) -> None:
    """ConfigError naming the key, with a did-you-mean, for a name Keras does not know."""
    from nnlab.keras_names import KINDS

    overridden = overridden or {}

    def check(key: str, kind: str, name: Any) -> None:
        known = KINDS[kind] | (_COMPILE_METRICS if kind == "metric" else frozenset())
        if not isinstance(name, str) or name in known:
            return
        close = difflib.get_close_matches(name, sorted(known), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ConfigError(f"{source}: {key}: unknown Keras {kind} {shown(name)}{hint}{_via(key, overridden)}")

    def walk(key: str, value: Any) -> None:
        if isinstance(value, dict):
            for k, v in value.items():
                walk(f"{key}.{k}" if isinstance(k, str) else f"{key}[{k!r}]", v)
                suffix = k.rsplit("_", 1)[-1] if isinstance(k, str) else ""
                if suffix in _IDENTIFIER_SUFFIXES:
                    for i, name in enumerate(v if isinstance(v, list) else [v]):
                        check(f"{key}.{k}" + (f"[{i}]" if isinstance(v, list) else ""), suffix, name)
        elif isinstance(value, list):
            for i, item in enumerate(value):
                walk(f"{key}[{i}]", item)

    walk("model", config.model.params)
    check("train.loss", "loss", config.train.loss)
    for i, name in enumerate(config.train.metrics or []):
        check(f"train.metrics[{i}]", "metric", name)


def _get_entry(registry: Registry, name: str, source: str, section: str, overridden: dict[str, str]):
    try:
        return registry.get(name)
    except ConfigError as exc:
        raise ConfigError(f"{source}: {section}.name: {exc}{_via(f'{section}.name', overridden)}") from None


def _via(key: str, overridden: dict[str, str]) -> str:
    hits = [text for path, text in overridden.items() if key == path or key.startswith((path + ".", path + "["))]
    return f" (from override {shown(hits[-1])})" if hits else ""


def _config_error(
    exc: ValidationError, source: str, prefix: tuple, model: type[BaseModel], overridden: dict[str, str]
) -> ConfigError:
    error = exc.errors()[0]
    loc = prefix + tuple(error["loc"])
    key = one_line("".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in loc).lstrip("."), 100) or "(top level)"
    msg = one_line(error["msg"].removeprefix("Value error, "))
    if error["type"] == "extra_forbidden":
        allowed = _allowed_keys(model, tuple(error["loc"])[:-1])
        close = difflib.get_close_matches(str(loc[-1]), allowed, n=1)
        guess = f"did you mean {close[0]!r}? " if close else ""
        msg = "unknown key" + (f" ({guess}allowed: {', '.join(allowed)})" if allowed else "")
    elif error["type"] == "missing":
        msg = "missing (required)"
    elif "input" in error and error["type"] not in ("value_error", "assertion_error"):
        msg += f" (got {shown(error['input'])})"
    more = len(exc.errors()) - 1
    tail = f" [and {more} more problem{'s' * (more > 1)}]" if more else ""
    return ConfigError(f"{source}: {key}: {msg}{_via(key, overridden)}{tail}")


def _allowed_keys(model: type[BaseModel], loc: tuple) -> list[str]:
    """The field names of the (nested) model at `loc`, for 'unknown key' messages."""
    for part in loc:
        field = model.model_fields.get(part) if isinstance(part, str) else None
        annotation = getattr(field, "annotation", None)
        candidates = [annotation, *getattr(annotation, "__args__", ())]
        nested = [c for c in candidates if isinstance(c, type) and issubclass(c, BaseModel)]
        if not nested:
            return []
        model = nested[0]
    return list(model.model_fields)


__all__ = [
    "ComponentConfig",
    "EarlyStoppingConfig",
    "ExperimentConfig",
    "OptimizerConfig",
    "OutputConfig",
    "Params",
    "ScheduleConfig",
    "TBPTTConfig",
    "TrainConfig",
    "apply_overrides",
    "check_keras_names",
    "dump_yaml",
    "load_config",
    "one_line",
    "parse_yaml",
    "read_yaml",
    "shown",
    "validate_config",
]

"""The sweep file: its pydantic model, loading (file or comma lists on the command line), expansion into
trials and validation of every trial's config before anything slow starts. No Optuna, and no Keras except
where `check_metric` loads the base experiment's data to learn its task (a real dataset missing from disk may
be downloaded through Keras)."""

from __future__ import annotations

import copy
import itertools
import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from nnlab.config import ExperimentConfig, apply_overrides, config_error, parse_yaml, read_yaml, validate_config
from nnlab.errors import ConfigError
from nnlab.metrics import lower_is_better

METHODS = ("grid", "random", "bayes")
DISTRIBUTIONS = ("constant", "categorical", "uniform", "int_uniform", "log_uniform_values", "q_uniform")
_PATH = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*")
_UNSET = object()
MAX_TRIALS = 10_000  # trials in one sweep (points x repeats): beyond this a sweep file is surely a mistake


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ParameterSpec(_Strict):
    """One swept key: `value` (constant), `values` (categorical) or `min`/`max` with a `distribution`."""

    value: Any = None
    values: list[Any] | None = Field(None, min_length=1)
    min: int | float | None = None
    max: int | float | None = None
    distribution: str | None = None
    q: float | None = Field(None, gt=0, description="q_uniform: values are multiples of q")

    @model_validator(mode="after")
    def _one_kind(self) -> ParameterSpec:
        given = self.model_fields_set
        kinds = [k for k in ("value", "values") if k in given] + (["min/max"] if given & {"min", "max"} else [])
        if len(kinds) != 1:
            raise ValueError("give exactly one of value, values, or min and max" +
                             (f" (got {' and '.join(kinds)})" if kinds else ""))
        if self.distribution == "log_uniform":
            raise ValueError("log_uniform takes natural-log exponents as min/max (as in W&B); for min/max as the "
                             "values themselves write distribution: log_uniform_values")
        if self.distribution is not None and self.distribution not in DISTRIBUTIONS:
            raise ValueError(f"unknown distribution {self.distribution!r} (allowed: {', '.join(DISTRIBUTIONS)})")
        if kinds == ["min/max"]:
            if self.min is None or self.max is None:
                raise ValueError("a range needs both min and max")
            for key in ("min", "max", "q"):
                value = getattr(self, key)
                if value is not None and not math.isfinite(value):
                    raise ValueError(f"{key} must be a finite number (got {value})")
            if self.min > self.max:
                raise ValueError(f"min {self.min:g} is greater than max {self.max:g}")
            if self.distribution in (None, "constant", "categorical"):
                if self.distribution is not None:
                    raise ValueError(f"distribution {self.distribution} takes value/values, not min/max")
                whole = isinstance(self.min, int) and isinstance(self.max, int)
                self.distribution = "int_uniform" if whole else "uniform"
            if self.distribution == "log_uniform_values" and self.min <= 0:
                raise ValueError(f"log_uniform_values needs min > 0 (got {self.min:g})")
            if self.distribution == "q_uniform" and self.q is None:
                raise ValueError("q_uniform needs q")
        elif self.distribution not in (None, "constant", "categorical"):
            raise ValueError(f"distribution {self.distribution} needs min and max")
        return self

    @property
    def kind(self) -> str:
        if "value" in self.model_fields_set:
            return "constant"
        return "categorical" if self.values is not None else str(self.distribution)

    def grid_size(self) -> int | None:
        """How many values a grid visits, computed without listing them; None for a continuous range."""
        if self.kind in ("constant", "categorical"):
            return len(self.grid_values())
        if self.kind == "int_uniform":
            return int(self.max) - int(self.min) + 1
        if self.kind == "q_uniform":
            return int(math.floor((self.max - self.min) / self.q + 1e-9)) + 1
        return None

    def grid_values(self) -> list[Any] | None:
        """Every value a grid visits, or None for a continuous range (a grid cannot enumerate it)."""
        if self.kind == "constant":
            return [self.value]
        if self.kind == "categorical":
            return list(self.values)
        if self.kind == "int_uniform":
            return list(range(int(self.min), int(self.max) + 1))
        if self.kind == "q_uniform":
            count = int(math.floor((self.max - self.min) / self.q + 1e-9)) + 1
            return [_tidy(self.min + i * self.q) for i in range(count)]
        return None

    def sample(self, rng) -> Any:
        """One random value (random search)."""
        if self.kind == "constant":
            return self.value
        if self.kind == "categorical":
            return self.values[int(rng.integers(len(self.values)))]
        if self.kind == "int_uniform":
            return int(rng.integers(int(self.min), int(self.max) + 1))
        if self.kind == "log_uniform_values":
            return _tidy(math.exp(rng.uniform(math.log(self.min), math.log(self.max))))
        if self.kind == "q_uniform":
            return _tidy(min(self.max, self.min + round((rng.uniform(self.min, self.max) - self.min) / self.q) * self.q))
        return _tidy(float(rng.uniform(self.min, self.max)))

    def corners(self) -> list[Any]:
        """The values that bound this parameter: every category, or min and max (what validation tries)."""
        if self.kind in ("constant", "categorical"):
            return self.grid_values()
        low, high = (int(self.min), int(self.max)) if self.kind == "int_uniform" else (self.min, self.max)
        return [low, high]

    @property
    def log_scale(self) -> bool:
        """True for log-spaced values: a log_uniform range, or positive numbers spanning 2+ decades."""
        if self.kind == "log_uniform_values":
            return True
        numbers = [v for v in (self.corners()) if isinstance(v, (int, float)) and not isinstance(v, bool)]
        return len(numbers) >= 3 and min(numbers) > 0 and max(numbers) / min(numbers) >= 100


def _tidy(x: float) -> float:
    return float(f"{x:.6g}")


class MetricSpec(_Strict):
    name: str = Field("val_loss", pattern=r"^(train_|val_|test_)?[A-Za-z0-9_]+$",
                      description="a final metric: val_<name> or test_<name> from metrics.json, else training")
    goal: Literal["minimize", "maximize"] | None = None

    @model_validator(mode="after")
    def _default_goal(self) -> MetricSpec:
        if self.goal is None:
            self.goal = "minimize" if lower_is_better(self.name) else "maximize"
        return self

    @property
    def split_and_key(self) -> tuple[str, str]:
        """metrics.json split and key: val_accuracy -> (val, accuracy); loss -> (train, loss)."""
        for split in ("train", "val", "test"):
            if self.name.startswith(split + "_"):
                return split, self.name[len(split) + 1:]
        return "train", self.name


class EarlyTerminate(_Strict):
    """Pruning from learning curves: median (Optuna's MedianPruner) or hyperband (HyperbandPruner)."""

    type: Literal["median", "hyperband"]
    min_epochs: int = Field(1, ge=1, description="median: epochs before any trial may be stopped")
    min_iter: int = Field(1, ge=1, description="hyperband: the smallest budget in epochs")
    max_iter: int | None = Field(None, ge=1, description="hyperband: the largest budget in epochs (default: the "
                                 "epochs of the first trial that completes)")
    eta: int = Field(3, ge=2, description="hyperband: reduction factor")
    startup_trials: int = Field(3, ge=0, description="median: trials that always run to the end first")


class SweepSpec(_Strict):
    """A sweep file (W&B's grammar, keyed by nnlab's dotted config paths)."""

    base: str | None = Field(None, description="experiment file, relative to the sweep file")
    name: str | None = Field(None, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", max_length=40)
    description: str = ""
    method: Literal["grid", "random", "bayes"] = "grid"
    metric: MetricSpec = MetricSpec()
    repeats: int = Field(1, ge=1, le=1000, description="every point runs with seeds 0..repeats-1")
    run_cap: int | None = Field(None, ge=1, le=100000, description="random/bayes: how many points")
    seed: int = Field(0, ge=0, description="seed of the random and bayes samplers")
    parameters: dict[str, ParameterSpec] = {}
    early_terminate: EarlyTerminate | None = None

    @model_validator(mode="after")
    def _consistent(self) -> SweepSpec:
        for path in self.parameters:
            if not _PATH.fullmatch(path):
                raise ValueError(f"parameter {path!r}: expected a dotted config path such as model.hidden")
        if self.method == "grid":
            if self.run_cap is not None:
                raise ValueError("run_cap is for random and bayes; a grid runs every point (drop run_cap)")
            points = 1
            for path, spec in self.parameters.items():
                size = spec.grid_size()
                if size is None:
                    raise ValueError(f"parameter {path}: a grid needs values (or an int_uniform/q_uniform range), "
                                     f"not a {spec.kind} range; use method: random or bayes")
                points *= size
            if points * self.repeats > MAX_TRIALS:
                raise ValueError(f"a grid of {points:,} points x {self.repeats} repeat(s) is more than {MAX_TRIALS:,} "
                                 "trials; narrow the ranges (a larger q), or use method: random with a run_cap")
        elif self.run_cap is None:
            raise ValueError(f"method {self.method} needs run_cap (how many points to try)")
        elif self.run_cap * self.repeats > MAX_TRIALS:
            raise ValueError(f"run_cap {self.run_cap:,} x repeats {self.repeats} is more than {MAX_TRIALS:,} trials")
        if "seed" in self.parameters and self.repeats > 1:
            raise ValueError("seed is swept and repeats > 1: choose one")
        return self


@dataclass(frozen=True)
class Trial:
    """One planned run: a point of the sweep with one seed."""

    index: int
    point: int
    seed: int
    params: dict[str, Any]

    @property
    def key(self) -> str:
        return f"{self.point}-{self.seed}"


@dataclass
class Sweep:
    """A loaded, validated sweep: the spec, the resolved base config and the planned trials."""

    spec: SweepSpec
    name: str
    source: str
    base: dict[str, Any]  # the validated base experiment, as config.yaml stores it
    points: list[dict[str, Any]] = field(default_factory=list)  # grid/random; empty for bayes
    overrides: list[str] = field(default_factory=list)  # the command line's `key=value` words on the base

    @property
    def swept(self) -> list[str]:
        """Parameters that vary (constants are folded into the base)."""
        return [p for p, s in self.spec.parameters.items() if s.kind != "constant"]

    @property
    def trial_count(self) -> int:
        """How many trials the sweep trains: every point's seeds (grid, random), or run_cap points' (bayes)."""
        points = self.spec.run_cap if self.spec.method == "bayes" else len(self.points)
        return points * self.spec.repeats

    def trials(self) -> list[Trial]:
        out = []
        for point, params in enumerate(self.points):
            for seed in self.seeds:
                out.append(Trial(len(out), point, seed, params))
        return out

    @property
    def seeds(self) -> list[int]:
        return [self.base.get("seed", 0) + i for i in range(self.spec.repeats)]

    def trial_config(self, params: dict[str, Any], seed: int | None, name: str) -> dict[str, Any]:
        """The experiment dict one trial trains (validated by `validate_point`)."""
        raw = copy.deepcopy(self.base)
        apply_overrides(raw, point_overrides(params), source=self.source)
        raw["name"] = name
        if seed is not None:
            raw["seed"] = seed
        return raw

    def fixed(self) -> dict[str, Any]:
        """What every trial shares that the sweep sets: the constants (as the command line left them), then the
        command line's other words on the base."""
        out = {p: s.value for p, s in self.spec.parameters.items() if s.kind == "constant"}
        for word in self.overrides:
            key, _, text = word.partition("=")
            if key not in self.spec.parameters:
                out[key] = parse_yaml(text) if text else None
        return out

    def to_dict(self) -> dict[str, Any]:
        """sweep.yaml: the spec as resolved (constants kept, as the command line left them), plus the name, the base
        file and the command line's overrides of the base."""
        data = self.spec.model_dump(mode="json", exclude_none=True)
        data["parameters"] = {p: s.model_dump(mode="json", exclude_unset=True) for p, s in self.spec.parameters.items()}
        data["name"] = self.name
        if self.overrides:
            data["overrides"] = list(self.overrides)
        return data


def point_overrides(params: dict[str, Any]) -> list[str]:
    """`key=value` words (JSON values are YAML) that set a point's parameters, as `nnlab train` takes them."""
    return [f"{path}={json.dumps(value)}" for path, value in params.items()]


# ---------------------------------------------------------------------------------------------
# Loading.
def is_sweep_file(raw: Any) -> bool:
    return isinstance(raw, dict) and bool({"base", "method", "parameters"} & set(raw)) and "model" not in raw


def load_sweep(path: str | Path, words: list[str] | tuple[str, ...] = (), *, repeats: int | None = None,
               method: str | None = None, run_cap: int | None = None, metric: str | None = None) -> Sweep:
    """A sweep file, or an experiment file whose comma-list words (`a=1,2`) make a grid (or, with `repeats`, that
    is trained with that many seeds); validated in full.

    `words` are `key=value` overrides of the base config; a value with top-level commas is a swept parameter.
    Raises ConfigError with one line naming the file and the parameter.
    """
    path = Path(path)
    raw = _read_yaml(path)
    base_overrides, swept = _split_words(words, str(path))
    if is_sweep_file(raw):
        spec_raw = dict(raw)
        spec_raw.setdefault("parameters", {})
        if not isinstance(spec_raw["parameters"], dict):
            raise ConfigError(f"{path}: parameters: expected a mapping of config paths to {{values: [...]}}")
        for key, values in swept.items():
            spec_raw["parameters"] = {**spec_raw["parameters"], key: {"values": values}}
        for word in base_overrides:  # a plain word on a parameter of the file makes it that constant
            key, _, text = word.partition("=")
            if key in spec_raw["parameters"]:
                try:
                    spec_raw["parameters"] = {**spec_raw["parameters"], key: {"value": parse_yaml(text) if text else None}}
                except yaml.YAMLError:
                    pass  # apply_overrides below names the word
        spec = _validate_spec(spec_raw, str(path), repeats=repeats, method=method, run_cap=run_cap, metric=metric)
        if not spec.base:
            raise ConfigError(f"{path}: base: missing (required): the experiment file this sweep varies")
        base_path = (path.parent / spec.base) if not Path(spec.base).is_absolute() else Path(spec.base)
        base_raw = _read_yaml(base_path)
        if is_sweep_file(base_raw) or not isinstance(base_raw, dict):
            raise ConfigError(f"{path}: base: {spec.base} is not an experiment file")
        name = spec.name or _safe_name(path.stem)
    else:
        if not swept and (repeats or 1) < 2:  # with --repeats N: the experiment itself, N seeds (a re-run study)
            raise ConfigError(f"{path}: an experiment file, and no word sweeps anything: give a sweep file "
                              "(configs/sweeps/*.yaml), comma lists such as model.hidden=[8],[32], or --repeats N "
                              "to train it with N seeds")
        spec_raw = {"method": method or "grid", "parameters": {k: {"values": v} for k, v in swept.items()}}
        spec = _validate_spec(spec_raw, str(path), repeats=repeats, method=None, run_cap=run_cap, metric=metric)
        base_path, base_raw = path, raw
        name = spec.name or _safe_name(path.stem)
    source = str(path)
    base_raw = dict(base_raw or {})
    base_raw.setdefault("name", base_path.stem)
    constants = {p: s.value for p, s in spec.parameters.items() if s.kind == "constant"}
    overridden = apply_overrides(base_raw, point_overrides(constants), source=source)
    overridden.update(apply_overrides(base_raw, base_overrides, source=str(base_path)))  # the command line wins
    _record_what_runs(spec, base_raw, [word.partition("=")[0] for word in base_overrides])
    base = validate_config(base_raw, source=str(base_path), overridden=overridden).to_dict()
    sweep = Sweep(spec=spec, name=name, source=source, base=base, overrides=list(base_overrides))
    check_metric(sweep)  # before the points: it needs no Keras
    sweep.points = expand(spec)
    validate_points(sweep)
    return sweep


def _record_what_runs(spec: SweepSpec, base_raw: dict[str, Any], keys: list[str]) -> None:
    """A constant that a command-line word changed (train.epochs=2 on `train.epochs: {value: 10}`, or on a section
    holding it) records the value the trials train with, read back from the base; one the word removed is dropped."""
    for path, parameter in list(spec.parameters.items()):
        if parameter.kind != "constant" or not any(key == path or key.startswith(path + ".") or
                                                  path.startswith(key + ".") for key in keys):
            continue
        node: Any = base_raw
        for part in path.split("."):
            node = node.get(part, _UNSET) if isinstance(node, dict) else _UNSET
        if node is _UNSET:
            del spec.parameters[path]
        else:
            spec.parameters[path] = ParameterSpec(value=copy.deepcopy(node))


def _safe_name(stem: str) -> str:
    """A file name as a sweep name (run ids and trial names allow letters, digits, _ . -)."""
    return re.sub(r"[^A-Za-z0-9_.-]", "_", stem).lstrip("_.-")[:40] or "sweep"


def _read_yaml(path: Path) -> Any:
    raw = read_yaml(path)
    if raw is not None and not isinstance(raw, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of keys")
    return raw or {}


def _split_words(words, source: str) -> tuple[list[str], dict[str, list[Any]]]:
    """Plain overrides, and the words whose values are comma lists (swept parameters)."""
    plain, swept = [], {}
    for word in words:
        key, sep, text = word.partition("=")
        if sep and key and _has_top_level_comma(text):
            try:
                values = parse_yaml(f"[{text}]")
            except yaml.YAMLError:
                raise ConfigError(f"{source}: {word!r}: the comma list is not valid YAML") from None
            if not _PATH.fullmatch(key):
                raise ConfigError(f"{source}: {word!r}: expected key.sub=v1,v2")
            swept[key] = values
        else:
            plain.append(word)
    return plain, swept


def _has_top_level_comma(text: str) -> bool:
    depth = 0
    for char in text:
        depth += char in "[{"
        depth -= char in "]}"
        if char == "," and depth == 0:
            return True
    return False


def _validate_spec(raw: dict[str, Any], source: str, *, repeats, method, run_cap, metric=None) -> SweepSpec:
    for key, value in (("repeats", repeats), ("method", method), ("run_cap", run_cap)):
        if value is not None:
            raw[key] = value
    if metric is not None:  # --metric: the name; its goal from the name (val_loss lower, val_accuracy higher)
        raw["metric"] = {"name": metric}
    if raw.get("method") is not None and raw.get("method") not in METHODS:
        raise ConfigError(f"{source}: method: unknown method {raw['method']!r} (allowed: {', '.join(METHODS)})")
    try:
        return SweepSpec.model_validate(raw)
    except ValidationError as exc:
        raise config_error(exc, source, (), SweepSpec, {}) from None


# ---------------------------------------------------------------------------------------------
# Expansion and validation.
def expand(spec: SweepSpec) -> list[dict[str, Any]]:
    """The points a grid or random search visits, in order (swept parameters only); [] for bayes."""
    varying = {p: s for p, s in spec.parameters.items() if s.kind != "constant"}
    if spec.method == "grid":
        names = list(varying)
        return [dict(zip(names, combo)) for combo in itertools.product(*(varying[n].grid_values() for n in names))]
    if spec.method == "random":
        import numpy as np

        rng = np.random.default_rng(spec.seed)
        return [{p: s.sample(rng) for p, s in varying.items()} for _ in range(spec.run_cap)]
    return []


def validate_points(sweep: Sweep) -> None:
    """Validate every trial's config (grid/random), or every category and bound (bayes), before any run."""
    varying = {p: s for p, s in sweep.spec.parameters.items() if s.kind != "constant"}
    candidates = list(sweep.points)
    if sweep.spec.method != "grid":  # each bound and category with the others at their first value
        first = {p: s.corners()[0] for p, s in varying.items()}
        candidates += [{**first, p: v} for p, s in varying.items() for v in s.corners()]
    seen: set[str] = set()
    for params in candidates:
        key = json.dumps(params, sort_keys=True)
        if key in seen:
            continue
        seen.add(key)
        validate_point(sweep, params)


# What metrics.json holds per task besides `loss` and train.metrics: Keras's default metric (training/compile.py
# DEFAULT_METRICS) and nnlab's own task scores (metrics.py TASK_SCORES).
_TASK_METRICS = {"multiclass": ("accuracy", "log_loss"),
                 "binary": ("accuracy", "sensitivity", "specificity", "roc_auc"),
                 "seq2seq": ("accuracy", "char_accuracy", "sequence_accuracy"), "regression": ("mae", "mse", "nmse"),
                 "sequence_regression": ("mae", "mse", "nmse")}


def check_metric(sweep: Sweep) -> None:
    """Refuse a metric the base experiment's task cannot produce (a typo such as val_acuracy would
    otherwise fail every trial after its training). The dataset is loaded to learn its task."""
    from nnlab import datasets
    from nnlab.errors import DataNotFoundError

    config = ExperimentConfig.model_validate(sweep.base)
    try:
        dataset = datasets.load(config.data)
    except DataNotFoundError:  # not on this machine: the trials will say so
        return
    split, key = sweep.spec.metric.split_and_key
    known = ["loss", *_TASK_METRICS[dataset.task], *(m.lower() for m in config.train.metrics or [])]
    splits = ("train", *(s for s in dataset.splits() if s != "train"))
    if key.lower() not in {k.lower() for k in known} or split not in splits:
        names = [f"{s}_{k}" if s != "train" else k for s in splits for k in known]
        import difflib

        close = difflib.get_close_matches(sweep.spec.metric.name, names, n=1)
        hint = f"; did you mean {close[0]}?" if close else ""
        raise ConfigError(f"{sweep.source}: metric.name: {sweep.spec.metric.name!r} is not a metric this experiment "
                          f"reports ({dataset.task}: {', '.join(names)}){hint}")


def validate_point(sweep: Sweep, params: dict[str, Any]) -> ExperimentConfig:
    """The base experiment with one point's overrides, validated; a ConfigError names the swept parameter to blame."""
    raw = copy.deepcopy(sweep.base)
    try:
        overridden = apply_overrides(raw, point_overrides(params), source=sweep.source)
        return validate_config(raw, source=sweep.source, overridden=overridden)  # Keras names included
    except ConfigError as exc:
        key = exc.key or ""
        culprit = next((p for p in params if key and (key == p or key.startswith((p + ".", p + "["))
                                                     or p.startswith(key + "."))), None)
        if culprit is None:
            shown = ", ".join(f"{p}={json.dumps(v)}" for p, v in params.items())
            raise ConfigError(f"with {shown}: {exc.detail}", file=sweep.source) from None
        raise ConfigError(f"parameters.{culprit} = {json.dumps(params[culprit])}: {exc.detail}",
                          file=sweep.source) from None


__all__ = ["EarlyTerminate", "MetricSpec", "ParameterSpec", "Sweep", "SweepSpec", "Trial", "expand",
           "is_sweep_file", "load_sweep", "point_overrides", "validate_point", "validate_points"]

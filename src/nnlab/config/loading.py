"""Loading an experiment file: YAML, then `key.sub=value` overrides, then validation (the named dataset's and
model's parameters included), each problem one structured ConfigError naming the file and the key path."""

from __future__ import annotations

import difflib
import re
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from nnlab.config.schema import ComponentConfig, ExperimentConfig
from nnlab.config.yaml_io import parse_yaml, read_yaml
from nnlab.errors import ConfigError, first_line, one_line, shown
from nnlab.keras_names import check_keras_names
from nnlab.registry import Registry

def load_config(path: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> ExperimentConfig:
    """Read an experiment file, apply `key.sub=value` overrides and validate everything.

    Raises ConfigError with one line naming the file and the key path.
    """
    path = Path(path)
    raw = read_yaml(path)
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError("the top level must be a mapping of keys (name, data, model, train)", file=str(path))
    raw.setdefault("name", path.stem)
    overridden = apply_overrides(raw, overrides, source=str(path))
    return validate_config(raw, source=str(path), overridden=overridden)


def apply_overrides(raw: dict[str, Any], overrides: list[str] | tuple[str, ...], source: str) -> dict[str, str]:
    """Set each `a.b.c=value` (value parsed as YAML) in `raw`; return key path -> override text."""
    applied = {}
    for item in overrides:
        key, sep, text = item.partition("=")
        if not sep or not key or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*", key):
            raise ConfigError(f"override {shown(item)}: expected key.sub=value, e.g. train.epochs=5", file=source)
        try:
            value = parse_yaml(text) if text else None
        except yaml.YAMLError as exc:
            problem = getattr(exc, "problem", None) or first_line(exc)
            raise ConfigError(f"override {shown(item)}: the value is not valid YAML ({one_line(problem)})",
                              file=source) from None
        node = raw
        parts = key.split(".")
        for depth, part in enumerate(parts[:-1]):
            child = node.setdefault(part, {})
            if isinstance(child, str) and part == "optimizer":  # `optimizer: adam` then optimizer.x=...
                child = node[part] = {"name": child}
            if not isinstance(child, dict):
                raise ConfigError(f"override {shown(item)}: {'.'.join(parts[: depth + 1])} is not a mapping", file=source)
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
        raise config_error(exc, source, (), ExperimentConfig, overridden) from None
    for section, registry in (("data", DATASETS), ("model", MODELS)):
        component: ComponentConfig = getattr(config, section)
        entry = _get_entry(registry, component.name, source, section, overridden)
        try:
            params = entry.params.model_validate(component.params)
        except ValidationError as exc:
            raise config_error(exc, source, (section,), entry.params, overridden) from None
        setattr(config, section, ComponentConfig(name=component.name, **params.model_dump(mode="json")))
    try:
        check_keras_names(config)
    except ConfigError as exc:
        exc.file, exc.override = source, override_for(exc.key, overridden)
        raise
    return config


def _get_entry(registry: Registry, name: str, source: str, section: str, overridden: dict[str, str]):
    try:
        return registry.get(name)
    except ConfigError as exc:
        raise ConfigError(str(exc), file=source, key=f"{section}.name",
                          override=override_for(f"{section}.name", overridden)) from None


def override_for(key: str | None, overridden: dict[str, str]) -> str | None:
    """The `key=value` override that set `key` (or a mapping above it), if one did."""
    hits = [text for path, text in overridden.items()
            if key and (key == path or key.startswith((path + ".", path + "[")))]
    return hits[-1] if hits else None


def config_error(exc: ValidationError, source: str, prefix: tuple, model: type[BaseModel],
                 overridden: dict[str, str]) -> ConfigError:
    """A pydantic error as one structured ConfigError: the first problem's key path, what is wrong, how many more."""
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
    return ConfigError(msg, file=source, key=key, override=override_for(key, overridden), more=len(exc.errors()) - 1)


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


__all__ = ["apply_overrides", "config_error", "load_config", "override_for", "validate_config"]

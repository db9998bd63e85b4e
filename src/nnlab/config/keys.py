"""The experiment file's keys described: each dataset, model and the train: section with its keys' types and
defaults as text (what `nnlab list` shows), and the key path a bare name means (`epochs` -> `train.epochs`)."""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel
from pydantic_core import PydanticUndefined

from nnlab.config.schema import ExperimentConfig, OptimizerConfig, OutputConfig, TrainConfig
from nnlab.errors import ConfigError


@dataclass(frozen=True)
class Key:
    """One key of an entry: its type and default the way a YAML writer reads them."""

    name: str
    type: str  # `int`, `float | None`, `list[int]`, `'lstm' | 'gru'`
    default: str | None  # as YAML would show it (`0.1667`, `null`, `[64, 32]`); None: the key is required
    description: str | None


@dataclass(frozen=True)
class Entry:
    """A dataset, a model or the train: section, and its keys."""

    name: str
    description: str
    keys: list[Key]


def describe(name: str | None = None) -> list[tuple[str, list[Entry]]]:
    """(title, entries) for Datasets, Models and Training; with `name`, only that entry's section."""
    from nnlab.datasets import DATASETS
    from nnlab.models import MODELS

    sections = [(title, [(e.name, e.description, e.params) for e in registry])
                for title, registry in (("Datasets", DATASETS), ("Models", MODELS))]
    sections.append(("Training", [("train", "the train: section of every experiment file", TrainConfig)]))
    if name is not None:
        sections = [(title, [e for e in entries if e[0] == name]) for title, entries in sections]
        sections = [(title, entries) for title, entries in sections if entries]
        if not sections:
            choices = sorted([*DATASETS.names(), *MODELS.names(), "train"])
            raise ConfigError(f"nnlab list: no dataset or model {name!r} (choose from: {', '.join(choices)})")
    return [(title, [Entry(entry_name, description, field_keys(params)) for entry_name, description, params in entries])
            for title, entries in sections]


def field_keys(params: type[BaseModel]) -> list[Key]:
    """The fields of a parameter model, described."""
    return [Key(field_name, type_name(field.annotation),
                None if field.default is PydanticUndefined else yaml_text(field.default), field.description)
            for field_name, field in params.model_fields.items()]


def yaml_text(value: Any) -> str:
    """A default as YAML would show it, floats rounded (1/6 -> 0.1667)."""
    if isinstance(value, bool) or value is None:
        return {True: "true", False: "false", None: "null"}[value]
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(yaml_text(v) for v in value) + "]"
    if hasattr(value, "model_dump"):
        return "{" + ", ".join(f"{k}: {yaml_text(v)}" for k, v in value.model_dump(exclude_none=True).items()) + "}"
    return repr(value) if isinstance(value, str) else str(value)


def type_name(annotation: Any) -> str:
    """`int`, `float | None`, `list[int]`, `'lstm' | 'gru'`: types the way a YAML writer reads them."""
    if annotation is None or annotation is type(None):
        return "None"
    if isinstance(annotation, type) and not getattr(annotation, "__args__", None):
        return "any" if annotation is object else annotation.__name__
    origin = getattr(annotation, "__origin__", None)
    args = getattr(annotation, "__args__", ())
    if str(origin) == "typing.Literal":
        return " | ".join(repr(a) for a in args)
    if origin is list:
        return f"list[{type_name(args[0])}]" if args else "list"
    if args:  # unions
        return " | ".join(type_name(a) for a in args)
    return "any" if str(annotation) == "typing.Any" else str(annotation)


ALIASES = {"lr": "learning_rate", "bs": "batch_size", "epoch": "epochs"}  # what other tools call them


def key_path(name: str) -> str | None:
    """The config key path whose last part is `name` (`epochs` -> `train.epochs`, `lr` -> the learning rate's,
    a close misspelling too), if one is."""
    from nnlab.models import MODELS

    paths = {}
    for prefix, model in [("model.", entry.params) for entry in MODELS] + [
            ("output.", OutputConfig), ("train.optimizer.", OptimizerConfig), ("train.", TrainConfig),
            ("", ExperimentConfig)]:  # a later section wins a shared name: top level, then train, then the rest
        paths.update({field: prefix + field for field in model.model_fields
                      if field not in ("data", "model", "train", "output", "name")})
    name = ALIASES.get(name, name)
    close = difflib.get_close_matches(name, list(paths), n=1, cutoff=0.8)
    return paths[name] if name in paths else paths[close[0]] if close else None


__all__ = ["ALIASES", "Entry", "Key", "describe", "field_keys", "key_path", "type_name", "yaml_text"]

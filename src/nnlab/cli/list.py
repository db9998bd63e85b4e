"""`nnlab list`: every registered dataset and model, and the train: keys, with their parameters (no TensorFlow import)."""

from __future__ import annotations

from typing import Optional

import typer
from pydantic_core import PydanticUndefined

from nnlab.cli._common import handle_errors
from nnlab.errors import ConfigError


@handle_errors
def list_components(
    name: Optional[str] = typer.Argument(None, help="Show only this dataset or model (or `train`)."),
) -> None:
    """List datasets, models and the train: keys, each with its parameters and defaults.

    \b
    Examples:
      nnlab list
      nnlab list mnist56
    """
    from nnlab.config import TrainConfig
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
    for title, entries in sections:
        typer.echo(f"{title}:")
        for entry_name, description, params in entries:
            typer.echo(f"  {entry_name:<12}{description}")
            for field_name, field in params.model_fields.items():
                default = "(required)" if field.default is PydanticUndefined else f"= {_value(field.default)}"
                note = f"  {field.description}" if field.description else ""
                typer.echo(f"      {field_name}: {_type_name(field.annotation)} {default}{note}")
        typer.echo("")


def _value(value) -> str:
    """A default as YAML would show it, floats rounded (1/6 -> 0.1667)."""
    if isinstance(value, bool) or value is None:
        return {True: "true", False: "false", None: "null"}[value]
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    if hasattr(value, "model_dump"):
        return "{" + ", ".join(f"{k}: {_value(v)}" for k, v in value.model_dump(exclude_none=True).items()) + "}"
    return repr(value) if isinstance(value, str) else str(value)


def _type_name(annotation) -> str:
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
        return f"list[{_type_name(args[0])}]" if args else "list"
    if args:  # unions
        return " | ".join(_type_name(a) for a in args)
    return "any" if str(annotation) == "typing.Any" else str(annotation)

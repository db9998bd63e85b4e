"""`nnlab list`: every registered dataset and model with its parameters (no TensorFlow import)."""

from __future__ import annotations

import typer
from pydantic_core import PydanticUndefined

from nnlab.cli._common import handle_errors


@handle_errors
def list_components() -> None:
    """List datasets and models with a one-line description and their parameters.

    Example: nnlab list
    """
    from nnlab.datasets import DATASETS
    from nnlab.models import MODELS

    for title, registry in (("Datasets", DATASETS), ("Models", MODELS)):
        typer.echo(f"{title}:")
        for entry in registry:
            typer.echo(f"  {entry.name:<12}{entry.description}")
            for name, field in entry.params.model_fields.items():
                default = "(required)" if field.default is PydanticUndefined else f"= {field.default!r}"
                note = f"  {field.description}" if field.description else ""
                typer.echo(f"      {name}: {_type_name(field.annotation)} {default}{note}")
        typer.echo("")


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

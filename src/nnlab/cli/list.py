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
                default = "required" if field.default is PydanticUndefined else f"= {field.default!r}"
                note = f"  {field.description}" if field.description else ""
                typer.echo(f"      {name} {default}{note}")
        typer.echo("")

"""`nnlab list`: every registered dataset and model, and the train: keys, with their parameters (no TensorFlow import)."""

from __future__ import annotations

from typing import Optional

import typer

from nnlab.cli._common import handle_errors


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
    from nnlab.config import describe

    for title, entries in describe(name):
        typer.echo(f"{title}:")
        for entry in entries:
            typer.echo(f"  {entry.name:<12}{entry.description}")
            for key in entry.keys:
                default = "(required)" if key.default is None else f"= {key.default}"
                note = f"  {key.description}" if key.description else ""
                typer.echo(f"      {key.name}: {key.type} {default}{note}")
        typer.echo("")

"""`nnlab inspect`: plots of what a trained model does with one validation example."""

from __future__ import annotations

from typing import Optional

import typer

from nnlab.cli._common import handle_errors


@handle_errors
def inspect(
    run: str = typer.Argument(..., help="Run id, prefix, path or latest."),
    sample: int = typer.Option(0, "--sample", help="Index of the validation example to show."),
    layer: Optional[str] = typer.Option(None, "--layer", help="Only this layer (default: all that apply)."),
    after_pool: bool = typer.Option(False, "--after-pool", help="CNN runs: feature maps after pooling."),
    runs_dir: Optional[str] = typer.Option(None, "--runs-dir", envvar="NNLAB_RUNS_DIR", help="Folder of runs [default: runs]."),
) -> None:
    """Write plots for one validation example into the run's plots/ folder.

    Example: nnlab inspect latest --sample 3
    """
    from nnlab import runs
    from nnlab.inspect import inspect_run

    run_dir = runs.find_run(run, runs_dir or runs.default_runs_dir())
    for path in inspect_run(run_dir, sample, layer=layer, after_pool=after_pool):
        typer.echo(str(path))

"""`nnlab inspect`: draw what a trained model does with one validation example."""

from __future__ import annotations

from typing import Optional

import typer

from nnlab.cli._common import allow_incomplete_option, complete_run, handle_errors


@handle_errors
def inspect(
    run: str = typer.Argument(..., help="Run id, unique prefix, folder, or latest.", autocompletion=complete_run),
    sample: int = typer.Option(0, "--sample", min=0, help="Index of the validation example to feed through."),
    layer: Optional[str] = typer.Option(None, "--layer", help="Only this layer (by name)."),
    after_pool: bool = typer.Option(False, "--after-pool", help="Show pooling outputs instead of conv outputs."),
    runs_dir: Optional[str] = typer.Option(None, "--runs-dir", envvar="NNLAB_RUNS_DIR", help="Folder of runs (default: runs)."),
    allow_incomplete: bool = allow_incomplete_option(),
) -> None:
    """Draw one validation example's path through a trained model as PNGs in the run's plots/ folder.

    CNNs: the input image, a grid of every channel of each conv (or, with --after-pool, pooling) layer's
    output, and the first conv layer's kernels. RNNs: input, target and prediction over time, and every
    hidden unit's activation per recurrent layer. Autoencoders: the hidden units' input weights.
    Prints the paths.

    \b
    Example:
      nnlab inspect latest --sample 2 --after-pool
    """
    from nnlab import runs
    from nnlab.trained.inspect import inspect_run

    run_dir = runs.find_run(run, runs_dir or runs.default_runs_dir())
    for path in inspect_run(run_dir, sample, layer=layer, after_pool=after_pool,
                            allow_incomplete=allow_incomplete):
        typer.echo(str(path))

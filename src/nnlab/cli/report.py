"""`nnlab report`: one run's summary in the terminal and a self-contained report.html (no TensorFlow import)."""

from __future__ import annotations

from typing import Optional

import typer

from nnlab.cli._common import handle_errors


@handle_errors
def report(
    run: str = typer.Argument(..., help="Run id, unique id prefix, run folder path, or latest."),
    html: bool = typer.Option(True, "--html/--no-html", help="Also write report.html into the run folder."),
    runs_dir: Optional[str] = typer.Option(
        None, "--runs-dir", envvar="NNLAB_RUNS_DIR", help="Folder of runs (default: runs)."),
    sweep: bool = typer.Option(False, "--sweep", help="RUN names a sweep (id, prefix, folder or latest)."),
) -> None:
    """Summarise a run: config, data, parameters, metrics per split, confusion matrix or examples.

    Plots are redrawn from the run's saved files, so a run folder copied from another machine works.

    A sweep id (or `--sweep latest`) prints the sweep's per-point table and writes its report.html.

    \b
    Example:
      nnlab report latest
    """
    from nnlab import runs
    from nnlab.sweeps.report import report_ref

    report_ref(run, runs_dir or runs.default_runs_dir(), sweep_only=sweep, html=html)

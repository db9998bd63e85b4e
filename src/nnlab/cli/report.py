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
) -> None:
    """Summarise a run: config, data, parameters, metrics per split, confusion matrix or examples.

    Plots are redrawn from the run's saved files, so a run folder copied from another machine works.

    \b
    Example:
      nnlab report latest
    """
    from rich.console import Console

    from nnlab import runs
    from nnlab.reports.summary import read_run
    from nnlab.reports.terminal import print_run

    run_dir = runs.find_run(run, runs_dir or runs.default_runs_dir())
    report_path = None
    if html:
        from nnlab.reports.html import write_run_report

        try:
            report_path = write_run_report(run_dir)
        except OSError as exc:  # a read-only run folder (shared, archived): the terminal report still shows
            typer.echo(f"note: cannot write into {run_dir} ({exc.strerror or type(exc).__name__}); terminal report only",
                       err=True)
    print_run(read_run(run_dir), Console(highlight=False), report_path=report_path)

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
    from rich.console import Console

    from nnlab import runs
    from nnlab.reports.summary import read_run
    from nnlab.reports.terminal import print_run

    from nnlab.sweeps.report import find_sweep_ref

    sweep_dir = find_sweep_ref(run, runs_dir or runs.default_runs_dir(), sweep)
    if sweep_dir is not None:  # a sweep: its table, plots and a page linking every trial
        from nnlab.sweeps.aggregate import read_sweep
        from nnlab.sweeps.report import print_sweep, write_sweep_report

        page = write_sweep_report(sweep_dir) if html else None
        print_sweep(read_sweep(sweep_dir), Console(highlight=False, soft_wrap=True), report_path=page)
        return
    run_dir = runs.find_run(run, runs_dir or runs.default_runs_dir())
    report_path = None
    if html:
        from nnlab.reports.run_page import write_run_report

        try:
            report_path = write_run_report(run_dir)
        except OSError as exc:  # a read-only run folder (shared, archived): the terminal report still shows
            typer.echo(f"note: cannot write into {run_dir} ({exc.strerror or type(exc).__name__}); terminal report only",
                       err=True)
    print_run(read_run(run_dir), Console(highlight=False), report_path=report_path)

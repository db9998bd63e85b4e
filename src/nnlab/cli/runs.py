"""`nnlab runs`: the table of runs, newest first (no TensorFlow import)."""

from __future__ import annotations

from typing import Optional

import typer

from nnlab.cli._common import handle_errors


@handle_errors
def list_runs(
    runs_dir: Optional[str] = typer.Option(None, "--runs-dir", envvar="NNLAB_RUNS_DIR", help="Folder of runs (default: runs)."),
) -> None:
    """Show each run's id, config name, status, main metric and duration, newest first; then the sweeps.

    Example: nnlab runs
    """
    from nnlab import runs

    folder = runs_dir or runs.default_runs_dir()
    rows = []
    for run_dir in runs.list_runs(folder):
        meta = runs.read_json(run_dir / runs.META)
        metric = meta.get("main_metric") or {}
        value = metric.get("value")
        shown = f"{metric['name']} {value:.4f}" if isinstance(value, (int, float)) else "-"
        duration = meta.get("duration_s")
        rows.append((run_dir.name, meta.get("name", "?"), runs.effective_status(meta, run_dir), shown,
                     f"{duration:.1f}s" if isinstance(duration, (int, float)) else "-"))
    if not rows:
        typer.echo(f"no runs in {folder}")
        _list_sweeps(folder)
        return
    header = ("id", "name", "status", "main metric", "duration")
    widths = [max(len(str(r[i])) for r in (header, *rows)) for i in range(len(header))]
    for row in (header, *rows):
        typer.echo("  ".join(str(v).ljust(w) for v, w in zip(row, widths)).rstrip())
    _list_sweeps(folder)


def _list_sweeps(folder) -> None:
    """The sweeps under `folder/sweeps/`, after the runs (read from their tables; no Optuna import)."""
    from nnlab.sweeps.aggregate import sweep_table_rows

    rows = sweep_table_rows(folder)
    if not rows:
        return
    header = ("sweep id", "name", "method", "status", "trials", "best point")
    widths = [max(len(str(r[i])) for r in (header, *rows)) for i in range(len(header))]
    typer.echo("")
    for row in (header, *rows):
        typer.echo("  ".join(str(v).ljust(w) for v, w in zip(row, widths)).rstrip())

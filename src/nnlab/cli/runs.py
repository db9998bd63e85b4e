"""`nnlab runs`: the runs nnlab.run_table chooses, as a table, JSON or CSV; then the sweeps; --rm asks first
(no TensorFlow import)."""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path
from typing import Any, Optional

import typer

from nnlab import runs
from nnlab.cli._common import handle_errors
from nnlab.errors import ConfigError
from nnlab.run_table import RunTable, check_removable, read_table, remove_runs, sweep_rows

COLUMNS = ("id", "name", "status", "epochs", "metric", "value", "duration_s")  # --csv


@handle_errors
def list_runs(
    name: Optional[str] = typer.Option(None, "--name", help="Only runs whose config name or id matches this glob, "
                                       "e.g. 'mnist*'."),
    status: Optional[list[str]] = typer.Option(None, "--status", help="Only runs with this status (repeatable): "
                                               "running, completed, failed, interrupted, pruned, unreadable."),
    sort: str = typer.Option("created", "--sort", help="created (newest first), name, status, epochs, duration, or a "
                             "metric such as val_accuracy (best first)."),
    limit: Optional[int] = typer.Option(None, "--limit", min=1, help="Show at most this many runs (and sweeps)."),
    trials: bool = typer.Option(False, "--trials", help="Also list sweep trials as runs (by default each sweep is "
                                "one line of the sweeps table)."),
    sweep: Optional[str] = typer.Option(None, "--sweep", help="Only this sweep and its trial runs (id, unique prefix, "
                                        "folder or latest)."),
    as_json: bool = typer.Option(False, "--json", help="Print a JSON list instead of the table."),
    as_csv: bool = typer.Option(False, "--csv", help="Print CSV instead of the table."),
    remove: bool = typer.Option(False, "--rm", help="Delete the runs shown (asks first unless --yes)."),
    yes: bool = typer.Option(False, "--yes", help="With --rm: delete without asking."),
    runs_dir: Optional[str] = typer.Option(None, "--runs-dir", envvar="NNLAB_RUNS_DIR",
                                           help="Folder of runs (default: runs)."),
) -> None:
    """Show each run's id, config name, status, epochs, main metric and duration, newest first; then the sweeps.

    A sweep's trial runs are folded into its one line of the sweeps table: --trials lists them as runs
    too, --sweep ID only that sweep's. --name, --status and --limit apply to both tables. A run whose
    meta.json cannot be read is listed as `unreadable`, naming the file.

    \b
    Examples:
      nnlab runs --status failed --rm
      nnlab runs --name 'mnist*' --sort val_accuracy --limit 5 --json
      nnlab runs --sweep latest --sort val_accuracy
    """
    if as_json and as_csv:
        raise ConfigError("nnlab runs: choose one of --json and --csv")
    folder = Path(runs_dir or runs.default_runs_dir())
    table = read_table(folder, statuses={s for item in status or [] for s in item.split(",") if s}, name=name,
                       sort=sort, limit=limit, trials=trials, sweep=sweep)
    rows = table.rows
    if remove:
        _remove(rows, folder, yes)
        return
    if as_json:
        typer.echo(json.dumps([{k: v for k, v in r.items() if k != "folder"} for r in rows], indent=2))
    elif as_csv:
        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow([*COLUMNS, "problem"])
        writer.writerows([[_plain(r.get(k)) for k in (*COLUMNS, "problem")] for r in rows])
        sys.stdout.flush()
    elif not rows:
        match = " match" if table.statuses or name else ""
        typer.echo(f"no {'trial ' if table.sweep else ''}runs in {folder}{match}")
    else:
        _table(rows)
    if not (as_json or as_csv):
        _list_sweeps(table)


def _list_sweeps(table: RunTable) -> None:
    """The sweeps under the runs, filtered as the runs were; then how many trial runs were folded into them."""
    rows = sweep_rows(table)
    if rows:
        header = ("sweep id", "name", "method", "status", "trials", "best point")
        widths = [max(len(str(r[i])) for r in (header, *rows)) for i in range(len(header))]
        typer.echo("")
        for row in (header, *rows):
            typer.echo("  ".join(str(v).ljust(w) for v, w in zip(row, widths)).rstrip())
    folded = table.folded
    if folded:
        typer.echo(f"({folded} trial run{'s' * (folded > 1)} folded into their sweeps: --trials lists them, "
                   "--sweep ID one sweep's)")


def _table(rows: list[dict[str, Any]]) -> None:
    header = ("id", "name", "status", "epochs", "main metric", "duration")
    lines = []
    for r in rows:
        epochs = "-" if r["epochs"] is None else str(r["epochs"])
        if r["epochs_planned"] and r["epochs"] != r["epochs_planned"]:
            epochs += f"/{r['epochs_planned']}"
        value = r["value"]
        metric = f"{r['metric']} {value:.4f}" if isinstance(value, (int, float)) else "-"
        duration = f"{r['duration_s']:.1f}s" if isinstance(r["duration_s"], (int, float)) else "-"
        lines.append((r["id"], r["name"], r["status"], epochs, metric, duration))
    widths = [max(len(str(line[i])) for line in (header, *lines)) for i in range(len(header))]
    for line in (header, *lines):
        typer.echo("  ".join(str(v).ljust(w) for v, w in zip(line, widths)).rstrip())
    for r in rows:
        if r.get("problem"):
            typer.echo(f"warning: {r['id']}: {r['problem']}", err=True)


def _remove(rows: list[dict[str, Any]], folder: Path, yes: bool) -> None:
    if not rows:
        typer.echo(f"no runs in {folder} match: nothing to remove")
        return
    check_removable(rows)
    for r in rows:
        typer.echo(f"{r['id']}  {r['name']}  {r['status']}")
    if not yes:
        if not sys.stdin.isatty():
            raise ConfigError(f"--rm: {len(rows)} run(s) listed above; add --yes to delete them without asking")
        typer.confirm(f"delete these {len(rows)} run folder(s)?", abort=True)
    remove_runs(rows)
    typer.echo(f"deleted {len(rows)} run folder(s) from {folder}")


def _plain(value: Any) -> Any:
    return "" if value is None else value

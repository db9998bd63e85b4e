"""`nnlab runs`: the table of runs, newest first; filters, machine-readable output, removal (no TensorFlow import)."""

from __future__ import annotations

import csv
import fnmatch
import json
import math
import shutil
import sys
from pathlib import Path
from typing import Any, Optional

import typer

from nnlab import runs
from nnlab.cli._common import handle_errors
from nnlab.errors import ConfigError, RunDamagedError

COLUMNS = ("id", "name", "status", "epochs", "metric", "value", "duration_s")
SORT_KEYS = ("created", "name", "status", "epochs", "duration")


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
    wanted = {s for item in status or [] for s in item.split(",") if s}
    unknown = sorted(wanted - {*runs.STATUSES, "unreadable"})
    if unknown:
        raise ConfigError(f"--status: unknown status {unknown[0]!r} (choose from: "
                          f"{', '.join([*runs.STATUSES, 'unreadable'])})")
    folder = Path(runs_dir or runs.default_runs_dir())
    found = sorted([*runs.list_runs(folder), *runs.unfinished_folders(folder)], key=lambda p: p.name, reverse=True)
    chosen = _find_sweep(sweep, folder) if sweep else None
    rows = _with_sweeps([_row(run_dir) for run_dir in found], folder)
    folded = sum(r["sweep"] is not None for r in rows) if chosen is None and not trials else 0
    rows = [r for r in rows if (chosen is None and (trials or r["sweep"] is None)) or (r["sweep"] == chosen)]
    rows = [r for r in rows if _matches(r, wanted, name)]
    rows = _sorted(rows, sort)[:limit]
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
        typer.echo(f"no {'trial ' if chosen else ''}runs in {folder}" + (" match" if wanted or name else ""))
    else:
        _table(rows)
    if not (as_json or as_csv):
        _list_sweeps(folder, wanted, name, limit, chosen, folded)


def _with_sweeps(rows: list[dict[str, Any]], folder: Path) -> list[dict[str, Any]]:
    """Each row's `sweep`: the sweep whose trials.csv names the run, else the one its meta.json records (a
    trial that started before trials.csv was written); None for a run of no sweep still in `folder`."""
    from nnlab.sweeps.aggregate import list_sweeps, read_trials

    trial_of, sweeps = {}, set()
    for sweep_dir in list_sweeps(folder):
        sweeps.add(sweep_dir.name)
        trial_of.update({str(row["run_id"]): sweep_dir.name for row in read_trials(sweep_dir) if row.get("run_id")})
    for row in rows:
        row["sweep"] = trial_of.get(row["id"]) or (row["sweep"] if row["sweep"] in sweeps else None)
    return rows


def _find_sweep(ref: str, folder: Path) -> str:
    from nnlab.sweeps.aggregate import find_sweep

    try:
        return find_sweep(ref, folder).name
    except ConfigError as exc:
        raise ConfigError(f"--sweep: {exc}") from None


def _matches(row: dict[str, Any], wanted: set[str], name: str | None) -> bool:
    """--status and --name, for a run or a sweep row alike."""
    return ((not wanted or row["status"] in wanted)
            and (name is None or fnmatch.fnmatch(row["name"], name) or fnmatch.fnmatch(row["id"], name)))


def _list_sweeps(folder: Path, wanted: set[str], name: str | None, limit: int | None, chosen: str | None,
                 folded: int) -> None:
    """The sweeps under `folder/sweeps/`, after the runs (read from their tables; no Optuna import)."""
    from nnlab.sweeps.aggregate import sweep_table_rows

    rows = [row for row in sweep_table_rows(folder)
            if (chosen is None or row[0] == chosen) and _matches({"id": row[0], "name": row[1], "status": row[3]},
                                                                  wanted, name)][:limit]
    if rows:
        header = ("sweep id", "name", "method", "status", "trials", "best point")
        widths = [max(len(str(r[i])) for r in (header, *rows)) for i in range(len(header))]
        typer.echo("")
        for row in (header, *rows):
            typer.echo("  ".join(str(v).ljust(w) for v, w in zip(row, widths)).rstrip())
    if folded:
        typer.echo(f"({folded} trial run{'s' * (folded > 1)} folded into their sweeps: --trials lists them, "
                   "--sweep ID one sweep's)")


def _row(run_dir: Path) -> dict[str, Any]:
    """What the table shows for one run; an unreadable meta.json gives a row that says so, never an error."""
    row: dict[str, Any] = {"id": run_dir.name, "name": "?", "status": "unreadable", "epochs": None,
                           "epochs_planned": None, "metric": None, "value": None, "duration_s": None,
                           "created": None, "sweep": None, "folder": str(run_dir)}
    try:
        meta = runs.read_json(run_dir / runs.META)
        if not isinstance(meta, dict):
            raise RunDamagedError(f"{run_dir / runs.META}: not a JSON object")
    except RunDamagedError as exc:
        row["problem"] = str(exc)
        return row
    metric = meta.get("main_metric") if isinstance(meta.get("main_metric"), dict) else {}
    row.update(name=str(meta.get("name", "?")), status=runs.effective_status(meta, run_dir),
               epochs=meta.get("epochs_done") if meta.get("status") == "completed" else _epochs_recorded(run_dir),
               epochs_planned=meta.get("epochs_planned"), metric=metric.get("name"), value=metric.get("value"),
               duration_s=meta.get("duration_s"), created=meta.get("created"),
               sweep=meta.get("sweep") if isinstance(meta.get("sweep"), str) else None)
    return row


def _epochs_recorded(run_dir: Path) -> int | None:
    """Rows in history.csv (cheap: lines, not parsing) for runs that have not finished."""
    try:
        with open(run_dir / runs.HISTORY, "rb") as f:
            return max(0, sum(1 for line in f if line.strip()) - 1)
    except OSError:
        return 0


def _sorted(rows: list[dict[str, Any]], key: str) -> list[dict[str, Any]]:
    if key == "created":
        return rows  # list_runs gives newest first
    if key in ("name", "status"):
        return sorted(rows, key=lambda r: str(r[key]))
    if key in ("epochs", "duration"):
        field = "duration_s" if key == "duration" else "epochs"
        return sorted(rows, key=lambda r: (r[field] is None, -(r[field] or 0)))
    if not key.replace("_", "").isalnum():
        raise ConfigError(f"--sort: expected one of {', '.join(SORT_KEYS)} or a metric name (got {key!r})")
    from nnlab.metrics import lower_is_better  # numpy: only when sorting by a metric

    lower = lower_is_better(key)
    values = {r["id"]: _metric(r, key) for r in rows}
    if rows and all(v is None for v in values.values()):
        raise ConfigError(f"--sort: no run has a metric {key!r} (main metrics here: "
                          f"{', '.join(sorted({str(r['metric']) for r in rows if r['metric']})) or 'none'})")
    return sorted(rows, key=lambda r: (values[r["id"]] is None, (values[r["id"]] or 0) * (1 if lower else -1)))


def _metric(row: dict[str, Any], key: str) -> float | None:
    """The run's `key`: its main metric, or from metrics.json (`val_accuracy` -> metrics.json val.accuracy)."""
    if row["metric"] == key and isinstance(row["value"], (int, float)):
        return float(row["value"])
    split, _, name = key.partition("_")
    if not name:
        split, name = "val", key
    try:
        value = json.loads((Path(row["folder"]) / runs.METRICS).read_text()).get(split, {}).get(name)
    except (OSError, ValueError, AttributeError):
        return None
    return float(value) if isinstance(value, (int, float)) and math.isfinite(value) else None


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
    busy = [r["id"] for r in rows if r["status"] == "running"]
    if busy:
        raise ConfigError(f"--rm: {busy[0]} is running; stop it first (or leave running runs out with --status)")
    for r in rows:
        typer.echo(f"{r['id']}  {r['name']}  {r['status']}")
    if not yes:
        if not sys.stdin.isatty():
            raise ConfigError(f"--rm: {len(rows)} run(s) listed above; add --yes to delete them without asking")
        typer.confirm(f"delete these {len(rows)} run folder(s)?", abort=True)
    for r in rows:
        with runs.claimed(r["folder"]):  # nobody may start resuming it while it goes
            shutil.rmtree(r["folder"])
    typer.echo(f"deleted {len(rows)} run folder(s) from {folder}")


def _plain(value: Any) -> Any:
    return "" if value is None else value

"""The runs `nnlab runs` lists: one row per run folder, trial runs folded into their sweeps, the --status, --name,
--sweep filters, sorting (by a metric too), the sweeps table's rows, and removal. Pure data: nothing is printed."""

from __future__ import annotations

import fnmatch
import json
import math
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

from nnlab import runs
from nnlab.errors import ConfigError, RunDamagedError

STATUSES = (*runs.STATUSES, "unreadable")  # a run whose meta.json cannot be read is listed as unreadable
SORT_KEYS = ("created", "name", "status", "epochs", "duration")


@dataclass(frozen=True)
class RunTable:
    """The runs to show, newest first unless sorted, and what chose them (the sweeps table applies it too)."""

    folder: Path
    rows: list[dict[str, Any]]  # id, name, status, epochs, epochs_planned, metric, value, duration_s, created, sweep,
    # folder (the run folder), and problem where meta.json could not be read
    statuses: frozenset[str]  # empty: any status
    name: str | None  # a glob on the config name or the id
    limit: int | None
    sweep: str | None  # the one sweep whose trial runs these are
    folded: int  # trial runs left out because each sweep is one line of the sweeps table


def read_table(folder: str | Path, *, statuses: Iterable[str] = (), name: str | None = None, sort: str = "created",
               limit: int | None = None, trials: bool = False, sweep: str | None = None) -> RunTable:
    """The runs in `folder` that match: a sweep's trials only with `trials` (or that sweep's with `sweep`, an id,
    unique prefix, folder or latest), then `statuses` and the `name` glob, sorted by `sort`, at most `limit`."""
    wanted = frozenset(statuses)
    unknown = sorted(wanted - set(STATUSES))
    if unknown:
        raise ConfigError(f"--status: unknown status {unknown[0]!r} (choose from: {', '.join(STATUSES)})")
    folder = Path(folder)
    found = sorted([*runs.list_runs(folder), *runs.unfinished_folders(folder)], key=lambda p: p.name, reverse=True)
    chosen = _find_sweep(sweep, folder) if sweep else None
    rows = _with_sweeps([run_row(run_dir) for run_dir in found], folder)
    folded = sum(r["sweep"] is not None for r in rows) if chosen is None and not trials else 0
    rows = [r for r in rows if (chosen is None and (trials or r["sweep"] is None)) or (r["sweep"] == chosen)]
    rows = [r for r in rows if matches(r, wanted, name)]
    return RunTable(folder, sorted_rows(rows, sort)[:limit], wanted, name, limit, chosen, folded)


def sweep_rows(table: RunTable) -> list[tuple[str, ...]]:
    """The sweeps table under the runs (read from the sweeps' files; no Optuna import), filtered as `table` was:
    (id, name, method, status, trial counts, best point) per sweep, newest first."""
    from nnlab.sweeps.aggregate import sweep_table_rows

    return [row for row in sweep_table_rows(table.folder)
            if (table.sweep is None or row[0] == table.sweep)
            and matches({"id": row[0], "name": row[1], "status": row[3]}, table.statuses, table.name)][:table.limit]


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


def matches(row: dict[str, Any], statuses: Iterable[str], name: str | None) -> bool:
    """--status and --name, for a run or a sweep row alike (an `id`, a `name` and a `status`)."""
    return ((not statuses or row["status"] in statuses)
            and (name is None or fnmatch.fnmatch(row["name"], name) or fnmatch.fnmatch(row["id"], name)))


def run_row(run_dir: Path) -> dict[str, Any]:
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


def sorted_rows(rows: list[dict[str, Any]], key: str) -> list[dict[str, Any]]:
    """Rows by `key`: created (as given: newest first), name, status, epochs, duration, or a metric (best first)."""
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
    values = {r["id"]: metric_value(r, key) for r in rows}
    if rows and all(v is None for v in values.values()):
        raise ConfigError(f"--sort: no run has a metric {key!r} (main metrics here: "
                          f"{', '.join(sorted({str(r['metric']) for r in rows if r['metric']})) or 'none'})")
    return sorted(rows, key=lambda r: (values[r["id"]] is None, (values[r["id"]] or 0) * (1 if lower else -1)))


def metric_value(row: dict[str, Any], key: str) -> float | None:
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


def check_removable(rows: list[dict[str, Any]]) -> None:
    """--rm: a running run is refused (its process still writes into the folder)."""
    busy = [r["id"] for r in rows if r["status"] == "running"]
    if busy:
        raise ConfigError(f"--rm: {busy[0]} is running; stop it first (or leave running runs out with --status)")


def remove_runs(rows: list[dict[str, Any]]) -> None:
    """Delete the rows' run folders, each claimed first so that nobody may start resuming it while it goes."""
    check_removable(rows)
    for r in rows:
        with runs.claimed(r["folder"]):
            shutil.rmtree(r["folder"])


__all__ = ["SORT_KEYS", "STATUSES", "RunTable", "check_removable", "matches", "metric_value", "read_table",
           "remove_runs", "run_row", "sorted_rows", "sweep_rows"]

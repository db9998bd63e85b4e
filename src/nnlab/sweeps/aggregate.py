"""Pure readers and writers of a sweep folder's tables: trials.csv, summary.csv, best.yaml, state.json;
finding sweeps by id. Reports and `nnlab runs` use this module; it imports neither Optuna nor Keras."""

from __future__ import annotations

import csv
import io
import json
import math
import re
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nnlab import runs
from nnlab.config import dump_yaml, read_yaml

SWEEPS = "sweeps"  # runs/sweeps/<id>/
SWEEP = "sweep.yaml"
BASE = "base.yaml"
STATE = "state.json"
TRIALS = "trials.csv"
SUMMARY = "summary.csv"
BEST = "best.yaml"
JOURNAL = "study.journal"
LOGS = "logs"
PLOTS = "plots"
REPORT = "report.html"

TRIAL_STATUSES = ("completed", "failed", "pruned", "skipped", "running", "waiting")  # skipped: its point was pruned
FIRST_COLUMNS = ["trial", "status", "seed", "run_id"]
LAST_COLUMNS = ["duration_s", "reason", "point", "attempt", "parameters", "threads", "worker"]


def sweeps_dir(runs_dir: str | Path) -> Path:
    return Path(runs_dir) / SWEEPS


# ---------------------------------------------------------------------------------------------
# trials.csv: one row per planned run (the latest attempt), swept parameters under their dotted paths.
def trial_columns(swept: list[str], metric: str) -> list[str]:
    return [*FIRST_COLUMNS, *swept, metric, *LAST_COLUMNS]


def write_trials(sweep_dir: str | Path, rows: list[dict[str, Any]], swept: list[str], metric: str) -> Path:
    path = Path(sweep_dir) / TRIALS
    runs.write_text(path, _csv(trial_columns(swept, metric), rows))
    return path


def read_trials(sweep_dir: str | Path) -> list[dict[str, Any]]:
    """trials.csv with numbers as numbers and parameter values parsed back from JSON."""
    return _read_csv(Path(sweep_dir) / TRIALS)


def _csv(columns: list[str], rows: list[dict[str, Any]]) -> str:
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=columns, lineterminator="\n", extrasaction="ignore")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: _cell(row.get(k)) for k in columns})
    return text.getvalue()


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return repr(round(value, 6)) if math.isfinite(value) else str(value)
    if isinstance(value, (list, dict, bool)):
        return json.dumps(value)
    return str(value)


def _read_csv(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    with path.open(newline="") as f:
        return [{k: _parse(v) for k, v in row.items()} for row in csv.DictReader(f)]


def _parse(text: str | None) -> Any:
    if text is None or text == "":
        return None
    try:
        return json.loads(text)
    except ValueError:
        if text in ("nan", "inf", "-inf"):
            return float(text)
        return text


# ---------------------------------------------------------------------------------------------
# summary.csv: one row per point over its repeats.
@dataclass(frozen=True)
class PointSummary:
    point: int
    params: dict[str, Any]
    values: list[float]  # the metric of each completed trial
    failed: int
    pruned: int
    parameters: int | None  # parameter count of the point's model

    @property
    def n(self) -> int:
        return len(self.values)

    @property
    def mean(self) -> float | None:
        return sum(self.values) / self.n if self.values else None

    @property
    def std(self) -> float | None:
        if not self.values:
            return None
        mean = self.mean
        return math.sqrt(sum((v - mean) ** 2 for v in self.values) / self.n) if self.n > 1 else 0.0


def summarize(rows: list[dict[str, Any]], swept: list[str], metric: str) -> list[PointSummary]:
    """Group trials by point: the metric's values over completed repeats, failures and prunings counted."""
    groups: dict[int, list[dict[str, Any]]] = {}
    for row in rows:
        if row.get("point") is not None:
            groups.setdefault(int(row["point"]), []).append(row)
    out = []
    for point in sorted(groups):
        members = groups[point]
        values = [float(r[metric]) for r in members
                  if r.get("status") == "completed" and isinstance(r.get(metric), (int, float))
                  and math.isfinite(float(r[metric]))]
        counts = [r["parameters"] for r in members if isinstance(r.get("parameters"), int)]
        out.append(PointSummary(point, {p: members[0].get(p) for p in swept}, values,
                                sum(r.get("status") == "failed" for r in members),
                                sum(r.get("status") == "pruned" for r in members), counts[0] if counts else None))
    return out


def write_summary(sweep_dir: str | Path, points: list[PointSummary], swept: list[str], metric: str) -> Path:
    columns = ["point", *swept, "n", f"{metric}_mean", f"{metric}_std", f"{metric}_min", f"{metric}_max", "failed",
               "pruned", "parameters"]
    rows = [{"point": p.point, **p.params, "n": p.n, f"{metric}_mean": p.mean, f"{metric}_std": p.std,
             f"{metric}_min": min(p.values) if p.values else None, f"{metric}_max": max(p.values) if p.values else None,
             "failed": p.failed, "pruned": p.pruned, "parameters": p.parameters} for p in points]
    path = Path(sweep_dir) / SUMMARY
    runs.write_text(path, _csv(columns, rows))
    return path


def best_point(points: list[PointSummary], goal: str) -> PointSummary | None:
    """The point with the best mean over its repeats (ties: the earlier point)."""
    scored = [p for p in points if p.mean is not None]
    if not scored:
        return None
    sign = -1 if goal == "maximize" else 1
    return min(scored, key=lambda p: (sign * p.mean, p.point))


def write_best(sweep_dir: str | Path, config: dict[str, Any], note: str) -> Path:
    """best.yaml: a full experiment file; `nnlab train best.yaml` trains the winner."""
    path = Path(sweep_dir) / BEST
    runs.write_text(path, f"# {note}\n# train it: nnlab train {path}\n" + dump_yaml(config))
    return path


# ---------------------------------------------------------------------------------------------
# state.json: the sweep's own status (running while a `nnlab sweep` process drives it).
def write_sweep_files(sweep_dir: str | Path, sweep_file: dict[str, Any], base: dict[str, Any]) -> None:
    """sweep.yaml (the sweep as it runs: spec, name, source, command...) and base.yaml (its base experiment)."""
    runs.write_text(Path(sweep_dir) / SWEEP, dump_yaml(sweep_file))
    runs.write_text(Path(sweep_dir) / BASE, dump_yaml(base))


def write_state(sweep_dir: str | Path, status: str, **extra: Any) -> None:
    path = Path(sweep_dir) / STATE
    old = runs.read_json(path) if path.is_file() else {}
    runs.write_json(path, {**old, "status": status, "updated_at": time.time(), **extra})


def read_state(sweep_dir: str | Path) -> dict[str, Any]:
    """state.json; a `running` sweep whose driving process is gone on this host reads `interrupted`."""
    path = Path(sweep_dir) / STATE
    state = runs.read_json(path) if path.is_file() else {}
    state["status"] = runs.effective_status(state) if state.get("status") == "running" else state.get("status", "?")
    return state


def read_metric(run_dir: Path | None, metric: str) -> tuple[float | None, str | None]:
    """The sweep's metric from the run's metrics.json: (value, None) or (None, why it is missing)."""
    from nnlab.sweeps.spec import MetricSpec

    split, key = MetricSpec(name=metric).split_and_key
    path = run_dir / runs.METRICS if run_dir else None
    if path is None or not path.is_file():
        return None, "the run wrote no metrics.json"
    scores = runs.read_json(path)
    value = (scores.get(split) or {}).get(key)
    if not isinstance(value, (int, float)):
        known = [f"{s}_{k}" if s != "train" else k for s, d in scores.items() for k in d]
        return None, f"metric {metric} is not in metrics.json (it has: {', '.join(known)})"
    return float(value), None



MASK = "***"
URL_PASSWORD = re.compile(r"(://[^:/@\s]*):[^\s?]*@")  # `user:secret@host`; group 1 is everything before the `:`


def masked_url(text: str) -> str:
    """`text` with every password libpq accepts replaced by ***: `user:secret@host` (the secret may itself
    hold `@`: everything up to the last one before the query is masked), `?password=secret` / `&password=` and the
    `password=secret` of a keyword connection string. Storage URLs are written to files and shown in messages."""
    text = URL_PASSWORD.sub(rf"\1:{MASK}@", text)
    return re.sub(r"(\bpassword\s*=\s*)('[^']*'|[^&\s]+)", rf"\1{MASK}", text, flags=re.IGNORECASE)


def host() -> str:
    return socket.gethostname()


def default_threads(workers: int) -> int:
    """Threads per trial so that `workers` trials share this machine's cores: cores // workers, at least 1."""
    import os

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, cores // max(1, workers))


# ---------------------------------------------------------------------------------------------
# Finding sweeps.
def list_sweeps(runs_dir: str | Path) -> list[Path]:
    """Sweep folders (those holding sweep.yaml), newest first."""
    folder = sweeps_dir(runs_dir)
    if not folder.is_dir():
        return []
    return sorted((p for p in folder.iterdir() if (p / SWEEP).is_file()), key=lambda p: p.name, reverse=True)


def find_sweep(ref: str, runs_dir: str | Path) -> Path:
    """A sweep by folder path, full id, unique id prefix, or `latest`."""
    return runs.find_folder(ref, lambda: list_sweeps(runs_dir), marker=SWEEP, kind="sweep", where=sweeps_dir(runs_dir))


@dataclass(frozen=True)
class SweepSummary:
    """A sweep folder read back: what `nnlab report` and `nnlab runs` show."""

    sweep_id: str
    sweep_dir: Path
    spec: dict[str, Any]
    state: dict[str, Any]
    rows: list[dict[str, Any]]
    points: list[PointSummary]

    @property
    def name(self) -> str:
        return str(self.spec.get("name", self.sweep_id))

    @property
    def metric(self) -> str:
        return str((self.spec.get("metric") or {}).get("name", "val_loss"))

    @property
    def goal(self) -> str:
        return str((self.spec.get("metric") or {}).get("goal", "minimize"))

    @property
    def swept(self) -> list[str]:
        return [p for p, s in (self.spec.get("parameters") or {}).items() if "value" not in s]

    @property
    def fixed(self) -> list[str]:
        """`path=value` for what every trial shares that the sweep set: its constants (as the command line left
        them), then the command line's other overrides of the base (sweep.yaml `overrides`)."""
        parameters = self.spec.get("parameters") or {}
        shown = [f"{p}={json.dumps(s['value'])}" for p, s in parameters.items() if "value" in s]
        return shown + [str(w) for w in self.spec.get("overrides") or [] if str(w).partition("=")[0] not in parameters]

    def counts(self) -> dict[str, int]:
        return {status: sum(r.get("status") == status for r in self.rows) for status in TRIAL_STATUSES}

    def best(self) -> PointSummary | None:
        return best_point(self.points, self.goal)


def read_sweep(sweep_dir: str | Path) -> SweepSummary:
    sweep_dir = Path(sweep_dir)
    spec = read_yaml(sweep_dir / SWEEP) or {}
    rows = read_trials(sweep_dir)
    swept = [p for p, s in (spec.get("parameters") or {}).items() if "value" not in s]
    metric = str((spec.get("metric") or {}).get("name", "val_loss"))
    return SweepSummary(sweep_dir.name, sweep_dir, spec, read_state(sweep_dir), rows, summarize(rows, swept, metric))


def sweep_table_rows(runs_dir: str | Path) -> list[tuple[str, ...]]:
    """`nnlab runs`: one row per sweep (id, name, method, status, trial counts, best point), newest first."""
    rows = []
    for sweep_dir in list_sweeps(runs_dir):
        sweep = read_sweep(sweep_dir)
        counts = ", ".join(f"{n} {s}" for s, n in sweep.counts().items() if n) or "none"
        best = sweep.best()
        shown = "-"
        if best is not None:
            params = ", ".join(f"{k}={json.dumps(v)}" for k, v in best.params.items())
            shown = f"{sweep.metric} {best.mean:.4f} ({params or 'base'})"
        rows.append((sweep.sweep_id, sweep.name, str(sweep.spec.get("method", "?")), str(sweep.state.get("status")),
                     counts, shown))
    return rows


__all__ = ["sweep_table_rows", "PointSummary", "SweepSummary", "best_point", "find_sweep", "list_sweeps", "read_state", "read_sweep",
           "read_trials", "summarize", "sweeps_dir", "write_best", "write_state", "write_summary", "write_trials"]

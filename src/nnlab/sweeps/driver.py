"""The driving process of a sweep: starts the workers, shows progress, handles Ctrl-C, writes the tables
and the sweep's state at the end."""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path

from nnlab.errors import NnlabError
from nnlab.sweeps import aggregate
from nnlab.sweeps import study as studies
from nnlab.sweeps.worker import STORAGE_ENV, HostSettings, ignore_signals, die_with_parent


def drive(sweep_dir: Path, storage_url: str, *, workers: int, threads: int, device: str = "auto",
          backend: str | None = None, hosts: HostSettings = HostSettings(), console=None,
          command: list[str] | None = None) -> int:
    """Run `workers` worker processes until the study is done; return the sweep's exit code (0, 1 or 130)."""
    study = studies.load(storage_url, sweep_dir)
    study.check_folder(sweep_dir)  # before anything runs: edited files are refused, never mixed in
    aggregate.write_state(sweep_dir, "running", pid=os.getpid(), host=aggregate.host(), workers=workers,
                          threads=threads, trial_hosts=hosts.to_dict(), started_at=time.time(), finished_at=None,
                          command=command)
    logs = sweep_dir / aggregate.LOGS
    logs.mkdir(exist_ok=True)
    procs = []
    for i in range(workers):
        worker = f"w{i}-{secrets.token_hex(6)}"  # unique in any machine or PID namespace; recorded on its trials
        cmd = [sys.executable, "-m", "nnlab.sweeps.worker", str(sweep_dir), "--threads", str(threads),
               "--worker", worker, "--device", device, "--host-trials", str(hosts.max_trials),
               "--host-memory", f"{hosts.max_rss_mb:g}", *(["--isolate"] if hosts.isolate else [])]
        if backend:
            cmd += ["--backend", backend]
        with (logs / f"{worker}.log").open("ab") as log:
            procs.append(subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, preexec_fn=die_with_parent,
                                          env={**os.environ, "NNLAB_CPU_SLOT": str(i),  # JAX trials: which CPUs
                                               STORAGE_ENV: storage_url}))  # never in argv: `ps` shows argv to all
    started = time.time()
    status = "interrupted"
    try:
        last, shown_at = None, 0.0
        seen = {(r["trial"], r["seed"]) for r in study.rows() if r["status"] in FINISHED}  # before this drive
        running_since: dict[tuple[int, int], float] = {}  # when this process first saw each run running
        while any(p.poll() is None for p in procs) or running_elsewhere(study):
            time.sleep(1.0)
            rows = study.rows()
            now = time.time()
            running_since = {key: running_since.get(key, now) for key in
                             ((r["trial"], r["seed"]) for r in rows if r["status"] == "running")}
            for row in rows:
                if row["status"] in FINISHED and (row["trial"], row["seed"]) not in seen:
                    seen.add((row["trial"], row["seed"]))
                    _say(console, trial_line(row, study.spec))
            line = progress_line(study, started, workers=workers, rows=rows,
                                 running_for={key: now - since for key, since in running_since.items()})
            counts = line.split(";")[0]
            if counts != last or time.time() - shown_at >= 30:  # on every change, else twice a minute
                _say(console, line)
                last, shown_at = counts, time.time()
        status = "done"
    except studies.StorageUnavailableError:
        # The workers wait out the same outage and give up about now; their trials stay running in the
        # study, and their lease files, freed when they exit, let a resume rerun them at once.
        for p in procs:
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
        aggregate.write_state(sweep_dir, "interrupted", finished_at=time.time(), reason="storage unreachable")
        raise
    except KeyboardInterrupt:
        ignore_signals()
        deadline = time.time() + 10  # after Ctrl-C the workers got SIGINT too: let them re-enqueue their trials
        while any(p.poll() is None for p in procs) and time.time() < deadline:
            time.sleep(0.2)
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(timeout=60)
            except subprocess.TimeoutExpired:
                p.kill()
        study.requeue_stale()
    try:
        rows = studies.write_tables(sweep_dir, study)
    except studies.StorageUnavailableError:  # the workers gave up on the database (exit 130) before this process
        aggregate.write_state(sweep_dir, "interrupted", finished_at=time.time(), reason="storage unreachable")
        raise
    crashed = [p.returncode for p in procs if p.returncode not in (0, 130, -signal.SIGTERM)]
    failed = any(r["status"] == "failed" for r in rows)
    left = any(r["status"] in ("waiting", "running") for r in rows)
    # The state and the exit code follow the trials: a worker that died while the others finished its
    # trials is a note, not a failure; trials left over are a sweep to resume.
    final = "interrupted" if status == "interrupted" or left else ("failed" if failed else "completed")
    aggregate.write_state(sweep_dir, final, finished_at=time.time())
    if status == "interrupted":
        raise KeyboardInterrupt
    if crashed:
        note = f"{len(crashed)} worker(s) died (exit codes {crashed}; see {logs})"
        if left:
            raise NnlabError(f"{note}; trials are left: nnlab sweep --resume {sweep_dir.name}")
        _say(console, f"note: {note}; the other workers finished their trials")
    return 1 if failed or left else 0


FINISHED = ("completed", "pruned", "failed", "skipped")


def running_elsewhere(study) -> bool:
    """Trials that other processes' live workers still train (another --resume, a --join on another machine):
    once this process's workers are done it waits for them, rather than calling them left over. A trial whose
    worker died is re-enqueued here (`requeue_stale`) and then no longer running: the sweep is to resume."""
    study.requeue_stale()
    return study.running()


def trial_line(row: dict, spec) -> str:
    """One finished trial: `trial 3 (point 1, seed 0) completed val_loss=0.1234 in 2.5s  model.hidden=[8]`."""
    metric = spec.metric.name
    value = row.get(metric)
    shown = f" {metric}={value:.4f}" if isinstance(value, float) else ""
    took = f" in {row['duration_s']:.1f}s" if isinstance(row.get("duration_s"), (int, float)) else ""
    params = "  ".join(f"{k}={json.dumps(row[k])}" for k in spec.parameters if k in row and
                       spec.parameters[k].kind != "constant")
    reason = f": {row['reason']}" if row["status"] in ("failed", "pruned") and row.get("reason") else ""
    return (f"trial {row['trial']} (point {row['point']}, seed {row['seed']}) {row['status']}{shown}{took}"
            f"{reason}" + (f"  {params}" if params else ""))


def progress_line(study, started: float, *, workers: int = 1, rows: list[dict] | None = None,
                  running_for: dict[tuple[int, int], float] | None = None) -> str:
    """The totals; the ETA is the trials left times the median duration of the trials finished so far,
    shared among the workers (steady: one slow start or a burst of finishes does not swing it). A running
    trial counts only the part of the median it has not run yet (`running_for`: seconds by (trial, seed)),
    so the ETA of long trials counts down between finishes."""
    rows = study.rows() if rows is None else rows
    counts = {s: sum(r["status"] == s for r in rows) for s in aggregate.TRIAL_STATUSES}
    done = counts["completed"] + counts["pruned"] + counts["failed"] + counts["skipped"]
    metric = study.spec.metric.name
    values = [r[metric] for r in rows if r["status"] == "completed" and isinstance(r[metric], float)]
    best = (max if study.spec.metric.goal == "maximize" else min)(values) if values else None
    elapsed = time.time() - started
    left = counts["waiting"] + counts["running"]
    durations = sorted(r["duration_s"] for r in rows if r["status"] in ("completed", "pruned", "failed")
                       and isinstance(r.get("duration_s"), (int, float)))
    eta = ""
    if durations and left:
        median = durations[len(durations) // 2]
        ran = running_for or {}
        work = counts["waiting"] * median + sum(max(0.0, median - ran.get((r["trial"], r["seed"]), 0.0))
                                                for r in rows if r["status"] == "running")
        eta = f", ETA {_clock(work / max(1, min(workers, left)))}"
    best_text = f", best {metric} {best:.4f}" if best is not None else ""
    skipped = f", {counts['skipped']} skipped" if counts["skipped"] else ""
    return (f"trials: {done} done ({counts['failed']} failed, {counts['pruned']} pruned{skipped}), "
            f"{counts['running']} running, "
            f"{counts['waiting']} left{best_text}; {_clock(elapsed)} elapsed{eta}")


def _clock(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


def _say(console, line: str) -> None:
    if console is None:
        print(line, flush=True)
    else:
        console.print(line, highlight=False, soft_wrap=True)
        console.file.flush()  # a log file sees each line as it happens


__all__ = ["drive", "progress_line", "trial_line"]

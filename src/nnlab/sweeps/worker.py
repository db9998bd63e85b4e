"""A sweep worker: claims trials from the study one at a time and trains each seed in a fresh `nnlab train`
process (pruning from its history.csv, a heartbeat while it runs). Started by the driver as
`python -m nnlab.sweeps.worker SWEEP_DIR --storage URL ...`."""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import fcntl
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from nnlab import runs
from nnlab.sweeps import aggregate
from nnlab.sweeps.spec import point_overrides
from nnlab.sweeps.study import HEARTBEAT_S, LeaseLost

POLL_S = 0.5
HANG_S = float(os.environ.get("NNLAB_SWEEP_HANG_S", "3600"))  # no epoch for this long: the trial is stopped, failed
STORAGE_ENV = "NNLAB_SWEEP_STORAGE"  # the storage URL, password included: the environment is private to its user


@dataclass
class WorkerContext:
    sweep_dir: Path
    runs_dir: Path
    study: Any  # study.SweepStudy, or a fake with its methods
    threads: int
    worker: str
    device: str = "auto"
    backend: str | None = None


def work(sweep_dir: Path, storage_url: str, *, threads: int, worker: str, device: str = "auto",
         backend: str | None = None, stream: TextIO | None = None) -> int:
    """The worker process: open the study, run the claim loop; returns 130 when interrupted, else 0."""
    from nnlab.sweeps import study as studies

    lease = studies.hold_lease(sweep_dir, worker)  # held for the life of this process: gone means dead
    study = studies.load(storage_url, sweep_dir)
    study.check_folder(sweep_dir)
    ctx = WorkerContext(sweep_dir, sweep_dir.parent.parent, study, threads, worker, device, backend)
    try:
        return claim_loop(ctx, stream or sys.stdout)
    finally:
        os.close(lease)


def claim_loop(ctx: WorkerContext, stream: TextIO) -> int:
    """Claim, run, record, until no trial is waiting or running; 130 when interrupted, else 0."""
    from nnlab.sweeps.study import write_tables

    study = ctx.study
    while True:
        study.requeue_stale()
        claim = study.claim()
        if claim is None:
            if not study.unfinished():
                return 0
            time.sleep(2 * POLL_S)  # others are running: one of them may die and need a rerun
            continue
        try:
            run_trial(ctx, claim, stream)
        except KeyboardInterrupt:
            return 130
        except LeaseLost:  # declared stale (no sign of life in time) and re-enqueued by another process
            print(f"{ctx.worker}: trial {claim.index} attempt {claim.attempt} was re-enqueued by another process; "
                  "its training was stopped and nothing of it recorded; moving on", file=stream, flush=True)
        try:
            write_tables(ctx.sweep_dir, study)
        except OSError as exc:  # a full disk must not kill the worker; the parent writes the tables again
            print(f"{ctx.worker}: could not write the tables: {exc}", file=stream, flush=True)


def run_trial(ctx: WorkerContext, claim, stream: TextIO) -> None:
    """Run every seed of one claimed trial, each in a fresh `nnlab train` process, and record its end."""
    study = ctx.study
    study.set_attrs(claim, worker={"id": ctx.worker, "name": ctx.worker, "host": aggregate.host(), "pid": os.getpid()},
                    heartbeat=time.time(), threads=ctx.threads)
    params = study.suggest(claim)  # bayes: TPE samples the point now (a retry gets its stored values back)
    results: list[dict[str, Any]] = list(claim.attrs.get("runs", []))  # completed by an earlier attempt
    done = {r["seed"] for r in results}
    pruned = False
    try:
        for seed in claim.seeds:
            if seed in done:
                continue
            study.set_attrs(claim, current_seed=seed, current_run=None)
            result = run_one(ctx, claim, params, seed, report=not results, stream=stream)
            results.append(result)
            study.set_attrs(claim, runs=results)
            if result["status"] != "completed":
                pruned = result["status"] == "pruned"
                break
    except KeyboardInterrupt:
        ignore_signals()  # a second Ctrl-C or the parent's SIGTERM must not cut the bookkeeping short
        study.requeue(claim, "interrupted (resume with nnlab sweep --resume)")
        raise
    failed = [r for r in results if r["status"] == "failed"]
    if failed:
        study.set_attrs(claim, reason=failed[0]["reason"])
        study.finish(claim, "failed")
    elif pruned:
        study.finish(claim, "pruned")
    else:
        values = [r["value"] for r in results]
        study.finish(claim, "completed", sum(values) / len(values))


def run_one(ctx: WorkerContext, claim, params: dict[str, Any], seed: int, *, report: bool,
            stream: TextIO) -> dict[str, Any]:
    """One `nnlab train` child: heartbeat while it runs, pruning from its history.csv, its result."""
    spec, index, attempt = ctx.study.spec, claim.index, claim.attempt
    name = f"{ctx.study.sweep_name}-{index:03d}"[:64]
    base = studies_base_file(ctx)
    command = [sys.executable, "-m", "nnlab.cli.main", "train", str(base), f"name={name}",
               f"seed={seed}", *point_overrides(params), "--runs-dir", str(ctx.runs_dir), "--device", ctx.device]
    if ctx.backend:
        command += ["--backend", ctx.backend]
    env = {**os.environ, "NNLAB_THREADS": str(ctx.threads), "NNLAB_SWEEP": ctx.sweep_dir.name}
    env.pop(STORAGE_ENV, None)  # a trial needs no storage URL
    log_path = ctx.sweep_dir / aggregate.LOGS / f"trial-{index:03d}-seed{seed}-attempt{attempt}.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    started = time.time()
    print(f"{ctx.worker}: trial {index} seed {seed} {json.dumps(params)}", file=stream, flush=True)
    # The child's own sign of life, from its first instant: a lock it alone holds (this process lets go of
    # its descriptor once the child has it), so a stopped worker's training is still seen alive.
    lock = os.open(log_path.with_suffix(".lock"), os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX)
        ctx.study.set_attrs(claim, current_log=log_path.name)
        with log_path.open("wb") as log:
            child = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env, pass_fds=(lock,),
                                     preexec_fn=die_with_parent)
    finally:
        os.close(lock)
    run_dir: Path | None = None
    reported = 0
    beat = time.time()
    pruned_at = None
    hung = None
    found_at = started
    try:
        while child.poll() is None:
            time.sleep(POLL_S)
            history = run_dir / runs.HISTORY if run_dir is not None else None
            last_epoch = max(found_at, history.stat().st_mtime if history and history.is_file() else 0)
            if HANG_S and run_dir and time.time() - last_epoch > HANG_S:  # a deadlock, a stuck read, a stopped child
                hung = f"no epoch for {time.time() - last_epoch:.0f}s: stopped (NNLAB_SWEEP_HANG_S={HANG_S:g})"
                child.kill()  # a hung process may not heed SIGTERM
                child.wait()
                break
            if time.time() - beat >= HEARTBEAT_S:
                ctx.study.heartbeat(claim)  # LeaseLost when another process re-enqueued this attempt
                beat = time.time()
            if run_dir is None:
                run_dir = aggregate.run_dir_from_log(log_path, ctx.runs_dir)
                if run_dir is not None:
                    found_at = time.time()  # the hang clock starts here: imports and data loading came before
                    ctx.study.set_attrs(claim, current_run=run_dir.name)  # its lock and history: signs of life
            if report and run_dir is not None and spec.early_terminate is not None:
                reported, pruned_at = _report_epochs(ctx.study, claim, run_dir, spec.metric.name, reported)
                if pruned_at is not None:
                    child.terminate()
                    child.wait()
                    break
        run_dir = run_dir or aggregate.run_dir_from_log(log_path, ctx.runs_dir)
        ctx.study.heartbeat(claim)  # still ours? a superseded attempt records nothing, not even in its run folder
        if report and run_dir is not None and spec.early_terminate is not None and pruned_at is None:
            _report_epochs(ctx.study, claim, run_dir, spec.metric.name, reported, decide=False)  # the whole curve
    except LeaseLost:
        _stop(child, at_once=True)
        raise
    except BaseException:  # Ctrl-C: the child must not train on
        _stop(child)
        raise
    wall = time.time() - started
    result: dict[str, Any] = {"seed": seed, "run_id": run_dir.name if run_dir else None, "wall_s": round(wall, 3),
                              "value": None, "reason": None}
    meta = runs.read_json(run_dir / runs.META) if run_dir and (run_dir / runs.META).is_file() else {}
    result["parameters"] = (meta.get("parameters") or {}).get("total")
    result["duration_s"] = round(wall, 3)
    result["train_s"] = meta.get("duration_s")
    if hung is not None:
        result.update(status="failed", reason=hung)
    elif pruned_at is not None:
        result.update(status="pruned", reason=f"pruned after epoch {pruned_at}",
                      value=_last_value(run_dir, spec.metric.name))
    elif child.returncode == 0:
        value, reason = aggregate.read_metric(run_dir, spec.metric.name)
        result.update(status="completed" if reason is None else "failed", value=value, reason=reason)
    else:
        result.update(status="failed", reason=_failure_reason(log_path, child.returncode))
    if run_dir is not None and meta:
        with runs.claimed(run_dir):  # the child has exited; its lock is free, so this write owns the run
            if pruned_at is not None:  # stopped by the sweep's pruner: not a run to resume
                runs.update_meta(run_dir, status="pruned", reason=result["reason"])
            elif hung is not None:
                runs.update_meta(run_dir, status="failed", reason=hung)
            runs.update_meta(run_dir, sweep={"id": ctx.sweep_dir.name, "trial": index, "point": claim.attrs.get(
                "point"), "attempt": attempt, "threads": ctx.threads, "worker": ctx.worker, "wall_s": result["wall_s"]})
    shown = f"{result['value']:.4f}" if isinstance(result["value"], float) else "-"
    print(f"{ctx.worker}: trial {index} seed {seed} {result['status']} {spec.metric.name}={shown} "
          f"in {wall:.1f}s" + (f": {result['reason']}" if result["reason"] else ""), file=stream, flush=True)
    return result


def studies_base_file(ctx: WorkerContext) -> Path:
    """The study's base experiment as a file of this worker's own (.base-<id>.yaml beside base.yaml, so relative
    paths mean the same): what trials train, whatever happens to the folder's base.yaml meanwhile."""
    from nnlab.config import dump_yaml

    path = ctx.sweep_dir / f".base-{ctx.worker}.yaml"
    if not path.is_file():
        runs.write_text(path, dump_yaml(ctx.study.base))
    return path


def die_with_parent() -> None:
    """In the child, before exec: the kernel sends SIGKILL when the parent dies (no orphan trains on)."""
    PR_SET_PDEATHSIG = 1
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except OSError:  # not Linux: children may outlive a killed parent
        pass


def ignore_signals() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


def _stop(child: subprocess.Popen, *, at_once: bool = False) -> None:
    """Ask the child to stop (SIGTERM: nnlab train marks its run interrupted), then make sure it is gone."""
    with contextlib.suppress(subprocess.TimeoutExpired):  # after Ctrl-C the child got SIGINT itself
        child.wait(timeout=0 if at_once else 2)
    if child.poll() is None:
        child.send_signal(signal.SIGTERM)
        try:
            child.wait(timeout=30)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()


def _report_epochs(study, claim, run_dir: Path, metric: str, reported: int, *, decide: bool = True
                   ) -> tuple[int, int | None]:
    """Report new epochs of history.csv to the pruner; the epoch to stop after, if it says so (`decide`).
    A run that completed reports its whole curve: other trials are judged against it at every epoch."""
    rows = runs.read_history(run_dir) if (run_dir / runs.HISTORY).is_file() else []
    for row in rows[reported:]:
        value = row.get(metric)
        if value is None:
            continue
        if study.report(claim, float(value), int(row["epoch"])) and decide:
            return len(rows), int(row["epoch"])
    return len(rows), None


def _last_value(run_dir: Path | None, metric: str) -> float | None:
    rows = runs.read_history(run_dir) if run_dir else []
    values = [r[metric] for r in rows if metric in r]
    return values[-1] if values else None


def _failure_reason(log_path: Path, returncode: int) -> str:
    """The child's one-line `error: ...`, else how it ended."""
    try:
        lines = log_path.read_text(errors="replace").splitlines()
    except OSError:
        lines = []
    errors = [line.removeprefix("error: ").strip() for line in lines if line.startswith("error: ")]
    if errors:
        return errors[-1][:500]
    if returncode < 0:
        return f"killed by signal {signal.Signals(-returncode).name}"
    tail = next((line.strip() for line in reversed(lines) if line.strip()), "")
    return f"exit code {returncode}" + (f": {tail[:300]}" if tail else "")


# ---------------------------------------------------------------------------------------------
# The process entry.
def _terminate(signum, frame):
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="nnlab-sweep-worker")
    parser.add_argument("sweep_dir", type=Path)
    parser.add_argument("--storage", default=None, help=f"the storage URL (default: ${STORAGE_ENV})")
    parser.add_argument("--threads", type=int, required=True)
    parser.add_argument("--worker", required=True)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--backend", default=None)
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, _terminate)  # stop like Ctrl-C: the running trial is re-enqueued
    from nnlab.sweeps.study import StorageUnavailableError

    try:
        return work(args.sweep_dir, args.storage or os.environ[STORAGE_ENV], threads=args.threads, worker=args.worker,
                    device=args.device, backend=args.backend)
    except KeyboardInterrupt:
        return 130
    except StorageUnavailableError as exc:  # its trial stays running in the study: a resume reruns it at once
        print(f"error: {exc}", file=sys.stderr, flush=True)
        return StorageUnavailableError.exit_code


if __name__ == "__main__":
    sys.exit(main())

"""The sweep engine: an Optuna study holds the trials; worker processes claim them one at a time and train
each in a fresh `nnlab train` process.

Exactly-once (SWEEPS.md): only the process that creates the study enqueues trials (every grid/random point
times every seed; for bayes one empty slot per point, sampled by TPE when claimed), then marks the study
ready. A worker claims a WAITING trial with the storage's compare-and-set move to RUNNING and never calls
`study.ask()`, which would sample new trials. Workers refresh a heartbeat on the trial they run; a RUNNING
trial whose worker is gone (same host: its pid is dead; any host: heartbeat older than the grace period)
is marked failed and re-enqueued once, by whichever process wins the state update.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import optuna
from optuna.exceptions import UpdateFinishedTrialError
from optuna.trial import TrialState

from nnlab import runs
from nnlab.config import dump_yaml, read_yaml
from nnlab.errors import ConfigError, NnlabError
from nnlab.sweeps import aggregate
from nnlab.sweeps.spec import SweepSpec, point_overrides

HEARTBEAT_S = 5.0
GRACE_S = float(os.environ.get("NNLAB_SWEEP_GRACE_S", "60"))  # a heartbeat older than this: the worker is gone
POLL_S = 0.5
READY = "nnlab_ready"
STATUS = {TrialState.COMPLETE: "completed", TrialState.FAIL: "failed", TrialState.PRUNED: "pruned",
          TrialState.RUNNING: "running", TrialState.WAITING: "waiting"}

optuna.logging.set_verbosity(optuna.logging.WARNING)


# ---------------------------------------------------------------------------------------------
# Storage and study.
def open_storage(url: str, sweep_dir: Path | None):
    """`journal` (a file in the sweep folder) or an SQLAlchemy URL such as postgresql://user@host/db."""
    if url == "journal":
        from optuna.storages import JournalStorage
        from optuna.storages.journal import JournalFileBackend

        return JournalStorage(JournalFileBackend(str(Path(sweep_dir) / aggregate.JOURNAL)))
    if url.startswith("postgresql"):
        try:
            import psycopg  # noqa: F401
        except ImportError:
            raise ConfigError("--storage postgresql://...: the driver is missing; pip install 'nnlab[postgres]'") from None
    try:
        return optuna.storages.RDBStorage(url, engine_kwargs={"pool_pre_ping": True})
    except Exception as exc:  # bad URL, server down, wrong password: one line
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ConfigError(f"--storage {aggregate.masked_url(url)}: cannot open the study storage: {first}") from None


def _load_study(storage, sweep_id: str, spec: SweepSpec | None = None):
    try:
        study = optuna.load_study(study_name=sweep_id, storage=storage)
    except KeyError:
        raise ConfigError(f"no sweep {sweep_id!r} in this storage") from None
    if not study.user_attrs.get(READY):
        raise ConfigError(f"sweep {sweep_id}: its creation was cut short before every trial was enqueued; "
                          "start the sweep again")
    spec = spec or SweepSpec.model_validate(study.user_attrs["nnlab_spec"])
    study.pruner = _pruner(spec)
    return study


def _pruner(spec: SweepSpec):
    rule = spec.early_terminate
    if rule is None:
        return optuna.pruners.NopPruner()
    if rule.type == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=rule.startup_trials, n_warmup_steps=rule.min_epochs)
    return optuna.pruners.HyperbandPruner(min_resource=rule.min_iter, reduction_factor=rule.eta)


def create(sweep, runs_dir: Path, storage_url: str, command: list[str]) -> Path:
    """Make the sweep folder and the study, enqueue every trial, mark the study ready; return the folder."""
    sweep_dir = runs.create_run_dir(aggregate.sweeps_dir(runs_dir), sweep.name)
    try:
        storage = open_storage(storage_url, sweep_dir)
        direction = sweep.spec.metric.goal
        study = optuna.create_study(study_name=sweep_dir.name, storage=storage, direction=direction)
    except BaseException:
        import shutil

        shutil.rmtree(sweep_dir, ignore_errors=True)
        raise
    resolved = sweep.to_dict()
    runs.write_text(sweep_dir / aggregate.SWEEP, dump_yaml({**resolved, "source": sweep.source,
                                                             "storage": aggregate.masked_url(storage_url),
                                                             "created": runs._iso(time.time()), "command": command}))
    runs.write_text(sweep_dir / aggregate.BASE, dump_yaml(sweep.base))
    study.set_user_attr("nnlab_spec", sweep.spec.model_dump(mode="json", exclude_unset=True))
    study.set_user_attr("nnlab_name", sweep.name)
    study.set_user_attr("nnlab_base", sweep.base)
    study.set_user_attr("nnlab_source", sweep.source)
    if sweep.spec.method == "bayes":
        slots = [{"index": i, "point": i, "seeds": sweep.seeds} for i in range(sweep.spec.run_cap)]
    else:
        slots = [{"index": t.index, "point": t.point, "seeds": [t.seed], "params": t.params} for t in sweep.trials()]
    study.add_trials([optuna.trial.create_trial(state=TrialState.WAITING, user_attrs={**slot, "attempt": 1})
                      for slot in slots])
    study.set_user_attr(READY, True)
    return sweep_dir


def attach(sweep_id: str, runs_dir: Path, storage_url: str, *, wait_s: float = 600) -> Path:
    """--join: the local sweep folder of a study that lives in a shared storage (made here when missing)."""
    storage = open_storage(storage_url, None)
    deadline = time.time() + wait_s
    while True:
        try:
            study = optuna.load_study(study_name=sweep_id, storage=storage)
        except KeyError:
            raise ConfigError(f"--join {sweep_id}: no such sweep in {aggregate.masked_url(storage_url)}") from None
        if study.user_attrs.get(READY):
            break
        if time.time() > deadline:
            raise ConfigError(f"--join {sweep_id}: the sweep was never marked ready (its creator died?)")
        time.sleep(1)
    sweep_dir = aggregate.sweeps_dir(runs_dir) / sweep_id
    if not (sweep_dir / aggregate.SWEEP).is_file():
        sweep_dir.mkdir(parents=True, exist_ok=True)
        spec = study.user_attrs["nnlab_spec"]
        runs.write_text(sweep_dir / aggregate.SWEEP, dump_yaml({**spec, "name": study.user_attrs["nnlab_name"],
                                                                 "source": study.user_attrs["nnlab_source"],
                                                                 "storage": aggregate.masked_url(storage_url),
                                                                 "joined": True}))
        runs.write_text(sweep_dir / aggregate.BASE, dump_yaml(study.user_attrs["nnlab_base"]))
    return sweep_dir


def read_sweep_file(sweep_dir: Path) -> dict[str, Any]:
    path = sweep_dir / aggregate.SWEEP
    if not path.is_file():
        raise ConfigError(f"{sweep_dir}: not a sweep folder (no {aggregate.SWEEP})")
    return read_yaml(path) or {}


# ---------------------------------------------------------------------------------------------
# Attempts: a trial that was re-enqueued is superseded by its retry; rows show the latest attempt.
def latest_attempts(trials) -> list:
    latest: dict[int, Any] = {}
    for trial in trials:
        index = trial.user_attrs.get("index")
        if index is not None and (index not in latest or trial.number > latest[index].number):
            latest[index] = trial
    return [latest[i] for i in sorted(latest)]


def trial_rows(study, spec: SweepSpec) -> list[dict[str, Any]]:
    """One row per planned run (grid/random: one per trial; bayes: one per repeat of each point)."""
    metric = spec.metric.name
    rows = []
    for trial in latest_attempts(study.get_trials(deepcopy=False)):
        attrs = trial.user_attrs
        params = attrs.get("params") or _decode_params(trial.params)
        done = {r["seed"]: r for r in attrs.get("runs", [])}
        for seed in attrs.get("seeds", []):
            run = done.get(seed, {})
            status = run.get("status") or STATUS.get(trial.state, "waiting")
            if trial.state == TrialState.RUNNING and not run:
                status = "running" if seed == attrs.get("current_seed") else "waiting"
            if trial.state.is_finished() and not run:
                status = STATUS[trial.state]
            reason = run.get("reason") or (attrs.get("reason") if status == "failed" else None)
            rows.append({"trial": attrs["index"], "status": status, "seed": seed, "run_id": run.get("run_id"),
                         **params, metric: run.get("value"), "duration_s": run.get("duration_s"), "reason": reason,
                         "point": attrs.get("point"), "attempt": attrs.get("attempt", 1),
                         "parameters": run.get("parameters"), "threads": attrs.get("threads"),
                         "worker": (attrs.get("worker") or {}).get("name")})
    return rows


def _decode_params(params: dict[str, Any]) -> dict[str, Any]:
    return {k: json.loads(v) if isinstance(v, str) and v[:1] in "[{\"" else v for k, v in params.items()}


def write_tables(sweep_dir: Path, study, spec: SweepSpec, base: dict[str, Any], name: str) -> list[dict[str, Any]]:
    """trials.csv, summary.csv and best.yaml from the study (any process may call it: atomic writes)."""
    swept = [p for p, s in spec.parameters.items() if s.kind != "constant"]
    rows = trial_rows(study, spec)
    aggregate.write_trials(sweep_dir, rows, swept, spec.metric.name)
    points = aggregate.summarize(rows, swept, spec.metric.name)
    aggregate.write_summary(sweep_dir, points, swept, spec.metric.name)
    best = aggregate.best_point(points, spec.metric.goal)
    if best is not None:
        from nnlab.sweeps.spec import Sweep

        sweep = Sweep(spec=spec, name=name, source=str(sweep_dir / aggregate.SWEEP), base=base)
        config = sweep.trial_config(best.params, None, f"{name}-best")
        aggregate.write_best(sweep_dir, config, f"best point of sweep {sweep_dir.name}: {spec.metric.name} "
                             f"{best.mean:.4f} +- {best.std:.4f} over {best.n} run(s); train it: nnlab train best.yaml")
    return rows


# ---------------------------------------------------------------------------------------------
# Requeueing: stale, interrupted and (on request) failed trials.
def requeue(study, trial, reason: str, *, already_failed: bool = False) -> bool:
    """Mark `trial` failed with `reason` and enqueue its next attempt; False if another process won."""
    storage = study._storage
    if not already_failed:
        try:
            storage.set_trial_user_attr(trial._trial_id, "reason", reason)
            storage.set_trial_state_values(trial._trial_id, TrialState.FAIL)
        except UpdateFinishedTrialError:
            return False
    keep = {k: v for k, v in trial.user_attrs.items() if k in ("index", "point", "seeds", "params")}
    keep.update(attempt=trial.user_attrs.get("attempt", 1) + 1, retry_of=trial.number)
    study.add_trial(optuna.trial.create_trial(state=TrialState.WAITING, params=trial.params,
                                              distributions=trial.distributions, user_attrs=keep))
    return True


def requeue_stale(study, *, grace_s: float = GRACE_S) -> int:
    """Re-enqueue RUNNING trials whose worker is gone; return how many this process re-enqueued."""
    count = 0
    now = time.time()
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        worker = trial.user_attrs.get("worker") or {}
        beat = trial.user_attrs.get("heartbeat") or (trial.datetime_start.timestamp() if trial.datetime_start else now)
        dead_here = worker.get("host") == aggregate.host() and not process_alive(worker.get("pid"))
        if dead_here or now - beat > grace_s:
            why = "its worker died" if dead_here else f"no heartbeat for {now - beat:.0f}s"
            count += requeue(study, trial, f"rerun: {why}")
    return count


def process_alive(pid: int | None) -> bool:
    """True while `pid` runs; a zombie (killed, not yet reaped by its new parent) counts as dead."""
    if not pid:
        return False
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        return state not in ("Z", "X")
    except (OSError, IndexError):
        return runs._alive(pid) if not Path("/proc").is_dir() else False


def requeue_failed(study) -> int:
    """--retry-failed: enqueue another attempt of every trial whose latest attempt failed."""
    failed = [t for t in latest_attempts(study.get_trials(deepcopy=False)) if t.state == TrialState.FAIL]
    return sum(requeue(study, t, "", already_failed=True) for t in failed)


# ---------------------------------------------------------------------------------------------
# A worker: claim, run, tell, until no trial is waiting or running.
@dataclass
class WorkerContext:
    sweep_dir: Path
    runs_dir: Path
    study: Any
    spec: SweepSpec
    base: dict[str, Any]
    name: str
    threads: int
    worker: str
    device: str = "auto"
    backend: str | None = None


def claim(study):
    """Move one WAITING trial to RUNNING with the storage's compare-and-set; retries first. None if none left."""
    storage = study._storage
    waiting = study.get_trials(deepcopy=False, states=(TrialState.WAITING,))
    for trial in sorted(waiting, key=lambda t: ("retry_of" not in t.user_attrs, t.number)):
        try:
            if storage.set_trial_state_values(trial._trial_id, TrialState.RUNNING):
                return storage.get_trial(trial._trial_id)
        except UpdateFinishedTrialError:
            continue
    return None


def work(sweep_dir: Path, storage_url: str, *, threads: int, worker: str, device: str = "auto",
         backend: str | None = None, stream: TextIO | None = None) -> int:
    """The worker loop; returns 130 when interrupted, else 0."""
    stream = stream or sys.stdout
    info = read_sweep_file(sweep_dir)
    storage = open_storage(storage_url, sweep_dir)
    study = _load_study(storage, sweep_dir.name)
    spec = SweepSpec.model_validate(study.user_attrs["nnlab_spec"])
    base = study.user_attrs["nnlab_base"]
    ctx = WorkerContext(sweep_dir, sweep_dir.parent.parent, study, spec, base, str(info.get("name", sweep_dir.name)),
                        threads, worker, device, backend)
    while True:
        requeue_stale(study)
        trial = claim(study)
        if trial is None:
            if not study.get_trials(deepcopy=False, states=(TrialState.RUNNING, TrialState.WAITING)):
                return 0
            time.sleep(2 * POLL_S)  # others are running: one of them may die and need a rerun
            continue
        try:
            run_trial(ctx, trial, stream)
        except KeyboardInterrupt:
            return 130
        except UpdateFinishedTrialError:  # declared stale (no heartbeat in time) and re-enqueued by another process
            print(f"{worker}: trial {trial.user_attrs['index']} was re-enqueued by another process; moving on",
                  file=stream, flush=True)
        try:
            write_tables(sweep_dir, study, spec, base, ctx.name)
        except OSError as exc:  # a full disk must not kill the worker; the parent writes the tables again
            print(f"{worker}: could not write the tables: {exc}", file=stream, flush=True)


def run_trial(ctx: WorkerContext, trial, stream: TextIO) -> None:
    """Run every seed of one claimed trial, each in a fresh `nnlab train` process, and tell the study."""
    study, storage, trial_id = ctx.study, ctx.study._storage, trial._trial_id
    storage.set_trial_user_attr(trial_id, "worker", {"host": aggregate.host(), "pid": os.getpid(), "name": ctx.worker})
    storage.set_trial_user_attr(trial_id, "heartbeat", time.time())
    storage.set_trial_user_attr(trial_id, "threads", ctx.threads)
    params = trial.user_attrs.get("params")
    if params is None:  # bayes: TPE samples the point now (a retry gets its stored values back)
        study.sampler = optuna.samplers.TPESampler(seed=ctx.spec.seed + trial.number, constant_liar=True)
    handle = optuna.trial.Trial(study, trial_id)
    if params is None:
        params = suggest(handle, ctx.spec)
        storage.set_trial_user_attr(trial_id, "params", params)
    index = trial.user_attrs["index"]
    results: list[dict[str, Any]] = []
    pruned = False
    try:
        for seed in trial.user_attrs["seeds"]:
            storage.set_trial_user_attr(trial_id, "current_seed", seed)
            result = run_one(ctx, handle, index, trial.user_attrs.get("attempt", 1), params, seed,
                             report=not results, stream=stream)
            results.append(result)
            storage.set_trial_user_attr(trial_id, "runs", results)
            if result["status"] != "completed":
                pruned = result["status"] == "pruned"
                break
    except KeyboardInterrupt:
        _ignore_signals()  # a second Ctrl-C or the parent's SIGTERM must not cut the bookkeeping short
        requeue(study, storage.get_trial(trial_id), "interrupted (resume with nnlab sweep --resume)")
        raise
    failed = [r for r in results if r["status"] == "failed"]
    if failed:
        storage.set_trial_user_attr(trial_id, "reason", failed[0]["reason"])
        study.tell(handle, state=TrialState.FAIL, skip_if_finished=True)
    elif pruned:
        study.tell(handle, state=TrialState.PRUNED, skip_if_finished=True)
    else:
        values = [r["value"] for r in results]
        study.tell(handle, sum(values) / len(values), skip_if_finished=True)


def suggest(handle, spec: SweepSpec) -> dict[str, Any]:
    """Sample the point with the study's sampler; categories are stored as JSON text (Optuna takes scalars)."""
    params = {}
    for path, p in spec.parameters.items():
        if p.kind == "constant":
            continue
        if p.kind == "categorical":
            choice = handle.suggest_categorical(path, [json.dumps(v) for v in p.values])
            params[path] = json.loads(choice)
        elif p.kind == "int_uniform":
            params[path] = handle.suggest_int(path, int(p.min), int(p.max))
        elif p.kind == "q_uniform":
            params[path] = handle.suggest_float(path, p.min, p.max, step=p.q)
        else:
            params[path] = handle.suggest_float(path, p.min, p.max, log=p.kind == "log_uniform_values")
    return params


_RUN_LINE = re.compile(r"^run (\S+): (training|resuming)")


def run_one(ctx: WorkerContext, handle, index: int, attempt: int, params: dict[str, Any], seed: int, *,
            report: bool, stream: TextIO) -> dict[str, Any]:
    """One `nnlab train` child: heartbeat while it runs, pruning from its history.csv, its result."""
    name = f"{ctx.name}-{index:03d}"[:64]
    command = [sys.executable, "-m", "nnlab.cli.main", "train", str(ctx.sweep_dir / aggregate.BASE), f"name={name}",
               f"seed={seed}", *point_overrides(params), "--runs-dir", str(ctx.runs_dir), "--device", ctx.device]
    if ctx.backend:
        command += ["--backend", ctx.backend]
    env = {**os.environ, "NNLAB_THREADS": str(ctx.threads), "NNLAB_SWEEP": ctx.sweep_dir.name}
    log_path = ctx.sweep_dir / aggregate.LOGS / f"trial-{index:03d}-seed{seed}-attempt{attempt}.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    storage = ctx.study._storage
    started = time.time()
    print(f"{ctx.worker}: trial {index} seed {seed} {json.dumps(params)}", file=stream, flush=True)
    with log_path.open("wb") as log:
        child = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env, preexec_fn=die_with_parent)
    run_dir: Path | None = None
    reported = 0
    beat = time.time()
    pruned_at = None
    try:
        while child.poll() is None:
            time.sleep(POLL_S)
            if time.time() - beat >= HEARTBEAT_S:
                storage.set_trial_user_attr(handle._trial_id, "heartbeat", time.time())
                beat = time.time()
            if run_dir is None:
                run_dir = _run_dir_from_log(log_path, ctx.runs_dir)
            if report and run_dir is not None and ctx.spec.early_terminate is not None:
                reported, pruned_at = _report_epochs(handle, run_dir, ctx.spec.metric.name, reported)
                if pruned_at is not None:
                    child.terminate()
                    child.wait()
                    break
    except BaseException:  # Ctrl-C, or the trial was taken from this worker: the child must not train on
        _stop(child)
        raise
    wall = time.time() - started
    run_dir = run_dir or _run_dir_from_log(log_path, ctx.runs_dir)
    result: dict[str, Any] = {"seed": seed, "run_id": run_dir.name if run_dir else None, "wall_s": round(wall, 3),
                              "value": None, "reason": None}
    meta = runs.read_json(run_dir / runs.META) if run_dir and (run_dir / runs.META).is_file() else {}
    result["parameters"] = (meta.get("parameters") or {}).get("total")
    result["duration_s"] = round(wall, 3)
    result["train_s"] = meta.get("duration_s")
    if pruned_at is not None:
        result.update(status="pruned", reason=f"pruned after epoch {pruned_at}",
                      value=_last_value(run_dir, ctx.spec.metric.name))
    elif child.returncode == 0:
        value, reason = read_metric(run_dir, ctx.spec.metric.name)
        result.update(status="completed" if reason is None else "failed", value=value, reason=reason)
    else:
        result.update(status="failed", reason=_failure_reason(log_path, child.returncode))
    if run_dir is not None and meta:
        with runs.claimed(run_dir):  # the child has exited; its lock is free, so this write owns the run
            runs.update_meta(run_dir, sweep={"id": ctx.sweep_dir.name, "trial": index, "point": handle.user_attrs.get(
                "point"), "attempt": attempt, "threads": ctx.threads, "worker": ctx.worker, "wall_s": result["wall_s"]})
    shown = f"{result['value']:.4f}" if isinstance(result["value"], float) else "-"
    print(f"{ctx.worker}: trial {index} seed {seed} {result['status']} {ctx.spec.metric.name}={shown} "
          f"in {wall:.1f}s" + (f": {result['reason']}" if result["reason"] else ""), file=stream, flush=True)
    return result


def die_with_parent() -> None:
    """In the child, before exec: the kernel sends SIGKILL when the parent dies (no orphan trains on)."""
    PR_SET_PDEATHSIG = 1
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except OSError:  # not Linux: children may outlive a killed parent
        pass


def _ignore_signals() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


def _stop(child: subprocess.Popen) -> None:
    """Ask the child to stop (SIGTERM: nnlab train marks its run interrupted), then make sure it is gone."""
    with contextlib.suppress(subprocess.TimeoutExpired):  # after Ctrl-C the child got SIGINT itself
        child.wait(timeout=2)
    if child.poll() is None:
        child.send_signal(signal.SIGTERM)
        try:
            child.wait(timeout=30)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()


def _run_dir_from_log(log_path: Path, runs_dir: Path) -> Path | None:
    try:
        with log_path.open(errors="replace") as f:
            for line in f:
                match = _RUN_LINE.match(line)
                if match:
                    return runs_dir / match.group(1)
    except OSError:
        pass
    return None


def _report_epochs(handle, run_dir: Path, metric: str, reported: int) -> tuple[int, int | None]:
    """Report new epochs of history.csv to the pruner; the epoch to stop after, if it says so."""
    rows = runs.read_history(run_dir) if (run_dir / runs.HISTORY).is_file() else []
    for row in rows[reported:]:
        value = row.get(metric)
        if value is None:
            continue
        handle.report(float(value), int(row["epoch"]))
        if handle.should_prune():
            return len(rows), int(row["epoch"])
    return len(rows), None


def _last_value(run_dir: Path | None, metric: str) -> float | None:
    rows = runs.read_history(run_dir) if run_dir else []
    values = [r[metric] for r in rows if metric in r]
    return values[-1] if values else None


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
# The driving process: spawn workers, show progress, write the tables and plots at the end.
def drive(sweep_dir: Path, storage_url: str, *, workers: int, threads: int, device: str = "auto",
          backend: str | None = None, console=None, command: list[str] | None = None) -> int:
    """Run `workers` worker processes until the study is done; return the sweep's exit code (0, 1 or 130)."""
    info = read_sweep_file(sweep_dir)
    storage = open_storage(storage_url, sweep_dir)
    study = _load_study(storage, sweep_dir.name)
    spec = SweepSpec.model_validate(study.user_attrs["nnlab_spec"])
    base, name = study.user_attrs["nnlab_base"], str(info.get("name", sweep_dir.name))
    aggregate.write_state(sweep_dir, "running", pid=os.getpid(), host=aggregate.host(), workers=workers,
                          threads=threads, started_at=time.time(), finished_at=None, command=command)
    logs = sweep_dir / aggregate.LOGS
    logs.mkdir(exist_ok=True)
    procs = []
    for i in range(workers):
        worker = f"{aggregate.host()}-{os.getpid()}-w{i}"
        cmd = [sys.executable, "-m", "nnlab.sweeps.worker", str(sweep_dir), "--storage", storage_url,
               "--threads", str(threads), "--worker", worker, "--device", device]
        if backend:
            cmd += ["--backend", backend]
        with (logs / f"{worker}.log").open("ab") as log:
            procs.append(subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, preexec_fn=die_with_parent,
                                          env={**os.environ, "NNLAB_CPU_SLOT": str(i)}))  # JAX trials: which CPUs
    started = time.time()
    status = "interrupted"
    try:
        last, shown_at = None, 0.0
        while any(p.poll() is None for p in procs):
            time.sleep(1.0)
            line = progress_line(study, spec, started)
            counts = line.split(";")[0]
            if counts != last or time.time() - shown_at >= 30:  # on every change, else twice a minute
                _say(console, line)
                last, shown_at = counts, time.time()
        status = "done"
    except KeyboardInterrupt:
        _ignore_signals()
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
        requeue_stale(study, grace_s=GRACE_S)
    rows = write_tables(sweep_dir, study, spec, base, name)
    crashed = [p.returncode for p in procs if p.returncode not in (0, 130, -signal.SIGTERM)]
    failed = any(r["status"] == "failed" for r in rows)
    left = any(r["status"] in ("waiting", "running") for r in rows)
    final = "interrupted" if status == "interrupted" else ("failed" if failed or crashed or left else "completed")
    aggregate.write_state(sweep_dir, final, finished_at=time.time())
    if status == "interrupted":
        raise KeyboardInterrupt
    if crashed and not failed:
        raise NnlabError(f"{len(crashed)} worker(s) crashed (exit codes {crashed}); see {logs}")
    return 1 if failed or left else 0


def progress_line(study, spec: SweepSpec, started: float) -> str:
    rows = trial_rows(study, spec)
    counts = {s: sum(r["status"] == s for r in rows) for s in aggregate.TRIAL_STATUSES}
    done = counts["completed"] + counts["pruned"] + counts["failed"]
    metric = spec.metric.name
    values = [r[metric] for r in rows if r["status"] == "completed" and isinstance(r[metric], float)]
    best = (max if spec.metric.goal == "maximize" else min)(values) if values else None
    elapsed = time.time() - started
    left = counts["waiting"] + counts["running"]
    eta = f", ETA {_clock(elapsed / done * left)}" if done and left else ""
    best_text = f", best {metric} {best:.4f}" if best is not None else ""
    return (f"trials: {done} done ({counts['failed']} failed, {counts['pruned']} pruned), {counts['running']} running, "
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


__all__ = ["attach", "claim", "create", "drive", "open_storage", "requeue_failed",
           "requeue_stale", "trial_rows", "work", "write_tables"]

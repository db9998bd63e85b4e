"""A sweep worker: claims trials from the study one at a time and trains each seed in its warm trial host
(`host.py`: one long-lived process that trains trial after trial, replaced when worn out or dead; a fresh one
per trial with --isolate), pruning from the host's epoch messages, a heartbeat while it runs. Started by the
driver as `python -m nnlab.sweeps.worker SWEEP_DIR --threads N --worker ID ...` ($NNLAB_SWEEP_STORAGE: the
study's storage URL)."""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from nnlab import runs
from nnlab.errors import NnlabError
from nnlab.sweeps import aggregate
from nnlab.sweeps.host import MAX_RSS_MB, MAX_TRIALS, TrialHost
from nnlab.sweeps.spec import point_overrides
from nnlab.sweeps.study import HEARTBEAT_S, LeaseLost

POLL_S = 0.5
TABLES_S = 10.0  # a worker rewrites trials.csv & co. at most this often (the driver writes them at the end)
HANG_S = float(os.environ.get("NNLAB_SWEEP_HANG_S", "3600"))  # no epoch for this long: the trial is stopped, failed
STORAGE_ENV = "NNLAB_SWEEP_STORAGE"  # the storage URL, password included: the environment is private to its user


@dataclass(frozen=True)
class HostSettings:
    """How trial hosts are used (sweep.yaml `trial_hosts`): `isolate` gives every trial a fresh process; else a
    host is replaced after `max_trials` trials or once its resident memory passed `max_rss_mb` MiB."""

    isolate: bool = False
    max_trials: int = MAX_TRIALS
    max_rss_mb: float = MAX_RSS_MB

    def to_dict(self) -> dict[str, Any]:
        return {"isolate": self.isolate, "max_trials": self.max_trials, "max_rss_mb": self.max_rss_mb}


class HostStartError(NnlabError):
    """The trial host could not start (its backend does not import, the machine is out of memory)."""


@dataclass
class WorkerContext:
    sweep_dir: Path
    runs_dir: Path
    study: Any  # study.SweepStudy, or a fake with its methods
    threads: int
    worker: str
    device: str = "auto"
    backend: str | None = None
    hosts: HostSettings = field(default_factory=HostSettings)
    host: TrialHost | None = None  # the warm trial host, once started


def work(sweep_dir: Path, storage_url: str, *, threads: int, worker: str, device: str = "auto",
         backend: str | None = None, hosts: HostSettings = HostSettings(), stream: TextIO | None = None) -> int:
    """The worker process: open the study, run the claim loop; returns 130 when interrupted, else 0."""
    from nnlab.sweeps import study as studies

    lease = studies.hold_lease(sweep_dir, worker)  # held for the life of this process: gone means dead
    study = studies.load(storage_url, sweep_dir)
    study.check_folder(sweep_dir)
    ctx = WorkerContext(sweep_dir, sweep_dir.parent.parent, study, threads, worker, device, backend, hosts)
    try:
        return claim_loop(ctx, stream or sys.stdout)
    finally:
        if ctx.host is not None:
            ctx.host.close()
        os.close(lease)


def claim_loop(ctx: WorkerContext, stream: TextIO) -> int:
    """Claim, run, record, until no trial is waiting or running; 130 when interrupted, else 0."""
    from nnlab.sweeps.study import write_tables

    study = ctx.study
    last_point, written = None, 0.0
    while True:
        study.requeue_stale()
        claim = study.claim(after_point=last_point)
        if claim is None:
            if not study.unfinished():
                return 0
            time.sleep(2 * POLL_S)  # others are running: one of them may die and need a rerun
            continue
        last_point = claim.attrs.get("point")
        try:
            run_trial(ctx, claim, stream)
        except KeyboardInterrupt:
            return 130
        except LeaseLost:  # declared stale (no sign of life in time) and re-enqueued by another process
            print(f"{ctx.worker}: trial {claim.index} attempt {claim.attempt} was re-enqueued by another process; "
                  "its training was stopped and nothing of it recorded; moving on", file=stream, flush=True)
        if time.time() - written < TABLES_S:
            continue
        try:
            write_tables(ctx.sweep_dir, study)
            written = time.time()
        except OSError as exc:  # a full disk must not kill the worker; the parent writes the tables again
            print(f"{ctx.worker}: could not write the tables: {exc}", file=stream, flush=True)


def run_trial(ctx: WorkerContext, claim, stream: TextIO) -> None:
    """Run every seed of one claimed trial in the worker's trial host, and record its end."""
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
    except HostStartError:  # nothing trained: the trial waits for a worker whose host starts
        study.requeue(claim, "its worker's trial host did not start")
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
    """One seed of a trial, trained by the worker's host: heartbeat while it runs, each epoch to the pruner
    (`report`: the first seed of a point), its result from the host's typed messages. The run an earlier
    attempt's Ctrl-C cut off (`resume` in the claim) is continued in its own folder."""
    spec, index, attempt = ctx.study.spec, claim.index, claim.attempt
    name = f"{ctx.study.sweep_name}-{index:03d}"[:64]
    base = studies_base_file(ctx)
    overrides = [f"name={name}", f"seed={seed}", *point_overrides(params)]
    command = ["nnlab", "train", str(base), *overrides, "--runs-dir", str(ctx.runs_dir), "--device", ctx.device,
               *(["--backend", ctx.backend] if ctx.backend else [])]  # meta.json: what trains this run alone
    log_path = ctx.sweep_dir / aggregate.LOGS / f"trial-{index:03d}-seed{seed}-attempt{attempt}.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    cut = claim.attrs.get("resume") or {}
    resume = ctx.runs_dir / cut["run_id"] if cut.get("seed") == seed and (ctx.runs_dir / cut["run_id"]).is_dir() \
        else None
    started = time.time()  # a trial's wall time includes starting its host, when it needs one
    host = ensure_host(ctx, stream)
    rss_before = host.last_rss_mb  # after the host's cleanup of its last trial
    ctx.study.heartbeat(claim)  # a host may take a while to start on a loaded machine
    pruning = report and spec.early_terminate is not None
    print(f"{ctx.worker}: trial {index} seed {seed} {json.dumps(params)}" + (f" (resuming run {resume.name})"
                                                                          if resume else ""), file=stream, flush=True)
    ctx.study.set_attrs(claim, current_log=log_path.name)  # the host holds the lock beside it while it trains
    trial = dict(runs_dir=ctx.runs_dir, log=log_path, command=command, lock=log_path.with_suffix(".lock"),
                 pruning=pruning, tick_s=POLL_S)
    run_dir, outcome, last_value = _follow(ctx, claim, host, host.train(base, overrides, resume=resume, **trial),
                                           pruning)
    if resume and run_dir is None and outcome.get("event") == "failed":  # not resumable: train the seed afresh
        print(f"{ctx.worker}: run {resume.name} could not be resumed ({outcome.get('reason')}); training "
              "the seed afresh", file=stream, flush=True)
        run_dir, outcome, last_value = _follow(ctx, claim, host, host.train(base, overrides, **trial), pruning)
    wall = time.time() - started
    result: dict[str, Any] = {"seed": seed, "run_id": run_dir.name if run_dir else None, "wall_s": round(wall, 3),
                              "value": None, "reason": None}
    meta = runs.read_json(run_dir / runs.META) if run_dir and (run_dir / runs.META).is_file() else {}
    result["parameters"] = (meta.get("parameters") or {}).get("total") or outcome.get("parameters")
    result["duration_s"] = round(wall, 3)
    result["train_s"] = meta.get("duration_s")
    event = outcome.get("event")
    if event == "finished":
        value, reason = aggregate.read_metric(run_dir, spec.metric.name)
        result.update(status="completed" if reason is None else "failed", value=value, reason=reason)
    elif event == "pruned":
        result.update(status="pruned", reason=outcome.get("reason") or "pruned", value=last_value)
    else:  # failed, died (the host ended: a crash, os._exit, the out-of-memory killer), hung
        result.update(status="failed", reason=str(outcome.get("reason") or "the trial host ended")[:500])
    if run_dir is not None and meta:
        with runs.claimed(run_dir):  # the trial has ended (or its host is dead): this write owns the run
            if event in ("died", "hung"):  # nobody recorded how it ended
                runs.update_meta(run_dir, status="failed", reason=result["reason"])
            runs.update_meta(run_dir, sweep={
                "id": ctx.sweep_dir.name, "trial": index, "point": claim.attrs.get("point"), "attempt": attempt,
                "threads": ctx.threads, "worker": ctx.worker, "wall_s": result["wall_s"],
                **({"resumed": True} if resume and run_dir == resume else {}),
                "host": {"pid": host.process.pid if host.process else None, "trial": host.trials,
                         "rss_mb": rss_before, "isolated": ctx.hosts.isolate}})
    shown = f"{result['value']:.4f}" if isinstance(result["value"], float) else "-"
    print(f"{ctx.worker}: trial {index} seed {seed} {result['status']} {spec.metric.name}={shown} "
          f"in {wall:.1f}s" + (f": {result['reason']}" if result["reason"] else ""), file=stream, flush=True)
    return result


def _follow(ctx: WorkerContext, claim, host: TrialHost, trial, pruning: bool
            ) -> tuple[Path | None, dict[str, Any], float | None]:
    """Follow one trial's messages from its host: the run folder, the last message (how it ended) and the
    metric's last value. Beats the heartbeat, answers the pruner, and kills a host that makes no epoch."""
    metric = ctx.study.spec.metric.name
    run_dir: Path | None = None
    outcome: dict[str, Any] = {}
    last_value = None
    beat = last_epoch = time.time()
    try:
        for message in trial:
            event = message.get("event")
            if event == "started":
                run_dir, last_epoch = Path(message["run_dir"]), time.time()  # imports and data came before
                ctx.study.set_attrs(claim, current_run=run_dir.name)
            elif event == "epoch":
                last_epoch = time.time()
                value = (message.get("logs") or {}).get(metric)
                last_value = value if isinstance(value, float) else last_value
                if pruning:
                    stop = value is not None and ctx.study.report(claim, float(value), int(message["epoch"]))
                    host.verdict(int(message["epoch"]), stop=stop)
            elif event in ("finished", "pruned", "failed", "died"):
                outcome = message
            if HANG_S and run_dir and time.time() - last_epoch > HANG_S:  # a deadlock, a stuck read, a stopped host
                host.kill()  # a hung process may not heed SIGTERM
                outcome = {"event": "hung", "reason": f"no epoch for {time.time() - last_epoch:.0f}s: stopped "
                                                      f"(NNLAB_SWEEP_HANG_S={HANG_S:g})"}
                break
            if time.time() - beat >= HEARTBEAT_S:
                ctx.study.heartbeat(claim)  # LeaseLost when another process re-enqueued this attempt
                beat = time.time()
        ctx.study.heartbeat(claim)  # still ours? a superseded attempt records nothing, not even in its run folder
    except LeaseLost:
        host.terminate(grace_s=10)
        raise
    except BaseException:  # Ctrl-C, SIGTERM: the trial must not train on (its run is marked interrupted)
        host.terminate()
        raise
    return run_dir or _run_dir_of(outcome), outcome, last_value


def ensure_host(ctx: WorkerContext, stream: TextIO) -> TrialHost:
    """The worker's trial host, started (or replaced: worn out, dead, or --isolate) when needed."""
    old = ctx.host
    if old is not None and not old.worn:
        return old
    if old is not None:
        why = ("it ended" if not old.alive else
               f"{old.trials} trial(s), its limit" if old.trials >= old.max_trials else
               f"resident memory {old.last_rss_mb:.0f} MiB > {old.max_rss_mb:g} MiB")
        old.close()
        if not ctx.hosts.isolate:
            print(f"{ctx.worker}: trial host {old.process.pid} replaced: {why}", file=stream, flush=True)
    env = {**os.environ, "NNLAB_THREADS": str(ctx.threads), "NNLAB_SWEEP": ctx.sweep_dir.name}
    env.pop(STORAGE_ENV, None)  # a trial needs no storage URL
    host = TrialHost(backend=ctx.backend, device=ctx.device, threads=ctx.threads, env=env,
                     max_trials=1 if ctx.hosts.isolate else ctx.hosts.max_trials, max_rss_mb=ctx.hosts.max_rss_mb)
    began = time.time()
    try:
        host.start(preexec_fn=die_with_parent)
    except RuntimeError as exc:
        raise HostStartError(str(exc)) from None
    if not ctx.hosts.isolate:
        print(f"{ctx.worker}: trial host {host.process.pid} ready in {time.time() - began:.1f}s "
              f"(at most {ctx.hosts.max_trials} trials, {ctx.hosts.max_rss_mb:g} MiB)", file=stream, flush=True)
    ctx.host = host
    return host


def _run_dir_of(outcome: dict[str, Any]) -> Path | None:
    run_dir = outcome.get("run_dir")
    return Path(run_dir) if run_dir else None


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
    parser.add_argument("--isolate", action="store_true", help="a fresh trial host for every trial")
    parser.add_argument("--host-trials", type=int, default=MAX_TRIALS)
    parser.add_argument("--host-memory", type=float, default=MAX_RSS_MB, help="MiB")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, _terminate)  # stop like Ctrl-C: the running trial is re-enqueued
    from nnlab.sweeps.study import StorageUnavailableError

    try:
        return work(args.sweep_dir, args.storage or os.environ[STORAGE_ENV], threads=args.threads, worker=args.worker,
                    device=args.device, backend=args.backend,
                    hosts=HostSettings(args.isolate, args.host_trials, args.host_memory))
    except KeyboardInterrupt:
        return 130
    except HostStartError as exc:  # every trial would fail the same way: the trial claimed is re-enqueued
        print(f"error: {exc}", file=sys.stderr, flush=True)
        return 1
    except StorageUnavailableError as exc:  # its trial stays running in the study: a resume reruns it at once
        print(f"error: {exc}", file=sys.stderr, flush=True)
        return StorageUnavailableError.exit_code


if __name__ == "__main__":
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)  # its host is closed and its lease let go: no slow interpreter teardown (Ctrl-C waits for it)

"""Sweeps: spec (the sweep file, pure), study (the Optuna study: the only module that touches it), worker (the
claim loop; trials as `nnlab train` processes), driver (the parent: workers, progress, signals), aggregate
(pure readers of the sweep folder), counts (parameter counts without training), report.

The functions below are the steps of `nnlab sweep`, which calls them and maps their errors. Each imports what it
needs when called: importing this package (as every module of it does) costs nothing.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nnlab.errors import ConfigError

if TYPE_CHECKING:
    from nnlab.sweeps.spec import Sweep
    from nnlab.sweeps.worker import HostSettings


def command_words(argv: list[str]) -> list[str]:
    """The command a sweep folder records: `nnlab` and its words, with any password in a URL masked."""
    from nnlab.sweeps.aggregate import masked_url

    return ["nnlab", *(masked_url(word) for word in argv)]  # no password in any file


def check_storage(storage: str | None) -> None:
    """--storage: journal or a URL (one line otherwise, before anything starts)."""
    if storage is not None and storage != "journal" and "://" not in storage:
        raise ConfigError(f"--storage {storage!r}: expected journal or a URL such as postgresql://user@host/db")


def threads_per_trial(threads: int | None, workers: int) -> int:
    """--threads, else the cores shared among the workers."""
    from nnlab.sweeps.aggregate import default_threads

    return threads or default_threads(workers)


def trial_backend(requested: str | None) -> str | None:
    """--backend for every trial, checked before any trial starts (an unknown or missing backend: one line);
    None leaves each trial's config (else $KERAS_BACKEND) to decide."""
    if requested is None:
        return None
    from nnlab.training.backend import choose

    return choose(requested, key="--backend")


def host_settings(given: dict[str, Any], recorded: dict[str, Any]) -> HostSettings:
    """The trial-host settings: the options given (None: not given), else what sweep.yaml recorded when the
    sweep was made."""
    from nnlab.sweeps.worker import HostSettings

    settings = {**(recorded.get("trial_hosts") or {}), **{k: v for k, v in given.items() if v is not None}}
    return HostSettings(**{k: v for k, v in settings.items() if k in HostSettings.__dataclass_fields__})


def plan(source: str, words: list[str], *, repeats: int | None = None, method: str | None = None,
         run_cap: int | None = None, metric: str | None = None) -> Sweep:
    """The sweep a file (and command-line words) describe, validated in full; nothing is made."""
    from nnlab.sweeps.spec import load_sweep

    return load_sweep(source, words, repeats=repeats, method=method, run_cap=run_cap, metric=metric)


def create(sweep: Sweep, runs_dir: Path, storage: str, command: list[str], hosts: HostSettings) -> Path:
    """The sweep folder and its study, every trial enqueued; return the folder."""
    from nnlab.sweeps import study

    return study.create(sweep, runs_dir, storage, command, trial_hosts=hosts.to_dict())


def params_only(sweep: Sweep, runs_dir: Path, command: list[str], device: str, backend: str | None) -> Path:
    """A finished sweep folder of the points' parameter counts, nothing trained (`--params-only`); return it."""
    from nnlab.sweeps.counts import write_params_only

    return write_params_only(sweep, runs_dir, command, _count_device(device), backend)


def join(sweep_id: str, runs_dir: Path, storage: str | None, given_hosts: dict[str, Any]
         ) -> tuple[Path, HostSettings]:
    """--join: the local folder of a sweep whose study lives in a shared storage, and its trial-host settings."""
    from nnlab.sweeps import study

    if not storage or storage == "journal":
        raise ConfigError("--join needs --storage postgresql://... (the shared study)")
    sweep_dir = study.attach(sweep_id, runs_dir, storage)
    return sweep_dir, host_settings(given_hosts, study.read_sweep_file(sweep_dir))


def reopen(ref: str, runs_dir: Path, storage: str | None, given_hosts: dict[str, Any], *, retry_failed: bool = False
           ) -> tuple[Path, str, HostSettings]:
    """--resume: a stopped sweep's folder, its storage URL and trial-host settings (its failed trials queued again
    with `retry_failed`)."""
    from nnlab.sweeps import aggregate, study

    sweep_dir = aggregate.find_sweep(ref, runs_dir)
    recorded = study.read_sweep_file(sweep_dir)
    url = storage or str(recorded.get("storage", "journal"))
    if aggregate.MASK in url:
        raise ConfigError(f"--resume {ref}: the study's password is not stored; give --storage URL again "
                          "(or keep it in PGPASSWORD or ~/.pgpass)")
    if retry_failed:
        study.load(url, sweep_dir).requeue_failed()
    return sweep_dir, url, host_settings(given_hosts, recorded)


def drive(sweep_dir: Path, storage: str, **settings: Any) -> int:
    """Run the sweep's workers to the end (`driver.drive`); return its exit code."""
    from nnlab.sweeps import driver

    return driver.drive(sweep_dir, storage, **settings)


def print_start(console, sweep_dir: Path, what: str, storage: str) -> None:
    """The lines a starting sweep prints: what runs, where the trial logs go, how to watch it."""
    from nnlab.sweeps.dashboards import optuna_dashboard_hint

    console.print(f"sweep {sweep_dir.name}: {what}")
    console.print(f"trial logs: {sweep_dir / 'logs'}")
    console.print(optuna_dashboard_hint(sweep_dir, storage), markup=False)


def print_finished(console, sweep_dir: Path) -> None:
    """A finished (or stopped) sweep's plots and TensorBoard records written, and its summary printed."""
    from nnlab.sweeps.aggregate import read_sweep
    from nnlab.sweeps.dashboards import write_hparams_line
    from nnlab.sweeps.report import print_sweep, write_sweep_plots

    write_sweep_plots(sweep_dir)
    console.print(write_hparams_line(sweep_dir), markup=False)
    print_sweep(read_sweep(sweep_dir), console)


def print_dry_run(console, sweep: Sweep, device: str, backend: str | None) -> None:
    """`--dry-run`: every trial with its parameters, seed and parameter count (bayes: the space it samples)."""
    from nnlab.sweeps.counts import parameter_counts

    console.print(f"sweep {sweep.name}: {sweep.spec.method}, metric {sweep.spec.metric.name} "
                  f"({sweep.spec.metric.goal}), {sweep.spec.repeats} seed(s) per point")
    fixed = sweep.fixed()
    if fixed:
        console.print("every trial: " + " ".join(f"{k}={json.dumps(v)}" for k, v in fixed.items()), markup=False)
    if sweep.spec.method == "bayes":
        console.print(f"{sweep.spec.run_cap} points sampled by TPE from:")
        for path, p in sweep.spec.parameters.items():
            if p.kind == "constant":  # shown under "every trial"
                continue
            console.print(f"  {path}: {p.kind} {json.dumps(p.corners())}")
        return
    from nnlab.sweeps.spec import validate_point

    counts = parameter_counts(sweep, sweep.points, device=_count_device(device), backend_name=backend)
    budgets = [validate_point(sweep, params).max_params for params in sweep.points]
    for trial in sweep.trials():
        shown = " ".join(f"{k}={json.dumps(v)}" for k, v in trial.params.items())
        budget = budgets[trial.point]
        over = f"  (over max_params {budget:,}: pruned)" if budget is not None and counts[trial.point] > budget else ""
        console.print(f"trial {trial.index:>4}  point {trial.point:>3}  seed {trial.seed:>3}  "
                      f"parameters {counts[trial.point]:>12,}  {shown}{over}", markup=False)
    console.print(f"{len(sweep.trials())} trials ({len(sweep.points)} points x {sweep.spec.repeats} seed(s)); "
                  "nothing trained (--dry-run)")


def _count_device(device: str) -> str:
    return "cpu" if device == "auto" else device  # counting builds models only: no GPU needed


__all__ = ["check_storage", "command_words", "create", "drive", "host_settings", "join", "params_only", "plan",
           "print_dry_run", "print_finished", "print_start", "reopen", "threads_per_trial", "trial_backend"]

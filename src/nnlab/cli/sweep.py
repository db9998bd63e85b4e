"""`nnlab sweep`: grid, random and Bayesian searches over an experiment file, in parallel and resumable."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

import typer

from nnlab.cli._common import handle_errors
from nnlab.errors import ConfigError


@handle_errors
def sweep(
    source: Optional[str] = typer.Argument(None, metavar="FILE", help="Sweep file (configs/sweeps/*.yaml), or an "
                                           "experiment file with comma-list words."),
    words: Optional[list[str]] = typer.Argument(None, metavar="KEY=VALUE", help="Overrides of the base config; "
                                                "a comma list (a=1,2 or model.hidden=[8],[32]) is swept."),
    dry_run: bool = typer.Option(False, "--dry-run", help="List every trial (parameters, seed, parameter count); "
                                 "train nothing."),
    params_only: bool = typer.Option(False, "--params-only", help="Build each point's model and record its "
                                     "parameter count; no training."),
    workers: int = typer.Option(1, "--workers", min=0, max=256, help="Worker processes on this machine (0: only "
                                "create the study, for workers that --join it)."),
    threads: Optional[int] = typer.Option(None, "--threads", min=1, help="Threads per trial (NNLAB_THREADS; "
                                          "default: cores // workers)."),
    storage: Optional[str] = typer.Option(None, "--storage", envvar="NNLAB_SWEEP_STORAGE",
                                          help="Study storage: journal (a file in the sweep folder, the default) or "
                                          "postgresql://user:password@host/db (from $NNLAB_SWEEP_STORAGE, the "
                                          "password stays out of `ps`)."),
    join: Optional[str] = typer.Option(None, "--join", help="Add workers to a sweep whose study is in --storage."),
    resume: Optional[str] = typer.Option(None, "--resume", help="Finish a stopped sweep (id, prefix, path or latest)."),
    retry_failed: bool = typer.Option(False, "--retry-failed", help="With --resume: run failed trials again."),
    repeats: Optional[int] = typer.Option(None, "--repeats", min=1, help="Seeds per point (overrides the file)."),
    metric: Optional[str] = typer.Option(None, "--metric", help="The metric to optimise and summarise, e.g. val_nmse "
                                         "(overrides the file; its goal follows from the name)."),
    method: Optional[str] = typer.Option(None, "--method", help="grid, random or bayes (overrides the file)."),
    run_cap: Optional[int] = typer.Option(None, "--run-cap", min=1, help="random/bayes: how many points."),
    device: str = typer.Option("auto", "--device", help="cpu, gpu or auto, for every trial."),
    isolate: Optional[bool] = typer.Option(None, "--isolate/--no-isolate", help="Train every trial in a fresh "
                                           "process (default: each worker's warm trial host trains trial after "
                                           "trial; recorded in sweep.yaml)."),
    host_trials: Optional[int] = typer.Option(None, "--host-trials", min=1, help="Trials per warm host before it "
                                              "is replaced (default 50)."),
    host_memory: Optional[int] = typer.Option(None, "--host-memory", min=64, help="A warm host whose resident "
                                              "memory passed this many MiB after a trial is replaced (default "
                                              "4096)."),
    backend: Optional[str] = typer.Option(None, "--backend", help="Keras backend for every trial: tensorflow or "
                                          "jax (default: the base config's backend:, else $KERAS_BACKEND, else "
                                          "tensorflow)."),
    runs_dir: Optional[str] = typer.Option(None, "--runs-dir", envvar="NNLAB_RUNS_DIR",
                                           help="Where run folders go; sweeps go to its sweeps/ (default: runs)."),
) -> None:
    """Run a sweep: every trial an ordinary run, the sweep a folder with trials.csv, summary.csv, best.yaml, plots.

    \b
    Examples:
      nnlab sweep configs/sweeps/mnist_hidden.yaml train.epochs=3 --workers 2
      nnlab sweep configs/digits_mlp.yaml model.hidden=[8],[32] train.optimizer.learning_rate=0.1,0.01 --repeats 3
      nnlab sweep configs/sweeps/cifar10_filters.yaml --params-only
      nnlab sweep --resume latest
      nnlab sweep configs/sweeps/mnist_hidden.yaml --isolate   # a fresh process per trial
    """
    from rich.console import Console

    from nnlab import runs, sweeps

    console = Console(highlight=False, soft_wrap=True)
    command = sweeps.command_words(sys.argv[1:])
    runs_dir_path = Path(runs_dir or runs.default_runs_dir())
    sweeps.check_storage(storage)
    if join or resume:
        if source or words or dry_run or params_only:
            raise ConfigError(f"{'--join' if join else '--resume'} takes no sweep file, overrides, --dry-run or "
                              "--params-only: the sweep's own settings are used")
        if join and resume:
            raise ConfigError("--join and --resume: give one")
        if workers == 0:
            raise ConfigError("--workers 0 only creates a sweep; --join and --resume need at least one worker")
    if retry_failed and not resume:
        raise ConfigError("--retry-failed goes with --resume SWEEP")
    threads = sweeps.threads_per_trial(threads, workers)
    backend = sweeps.trial_backend(backend)  # an unknown or missing backend: one line before any trial
    given_hosts = {"isolate": isolate, "max_trials": host_trials, "max_rss_mb": host_memory}
    if join:
        sweep_dir, hosts = sweeps.join(join, runs_dir_path, storage, given_hosts)
        sweeps.print_start(console, sweep_dir, f"joining with {workers} worker(s) x {threads} thread(s)", storage)
        _drive(console, sweep_dir, storage, workers=workers, threads=threads, device=device, backend=backend,
               hosts=hosts, command=command)
        return
    if resume:
        sweep_dir, url, hosts = sweeps.reopen(resume, runs_dir_path, storage, given_hosts, retry_failed=retry_failed)
        sweeps.print_start(console, sweep_dir, f"resuming with {workers} worker(s) x {threads} thread(s)", url)
        _drive(console, sweep_dir, url, workers=workers, threads=threads, device=device, backend=backend,
               hosts=hosts, command=command)
        return
    if not source:
        raise ConfigError("nnlab sweep: give a sweep file (e.g. configs/sweeps/mnist_hidden.yaml), --resume or --join")
    plan = sweeps.plan(source, words or [], repeats=repeats, method=method, run_cap=run_cap, metric=metric)
    if dry_run:
        sweeps.print_dry_run(console, plan, device, backend)
        return
    if params_only:
        _finish(console, sweeps.params_only(plan, runs_dir_path, command, device, backend), 0)
        return
    hosts = sweeps.host_settings(given_hosts, {})
    sweep_dir = sweeps.create(plan, runs_dir_path, storage or "journal", command, hosts)
    sweeps.print_start(console, sweep_dir, f"{plan.spec.method}, {plan.trial_count} trials, {workers} worker(s) x "
                       f"{threads} thread(s)", storage or "journal")
    if workers == 0:
        console.print(f"sweep id: {sweep_dir.name}")
        console.print(f"sweep folder: {sweep_dir}")
        console.print(f"no workers started: add them with nnlab sweep --join {sweep_dir.name} --storage ...")
        return
    _drive(console, sweep_dir, storage or "journal", workers=workers, threads=threads, device=device,
           backend=backend, hosts=hosts, command=command)


def _drive(console, sweep_dir: Path, storage: str, **settings) -> None:
    """Run the sweep's workers to the end; on Ctrl-C, say how to finish it."""
    from nnlab import sweeps

    try:
        code = sweeps.drive(sweep_dir, storage, console=console, **settings)
    except KeyboardInterrupt:
        console.print(f"sweep {sweep_dir.name} stopped; finish it with: nnlab sweep --resume {sweep_dir.name}")
        raise
    _finish(console, sweep_dir, code)


def _finish(console, sweep_dir: Path, code: int) -> None:
    from nnlab import sweeps

    sweeps.print_finished(console, sweep_dir)
    if code:
        raise typer.Exit(code)

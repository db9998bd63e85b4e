"""`nnlab sweep`: grid, random and Bayesian searches over an experiment file, in parallel and resumable."""

from __future__ import annotations

import json
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

    from nnlab import runs
    from nnlab.sweeps import aggregate

    console = Console(highlight=False, soft_wrap=True)
    command = ["nnlab", *(aggregate.masked_url(word) for word in sys.argv[1:])]  # no password in any file
    runs_dir_path = Path(runs_dir or runs.default_runs_dir())
    if storage is not None and storage != "journal" and "://" not in storage:
        raise ConfigError(f"--storage {storage!r}: expected journal or a URL such as postgresql://user@host/db")
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
    threads = threads or aggregate.default_threads(workers)
    if backend is not None:
        from nnlab.training.backend import choose

        backend = choose(backend, key="--backend")  # an unknown or missing backend: one line before any trial
    given_hosts = {"isolate": isolate, "max_trials": host_trials, "max_rss_mb": host_memory}
    if join:
        if not storage or storage == "journal":
            raise ConfigError("--join needs --storage postgresql://... (the shared study)")
        from nnlab.sweeps import study

        sweep_dir = study.attach(join, runs_dir_path, storage)
        hosts = _host_settings(given_hosts, study.read_sweep_file(sweep_dir))
        _announce(console, sweep_dir, f"joining with {workers} worker(s) x {threads} thread(s)", storage)
        _drive(console, sweep_dir, storage, workers=workers, threads=threads, device=device, backend=backend,
               hosts=hosts, command=command)
        return
    if resume:
        from nnlab.sweeps import study

        sweep_dir = aggregate.find_sweep(resume, runs_dir_path)
        recorded = study.read_sweep_file(sweep_dir)
        url = storage or str(recorded.get("storage", "journal"))
        if aggregate.MASK in url:
            raise ConfigError(f"--resume {resume}: the study's password is not stored; give --storage URL again "
                              "(or keep it in PGPASSWORD or ~/.pgpass)")
        if retry_failed:
            study.load(url, sweep_dir).requeue_failed()
        _announce(console, sweep_dir, f"resuming with {workers} worker(s) x {threads} thread(s)", url)
        _drive(console, sweep_dir, url, workers=workers, threads=threads, device=device, backend=backend,
               hosts=_host_settings(given_hosts, recorded), command=command)
        return
    if not source:
        raise ConfigError("nnlab sweep: give a sweep file (e.g. configs/sweeps/mnist_hidden.yaml), --resume or --join")
    from nnlab.sweeps.spec import load_sweep

    plan = load_sweep(source, words or [], repeats=repeats, method=method, run_cap=run_cap)
    if dry_run:
        _dry_run(console, plan, device, backend)
        return
    if params_only:
        from nnlab.sweeps.counts import write_params_only

        sweep_dir = write_params_only(plan, runs_dir_path, command, "cpu" if device == "auto" else device, backend)
        _finish(console, sweep_dir, 0)
        return
    from nnlab.sweeps import study

    hosts = _host_settings(given_hosts, {})
    sweep_dir = study.create(plan, runs_dir_path, storage or "journal", command, trial_hosts=hosts.to_dict())
    _announce(console, sweep_dir, f"{plan.spec.method}, {plan.trial_count} trials, {workers} worker(s) x "
              f"{threads} thread(s)", storage or "journal")
    if workers == 0:
        console.print(f"sweep id: {sweep_dir.name}")
        console.print(f"sweep folder: {sweep_dir}")
        console.print(f"no workers started: add them with nnlab sweep --join {sweep_dir.name} --storage ...")
        return
    _drive(console, sweep_dir, storage or "journal", workers=workers, threads=threads, device=device,
           backend=backend, hosts=hosts, command=command)


def _host_settings(given: dict, recorded: dict):
    """The trial-host settings: the options given, else what sweep.yaml recorded when the sweep was made."""
    from nnlab.sweeps.worker import HostSettings

    settings = {**(recorded.get("trial_hosts") or {}), **{k: v for k, v in given.items() if v is not None}}
    return HostSettings(**{k: v for k, v in settings.items() if k in HostSettings.__dataclass_fields__})


def _drive(console, sweep_dir: Path, storage: str, **settings) -> None:
    """Run the sweep's workers to the end; on Ctrl-C, say how to finish it."""
    from nnlab.sweeps import driver

    try:
        code = driver.drive(sweep_dir, storage, console=console, **settings)
    except KeyboardInterrupt:
        console.print(f"sweep {sweep_dir.name} stopped; finish it with: nnlab sweep --resume {sweep_dir.name}")
        raise
    _finish(console, sweep_dir, code)


def _announce(console, sweep_dir: Path, what: str, storage: str) -> None:
    from nnlab.sweeps.dashboards import optuna_dashboard_hint

    console.print(f"sweep {sweep_dir.name}: {what}")
    console.print(f"trial logs: {sweep_dir / 'logs'}")
    console.print(optuna_dashboard_hint(sweep_dir, storage), markup=False)


def _finish(console, sweep_dir: Path, code: int) -> None:
    from nnlab.sweeps.aggregate import read_sweep
    from nnlab.sweeps.dashboards import write_hparams_line
    from nnlab.sweeps.report import print_sweep, write_sweep_plots

    write_sweep_plots(sweep_dir)
    console.print(write_hparams_line(sweep_dir), markup=False)
    summary = read_sweep(sweep_dir)
    print_sweep(summary, console)
    if code:
        raise typer.Exit(code)


def _dry_run(console, plan, device: str, backend: str | None) -> None:
    from nnlab.sweeps.counts import parameter_counts

    console.print(f"sweep {plan.name}: {plan.spec.method}, metric {plan.spec.metric.name} ({plan.spec.metric.goal}), "
                  f"{plan.spec.repeats} seed(s) per point")
    fixed = plan.fixed()
    if fixed:
        console.print("every trial: " + " ".join(f"{k}={json.dumps(v)}" for k, v in fixed.items()), markup=False)
    if plan.spec.method == "bayes":
        console.print(f"{plan.spec.run_cap} points sampled by TPE from:")
        for path, p in plan.spec.parameters.items():
            if p.kind == "constant":  # shown under "every trial"
                continue
            console.print(f"  {path}: {p.kind} {json.dumps(p.corners())}")
        return
    counts = parameter_counts(plan, plan.points, device="cpu" if device == "auto" else device, backend_name=backend)
    for trial in plan.trials():
        shown = " ".join(f"{k}={json.dumps(v)}" for k, v in trial.params.items())
        console.print(f"trial {trial.index:>4}  point {trial.point:>3}  seed {trial.seed:>3}  "
                      f"parameters {counts[trial.point]:>12,}  {shown}")
    console.print(f"{len(plan.trials())} trials ({len(plan.points)} points x {plan.spec.repeats} seeds); "
                  "nothing trained (--dry-run)")

"""`nnlab train`: a config file (plus overrides) to a trained model and a run folder."""

from __future__ import annotations

import sys
from typing import Optional

import typer

from nnlab.cli._common import handle_errors
from nnlab.errors import ConfigError


@handle_errors
def train(
    config: Optional[str] = typer.Argument(None, help="Experiment YAML file (or a run's config.yaml)."),
    overrides: Optional[list[str]] = typer.Argument(None, help="key.sub=value overrides, values as YAML."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print the resolved config and model summary; train nothing."),
    resume: Optional[str] = typer.Option(None, "--resume", help="Continue a stopped run (id, prefix, path or latest)."),
    device: str = typer.Option("auto", "--device", help="cpu, gpu or auto."),
    force: bool = typer.Option(False, "--force", help="With --resume: go on where the run folder's file system "
                               "cannot lock (only if no other process trains that run)."),
    runs_dir: Optional[str] = typer.Option(None, "--runs-dir", help="Where run folders go (beats output.runs_dir, "
                                           "which beats $NNLAB_RUNS_DIR; default: runs)."),
) -> None:
    """Train a model from a YAML experiment file.

    \b
    Example:
      nnlab train configs/digits_mlp.yaml train.epochs=5 model.hidden=[64,32]
    """
    from nnlab import experiment

    command = ["nnlab", *sys.argv[1:]]
    if resume:
        extra = [item for item in (config, *(overrides or [])) if item]  # `--resume RUN train.epochs=N`
        experiment.resume(resume, extra, runs_dir=runs_dir, device=device, force=force, command=command)
        return
    if not config:
        raise ConfigError("nnlab train: give a config file (e.g. configs/digits_mlp.yaml) or --resume RUN")
    experiment.train(config, overrides or [], runs_dir=runs_dir, device=device, dry_run=dry_run, command=command)

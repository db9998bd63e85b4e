"""`nnlab train`: a config file (plus overrides) to a trained model and a run folder."""

from __future__ import annotations

import difflib
import inspect
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
    backend: Optional[str] = typer.Option(None, "--backend", help="Keras backend: tensorflow or jax (default: the "
                                          "config's backend:, else $KERAS_BACKEND, else tensorflow; --resume: the run's)."),
    threads: Optional[int] = typer.Option(None, "--threads", help="CPU threads for this process (default: "
                                          "$NNLAB_THREADS, else every core); for parallel sweep workers."),
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

    _refuse_unknown_options([item for item in (config, *(overrides or [])) if item])
    command = ["nnlab", *sys.argv[1:]]
    if resume:
        extra = [item for item in (config, *(overrides or [])) if item]  # `--resume RUN train.epochs=N`
        experiment.resume(resume, extra, runs_dir=runs_dir, device=device, backend=backend, threads=threads,
                          force=force, command=command)
        return
    if not config:
        raise ConfigError("nnlab train: give a config file (e.g. configs/digits_mlp.yaml) or --resume RUN")
    experiment.train(config, overrides or [], runs_dir=runs_dir, device=device, backend=backend, threads=threads,
                     dry_run=dry_run, command=command)


def _refuse_unknown_options(items: list[str]) -> None:
    """`--epochs 2` is not an option: say which key=value override sets it (or which option was meant)."""
    from nnlab.experiment import option_key

    for position, item in enumerate(items):
        if not item.startswith("-") or item == "-":
            continue
        flag, _, value = item.partition("=")
        following = items[position + 1] if position + 1 < len(items) else ""
        if not value and following and not following.startswith("-") and "=" not in following:
            value = following
        key = option_key(flag)
        if key:
            raise ConfigError(f"nnlab train: {flag} is not an option; config keys are set as key=value: "
                              f"write {key}={value or '...'}")
        options = [name for param in inspect.signature(train.__wrapped__).parameters.values()
                   for name in getattr(param.default, "param_decls", None) or () if name.startswith("--")] + ["--help"]
        close = difflib.get_close_matches(flag, options, n=1, cutoff=0.7)
        hint = f" (did you mean {close[0]}?)" if close else f" (options: {', '.join(options)})"
        raise ConfigError(f"nnlab train: no such option {flag}{hint}")


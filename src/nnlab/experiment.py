"""One training run, from a config file (or a stopped run) to a finished run folder."""

from __future__ import annotations

import contextlib
import math
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any, Callable, TextIO

from nnlab import __version__, runs
from nnlab.config import ComponentConfig, ExperimentConfig, dump_yaml, key_path, load_config
from nnlab.errors import ConfigError, OverBudget, RunPruned, first_line, in_file, shown
from nnlab.metrics import MAIN_METRIC, lower_is_better


def _prepare(config: ExperimentConfig, source: str, device: str, backend_name: str | None, threads: int | None,
             timer: Timer, data_cache: dict | None = None):
    """Backend, device, data, and the compiled model; every bad-input error surfaces here, before a run folder exists.

    Returns the config with its backend resolved (so config.yaml records it), what the device
    configuration used, the dataset and the model.
    """
    from nnlab import datasets, models
    from nnlab.training import backend

    name = backend.choose(backend_name or config.backend, key="--backend" if backend_name else f"{source}: backend")
    config = config.model_copy(update={"backend": name})
    _phase("starting Keras")
    with timer("backend"):  # mostly the import of Keras and its backend
        device_info = backend.configure(device, backend=name, deterministic=config.train.deterministic,
                                        num_threads=threads)
    from nnlab.training import fused
    from nnlab.training.compile import compile_model

    with in_file(source):
        _phase(f"loading data ({config.data.name})")
        backend.seed_everything(config.seed)  # the run's random stream starts here, and only here
        with timer("data"):
            dataset = datasets.load(config.data, data_cache)
        _phase(f"building the model ({config.model.name})")
        with timer("build"):
            model = models.build(config.model, dataset.spec)
            device_info["jit_compile"] = compile_model(model, config, dataset)
            device_info.update(fused.choose(model, config, dataset))
    return config, device_info, dataset, model


def prepare(config: ExperimentConfig, *, source: str, device: str = "auto", backend: str | None = None,
            threads: int | None = None, data_cache: dict | None = None):
    """What a run does before its run folder exists, and nothing more: the backend and device, seeding, the data
    and the compiled model (`nnlab sweep --dry-run` and --params-only count parameters of these models).

    Returns the config with its backend resolved, the device record, the dataset and the model.
    """
    return _prepare(config, source, device, backend, threads, Timer(), data_cache)


def _phase(text: str) -> None:
    """On a terminal, say which slow step is under way (on stderr: logs and pipes of stdout stay clean)."""
    if sys.stderr.isatty():
        print(f"{text}...", file=sys.stderr, flush=True)


def model_summary(model) -> str:
    lines: list[str] = []
    model.summary(print_fn=lambda line, *args, **kwargs: lines.append(line))  # a line_length cuts off the Param # column
    return "\n".join(lines) + "\n"


def parameter_counts(model) -> dict[str, int]:
    trainable = sum(int(math.prod(w.shape)) for w in model.trainable_weights)
    total = sum(int(math.prod(w.shape)) for w in model.weights)
    return {"total": total, "trainable": trainable, "non_trainable": total - trainable}


def option_key(word: str) -> str | None:
    """The config key path an option-like word of `nnlab train` names (`--epochs` -> `train.epochs`, `--lr` -> the
    learning rate's), if one does: such a key is set with a key=value override, not an option."""
    return key_path(word.lstrip("-").replace("-", "_"))


def train(config_path: str | Path, overrides: list[str] | tuple[str, ...] = (), *, runs_dir: str | Path | None = None,
          device: str = "auto", backend: str | None = None, threads: int | None = None, dry_run: bool = False,
          command: list[str] | None = None, stream: TextIO | None = None) -> Path | None:
    """Train the experiment a YAML file describes; return its run folder (None for a dry run)."""
    timer = Timer()
    config = load_config(config_path, overrides)
    return train_config(config, source=str(config_path), overrides=overrides, runs_dir=runs_dir, device=device,
                        backend=backend, threads=threads, dry_run=dry_run, command=command, stream=stream, timer=timer)


def train_config(config: ExperimentConfig, *, source: str, overrides: list[str] | tuple[str, ...] = (),
                 runs_dir: str | Path | None = None, device: str = "auto", backend: str | None = None,
                 threads: int | None = None, dry_run: bool = False, command: list[str] | None = None,
                 stream: TextIO | None = None, timer: Timer | None = None,
                 on_start: Callable[[Path], None] | None = None, callbacks: list | tuple = (),
                 data_cache: dict | None = None) -> Path | None:
    """Train a validated config (what a sweep's trial host calls per trial); `source` names where it came from.

    `backend` (--backend) wins over the config's `backend:`; `threads` (--threads) over $NNLAB_THREADS.
    `on_start(run_dir)` is called once the run folder is made and claimed; `callbacks` (Keras callbacks) run
    after nnlab's own at every epoch end; `data_cache` lets the next call reuse this one's data (`datasets.load`).
    """
    stream = stream or sys.stdout
    timer = timer or Timer()
    runs_dir = Path(runs_dir or config.output.runs_dir or runs.default_runs_dir())  # CLI, config, environment
    if not dry_run:
        runs.check_runs_dir(runs_dir)
    config = _data_path_resolved(config)
    config, device_info, dataset, model = _prepare(config, source, device, backend, threads, timer, data_cache)
    counts = parameter_counts(model)
    if config.max_params is not None and counts["total"] > config.max_params:
        raise OverBudget(counts["total"], config.max_params, file=source)
    if dry_run:
        print(dump_yaml(config.to_dict()), file=stream)
        print(model_summary(model), file=stream)
        print(f"parameters: {counts['total']:,} ({counts['trainable']:,} trainable)", file=stream)
        return None
    run_dir = runs.create_run_dir(runs_dir, config.name)
    with runs.claimed(run_dir), runs.removed_unless_started(run_dir):
        runs.write_text(run_dir / runs.CONFIG, dump_yaml(config.to_dict()))
        runs.write_text(run_dir / runs.OVERRIDES, dump_yaml({"config_file": source, "overrides": list(overrides)}))
        runs.write_text(run_dir / runs.SUMMARY, model_summary(model) + _counts_text(counts))
        meta = runs.new_meta(config.name, config.seed, command or sys.argv, {
            "config_file": source,
            "task": dataset.task,
            "data": dataset.meta,
            **_inputs_record(dataset.spec),
            "parameters": counts,
            "device": device_info,
            "versions": _versions(device_info),
            "epochs_planned": config.train.epochs,
            **({"sweep": os.environ["NNLAB_SWEEP"]} if os.environ.get("NNLAB_SWEEP") else {}),  # a sweep's trial
        })
        runs.write_json(run_dir / runs.META, meta)
        print(f"run {run_dir.name}: training {config.name} ({dataset.meta.get('source', '?')} data {_sizes(dataset)}, "
              f"{counts['total']:,} parameters, {device_info['backend']} on {device_info['used']})", file=stream,
              flush=True)
        if on_start is not None:
            on_start(run_dir)
        _run(model, config, dataset, run_dir, None, stream, timer, callbacks)
    return run_dir


def resume(run_ref: str, overrides: list[str] | tuple[str, ...] = (), *, runs_dir: str | Path | None = None,
           device: str = "auto", backend: str | None = None, threads: int | None = None, force: bool = False,
           command: list[str] | None = None, stream: TextIO | None = None, timer: Timer | None = None,
           on_start: Callable[[Path], None] | None = None, callbacks: list | tuple = ()) -> Path:
    """Continue a stopped run from its last finished epoch; the run is claimed before anything slow.

    `train.epochs=N` (the only override allowed) trains a run further, a completed one included. It
    runs on the backend its config.yaml records unless `backend` (--backend) says otherwise. `on_start` and
    `callbacks` as for `train_config` (a sweep's trial host resumes the trial a Ctrl-C cut off).
    """
    stream = stream or sys.stdout
    timer = timer or Timer()
    wrong = [item for item in overrides if item.partition("=")[0] != "train.epochs"]
    if wrong:
        raise ConfigError(f"--resume {run_ref}: only train.epochs=N may change (to train further); "
                          f"the run's own config.yaml is used (got {shown(wrong[0])})")
    run_dir = runs.find_run(run_ref, runs_dir or runs.default_runs_dir())
    with runs.claimed(run_dir, force=force):  # holding the lock, a `running` status is a dead owner's
        meta = runs.read_json(run_dir / runs.META)
        config_path = run_dir / runs.CONFIG
        config = load_config(config_path, overrides)
        done = (runs.read_checkpoint(run_dir) or {}).get("epoch", 0)  # keras-free: the backend is not chosen yet
        planned = meta.get("epochs_planned", config.train.epochs)
        if overrides and config.train.epochs <= done:
            raise ConfigError(f"--resume {run_ref}: {overrides[-1]}: the run has {done} epochs already; "
                              "give more to train further")
        if meta.get("status") == "completed" and config.train.epochs == planned:
            raise ConfigError(f"--resume {run_ref}: run {run_dir.name} is already completed "
                              f"(train it further with --resume {run_ref} train.epochs={planned + 10})")
        runs.remove_temp_files(run_dir)
        recorded_backend = config.backend
        config, device_info, dataset, model = _prepare(config, str(config_path), device, backend, threads, timer)
        from nnlab.training.fit import load_checkpoint

        with timer("build"):
            checkpoint_model, state = load_checkpoint(run_dir)
        if checkpoint_model is not None:  # this process's steps per call, as for a fresh run
            from nnlab.training import fused

            fused.use(checkpoint_model, model.steps_per_execution, device_info["chosen_by"])
        model = checkpoint_model or model
        if runs.stopped_early(state) and config.train.epochs != planned:
            raise ConfigError(f"--resume {run_ref}: early stopping ended this run at epoch {done}; "
                              "more epochs would stop again")
        extra = {}
        if config.train.epochs != planned or config.backend != recorded_backend:  # the next resume continues so
            runs.write_text(config_path, dump_yaml(config.to_dict()))
        if config.train.epochs != planned:
            extra = {"epochs_planned": config.train.epochs,
                     "extended": [*meta.get("extended", []), {"from": planned, "to": config.train.epochs,
                                                              "after_epoch": done, "at": runs.now_iso()}]}
        runs.restart_meta(run_dir, device=device_info, versions=_versions(device_info),
                          resume_command=command or sys.argv, **extra)
        done = state["epoch"] if state else 0
        print(f"run {run_dir.name}: resuming {config.name} after epoch {done}/{config.train.epochs}", file=stream,
              flush=True)
        if on_start is not None:
            on_start(run_dir)
        _run(model, config, dataset, run_dir, state, stream, timer, callbacks)
    return run_dir


def _run(model, config: ExperimentConfig, dataset, run_dir: Path, state: dict[str, Any] | None, stream: TextIO,
         timer: Timer, callbacks: list | tuple = ()) -> None:
    """Fit, evaluate, save and plot; the run's status says how it ended, whatever happens."""
    from nnlab.training.scoring import evaluate
    from nnlab.training.fit import fit

    try:
        with timer("fit"):
            history, checkpoint_s = fit(model, config, dataset, run_dir, state, stream, list(callbacks))
        timer.move("fit", "checkpoints", checkpoint_s)
        _phase("evaluating")
        with timer("evaluate"):
            scores = evaluate(model, config, dataset, run_dir, history)
        if config.output.save_model:
            with timer("save"), runs.atomic_path(run_dir / runs.MODEL) as tmp:
                model.save(tmp)
        if config.output.plots:
            _phase("drawing plots")
            with timer("plots"):
                from nnlab.reports.plots import write_run_plots

                write_run_plots(run_dir, title=config.name)
        main = MAIN_METRIC[dataset.task]
        main_metric = {"name": f"val_{main}", "value": scores["val"].get(main)}
        runs.finish_meta(run_dir, "completed", epochs_done=len(history), best_epoch=_best_epoch(config, history),
                         main_metric=main_metric, timings_s=timer.table())
    except KeyboardInterrupt:
        runs.finish_meta(run_dir, "interrupted", reason="interrupted (resume with nnlab train --resume)")
        raise
    except RunPruned as exc:
        runs.finish_meta(run_dir, "pruned", reason=str(exc))
        raise
    except BaseException as exc:
        reason = first_line(exc)
        runs.finish_meta(run_dir, "failed", reason=reason, error=type(exc).__name__)
        raise
    _refresh_report(run_dir, stream)
    value = main_metric["value"]
    text = f"{value:.4f}" if isinstance(value, float) else value
    print(f"run id: {run_dir.name}", file=stream)
    print(f"run folder: {run_dir}", file=stream)
    print(f"{main_metric['name']}: {text}", file=stream, flush=True)


def _refresh_report(run_dir: Path, stream: TextIO) -> None:
    """A report.html taken while the run trained is rewritten now that it is complete."""
    if not (run_dir / runs.REPORT).is_file():
        return
    from nnlab.reports.run_page import write_run_report

    try:
        write_run_report(run_dir)
    except Exception as exc:  # noqa: BLE001  (the run is complete; a stale report is only a note)
        print(f"note: could not refresh {run_dir / runs.REPORT} ({type(exc).__name__}); run nnlab report", file=stream)


def _data_path_resolved(config: ExperimentConfig) -> ExperimentConfig:
    """A relative data.path made absolute, so the run's config.yaml works from any folder (--resume, inspect)."""
    path = config.data.params.get("path")
    if not isinstance(path, str) or Path(path).expanduser().is_absolute():
        return config
    data = ComponentConfig(name=config.data.name, **{**config.data.params, "path": str(Path(path).resolve())})
    return config.model_copy(update={"data": data})


def _sizes(dataset) -> str:
    """`train 1,437 / val 360`: the examples per split."""
    return " / ".join(f"{split} {n:,}" for split, n in dataset.sizes().items())


def _best_epoch(config: ExperimentConfig, history: list[dict[str, Any]]) -> int | None:
    stop = config.train.early_stopping
    monitor = stop.monitor if stop else "val_loss"
    values = [(row.get(monitor), row["epoch"]) for row in history if row.get(monitor) is not None]
    if not values:
        return None
    mode = stop.mode if stop else "auto"
    lower = mode == "min" or (mode == "auto" and lower_is_better(monitor))
    return (min if lower else max)(values)[1]


def _inputs_record(spec) -> dict[str, Any]:
    """What meta.json records of the loader's inputs for `nnlab predict`: class names and, for images, how a
    picture file is prepared (the loader's ImageFormat)."""
    return {"class_names": list(spec.class_names) if spec.class_names else None,
            "image_format": spec.image_format.to_dict() if spec.image_format else None}


def _counts_text(counts: dict[str, int]) -> str:
    return (f"Total params: {counts['total']:,}\nTrainable params: {counts['trainable']:,}\n"
            f"Non-trainable params: {counts['non_trainable']:,}\n")


def _versions(device_info: dict[str, Any]) -> dict[str, str]:
    """nnlab, Python, NumPy, Keras and the backend's own packages (tensorflow, or jax and jaxlib)."""
    import numpy

    out = {"nnlab": __version__, "python": platform.python_version(), "numpy": numpy.__version__}
    out.update({k: device_info[k] for k in ("keras", "tensorflow", "jax", "jaxlib") if device_info.get(k)})
    return out


class Timer:
    """Seconds per phase of a run (start-up, backend, data, build, fit, checkpoints, evaluate, save, plots)."""

    def __init__(self, startup: float | None = None):
        """`startup`: seconds before this run began (default: this process's age; a warm trial host: 0)."""
        self.seconds: dict[str, float] = {"startup": _process_age() if startup is None else startup}
        self.began = time.perf_counter()

    @contextlib.contextmanager
    def __call__(self, phase: str):
        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[phase] = self.seconds.get(phase, 0.0) + time.perf_counter() - start

    def move(self, source: str, target: str, seconds: float) -> None:
        """Count `seconds` of phase `source` under `target` instead (checkpoints written during fit)."""
        self.seconds[source] = self.seconds.get(source, 0.0) - seconds
        self.seconds[target] = self.seconds.get(target, 0.0) + seconds

    def table(self) -> dict[str, float]:
        """The phases, `other` for time not in any of them, and `total` from process start."""
        total = self.seconds["startup"] + time.perf_counter() - self.began
        out = {k: round(v, 3) for k, v in self.seconds.items()}
        out["other"] = round(total - sum(self.seconds.values()), 3)
        out["total"] = round(total, 3)
        return out


def _process_age() -> float:
    """Seconds since this process started (interpreter start-up and imports before nnlab ran), 0 if unknown."""
    try:
        ticks = int(Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()[19])
        uptime = float(Path("/proc/uptime").read_text().split()[0])
        return max(0.0, uptime - ticks / os.sysconf("SC_CLK_TCK"))
    except (OSError, ValueError, IndexError):
        return 0.0


__all__ = ["Timer", "model_summary", "option_key", "parameter_counts", "resume", "train", "train_config"]

"""Opening a trained run, the one way evaluate, predict, export and inspect do: status check, config, model, data."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nnlab import runs
from nnlab.config import ComponentConfig, ExperimentConfig, load_config
from nnlab.errors import ConfigError, DataNotFoundError, RunDamagedError, first_line

if TYPE_CHECKING:
    from nnlab.datasets.base import ImageFormat


@dataclass(frozen=True)
class TrainedRun:
    """A run folder whose model can be used: `model_path` is model.keras or the last checkpoint's model."""

    run_dir: Path
    config: ExperimentConfig
    meta: dict[str, Any]
    status: str
    model_path: Path
    note: str | None  # set when the model is not the finished one (an incomplete run's checkpoint)

    @property
    def task(self) -> str | None:
        return self.meta.get("task")


def open_run(ref: str, runs_dir: str | Path | None = None, *, allow_incomplete: bool = False,
             overrides: list[str] | tuple[str, ...] = ()) -> TrainedRun:
    """Find a run (id, prefix, path or latest), refuse it unless completed (or allowed), read its config.

    `overrides` are applied to the run's config.yaml the way `nnlab train` applies them. Nothing is imported
    from Keras here, so every bad-input error comes before the slow start.
    """
    run_dir = runs.find_run(ref, runs_dir or runs.default_runs_dir())
    meta = runs.read_json(run_dir / runs.META)
    status = runs.effective_status(meta, run_dir)
    model_path, note = run_dir / runs.MODEL, None
    if status != "completed":
        if not allow_incomplete:
            raise ConfigError(f"run {run_dir.name} is {status}, not completed "
                              "(--allow-incomplete uses its last checkpoint)")
        model_path, note = _checkpoint_model(run_dir, status, meta)
    elif not model_path.is_file():
        raise ConfigError(f"run {run_dir.name}: no {runs.MODEL} (trained with output.save_model: false)")
    config = load_config(run_dir / runs.CONFIG, overrides)
    return TrainedRun(run_dir, config, meta, status, model_path, note)


def _checkpoint_model(run_dir: Path, status: str, meta: dict[str, Any]) -> tuple[Path, str]:
    state_path = run_dir / runs.CHECKPOINT / "state.json"
    try:
        state = runs.read_checkpoint(run_dir)
    except RunDamagedError:
        state = None
    if state is None:
        raise ConfigError(f"run {run_dir.name} is {status} and has no readable checkpoint ({state_path})")
    model_path = run_dir / runs.CHECKPOINT / state["model"]
    if not model_path.is_file():
        raise ConfigError(f"run {run_dir.name} is {status}: its checkpoint names {model_path.name}, which is missing")
    planned = meta.get("epochs_planned", "?")
    return model_path, f"run {run_dir.name} is {status}: using its last checkpoint (epoch {state['epoch']} of {planned})"


def recorded_inputs(run: TrainedRun) -> tuple[ImageFormat | None, list[str] | None]:
    """How the run's loader prepares a picture file (None: no image inputs) and its class names, as meta.json
    recorded them; a run trained before they were recorded asks its loader (loading its data once)."""
    from nnlab.datasets.base import ImageFormat

    if "image_format" in run.meta:
        recorded, names = run.meta["image_format"], run.meta.get("class_names")
        try:
            image_format = ImageFormat.from_dict(recorded) if recorded is not None else None
        except (KeyError, TypeError, ValueError, IndexError):
            raise RunDamagedError(f"{run.run_dir / runs.META}: image_format is not a recorded image format") from None
        return image_format, [str(n) for n in names] if isinstance(names, list) else None
    spec = load_data(run.run_dir, run.config, run.meta).spec
    return spec.image_format, list(spec.class_names) if spec.class_names else None


def load_model(run: TrainedRun, device: str = "auto", backend_name: str | None = None):
    """The run's Keras model, uncompiled, on the backend it was trained on unless `backend_name` says
    otherwise (a .keras file loads on either); imports Keras."""
    from nnlab.training import backend

    backend.configure_for_run(run.run_dir, backend=backend_name, device=device, seed=run.config.seed)
    import keras

    from nnlab.models import layers  # noqa: F401  (registers the custom layers saved models refer to)

    try:
        return keras.models.load_model(run.model_path, compile=False)
    except (OSError, ValueError, TypeError) as exc:
        raise ConfigError(f"{run.model_path}: cannot load the model: {first_line(exc)}") from None


def load_data(run_dir: Path, config: ExperimentConfig, meta: dict[str, Any] | None = None):
    """The run's dataset from its config.yaml; where that finds nothing (the data were found through
    $NNLAB_DATA_DIR when it trained), from the place its meta.json recorded, and saying so when that is gone."""
    from nnlab import datasets

    try:
        return datasets.load(config.data)
    except DataNotFoundError as exc:
        meta = runs.read_json(run_dir / runs.META) if meta is None else meta
        recorded = (meta.get("data") or {}).get("path")
        if not isinstance(recorded, str) or recorded == "keras download" or "path" not in config.data.params:
            raise
        if not Path(recorded).exists():
            raise DataNotFoundError(f"{exc}; run {run_dir.name} trained on {recorded}, which is gone") from None
        return datasets.load(ComponentConfig(name=config.data.name, **{**config.data.params, "path": recorded}))


__all__ = ["TrainedRun", "load_data", "load_model", "open_run", "recorded_inputs"]

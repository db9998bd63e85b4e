"""Inspect a finished run: plots of what the trained model does with one validation example."""

from __future__ import annotations

from pathlib import Path

from nnlab import runs
from nnlab.errors import ConfigError


def inspect_run(run_dir: str | Path, sample: int, layer: str | None = None, after_pool: bool = False) -> list[Path]:
    """Write the run's inspection plots for validation example `sample` into its plots/ folder; return the paths."""
    from nnlab import datasets
    from nnlab.config import load_config
    from nnlab.training import backend

    run_dir = Path(run_dir)
    config = load_config(run_dir / runs.CONFIG)
    if not (run_dir / runs.MODEL).is_file():
        raise ConfigError(f"{run_dir.name}: no {runs.MODEL} (the run did not finish, or output.save_model was off)")
    backend.configure("auto", seed=config.seed)
    import keras

    from nnlab.models import layers  # noqa: F401  (registers the custom objects saved models refer to)
    from nnlab.inspect.sequences import inspect_sequences, recurrent_layers

    dataset = datasets.load(config.data)
    model = keras.models.load_model(run_dir / runs.MODEL, compile=False)
    if recurrent_layers(model):
        if after_pool:
            raise ConfigError("--after-pool: is for convolutional runs; this run's model is recurrent")
        return inspect_sequences(run_dir, model, dataset, sample, layer)
    if model.name == "autoencoder":
        from nnlab.inspect.weights import plot_hidden_weights

        return plot_hidden_weights(run_dir, model, tuple(dataset.meta["patch_shape"]))
    raise ConfigError(f"{run_dir.name}: model {model.name!r} has no recurrent layer and is no autoencoder; "
                      "this build of nnlab inspect plots recurrent and autoencoder runs only")


__all__ = ["inspect_run"]

"""Looking inside a trained run: feature maps, kernels or hidden states, drawn into the run's plots/ folder.

`inspect_run` opens the run (`trained.run`: its model and dataset), then hands them to the first inspector module that
`handles` the model. Each inspector module exposes `handles(model) -> bool` and
`inspect(model, dataset, run_dir, *, sample, layer, after_pool) -> list[Path]`; add a module to INSPECTORS to
teach `nnlab inspect` a new kind of model.
"""

from __future__ import annotations

import importlib
import re
import sys
from pathlib import Path

from nnlab.errors import ConfigError

INSPECTORS: tuple[str, ...] = (
    "nnlab.trained.inspect.images",  # models with Conv2D layers: input image, feature-map grids, first-layer kernels
    "nnlab.trained.inspect.sequences",  # recurrent models: input/target/prediction and hidden units over time
    "nnlab.trained.inspect.weights",  # the sparse autoencoder: each hidden unit's input weights as an image
)


def inspect_run(run_dir: str | Path, sample: int, layer: str | None = None, after_pool: bool = False, *,
                allow_incomplete: bool = False) -> list[Path]:
    """Write the inspection PNGs for validation example `sample` of a run; return their paths."""
    from nnlab.trained.run import load_data, load_model, open_run

    run = open_run(str(run_dir), allow_incomplete=allow_incomplete)  # a folder: found as it is
    run_dir = run.run_dir
    check_arguments(run_dir, sample, layer)
    if run.note:
        print(run.note, file=sys.stderr)
    model = load_model(run)
    dataset = load_data(run_dir, run.config, run.meta)  # found through $NNLAB_DATA_DIR when it trained: as recorded
    for module_name in INSPECTORS:
        inspector = importlib.import_module(module_name)
        if inspector.handles(model):
            return inspector.inspect(model, dataset, run_dir, sample=sample, layer=layer, after_pool=after_pool)
    kinds = ", ".join(sorted({type(layer).__name__ for layer in model.layers}))
    raise ConfigError(f"{run_dir.name}: nnlab inspect has no view for this model (layers: {kinds})")


_IMAGE_LAYERS = {"Conv2D", "MaxPooling2D", "AveragePooling2D"}  # what nnlab.trained.inspect.images draws
_RECURRENT_LAYERS = {"SimpleRNN", "LSTM", "GRU", "RNN", "Bidirectional"}  # what nnlab.trained.inspect.sequences draws


def check_arguments(run_dir: Path, sample: int, layer: str | None) -> None:
    """--sample and --layer checked against the run's meta.json and summary.txt, before TensorFlow loads."""
    from nnlab import runs

    sizes = (runs.read_json(run_dir / runs.META).get("data") or {}).get("sizes") or {}
    if isinstance(sizes.get("val"), int) and not 0 <= sample < sizes["val"]:
        raise ConfigError(f"--sample: {sample} is out of range (the validation set has {sizes['val']} examples)")
    summary = run_dir / runs.SUMMARY
    if layer is not None and summary.is_file():
        found = re.findall(r"^\W*([\w./-]+) \((\w+)\)", summary.read_text(errors="replace"), flags=re.M)
        images = [name for name, kind in found if kind in _IMAGE_LAYERS]
        recurrent = [name for name, kind in found if kind in _RECURRENT_LAYERS]
        if images and layer not in images:
            raise ConfigError(f"--layer: no conv or pooling layer {layer!r} in this model "
                              f"(choose from: {', '.join(images)})")
        if not images and recurrent and layer not in recurrent:
            raise ConfigError(f"--layer: {layer!r} is not a recurrent layer of this model "
                              f"(choose from: {', '.join(recurrent)})")


def pick_sample(dataset, sample: int):
    """(x, y) of validation example `sample`, with a clear error when it does not exist."""
    if not 0 <= sample < len(dataset.x_val):
        raise ConfigError(f"--sample: {sample} is out of range (the validation set has {len(dataset.x_val)} examples)")
    return dataset.x_val[sample : sample + 1], dataset.y_val[sample]


__all__ = ["INSPECTORS", "check_arguments", "inspect_run", "pick_sample"]

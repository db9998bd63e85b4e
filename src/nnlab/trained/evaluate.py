"""Score a trained run on a split of its data (or of other data) into `evaluations/<stamp>-<split>-<hex>/`.

The scores come from the code training uses (`training.scoring.score_split` and `write_extras`), so an
evaluation of the run's own validation split reproduces its metrics.json. Only `data.*` keys may be
overridden: the model is already trained. Nothing the run folder held before is changed.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import TextIO

from nnlab import runs
from nnlab.errors import ConfigError, in_file
from nnlab.metrics import MAIN_METRIC

SPLITS = ("train", "val", "test")


def check_data_overrides(overrides: list[str] | tuple[str, ...]) -> None:
    """Only `data.<key>=value` is allowed: anything else would describe another model than the one trained."""
    for item in overrides:
        key = item.partition("=")[0]
        if not key.startswith("data.") or key == "data.name":
            raise ConfigError(f"override {item!r}: nnlab evaluate takes only data.* overrides (not data.name): "
                              "the model is already trained")


def evaluate_run(ref: str, overrides: list[str] | tuple[str, ...] = (), *, split: str = "val",
                 runs_dir: str | Path | None = None, allow_incomplete: bool = False, device: str = "auto",
                 stream: TextIO | None = None) -> Path:
    """Evaluate run `ref` on `split`; write and return the evaluation folder."""
    from nnlab.trained.run import open_run

    stream = stream or sys.stdout
    if split not in SPLITS:
        raise ConfigError(f"--split: expected one of {', '.join(SPLITS)} (got {split!r})")
    check_data_overrides(overrides)
    run = open_run(ref, runs_dir, allow_incomplete=allow_incomplete, overrides=overrides)
    sizes = (run.meta.get("data") or {}).get("sizes")
    if not overrides and isinstance(sizes, dict) and sizes and split not in sizes:  # as it trained: known already
        raise ConfigError(f"{run.run_dir / runs.CONFIG}: --split {split}: the {run.config.data.name} data has no "
                          f"{split} split (it has {', '.join(sizes)})")
    if run.note:
        print(run.note, file=stream, flush=True)

    from nnlab import datasets
    from nnlab.trained.run import load_model

    model = load_model(run, device)  # sets the backend up before anything imports Keras
    from nnlab.training.scoring import score_split, write_extras
    from nnlab.training.compile import compile_model

    source = str(run.run_dir / runs.CONFIG)
    with in_file(source):
        dataset = datasets.load(run.config.data)
        _check_fits(model, dataset, run.task, source)
        if split not in dataset.splits():
            raise ConfigError(f"--split {split}: the {run.config.data.name} data has no {split} split "
                              f"(it has {', '.join(dataset.splits())})")
        compile_model(model, run.config, dataset)
    scores, y_true, y_pred = score_split(model, run.config, dataset, split)

    folder = Path(tempfile.mkdtemp(prefix=".evaluation-", dir=_mkdir(run.run_dir / runs.EVALUATIONS)))
    try:
        import numpy as np

        runs.write_json(folder / runs.METRICS, {split: scores})
        with runs.atomic_path(folder / runs.PREDICTIONS) as tmp:
            np.savez_compressed(tmp, **{f"{split}_y_true": y_true, f"{split}_y_pred": y_pred})
        write_extras(run.config, dataset, folder, split, y_true, y_pred)
        runs.write_json(folder / runs.EVALUATION, {
            "run": run.run_dir.name,
            "split": split,
            "overrides": list(overrides),
            "model": run.model_path.relative_to(run.run_dir).as_posix(),
            "note": run.note,
            "created": runs.now_iso(),
            "task": dataset.task,
            "data": {**dataset.meta, "name": run.config.data.name},
            "config_data": run.config.data.model_dump(mode="json"),
            "examples": len(y_true),
            "command": ["nnlab", *sys.argv[1:]],
        })
        if run.config.output.plots:
            from nnlab.reports.plots import write_run_plots

            write_run_plots(folder, title=f"{run.config.name}: {split}", task=dataset.task)
        final = _publish(folder, run.run_dir / runs.EVALUATIONS, split)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    main = MAIN_METRIC[dataset.task]
    print(f"evaluation: {final}", file=stream)
    print(f"{split} split: {len(y_true):,} examples of {run.config.data.name} "
          f"({dataset.meta.get('source', '?')} data{', overrides ' + ' '.join(overrides) if overrides else ''})",
          file=stream)
    for name, value in scores.items():
        marker = "  (main metric)" if name == main else ""
        print(f"{split}_{name}: {value:.6g}{marker}", file=stream)
    return final


def _check_fits(model, dataset, task: str | None, source: str) -> None:
    """The data must have the shape the model takes and the task it was trained for."""
    expected = tuple(model.inputs[0].shape[1:])
    got = tuple(dataset.spec.input_shape)
    if len(expected) != len(got) or any(e is not None and e != g for e, g in zip(expected, got)):
        raise ConfigError(f"{source}: data: examples are shaped {got}, the model takes {expected}")
    if task is not None and dataset.task != task:
        raise ConfigError(f"{source}: data: the task is {dataset.task}, the model was trained for {task}")


def _mkdir(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _publish(folder: Path, parent: Path, split: str) -> Path:
    """Rename the finished temporary folder to `<stamp>-<split>-<4 hex>`: the name is taken by an exclusive
    mkdir first (never onto an existing evaluation), then the rename replaces that empty folder."""
    final = runs.create_run_dir(parent, split)
    os.replace(folder, final)
    return final


__all__ = ["SPLITS", "check_data_overrides", "evaluate_run"]

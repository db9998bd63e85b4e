"""Pure readers of a run folder's files into small data objects (no Keras, no matplotlib)."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from nnlab import runs


@dataclass(frozen=True)
class Curves:
    """Per-epoch values: `series[name]` for each history column except epoch and timing."""

    epochs: list[int]
    series: dict[str, list[float]]

    def metric_names(self) -> list[str]:
        """Training metrics that have values per epoch (loss first), without the val_ twins."""
        names = [k for k in self.series if not k.startswith("val_") and k not in ("learning_rate", "time_s")]
        return sorted(names, key=lambda k: (k != "loss", names.index(k)))


@dataclass(frozen=True)
class Confusion:
    class_names: list[str]
    matrix: np.ndarray  # rows: true class, columns: predicted class


def read_curves(run_dir: str | Path) -> Curves:
    rows = runs.read_history(run_dir)
    columns = [k for k in (rows[0] if rows else {}) if k != "epoch"]
    return Curves([r["epoch"] for r in rows], {k: [r.get(k, float("nan")) for r in rows] for k in columns})


def read_confusion(run_dir: str | Path) -> Confusion | None:
    path = Path(run_dir) / runs.CONFUSION
    if not path.is_file():
        return None
    with path.open(newline="") as f:
        rows = list(csv.reader(f))
    return Confusion(rows[0][1:], np.array([[int(v) for v in row[1:]] for row in rows[1:]]))


def read_meta(run_dir: str | Path) -> dict[str, Any]:
    return runs.read_json(Path(run_dir) / runs.META)

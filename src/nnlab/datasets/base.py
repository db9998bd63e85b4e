"""Dataset: the arrays and facts a loader returns, plus caching and real-file lookup (keras-free)."""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Literal

import numpy as np
from pydantic import Field

from nnlab.errors import ConfigError, DataNotFoundError
from nnlab.registry import Params, Registry
from nnlab.runs import atomic_path

Task = Literal["binary", "multiclass", "regression", "sequence_regression", "seq2seq"]
TASKS: tuple[str, ...] = Task.__args__

DATASETS: Registry[Callable[..., "Dataset"]] = Registry("dataset", verb="load_")


class DataParams(Params):
    """Options every loader takes."""

    n_train: int | None = Field(None, ge=1, description="use only the first n training examples")
    n_val: int | None = Field(None, ge=1, description="use only the first n validation examples")
    val_split: float | None = Field(None, gt=0, lt=1, description="carve validation from training data")
    seed: int = Field(0, ge=0, description="seed for generation, shuffling and splitting")


@dataclass(frozen=True)
class DatasetSpec:
    """What a model builder needs to know about the data."""

    task: Task
    input_shape: tuple[int, ...]
    output_dim: int  # classes (multiclass), 1 (binary), targets (regression), vocabulary (seq2seq)
    output_length: int | None = None  # time steps of sequence targets
    frame_classes: int | None = None  # sequences of labelled frames (digitsum): classes per frame
    class_names: tuple[str, ...] | None = None
    augment: dict[str, Any] | None = None  # on-the-fly image augmentation for the model input (data.augment)


@dataclass
class Dataset:
    """Arrays for each split and what they mean. Loaders return this."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    spec: DatasetSpec
    x_test: np.ndarray | None = None
    y_test: np.ndarray | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    decode: Callable[[np.ndarray], list[str]] | None = None  # seq2seq: targets or predictions -> strings
    frame_labels: dict[str, np.ndarray] | None = None  # per split, a class label per frame (digitsum)

    @property
    def task(self) -> str:
        return self.spec.task

    @property
    def class_names(self) -> tuple[str, ...] | None:
        return self.spec.class_names

    def splits(self) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """(x, y) per split that exists: train, val and test."""
        out = {"train": (self.x_train, self.y_train), "val": (self.x_val, self.y_val)}
        if self.x_test is not None:
            out["test"] = (self.x_test, self.y_test)
        return out

    def sizes(self) -> dict[str, int]:
        return {name: len(x) for name, (x, _) in self.splits().items()}


# ---------------------------------------------------------------------------------------------
# Splitting helpers shared by loaders.
def take_first(n: int | None, *arrays: np.ndarray) -> tuple[np.ndarray, ...]:
    return arrays if n is None else tuple(a[:n] for a in arrays)


def split_off(x: np.ndarray, y: np.ndarray, fraction: float, seed: int, stratify: bool):
    """Shuffle, then split `fraction` of (x, y) off as validation: x_train, x_val, y_train, y_val."""
    from sklearn.model_selection import train_test_split

    return train_test_split(x, y, test_size=fraction, random_state=seed, stratify=y if stratify else None)


# ---------------------------------------------------------------------------------------------
# Cache for generated data, keyed by a hash of the generator's parameters.
def cache_dir() -> Path:
    root = os.environ.get("NNLAB_CACHE_DIR") or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "nnlab"
    return Path(root) / "datasets"


def cached_arrays(name: str, params: dict[str, Any], make: Callable[[], dict[str, np.ndarray]]):
    """Return `make()`'s arrays, from `<cache>/<name>-<hash>.npz` when it was made before; and the hash."""
    key = hashlib.sha256(json.dumps([name, params], sort_keys=True).encode()).hexdigest()[:16]
    path = cache_dir() / f"{name}-{key}.npz"
    if path.is_file():
        with np.load(path) as data:
            return {k: data[k] for k in data.files}, key
    arrays = make()
    with atomic_path(path) as tmp:
        np.savez(tmp, **arrays)
    return arrays, key


# ---------------------------------------------------------------------------------------------
# Real files: $NNLAB_DATA_DIR/<name>/, then a `path:` from the config, then the Keras cache.
def data_places(name: str, path: str | None) -> list[Path]:
    """Where to look for dataset `name`, in order: folders, or the file a config's `path:` names."""
    places = []
    if os.environ.get("NNLAB_DATA_DIR"):
        places.append(Path(os.environ["NNLAB_DATA_DIR"]) / name)
    if path:
        places.append(Path(path).expanduser())
    places.append(Path(os.environ.get("KERAS_HOME") or Path.home() / ".keras") / "datasets")
    return places


def not_found(name: str, wanted: str, places: list[Path], hint: str = "") -> DataNotFoundError:
    where = ", ".join(str(p) for p in places)
    unset = "" if os.environ.get("NNLAB_DATA_DIR") else " (NNLAB_DATA_DIR is not set)"
    return DataNotFoundError(
        f"{name}: no data found: put {wanted} in $NNLAB_DATA_DIR/{name}/{unset} or give data.path; "
        f"looked in: {where}{hint}"
    )


def check_path(path: str | None, key: str = "data.path") -> None:
    if path and not Path(path).expanduser().exists():
        raise ConfigError(f"{key}: {path} does not exist")


def one_hot(labels: np.ndarray, num_classes: int) -> np.ndarray:
    return np.eye(num_classes, dtype="float32")[labels]

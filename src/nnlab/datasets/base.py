"""Dataset: the arrays and facts a loader returns, plus caching and real-file lookup (keras-free)."""

from __future__ import annotations

import hashlib
import json
import math
import os
import pickle
import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Literal

import numpy as np
from pydantic import Field

from nnlab.errors import ConfigError, DataNotFoundError, first_line, one_line
from nnlab.registry import Params, Registry
from nnlab.runs import atomic_path, cache_root

Task = Literal["binary", "multiclass", "regression", "sequence_regression", "seq2seq"]
TASKS: tuple[str, ...] = Task.__args__

DATASETS: Registry[Callable[..., "Dataset"]] = Registry("dataset", verb="load_")


class DataParams(Params):
    """Options every loader takes."""

    n_train: int | None = Field(None, ge=1, description="use only the first n training examples")
    n_val: int | None = Field(None, ge=1, description="use only the first n validation examples")
    val_split: float | None = Field(None, gt=0, lt=1, description="carve validation from training data")
    seed: int = Field(0, ge=0, le=2**32 - 1, description="seed for generation, shuffling and splitting")

    def image_format(self) -> ImageFormat | None:
        """How a picture file becomes one of this loader's inputs with these options (None: its inputs are not
        images), known without loading data; an image loader's params override it and its DatasetSpec says the same."""
        return None


@dataclass(frozen=True)
class ImageFormat:
    """How an image loader turns a picture file into a model input; training records it in the run's meta.json
    and `nnlab predict` prepares new pictures by it."""

    mode: str  # "L" (grayscale, as the MNIST and digits files hold), "RGB", or "channel 0" (the course PNG folders)
    size: tuple[int, int]  # height, width
    divide: float  # the 0..255 pixel values are divided by this (255 when the loader normalizes, else 1)
    flatten: bool = False

    @property
    def light_ink(self) -> bool:
        """The training images are light ink on a dark background (every grayscale set nnlab loads)."""
        return self.mode != "RGB"

    def to_dict(self) -> dict[str, Any]:
        return {"mode": self.mode, "size": list(self.size), "divide": self.divide, "flatten": self.flatten}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ImageFormat:
        return cls(str(data["mode"]), (int(data["size"][0]), int(data["size"][1])), float(data["divide"]),
                   bool(data["flatten"]))


@dataclass(frozen=True)
class DatasetSpec:
    """What a model builder needs to know about the data (and `nnlab predict` about its images)."""

    task: Task
    input_shape: tuple[int, ...]
    output_dim: int  # classes (multiclass), 1 (binary), targets (regression), vocabulary (seq2seq)
    output_length: int | None = None  # time steps of sequence targets
    frame_classes: int | None = None  # sequences of labelled frames (digitsum): classes per frame
    class_names: tuple[str, ...] | None = None
    augment: dict[str, Any] | None = None  # on-the-fly image augmentation for the model input (data.augment)
    image_format: ImageFormat | None = None  # image loaders: how a picture file becomes an input


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


def split_off(x: np.ndarray, y: np.ndarray, fraction: float, seed: int, stratify: bool,
              key: str = "data.val_split"):
    """Shuffle, then split `fraction` of (x, y) off as validation: x_train, x_val, y_train, y_val.

    The same split as scikit-learn's `train_test_split(x, y, test_size=fraction, random_state=seed,
    stratify=y if stratify else None)` (tests/test_datasets.py compares them), without importing
    scikit-learn, which costs a run about 0.9 s. `key` names the option in error messages.
    """
    n_val = math.ceil(fraction * len(y))
    n_train = len(y) - n_val
    if n_val < 1 or n_train < 1:
        raise ConfigError(f"{key}: {fraction} of {len(y)} examples leaves a split empty")
    rng = np.random.RandomState(seed)
    if stratify:
        train, val = _stratified_indices(y, n_train, n_val, rng, key)
    else:
        order = rng.permutation(len(y))
        val, train = order[:n_val], order[n_val:]
    return x[train], x[val], y[train], y[val]


def _stratified_indices(y: np.ndarray, n_train: int, n_val: int, rng: np.random.RandomState, key: str):
    """Train and validation indices holding each class in proportion (StratifiedShuffleSplit's draws)."""
    if y.ndim != 1:
        raise ValueError(f"a stratified split needs one label per example, got labels of shape {y.shape}")
    classes, label_index, counts = np.unique(y, return_inverse=True, return_counts=True)
    if counts.min() < 2:
        raise ConfigError(f"{key}: a stratified split needs two examples of every class; "
                          f"class {one_line(str(classes[counts.argmin()]), 40)} has one")
    if min(n_train, n_val) < len(classes):
        raise ConfigError(f"{key}: a stratified split of {len(y)} examples into {n_train} and {n_val} "
                          f"cannot hold each of the {len(classes)} classes on both sides")
    members = np.split(np.argsort(label_index, kind="stable"), np.cumsum(counts)[:-1])
    train_counts = _proportional_counts(counts, n_train, rng)
    val_counts = _proportional_counts(counts - train_counts, n_val, rng)
    train, val = [], []
    for indices, n_t, n_v in zip(members, train_counts, val_counts):
        shuffled = indices[rng.permutation(len(indices))]
        train.extend(shuffled[:n_t])
        val.extend(shuffled[n_t:n_t + n_v])
    return rng.permutation(train), rng.permutation(val)


def _proportional_counts(counts: np.ndarray, n_draws: int, rng: np.random.RandomState) -> np.ndarray:
    """How many of each class `n_draws` draws take: the proportional share rounded down, the rest
    handed out by largest remainder, ties broken at random."""
    share = counts / counts.sum() * n_draws
    taken = np.floor(share)
    left = int(n_draws - taken.sum())
    remainder = share - taken
    for value in np.unique(remainder)[::-1]:
        if left == 0:
            break
        (tied,) = np.where(remainder == value)
        chosen = rng.choice(tied, size=min(len(tied), left), replace=False)
        taken[chosen] += 1
        left -= len(chosen)
    return taken.astype(int)


# ---------------------------------------------------------------------------------------------
# Cache for generated data, keyed by a hash of the generator's parameters.
def cache_dir() -> Path:
    return cache_root() / "datasets"


def cached_arrays(name: str, params: dict[str, Any], make: Callable[[], dict[str, np.ndarray]]):
    """Return `make()`'s arrays, from `<cache>/<name>-<hash>.npz` when it was made before; and the hash.

    A cache file that cannot be read (truncated by a kill, damaged, edited) is made again.
    """
    key = hashlib.sha256(json.dumps([name, params], sort_keys=True).encode()).hexdigest()[:16]
    path = cache_dir() / f"{name}-{key}.npz"
    if path.is_file():
        try:
            return read_npz(path), key
        except ConfigError:
            pass  # regenerated and rewritten below
    arrays = make()
    try:
        with atomic_path(path) as tmp:
            np.savez(tmp, **arrays)
    except OSError as exc:
        raise ConfigError(f"cannot write the dataset cache {path}: {exc.strerror or type(exc).__name__} "
                          "(set NNLAB_CACHE_DIR to a writable folder)") from None
    return arrays, key


# ---------------------------------------------------------------------------------------------
# Reading data files: NumPy files never unpickle unless the config says `data.allow_pickle: true`.
PICKLE_HINT = "set data.allow_pickle: true only if you trust it (unpickling runs code)"


def pickle_refused(path: Path, what: str = "holds pickled objects", alternative: str = "") -> ConfigError:
    return ConfigError(f"{path}: {what}; {alternative}{PICKLE_HINT}")


def read_npz(path: Path, keys: tuple[str, ...] | None = None) -> dict[str, np.ndarray]:
    """Every array (or `keys`) of an .npz file; one-line ConfigError for a damaged file or object arrays."""
    try:
        data = np.load(path, allow_pickle=False)
        if not isinstance(data, np.lib.npyio.NpzFile):
            raise ConfigError(f"{path}: holds one .npy array, expected an .npz archive")
        with data:
            missing = [k for k in keys or () if k not in data.files]
            if missing:
                raise ConfigError(f"{path}: lacks {', '.join(missing)} (has {one_line(', '.join(data.files), 80)})")
            return {k: data[k] for k in keys or data.files}
    except ValueError as exc:
        if "allow_pickle" in str(exc):
            raise pickle_refused(path) from None
        raise _unreadable(path, "an .npz archive", exc) from None
    except (OSError, EOFError, zipfile.BadZipFile, KeyError, pickle.UnpicklingError) as exc:
        raise _unreadable(path, "an .npz archive", exc) from None


def read_npy(path: Path, allow_pickle: bool = False) -> np.ndarray:
    """One .npy array; object arrays (pickles) only with the config's `data.allow_pickle: true`."""
    try:
        return np.load(path, allow_pickle=allow_pickle)
    except ValueError as exc:
        if "allow_pickle" in str(exc):
            raise pickle_refused(path) from None
        raise _unreadable(path, "a NumPy .npy file", exc) from None
    except (OSError, EOFError, pickle.UnpicklingError, AttributeError, ImportError, TypeError) as exc:
        raise _unreadable(path, "a NumPy .npy file", exc) from None


def read_pickle(path: Path, allow_pickle: bool = False) -> Any:
    """A pickle file (CIFAR-10's batches), only with `data.allow_pickle: true`."""
    if not allow_pickle:
        raise pickle_refused(path, "a pickle", "use .npz or ")
    try:
        with open(path, "rb") as f:
            return pickle.load(f, encoding="bytes")
    except (OSError, EOFError, pickle.UnpicklingError, AttributeError, ImportError, ValueError, TypeError) as exc:
        raise _unreadable(path, "a pickle file", exc) from None


def read_h5(path: Path, names: tuple[str, ...]) -> dict[str, np.ndarray]:
    """Numeric datasets `names` of an HDF5 file; one-line ConfigError for anything else."""
    import h5py

    try:
        with h5py.File(path, "r") as f:
            missing = [k for k in names if k not in f or not isinstance(f[k], h5py.Dataset)]
            if missing:
                raise ConfigError(f"{path}: lacks the HDF5 dataset(s) {', '.join(missing)} "
                                  f"(has {one_line(', '.join(f.keys()), 80) or 'none'})")
            arrays = {k: np.asarray(f[k]) for k in names}
    except (OSError, ValueError, TypeError, KeyError) as exc:
        raise _unreadable(path, "an HDF5 (.h5) file", exc) from None
    for k, a in arrays.items():
        if not (np.issubdtype(a.dtype, np.number) or a.dtype == bool):
            raise ConfigError(f"{path}: dataset {k} holds {a.dtype} values, expected numbers")
    return arrays


def _unreadable(path: Path, expected: str, exc: BaseException) -> ConfigError:
    return ConfigError(f"{path}: not {expected} ({first_line(exc, 100)})")


# ---------------------------------------------------------------------------------------------
# Real files: $NNLAB_DATA_DIR/<name>/, then a `path:` from the config, then the Keras cache.
def data_places(name: str, path: str | None) -> list[Path]:
    """Where to look for dataset `name`, in order: folders, or the file a config's `path:` names."""
    places = []
    if os.environ.get("NNLAB_DATA_DIR"):
        places.append(Path(os.environ["NNLAB_DATA_DIR"]).expanduser() / name)  # "~/course/datasets" quoted too
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


def keras_download(name: str) -> tuple[dict[str, np.ndarray] | None, str]:
    """`keras.datasets.<name>.load_data()` as the four arrays, or None and why it failed (the end of a
    not-found message: offline machines say so)."""
    try:
        from nnlab.training.backend import import_keras

        keras = import_keras()  # quietly: no TensorFlow C++ lines
        (x_train, y_train), (x_test, y_test) = getattr(keras.datasets, name).load_data()
    except Exception as exc:  # noqa: BLE001  (whatever went wrong, the not-found message says it)
        return None, download_failure(exc)
    return {"x_train": x_train, "y_train": y_train, "x_test": x_test, "y_test": y_test}, ""


def download_failure(exc: BaseException) -> str:
    """Why Keras's download failed, as the end of a not-found message: a sentence, not an exception's name."""
    text = first_line(exc, 300)
    fetch = re.fullmatch(r"URL fetch failure on (\S+): \S+ -- (.+)", text)  # keras.utils.get_file's own wording
    if fetch:
        return f"; downloading {fetch.group(1)} failed too ({fetch.group(2)}: is this machine offline?)"
    if text == type(exc).__name__:
        return f"; Keras's download failed too ({text}, with no message)"
    return f"; Keras's download failed too ({text if type(exc) is Exception else f'{type(exc).__name__}: {text}'})"


def check_path(path: str | None, key: str = "data.path") -> None:
    if path and not Path(path).expanduser().exists():
        raise ConfigError(f"{key}: {path} does not exist")


def one_hot(labels: np.ndarray, num_classes: int) -> np.ndarray:
    return np.eye(num_classes, dtype="float32")[labels]

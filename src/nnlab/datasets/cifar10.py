"""cifar10: 32x32 colour images, 10 classes, from Keras's `cifar-10-batches-py` pickles or an .npz file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from pydantic import Field

from nnlab.datasets import base
from nnlab.datasets.base import (
    DATASETS,
    DataParams,
    Dataset,
    DatasetSpec,
    ImageFormat,
    check_path,
    data_places,
    keras_download,
    not_found,
    read_pickle,
    split_off,
    take_first,
)
from nnlab.datasets.images import AugmentParams, augment_spec
from nnlab.errors import ConfigError

CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
BATCHES = "cifar-10-batches-py"
FULL_SIZES = (50000, 10000)
NPZ_KEYS = ("x_train", "y_train", "x_test", "y_test")


class Cifar10Params(DataParams):
    path: str | None = Field(None, description=f"a {BATCHES} folder, a folder holding one, or an .npz file")
    normalize: bool = Field(True, description="scale pixels to [0, 1]")
    download: bool = Field(True, description="try Keras's download when no local file is found")
    augment: AugmentParams | None = Field(None, description="random flip/shift/rotate while training")
    allow_pickle: bool = Field(False, description=f"read {BATCHES} (Python pickles: trusted files only)")

    def image_format(self) -> ImageFormat:
        return ImageFormat("RGB", (32, 32), 255.0 if self.normalize else 1.0)


@DATASETS.register(Cifar10Params)
def load_cifar10(n_train=None, n_val=None, val_split=None, seed=0, path=None, normalize=True, download=True,
                 augment=None, allow_pickle=False) -> Dataset:
    """CIFAR-10, 32x32x3, 10 classes; validation is the test set unless val_split is set; meta says `subset`."""
    arrays, source = read_cifar10(path, download, allow_pickle)
    full = (len(arrays["x_train"]), len(arrays["x_test"])) == FULL_SIZES
    x_train, x_test = (_images(arrays[k], normalize) for k in ("x_train", "x_test"))
    y_train, y_test = (np.asarray(arrays[k]).reshape(-1).astype("int32") for k in ("y_train", "y_test"))
    if val_split is None:
        x_val, y_val, x_test, y_test = x_test, y_test, None, None
    else:
        x_train, x_val, y_train, y_val = split_off(x_train, y_train, val_split, seed, stratify=True)
    x_train, y_train = take_first(n_train, x_train, y_train)
    x_val, y_val = take_first(n_val, x_val, y_val)
    spec = DatasetSpec("multiclass", x_train.shape[1:], len(CLASSES), class_names=CLASSES,
                       image_format=Cifar10Params(normalize=normalize).image_format(),
                       augment=augment_spec(augment))
    meta = {"source": "real", "path": source, "subset": not full,
            "file_sizes": {"train": len(arrays["x_train"]), "test": len(arrays["x_test"])}}
    if not full:
        meta["note"] = "not the full 50,000/10,000 CIFAR-10: results are not comparable to full-data numbers"
    return Dataset(x_train, y_train, x_val, y_val, spec, x_test, y_test, meta=meta)


def _images(x: np.ndarray, normalize: bool) -> np.ndarray:
    x = np.asarray(x).astype("float32")
    return x / 255.0 if normalize else x


def read_cifar10(path: str | None = None, download: bool = True, allow_pickle: bool = False
                 ) -> tuple[dict[str, np.ndarray], str]:
    """The four arrays (uint8 images N x 32 x 32 x 3, labels) and where they came from.

    The python batches are pickles: they are read only with `allow_pickle` (from wherever they are
    found), or by Keras's own download when nothing is found locally.
    """
    check_path(path)
    places = data_places("cifar10", path)
    keras_cache = places[-1]  # data_places always ends with the Keras cache folder
    for place in places:
        if place.is_file():
            return read_npz(place), str(place)
        for folder in (place, place / BATCHES, place / f"{BATCHES}_extracted" / BATCHES):
            if (folder / "test_batch").is_file():
                return read_batches(folder, allow_pickle), str(folder)
        if place != keras_cache and place.is_dir():  # the Keras cache holds other datasets' .npz files
            npz = sorted(place.glob("*.npz"))
            if npz:
                return read_npz(npz[0]), str(npz[0])
    hint = ""
    if download:
        arrays, hint = keras_download("cifar10")
        if arrays is not None:
            return arrays, "keras download"
    wanted = f"{BATCHES}/ (unpacked cifar-10-python.tar.gz) or an .npz with {', '.join(NPZ_KEYS)}"
    raise not_found("cifar10", wanted, places, hint)


def read_npz(path: Path) -> dict[str, np.ndarray]:
    arrays = base.read_npz(path, NPZ_KEYS)
    x_train = arrays["x_train"]
    if x_train.ndim != 4 or x_train.shape[1:] != (32, 32, 3) or arrays["x_test"].shape[1:] != (32, 32, 3):
        raise ConfigError(f"{path}: x_train has shape {x_train.shape}, expected (N, 32, 32, 3)")
    for split in ("train", "test"):
        if len(arrays[f"x_{split}"]) != len(np.asarray(arrays[f"y_{split}"]).reshape(-1)):
            raise ConfigError(f"{path}: x_{split} and y_{split} have different lengths")
    return arrays


def read_batches(folder: Path, allow_pickle: bool = False) -> dict[str, np.ndarray]:
    """Keras's layout: `data_batch_1`..`data_batch_5` and `test_batch`, pickled dicts of data and labels."""
    train = sorted(folder.glob("data_batch_*"), key=lambda p: p.name)
    if not train:
        raise ConfigError(f"{folder} has test_batch but no data_batch_1..5")
    x_test, y_test = _read_batch(folder / "test_batch", allow_pickle)
    parts = [_read_batch(p, allow_pickle) for p in train]
    return {"x_train": np.concatenate([x for x, _ in parts]), "y_train": np.concatenate([y for _, y in parts]),
            "x_test": x_test, "y_test": y_test}


def _read_batch(path: Path, allow_pickle: bool) -> tuple[np.ndarray, np.ndarray]:
    """One pickled batch: rows of 3,072 bytes (red, green, blue planes of 32x32) and a list of labels."""
    batch = read_pickle(path, allow_pickle)
    try:
        batch = {k.decode() if isinstance(k, bytes) else k: v for k, v in batch.items()}
        data, labels = np.asarray(batch["data"], dtype=np.uint8), np.asarray(batch["labels"])
    except (KeyError, AttributeError, ValueError, TypeError) as exc:
        raise ConfigError(f"{path}: not a CIFAR-10 batch ({type(exc).__name__})") from None
    if data.ndim != 2 or data.shape[1] != 3072 or len(labels) != len(data):
        raise ConfigError(f"{path}: expected N x 3072 data and N labels (got {data.shape}, {len(labels)})")
    return data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1), labels


__all__ = ["CLASSES", "load_cifar10", "read_cifar10"]

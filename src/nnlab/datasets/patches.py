"""patches: 16x16 grayscale image patches for the sparse autoencoder (seed 001), inputs = targets."""

from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import Field

from nnlab.datasets.base import (
    DATASETS,
    DataParams,
    Dataset,
    DatasetSpec,
    check_path,
    data_places,
    read_h5,
    split_off,
    take_first,
)
from nnlab.errors import ConfigError

COURSE_FILE = "assign3_data1.h5"
LUMINOSITY = (0.2126, 0.7152, 0.0722)


class PatchesParams(DataParams):
    val_split: float | None = Field(0.1, gt=0, lt=1, description="fraction of the patches held out for validation")
    path: str | None = Field(None, description="the course's assign3_data1.h5 (data: N x 3 x 16 x 16) or its folder")
    cut_from: Literal["mnist"] = Field("mnist", description="images to cut patches from when the course file is absent")
    n_patches: int = Field(10240, ge=2, description="patches to cut (the course file has 10,240)")
    size: int = Field(16, ge=2, le=28, description="patch side when cutting")
    download: bool = Field(True, description="cut_from mnist: try Keras's download when no local file is found")


def preprocess(images: np.ndarray) -> np.ndarray:
    """The seed's preprocessing: RGB (N, 3, H, W) -> luminosity grayscale, remove each patch's mean,
    clip to +-3 standard deviations (of all pixels), then map the range linearly to [0.1, 0.9]."""
    x = np.asarray(images, dtype="float64")
    if x.ndim == 4:
        if x.shape[1] != 3:
            raise ConfigError(f"patches: expected RGB patches shaped (N, 3, H, W), got {x.shape}")
        x = np.tensordot(np.asarray(LUMINOSITY), x, axes=([0], [1]))
    x = x - x.mean(axis=(1, 2), keepdims=True)
    limit = 3 * x.std()
    x = np.clip(x, -limit, limit)
    span = x.max() - x.min()
    x = (x - x.min()) / (span if span > 0 else 1.0)
    return (0.1 + 0.8 * x).astype("float32")


def read_course_h5(path) -> np.ndarray:
    """The course file's `data`: N x 3 x H x W RGB patches (or N x H x W grayscale)."""
    data = read_h5(path, ("data",))["data"]
    if not (data.ndim == 3 or (data.ndim == 4 and data.shape[1] == 3)) or len(data) < 2 or min(data.shape[-2:]) < 2:
        raise ConfigError(f"{path}: data has shape {data.shape}, expected (N, 3, 16, 16) patches")
    return data


def cut_patches(images: np.ndarray, n: int, size: int, rng: np.random.Generator) -> np.ndarray:
    """`n` random size x size windows of random images (N, H, W)."""
    which = rng.integers(0, len(images), n)
    rows = rng.integers(0, images.shape[1] - size + 1, n)
    cols = rng.integers(0, images.shape[2] - size + 1, n)
    return np.stack([images[i, r : r + size, c : c + size] for i, r, c in zip(which, rows, cols)])


@DATASETS.register(PatchesParams)
def load_patches(n_train=None, n_val=None, val_split=0.1, seed=0, path=None, cut_from="mnist", n_patches=10240, size=16,
                 download=True) -> Dataset:
    """Image patches, preprocessed as in seed 001, flattened; the course file or patches cut from MNIST."""
    check_path(path)
    course = None
    for place in data_places("patches", path):
        candidate = place if place.is_file() else place / COURSE_FILE
        if candidate.is_file():
            course = candidate
            break
    if course is not None:
        x = preprocess(read_course_h5(course))
        meta = {"source": "real", "format": "course h5", "path": str(course)}
    elif path:
        raise ConfigError(f"data.path: {path} holds no {COURSE_FILE}")
    else:
        from nnlab.datasets.mnist import read_mnist

        arrays, where = read_mnist(None, download)
        raw = cut_patches(arrays["x_train"].astype("float32") / 255.0, n_patches, size, np.random.default_rng(seed))
        x = preprocess(raw)
        meta = {"source": "real", "format": f"{n_patches} patches of {size}x{size} cut from MNIST training images",
                "path": where}
    side = x.shape[1:]
    meta["patch_shape"] = list(side)
    x = x.reshape(len(x), -1)
    x_train, x_val, _, _ = split_off(x, np.arange(len(x)), val_split, seed, stratify=False)
    (x_train,) = take_first(n_train, x_train)
    (x_val,) = take_first(n_val, x_val)
    spec = DatasetSpec("regression", x.shape[1:], x.shape[1])
    return Dataset(x_train, x_train, x_val, x_val, spec, meta=meta)

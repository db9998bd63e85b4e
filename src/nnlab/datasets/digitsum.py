"""digitsum: sequences of `length` MNIST images -> the sum of their digits (seed 003), a regression."""

from __future__ import annotations

import numpy as np
from pydantic import Field

from nnlab.datasets.base import DATASETS, DataParams, Dataset, DatasetSpec, take_first
from nnlab.errors import ConfigError


class DigitSumParams(DataParams):
    length: int = Field(10, ge=1, description="images per sequence (the seed: 10)")
    val_images: int = Field(5000, ge=0, description="the last training images, grouped into validation sequences")
    resample: int = Field(0, ge=0, description="extra random groupings of the training images per dataset (augmentation)")
    running_sum: bool = Field(False, description="a target per step: the sum so far (sequence regression)")
    path: str | None = Field(None, description="mnist.npz or a folder with the IDX files")
    download: bool = Field(True, description="try Keras's download when no local file is found")


def group(images: np.ndarray, labels: np.ndarray, length: int) -> tuple[np.ndarray, np.ndarray]:
    """Consecutive images in groups of `length` (a remainder is dropped): (n, length, 28, 28, 1), digits (n, length)."""
    n = len(images) // length
    return images[: n * length].reshape(n, length, *images.shape[1:]), labels[: n * length].reshape(n, length)


@DATASETS.register(DigitSumParams)
def load_digitsum(n_train=None, n_val=None, val_split=None, seed=0, length=10, val_images=5000, resample=0,
                  running_sum=False, path=None, download=True) -> Dataset:
    """MNIST digit sequences -> digit sums; test = the 10,000 test images grouped in order, as in the seed.

    Per-image digit labels of every split are kept in `Dataset.frame_labels` (train, val, test).
    """
    from nnlab.datasets.mnist import read_mnist

    if val_split is not None:
        raise ConfigError("data.val_split: digitsum validates on the last val_images training images (use val_images)")
    arrays, source = read_mnist(path, download)
    images = arrays["x_train"].astype("float32")[..., None] / 255.0
    labels = arrays["y_train"].astype("int32")
    if val_images >= len(images):
        raise ConfigError(f"data.val_images: {val_images} leaves no training images (there are {len(images)})")
    cut = len(images) - val_images
    x_train, d_train = group(images[:cut], labels[:cut], length)
    rng = np.random.default_rng(seed)
    extra = [rng.permutation(cut) for _ in range(resample)]  # new sequences of the same training images
    if extra:
        xs, ds = zip(*(group(images[order], labels[order], length) for order in extra))
        x_train, d_train = np.concatenate([x_train, *xs]), np.concatenate([d_train, *ds])
    x_val, d_val = group(images[cut:], labels[cut:], length)
    x_test, d_test = group(arrays["x_test"].astype("float32")[..., None] / 255.0, arrays["y_test"].astype("int32"), length)
    if len(x_train) == 0 or len(x_val) == 0 or len(x_test) == 0:
        raise ConfigError(f"data.length: {length} images per sequence leaves a split empty")
    x_train, d_train = take_first(n_train, x_train, d_train)
    x_val, d_val = take_first(n_val, x_val, d_val)

    def target(d):
        return np.cumsum(d, axis=1)[..., None].astype("float32") if running_sum else d.sum(axis=1, keepdims=True).astype("float32")

    task = "sequence_regression" if running_sum else "regression"
    spec = DatasetSpec(task, x_train.shape[1:], 1, output_length=length if running_sum else None, frame_classes=10)
    meta = {"source": "real", "path": source, "length": length,
            "split": (f"train: the first {cut} MNIST training images in groups of {length}"
                      + (f" plus {resample} random regroupings" if resample else "")
                      + f"; val: the last {val_images} training images; test: the 10,000 test images in order")}
    return Dataset(x_train, target(d_train), x_val, target(d_val), spec, x_test, target(d_test), meta=meta,
                   frame_labels={"train": d_train, "val": d_val, "test": d_test})

"""digits: scikit-learn's bundled 8x8 handwritten digits (1,797 images), always available offline."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
from pydantic import Field

from nnlab.datasets.base import DATASETS, DataParams, Dataset, DatasetSpec, ImageFormat, split_off, take_first


class DigitsParams(DataParams):
    val_split: float = Field(0.2, gt=0, lt=1, description="fraction held out for validation (stratified)")
    flatten: bool = Field(False, description="64 features instead of 8x8x1 images")

    def image_format(self) -> ImageFormat:
        return ImageFormat("L", (8, 8), 255.0, self.flatten)  # a 0..255 picture /255 is the file's 0..16 values /16


@DATASETS.register(DigitsParams)
def load_digits(n_train=None, n_val=None, val_split=0.2, seed=0, flatten=False) -> Dataset:
    """scikit-learn's 8x8 digits, 10 classes, pixels scaled to [0, 1]; the offline demo set."""
    table = np.loadtxt(bundled_digits_file(), delimiter=",")  # 64 pixels (0-16) and the label per row
    x = (table[:, :-1].reshape(-1, 8, 8) / 16.0).astype("float32")[..., None]
    y = table[:, -1].astype("int32")
    if flatten:
        x = x.reshape(len(x), -1)
    x_train, x_val, y_train, y_val = split_off(x, y, val_split, seed, stratify=True)
    x_train, y_train = take_first(n_train, x_train, y_train)
    x_val, y_val = take_first(n_val, x_val, y_val)
    spec = DatasetSpec("multiclass", x.shape[1:], 10, class_names=tuple(str(d) for d in range(10)),
                       image_format=DigitsParams(flatten=flatten).image_format())
    meta = {"source": "real", "origin": "sklearn.datasets.load_digits"}
    return Dataset(x_train, y_train, x_val, y_val, spec, meta=meta)


def bundled_digits_file() -> Path:
    """scikit-learn's digits.csv.gz, found without importing scikit-learn (about 0.9 s)."""
    spec = importlib.util.find_spec("sklearn")
    return Path(spec.submodule_search_locations[0]) / "datasets" / "data" / "digits.csv.gz"

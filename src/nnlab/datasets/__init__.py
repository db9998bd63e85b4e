"""Datasets: registered loaders `load_<name>(**params) -> Dataset` (importing this loads no Keras)."""

import copy
import dataclasses
import json
import os
import random

import numpy as np

from nnlab.datasets import (  # noqa: F401  (registers the loaders)
    addition, cifar10, digits, digitsum, har, mnist, patches, pulse, shapes,
)
from nnlab.datasets.base import DATASETS, TASKS, Dataset, DatasetSpec, ImageFormat


def load(config, cache: dict | None = None) -> Dataset:
    """Load the dataset a `data:` section names, with its validated parameters.

    `cache` (a dict a sweep's trial host keeps between trials): the dataset last loaded is reused when the
    next `data:` section and $NNLAB_DATA_DIR are the same, and only if loading it drew no number from the
    global random generators (so a trial's random stream is the one it would have had loading it). Its
    arrays are then read-only: a trial cannot change what the next one trains on.
    """
    key = json.dumps([config.name, config.params, os.environ.get("NNLAB_DATA_DIR")], sort_keys=True, default=str)
    if cache is not None and cache.get("key") == key:
        return dataclasses.replace(cache["dataset"], meta=copy.deepcopy(cache["dataset"].meta))
    before = _random_state()
    dataset = DATASETS.get(config.name).fn(**config.params)
    dataset.meta.setdefault("name", config.name)
    dataset.meta["sizes"] = dataset.sizes()
    if cache is not None:
        cache.clear()
        if _random_state() == before:
            for x, y in dataset.splits().values():
                for array in (x, y):
                    if isinstance(array, np.ndarray):
                        array.flags.writeable = False
            cache.update(key=key, dataset=dataset)
            dataset = dataclasses.replace(dataset, meta=copy.deepcopy(dataset.meta))
    return dataset


def image_format(name: str, params: dict | None = None) -> ImageFormat | None:
    """How dataset `name` with `params` turns a picture file into an input (None: its inputs are not images),
    known without loading its data: what its loader's DatasetSpec.image_format will say."""
    return DATASETS.get(name).params.model_validate(params or {}).image_format()


def _random_state() -> tuple:
    state = np.random.get_state()
    return random.getstate(), state[1].tobytes(), state[2:]


__all__ = ["DATASETS", "TASKS", "Dataset", "DatasetSpec", "ImageFormat", "image_format", "load"]

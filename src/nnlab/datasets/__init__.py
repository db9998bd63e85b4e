"""Datasets: registered loaders `load_<name>(**params) -> Dataset` (importing this loads no Keras)."""

from nnlab.datasets import (  # noqa: F401  (registers the loaders)
    addition, cifar10, digits, digitsum, har, mnist, patches, pulse, shapes,
)
from nnlab.datasets.base import DATASETS, TASKS, Dataset, DatasetSpec


def load(config) -> Dataset:
    """Load the dataset a `data:` section names, with its validated parameters."""
    dataset = DATASETS.get(config.name).fn(**config.params)
    dataset.meta.setdefault("name", config.name)
    dataset.meta["sizes"] = dataset.sizes()
    return dataset


__all__ = ["DATASETS", "TASKS", "Dataset", "DatasetSpec", "load"]

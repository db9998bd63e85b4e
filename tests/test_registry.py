"""Every registered model builds for every task it supports; every dataset is listed and documented."""

from __future__ import annotations

import pytest

from nnlab.datasets import DATASETS, DatasetSpec
from nnlab.errors import ConfigError
from nnlab.models import MODELS, build
from nnlab.registry import Params, Registry
from nnlab.config import ComponentConfig
from typer.testing import CliRunner
from nnlab.cli.main import app

# A tiny spec per task; builders that need another task raise ConfigError, which is fine.
SPECS = {
    "multiclass": DatasetSpec("multiclass", (6, 6, 1), 3),
    "binary": DatasetSpec("binary", (6, 6, 1), 1),
    "regression": DatasetSpec("regression", (5,), 2),
    "seq2seq": DatasetSpec("seq2seq", (5, 4), 4, output_length=3),
}
EXPECTED_OUTPUT = {"multiclass": (3,), "binary": (1,), "regression": (2,), "seq2seq": (3, 4)}
# Builders whose parameters have no defaults get these.
REQUIRED = {"sequential": {"layers": ["Flatten", {"Dense": {"units": 3}}]}}


@pytest.mark.parametrize("task", SPECS)
@pytest.mark.parametrize("name", MODELS.names())
def test_every_model_builds_for_its_tasks(name, task):
    import keras
    import numpy as np

    spec = SPECS[task]
    params = MODELS.get(name).params.model_validate(REQUIRED.get(name, {})).model_dump()
    try:
        model = build(ComponentConfig(name=name, **params), spec)
    except ConfigError:
        return  # the builder refuses a task it cannot do, with a clear error
    assert isinstance(model, keras.Model)
    out = model.predict(np.zeros((2, *spec.input_shape), "float32"), verbose=0)
    if name != "sequential":  # the escape hatch's output is whatever the user wrote
        assert out.shape == (2, *EXPECTED_OUTPUT[task])
    assert np.isfinite(out).all()


@pytest.mark.parametrize("registry", [DATASETS, MODELS], ids=["datasets", "models"])
def test_every_entry_is_documented_and_listed(registry):
    listing = CliRunner().invoke(app, ["list"]).stdout
    for entry in registry:
        assert entry.description, f"{entry.name} needs a docstring"
        assert issubclass(entry.params, Params)
        assert f"  {entry.name:<12}{entry.description}" in listing


def test_registry_keys_by_function_name_and_rejects_unknown_names():
    registry = Registry("widget", verb="make_")

    @registry.register(Params)
    def make_gear():
        """A gear."""

    assert registry.names() == ["gear"]
    with pytest.raises(ConfigError, match=r"unknown widget 'cog' \(choose from: gear\)"):
        registry.get("cog")
    with pytest.raises(ValueError, match="registered twice"):
        registry.register(Params, name="gear")(make_gear)

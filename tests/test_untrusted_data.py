"""Data files are untrusted: a planted pickle payload never runs, through any loader or lookup route."""

from __future__ import annotations

import pickle
import re
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from nnlab.cli.main import app
from nnlab.datasets.base import cached_arrays
from nnlab.errors import ConfigError

from conftest import REPO, write_config


class Payload:
    """Unpickling this creates the marker file: proof that a data file ran code."""

    marker = ""

    def __reduce__(self):
        return open, (self.marker, "w")


def payload(marker: Path) -> Payload:
    item = Payload()
    item.marker = str(marker)
    return item


def plant_npy(path: Path, marker: Path, parts: int) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    array = np.empty(parts, dtype=object)
    for i in range(parts):
        array[i] = payload(marker)
    np.save(path, array, allow_pickle=True)
    return path


def plant_npz(path: Path, marker: Path, keys: tuple[str, ...]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, **{k: np.array([payload(marker)], dtype=object) for k in keys})
    return path


def plant_batches(folder: Path, marker: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name in ("test_batch", "data_batch_1"):
        with open(folder / name, "wb") as f:
            pickle.dump({"data": payload(marker), "labels": [0]}, f)
    return folder


MNIST_KEYS = ("x_train", "y_train", "x_test", "y_test")


# (dataset, route, how to plant it under tmp) -> data section; `place(tmp)` gives the folder each route reads.
def _routes():
    def data_dir(tmp, name):
        return tmp / "data" / name

    def keras_cache(tmp, name):
        return tmp / "keras" / "datasets"

    def given(tmp, name):
        return tmp / "given"

    places = {"data.path": given, "NNLAB_DATA_DIR": data_dir, "Keras cache": keras_cache}
    cases = {}
    for route, place in places.items():
        uses_path = route == "data.path"

        def pulse(tmp, marker, place=place, uses_path=uses_path):
            folder = place(tmp, "pulse")
            for name in ("pulsedata1-trn.npy", "pulsedata1-val.npy"):
                plant_npy(folder / name, marker, 2)
            return {"name": "pulse", **({"path": str(folder)} if uses_path else {})}

        def cifar_batches(tmp, marker, place=place, uses_path=uses_path):
            folder = plant_batches(place(tmp, "cifar10") / "cifar-10-batches-py", marker)
            return {"name": "cifar10", "download": False, **({"path": str(folder)} if uses_path else {})}

        def mnist_npz(tmp, marker, place=place, uses_path=uses_path):
            path = plant_npz(place(tmp, "mnist") / "mnist.npz", marker, MNIST_KEYS)
            return {"name": "mnist", "download": False, **({"path": str(path)} if uses_path else {})}

        cases[f"pulse .npy via {route}"] = pulse
        cases[f"cifar10 batches via {route}"] = cifar_batches
        cases[f"mnist .npz via {route}"] = mnist_npz
        if route != "Keras cache":  # the Keras cache holds other datasets' .npz files: cifar10 does not look there

            def cifar_npz(tmp, marker, place=place, uses_path=uses_path):
                path = plant_npz(place(tmp, "cifar10") / "cifar.npz", marker, MNIST_KEYS)
                return {"name": "cifar10", "download": False, **({"path": str(path)} if uses_path else {})}

            cases[f"cifar10 .npz via {route}"] = cifar_npz

    def mnist56_npy(tmp, marker):
        path = plant_npy(tmp / "given" / "mnist56.npy", marker, 4)
        return {"name": "mnist56", "path": str(path), "download": False}

    cases["mnist56 .npy via data.path"] = mnist56_npy
    return cases


ROUTES = _routes()


@pytest.mark.parametrize("case", ROUTES)
def test_planted_payload_never_runs(case, tmp_path, runs_dir):
    marker = tmp_path / "PWNED"
    data = ROUTES[case](tmp_path, marker)
    config = write_config(tmp_path / "c.yaml", {"name": "t", "data": data, "model": {"name": "mlp", "hidden": [4]},
                                                 "train": {"epochs": 1}})
    result = CliRunner().invoke(app, ["train", str(config), "--dry-run"])
    assert not marker.exists(), "a data file ran code"
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and len(lines[0].replace(str(tmp_path), "<tmp>")) < 300, result.stderr  # not the tmp depth
    assert "pickle" in lines[0] and str(tmp_path) in lines[0]
    if "batches" in case or ".npy" in case:  # the opt-in is named where it would help
        assert "data.allow_pickle: true" in lines[0]
    assert not runs_dir.exists()


def test_the_opt_in_is_what_lets_a_pickle_load(tmp_path):
    """The same planted file does run with `allow_pickle: true`: the test above would catch a leak."""
    from nnlab.datasets.mnist import load_mnist56

    marker = tmp_path / "PWNED"
    path = plant_npy(tmp_path / "mnist56.npy", marker, 4)
    with pytest.raises(ConfigError):
        load_mnist56(path=str(path), download=False)
    assert not marker.exists()
    with pytest.raises(ConfigError):  # the payload runs, then the content is rejected
        load_mnist56(path=str(path), download=False, allow_pickle=True)
    assert marker.exists()


def test_a_planted_generated_cache_is_regenerated_not_unpickled(tmp_path):
    made = []

    def make():
        made.append(1)
        return {"x": np.arange(3.0)}

    _, key = cached_arrays("toy", {"n": 3}, make)
    cache = next((tmp_path / "cache").rglob(f"toy-{key}.npz"))
    marker = tmp_path / "PWNED"
    plant_npz(cache, marker, ("x",))
    arrays, _ = cached_arrays("toy", {"n": 3}, make)
    assert not marker.exists() and len(made) == 2
    np.testing.assert_array_equal(arrays["x"], np.arange(3.0))
    cached_arrays("toy", {"n": 3}, make)  # the rewritten cache is good again
    assert len(made) == 2


def test_no_code_path_unpickles_without_the_opt_in():
    """Grep the package: pickles load in one function, behind `allow_pickle`; np.load always says which."""
    sources = {p: p.read_text() for p in (REPO / "src" / "nnlab").rglob("*.py")}
    for path, text in sources.items():
        name = path.relative_to(REPO)
        assert "allow_pickle=True" not in text, name
        assert "safe_mode=False" not in text, name
        for call in re.finditer(r"np\.load\((?!\.\.\.)([^)]*)\)", text):  # not the prose `np.load(...)`
            assert "allow_pickle=" in call.group(1), f"{name}: {call.group(0)} must say allow_pickle=False"
        for call in re.finditer(r"np\.load\([^)]*allow_pickle=(\w+)", text):
            assert call.group(1) in ("False", "allow_pickle"), f"{name}: {call.group(0)}"
        for call in re.finditer(r"yaml\.(?:load|unsafe_load|full_load|safe_load)\(([^)]*)\)", text):
            assert path.name == "yaml_io.py" and "Loader=_Loader" in call.group(1), f"{name}: {call.group(0)}"
        unpicklers = re.findall(r"pickle\.(?:load|loads|Unpickler)\b|\bUnpickler\(", text)
        if path.name == "base.py" and path.parent.name == "datasets":
            assert len(unpicklers) == 1, unpicklers
            body = text[text.index("def read_pickle("):text.index("pickle.load(")]
            assert "if not allow_pickle:\n        raise pickle_refused" in body
        else:
            assert not unpicklers, f"{name} unpickles: only datasets/base.py read_pickle may, behind the opt-in"

"""Shared fixtures: every test gets its own runs, cache, data and Keras folders, and tiny data files."""

from __future__ import annotations

import gzip
import io
import os
import shutil
import struct
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
CONFIGS = REPO / "configs"
NNLAB = [sys.executable, "-m", "nnlab.cli.main"]


def pytest_addoption(parser):
    parser.addoption("--update-golden", action="store_true",
                     help="rewrite tests/golden_runs.json for this backend (make golden) instead of comparing")


def pytest_configure(config):
    """A suite started in the background (`make test &`, nohup) inherits SIGINT ignored, and so would every
    process it starts: the Ctrl-C tests need it delivered. (exec resets a caught signal to its default.)

    Every JAX process of the test session (xdist workers inherit it from the controller) shares one compilation
    cache in a temporary folder: the suite trains the same tiny models in hundreds of processes, and compiling
    them again in each cost minutes of a JAX pass. Only the cache is shared; runs, data and nnlab's own cache
    stay per test (`isolated`), and the test of nnlab's own cache folder unsets it."""
    if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    if not hasattr(config, "workerinput") and "JAX_COMPILATION_CACHE_DIR" not in os.environ:
        import tempfile

        config.jax_cache = tempfile.mkdtemp(prefix="nnlab-tests-jax-cache-")
        os.environ["JAX_COMPILATION_CACHE_DIR"] = config.jax_cache
        os.environ["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"] = "0"  # tiny models compile in well under 1 s


def pytest_unconfigure(config):
    if getattr(config, "jax_cache", None):
        shutil.rmtree(config.jax_cache, ignore_errors=True)


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    """Point every nnlab folder into tmp_path, so tests never see the user's runs, caches or data."""
    for var, sub in (("NNLAB_RUNS_DIR", "runs"), ("NNLAB_CACHE_DIR", "cache"), ("NNLAB_DATA_DIR", "data"),
                     ("KERAS_HOME", "keras")):
        monkeypatch.setenv(var, str(tmp_path / sub))
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "2")
    monkeypatch.delenv("NNLAB_DEBUG", raising=False)
    return tmp_path


@pytest.fixture
def runs_dir(tmp_path) -> Path:
    return tmp_path / "runs"


def write_config(path: Path, config: dict) -> Path:
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def tiny_digits_config(**train) -> dict:
    """A config that trains in about a second: a 16-unit MLP on 200 sklearn digits."""
    return {
        "name": "tiny",
        "seed": 0,
        "data": {"name": "digits", "n_train": 200, "n_val": 100},
        "model": {"name": "mlp", "hidden": [16]},
        "train": {"epochs": 2, "batch_size": 32, **train},
    }


def pretend_interrupted(run_dir: Path, epochs: int | None = None) -> dict:
    """Make a finished run look stopped (status `interrupted`), planned for `epochs` epochs when given, as a
    kill after its last checkpoint would leave it; returns its meta.json as it was."""
    import json

    if epochs is not None:
        resolved = yaml.safe_load((run_dir / "config.yaml").read_text())
        resolved["train"]["epochs"] = epochs
        (run_dir / "config.yaml").write_text(yaml.safe_dump(resolved))
    meta = json.loads((run_dir / "meta.json").read_text())
    (run_dir / "meta.json").write_text(json.dumps({**meta, "status": "interrupted"}))
    return meta


def wait_for(condition, timeout: float, what: str):
    """Poll `condition` every 0.1 s until it returns something true (returned), else fail naming `what`."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def nnlab(*args: str, env: dict | None = None, timeout: float = 300, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """Run the CLI the way a user types it, in a fresh process; returns code, stdout and stderr."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.run([*NNLAB, *args], capture_output=True, text=True, env=full_env, timeout=timeout,
                          cwd=cwd or REPO)


# ---------------------------------------------------------------------------------------------
# Small files in the real formats.
def write_idx(path: Path, array: np.ndarray) -> Path:
    """An IDX file of unsigned bytes, gzip-compressed when the name ends in .gz."""
    array = np.asarray(array, dtype=np.uint8)
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + b"".join(struct.pack(">I", n) for n in array.shape)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "wb") as f:
        f.write(header + array.tobytes())
    return path


def make_digit_images(labels: np.ndarray, seed: int = 0) -> np.ndarray:
    """28x28 uint8 images whose bright bar position encodes the label, so a tiny model can learn it."""
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 40, size=(len(labels), 28, 28), dtype=np.uint8)
    for i, label in enumerate(labels):
        images[i, 2 + 2 * int(label) : 4 + 2 * int(label), 4:24] = 255
    return images


@pytest.fixture
def mnist_idx(tmp_path) -> Path:
    """$NNLAB_DATA_DIR/mnist/ with the four gzipped IDX files: 300 train and 100 test images."""
    folder = tmp_path / "data" / "mnist"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for prefix, n in (("train", 300), ("t10k", 100)):
        labels = rng.integers(0, 10, size=n).astype(np.uint8)
        write_idx(folder / f"{prefix}-images-idx3-ubyte.gz", make_digit_images(labels))
        write_idx(folder / f"{prefix}-labels-idx1-ubyte.gz", labels)
    return folder


# Every registered dataset, tiny: tests that go over the registry (test_registry, test_predict) load each so.
# dataset name -> (fixtures it needs, tiny parameters)
DATASET_EXAMPLES = {
    "digits": ((), {"n_train": 40, "n_val": 20}),
    "addition": ((), {"n": 60, "val_split": 0.5}),
    "mnist": (("mnist_idx",), {"n_train": 40}),
    "mnist56": (("mnist_idx",), {"n_train": 20}),
    "crt": ((), {"n_train": 12, "n_val": 6}),
    "r3": ((), {"n_train": 12, "n_val": 6}),
    "cifar10": (("cifar_batches",), {"allow_pickle": True}),
    "pulse": ((), {"n_train": 10, "n_val": 5, "length": 20, "max_width": 3, "max_extra_gap": 2}),
    "har": ((), {"synthetic": True, "n_train_generated": 60, "n_test_generated": 12, "window": 20}),
    "digitsum": (("mnist_idx",), {"length": 5, "val_images": 50}),
    "patches": (("mnist_idx",), {"n_patches": 40, "size": 4}),
}


@pytest.fixture
def cifar_batches(tmp_path):
    from vision_data import write_cifar_batches

    return write_cifar_batches(tmp_path / "data" / "cifar10")


# ---------------------------------------------------------------------------------------------
# Tiny trained runs shared by the tests of evaluate, predict and export: each kind is trained in-process
# once per test session (per xdist worker), on first use.
TRAINED = {
    "mlp": tiny_digits_config(),
    "cnn": {**tiny_digits_config(), "name": "tiny_cnn",
            "model": {"name": "cnn", "blocks": [{"filters": 4, "kernel": 3, "pool": 2}], "dense": [8]}},
    "cnn_augment": {**tiny_digits_config(), "name": "tiny_cnn_augment",
                    "data": {"name": "crt", "source": "generate", "n_train": 40, "n_val": 20,
                             "augment": {"shift": 0.1, "rotate": 10}},
                    "model": {"name": "cnn", "blocks": [{"filters": 4, "kernel": 3, "pool": 4}], "dense": [8]}},
    "pulse": {"name": "tiny_pulse", "seed": 0, "data": {"name": "pulse", "n_train": 20, "n_val": 10, "length": 40},
              "model": {"name": "rnn", "cell": "gru", "units": [4]}, "train": {"epochs": 2, "batch_size": 10}},
    "addition": {"name": "tiny_addition", "seed": 0, "data": {"name": "addition", "digits": 2, "n": 300},
                 "model": {"name": "seq2seq", "cell": "lstm", "units": 8},
                 "train": {"epochs": 2, "batch_size": 32}},
}


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory):
    """`trained_run(kind)`: the folder of a completed tiny run (mlp, cnn: digits; cnn_augment: crt
    shapes with augmentation layers; pulse: sequence regression; addition: seq2seq).

    Shared: a test that writes into a run folder copies it first (`copy_run`).
    """
    from nnlab import experiment

    root = tmp_path_factory.mktemp("trained")
    done: dict[str, Path] = {}

    def get(kind: str) -> Path:
        if kind not in done:
            with pytest.MonkeyPatch.context() as patch:
                for var in ("NNLAB_CACHE_DIR", "NNLAB_DATA_DIR", "KERAS_HOME"):
                    patch.setenv(var, str(root / var.lower()))
                config = write_config(root / f"{kind}.yaml", TRAINED[kind])
                done[kind] = experiment.train(config, runs_dir=root / "runs", stream=io.StringIO())
        return done[kind]

    return get


def copy_run(run_dir: Path, tmp_path: Path) -> Path:
    """A private copy of a shared run folder (same id), for tests that add files to it."""
    target = tmp_path / "runs" / run_dir.name
    shutil.copytree(run_dir, target)
    return target


def one_error_line(result, code=2):
    """The one `error: ...` line a CliRunner result printed, after checking the exit code."""
    assert result.exit_code == code, (result.output, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and len(lines[0]) < 400, result.stderr  # two tmp paths
    return lines[0]

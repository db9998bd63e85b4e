"""Every bad input: exit 2, one line under 300 characters naming the file and key, no run folder left.

One parametrised test over the cases, in-process (TensorFlow loads once per worker).
"""

from __future__ import annotations

import gzip

import h5py
import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from nnlab.cli.main import app
from nnlab.config import MAX_YAML_BYTES

from conftest import tiny_digits_config, write_idx

BOMB = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{c}: &{c} [*{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}]\n" for p, c in zip("abcdefgh", "bcdefghi"))


def config_with(tmp, **sections):
    """tmp/bad.yaml: the tiny digits config with whole sections or `section__key` values replaced."""
    config = tiny_digits_config()
    for key, value in sections.items():
        section, _, field = key.partition("__")
        if field:
            config.setdefault(section, {})[field] = value
        else:
            config[section] = value
    path = tmp / "bad.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return [str(path)]


def raw_file(content: bytes | str):
    def make(tmp):
        path = tmp / "bad.yaml"
        path.write_bytes(content.encode() if isinstance(content, str) else content)
        return [str(path)]

    return make


def sequential(*layers):
    return lambda tmp: config_with(tmp, model={"name": "sequential", "layers": list(layers)})


def har_h5(**datasets):
    def make(tmp):
        path = tmp / "har.h5"
        with h5py.File(path, "w") as f:
            for name, value in datasets.items():
                f[name] = value
        return config_with(tmp, data={"name": "har", "path": str(path)})

    return make


def not_hdf5(tmp):
    (tmp / "har.h5").write_text("trX,trY\n1,2\n")
    return config_with(tmp, data={"name": "har", "path": str(tmp / "har.h5")})


def patches_h5(tmp):
    with h5py.File(tmp / "assign3_data1.h5", "w") as f:
        f["data"] = np.zeros((10, 16, 16, 3))  # channels last: not the course's (N, 3, 16, 16)
    return config_with(tmp, data={"name": "patches", "path": str(tmp / "assign3_data1.h5")},
                       model={"name": "autoencoder"})


def mnist_idx(damage):
    """$NNLAB_DATA_DIR/mnist with the four IDX files, then `damage(folder)`."""

    def make(tmp):
        folder = tmp / "data" / "mnist"
        folder.mkdir(parents=True)
        for prefix, n in (("train", 20), ("t10k", 10)):
            write_idx(folder / f"{prefix}-images-idx3-ubyte.gz", np.zeros((n, 28, 28)))
            write_idx(folder / f"{prefix}-labels-idx1-ubyte.gz", np.arange(n) % 10)
        damage(folder / "train-images-idx3-ubyte.gz")
        return config_with(tmp, data={"name": "mnist", "download": False})

    return make


def truncate(path):
    data = gzip.decompress(path.read_bytes())
    path.write_bytes(gzip.compress(data[: len(data) // 2]))


def runs_dir_is_a_file(tmp):
    (tmp / "runs-file").write_text("")
    return [*config_with(tmp), "--runs-dir", str(tmp / "runs-file")]


CASES = {
    # the config file itself
    "not UTF-8": (raw_file(b"name: caf\xe9\n"), ["bad.yaml", "not UTF-8", "0xe9"]),
    "huge file": (raw_file("#" * (MAX_YAML_BYTES + 10)), ["bad.yaml", "larger than 1024 KiB"]),
    "/dev/zero": (lambda tmp: ["/dev/zero"], ["/dev/zero", "larger than"]),
    "alias bomb": (raw_file(BOMB), ["bad.yaml", "aliases", "100,000"]),
    "duplicate key": (raw_file("name: a\nseed: 1\nseed: 2\n"), ["bad.yaml", "line 3", "duplicate key 'seed'", "line 2"]),
    "newline in a value": (lambda tmp: config_with(tmp, data={"name": "mnist", "path": "/no/such\nfolder"}),
                           ["bad.yaml", "data.path", "/no/such\\nfolder"]),
    "huge value": (lambda tmp: config_with(tmp, train__epochs="x" * 100_000), ["bad.yaml", "train.epochs", "got 'xxx"]),
    "huge override": (lambda tmp: [*config_with(tmp), "train.epochs=" + "9" * 5000 + "x"], ["bad.yaml", "train.epochs"]),
    # Keras identifiers, with did-you-mean
    "activation": (lambda tmp: config_with(tmp, model__activation="rleu"),
                   ["bad.yaml", "model.activation", "'rleu'", "did you mean 'relu'"]),
    "activation in a list": (lambda tmp: config_with(tmp, model__hidden=[4, 4], model__activation=["relu", "tahn"]),
                             ["bad.yaml", "model.activation[1]", "did you mean 'tanh'"]),
    "initializer": (sequential({"Dense": {"units": 10, "kernel_initializer": "he_normall"}}),
                    ["bad.yaml", "model.layers[0].Dense.kernel_initializer", "did you mean 'he_normal'"]),
    "output activation": (lambda tmp: config_with(tmp, model={"name": "cnn", "blocks": [{"filters": 2}],
                                                              "output_activation": "sofmax"}),
                          ["bad.yaml", "model.output_activation", "did you mean 'softmax'"]),
    "loss": (lambda tmp: config_with(tmp, train__loss="mse2"), ["bad.yaml", "train.loss", "'mse2'"]),
    "metric": (lambda tmp: config_with(tmp, train__metrics=["acuracy"]),
               ["bad.yaml", "train.metrics[0]", "did you mean 'accuracy'"]),
    # sequential output vs the data's task
    "3 units for 10 classes": (sequential("Flatten", {"Dense": {"units": 3, "activation": "softmax"}}),
                               ["bad.yaml", "model.layers[1]", "(3,)", "10 classes", "(10,)"]),
    "no output layer": (sequential("Flatten", {"Dropout": {"rate": 0.1}}), ["bad.yaml", "model.layers[1]", "(64,)", "(10,)"]),
    # numbers
    "seed above 2**32-1": (lambda tmp: config_with(tmp, seed=2**32), ["bad.yaml", "seed", "4294967295"]),
    "data seed above 2**32-1": (lambda tmp: config_with(tmp, data__seed=2**40), ["bad.yaml", "data.seed"]),
    "inf learning rate": (lambda tmp: config_with(tmp, train__optimizer={"name": "adam", "learning_rate": float("inf")}),
                          ["bad.yaml", "train.optimizer.learning_rate", "finite"]),
    "inf clipnorm": (lambda tmp: [*config_with(tmp), "train.optimizer.clipnorm=.inf"],
                     ["bad.yaml", "train.optimizer.clipnorm", "finite"]),
    "nan dropout": (lambda tmp: config_with(tmp, model__dropout=float("nan")), ["bad.yaml", "model.dropout"]),
    # where runs go
    "--runs-dir is a file": (runs_dir_is_a_file, ["runs-file", "is a file, not a folder"]),
    # data files
    "h5 that is not HDF5": (not_hdf5, ["har.h5", "not an HDF5"]),
    "h5 lacking datasets": (har_h5(trX=np.zeros((4, 5, 3))), ["har.h5", "lacks", "trY"]),
    "h5 with wrong shapes": (har_h5(trX=np.zeros((4, 5)), trY=np.zeros((4, 6)), tstX=np.zeros((2, 5, 3)),
                                    tstY=np.zeros((2, 6))), ["har.h5", "trX (4, 5)", "(N, steps, 3)"]),
    "h5 with text": (har_h5(trX=np.array([b"a"] * 4), trY=np.zeros((4, 6)), tstX=np.zeros((2, 5, 3)),
                            tstY=np.zeros((2, 6))), ["har.h5", "trX", "expected numbers"]),
    "patches h5 shape": (patches_h5, ["assign3_data1.h5", "(10, 16, 16, 3)", "(N, 3, 16, 16)"]),
    "truncated IDX": (mnist_idx(truncate), ["train-images-idx3-ubyte.gz", "truncated IDX"]),
    "empty IDX": (mnist_idx(lambda p: p.write_bytes(gzip.compress(b""))), ["train-images-idx3-ubyte.gz", "not an IDX"]),
    "IDX that is not gzip": (mnist_idx(lambda p: p.write_bytes(b"\x00\x00\x08\x03garbage")),
                             ["train-images-idx3-ubyte.gz", "not a readable IDX"]),
    "IDX claiming a huge shape": (
        mnist_idx(lambda p: p.write_bytes(gzip.compress(b"\x00\x00\x08\x03" + b"\xff\xff\xff\xff" * 3))),
        ["train-images-idx3-ubyte.gz", "MiB"]),
}


@pytest.mark.parametrize("case", CASES)
def test_bad_input_one_line_exit_2_no_run_folder(case, tmp_path, runs_dir):
    make, expected = CASES[case]
    result = CliRunner().invoke(app, ["train", *make(tmp_path)])
    assert result.exit_code == 2, (result.output, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ") and len(lines[0].replace(str(tmp_path), "<tmp>")) < 300, lines[0]
    for text in expected:
        assert text in lines[0], lines[0]
    assert "Traceback" not in result.output
    assert not runs_dir.exists() or not any(runs_dir.iterdir())


def test_a_corrupt_generated_cache_is_made_again(tmp_path):
    from nnlab.datasets.pulse import load_pulse

    first = load_pulse(n_train=4, n_val=2, length=20, max_width=3, max_extra_gap=2)
    (cache,) = (tmp_path / "cache").rglob("pulse-*.npz")
    cache.write_bytes(cache.read_bytes()[:100])  # a kill while it was written, a full disk, an edit
    again = load_pulse(n_train=4, n_val=2, length=20, max_width=3, max_extra_gap=2)
    np.testing.assert_array_equal(first.x_train, again.x_train)
    assert np.load(cache)["x"].shape == (6, 20)  # rewritten whole

"""Config loading, overrides, and the one-line errors bad input gets (`nnlab train` exits 2): the config's own
mistakes, then every bad input the command meets before a run folder exists (files, names, numbers, data files),
in-process (TensorFlow loads once per worker)."""

from __future__ import annotations

import gzip
import json

import h5py
import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from nnlab.cli.main import app
from nnlab.config import MAX_YAML_BYTES, dump_yaml, load_config, parse_yaml
from nnlab.errors import ConfigError

from conftest import CONFIGS, tiny_digits_config, write_config, write_idx


def test_defaults_are_filled_and_name_defaults_to_the_file_stem(tmp_path):
    raw = tiny_digits_config()
    del raw["name"]
    config = load_config(write_config(tmp_path / "my_exp.yaml", raw))
    assert config.name == "my_exp"
    assert config.data.params["val_split"] == 0.2  # digits' default, now explicit
    assert config.model.params["activation"] == "relu"
    assert config.train.optimizer.name == "adam"


def test_overrides_are_parsed_as_yaml_and_keep_types(tmp_path):
    path = write_config(tmp_path / "x.yaml", tiny_digits_config(optimizer="sgd"))
    config = load_config(path, ["train.epochs=5", "model.hidden=[64,32]", "train.optimizer.learning_rate=1e-3",
                                "train.optimizer.momentum=0.9", "model.dropout=[0.1, 0.2]"])
    assert config.train.epochs == 5
    assert config.model.params["hidden"] == [64, 32]
    assert config.train.optimizer.name == "sgd"
    assert config.train.optimizer.learning_rate == pytest.approx(1e-3)
    assert config.model.params["dropout"] == [0.1, 0.2]


def test_yaml_reads_exponent_floats():
    assert parse_yaml("lr: 1e-3") == {"lr": 0.001}
    assert parse_yaml("n: 10") == {"n": 10}


def test_resolved_config_round_trips(tmp_path):
    config = load_config(CONFIGS / "addition_lstm.yaml")
    again = load_config(write_config(tmp_path / "resolved.yaml", yaml.safe_load(dump_yaml(config.to_dict()))))
    assert again.to_dict() == config.to_dict()


@pytest.mark.parametrize("config_file", sorted(CONFIGS.glob("*.yaml")), ids=lambda p: p.name)
def test_every_shipped_config_validates(config_file):
    assert load_config(config_file).name == config_file.stem


def test_optimizer_arguments_must_fit_the_optimizer(tmp_path):
    path = write_config(tmp_path / "x.yaml", tiny_digits_config(optimizer={"name": "adam", "momentum": 0.9}))
    with pytest.raises(ConfigError, match=r"x.yaml: train.optimizer: adam takes no momentum"):
        load_config(path)


# ---------------------------------------------------------------------------------------------
# Bad input through the CLI, the way a user types it: exit 2, one line naming file and key.
def _case(tmp_path, body, overrides=()):
    path = tmp_path / "bad.yaml"
    if body is not None:
        path.write_text(body if isinstance(body, str) else yaml.safe_dump(body))
    return [str(path), *overrides]


def _with(**changes):
    config = tiny_digits_config()
    for key, value in changes.items():
        section, _, field = key.partition("__")
        if field:
            config[section][field] = value
        else:
            config[section] = value
    return config


BAD_INPUT = {
    "bad yaml": ("name: x\ndata: {name: digits\n", (), ["bad.yaml", "invalid YAML"]),
    "unknown top key": (_with(trian={"epochs": 1}), (), ["bad.yaml", "trian", "unknown key"]),
    "unknown train key": (_with(train__epoch=3), (), ["bad.yaml", "train.epoch", "unknown key (did you mean 'epochs'?"]),
    "unknown model param": (_with(model__hiden=[3]), (), ["bad.yaml", "model.hiden",
                                                         "unknown key (did you mean 'hidden'?"]),
    "option for a key": (_with(), ["--epochs", "2"], ["--epochs is not an option", "write train.epochs=2"]),
    "option for a key, =": (_with(), ["--batch-size=8"], ["--batch-size is not an option", "write train.batch_size=8"]),
    "option misspelt": (_with(), ["--dry-rn"], ["no such option --dry-rn (did you mean --dry-run?)"]),
    "wrong type": (_with(train__epochs="ten"), (), ["bad.yaml", "train.epochs", "valid integer", "'ten'"]),
    "wrong type in list": (_with(model__hidden=[8, "x"]), (), ["bad.yaml", "model.hidden[1]", "valid integer"]),
    "out of range": (_with(train__epochs=0), (), ["bad.yaml", "train.epochs", "greater than or equal to 1"]),
    "out of range dropout": (_with(model__dropout=1.5), (), ["bad.yaml", "model.dropout", "[0, 1)"]),
    "unknown dataset": (_with(data={"name": "mnits"}), (), ["bad.yaml", "data.name", "unknown dataset 'mnits'", "mnist"]),
    "unknown model": (_with(model={"name": "cnnn"}), (), ["bad.yaml", "model.name", "unknown model 'cnnn'", "mlp"]),
    "override unknown key": (_with(), ["train.epoch=3"], ["bad.yaml", "train.epoch", "override 'train.epoch=3'"]),
    "override wrong type": (_with(), ["train.batch_size=1.5"], ["bad.yaml", "train.batch_size", "valid integer"]),
    "override out of range": (_with(), ["data.val_split=2"], ["bad.yaml", "data.val_split", "less than 1"]),
    "override syntax": (_with(), ["train.epochs"], ["bad.yaml", "override 'train.epochs'", "key.sub=value"]),
    "unknown keras loss": (_with(train__loss="msee"), (), ["bad.yaml", "train.loss", "'msee' (did you mean 'mse'?)"]),
    "unknown keras activation": (_with(), ["model.activation=rleu"], ["bad.yaml", "model.activation",
                                 "'rleu' (did you mean 'relu'?) (from override 'model.activation=rleu')"]),
    "unknown keras layer": (
        _with(model={"name": "sequential", "layers": [{"Flaten": {}}, {"Dense": {"units": 10}}]}), (),
        ["bad.yaml", "model.layers[0]", "'Flaten'", "Flatten"],
    ),
    "missing data": (_with(data={"name": "mnist", "download": False}), (), ["bad.yaml", "mnist", "NNLAB_DATA_DIR"]),
    "over its parameter budget": (_with(max_params=1000), (), [
        "bad.yaml: max_params: the model has 1,210 parameters, more than max_params 1,000"]),
}


@pytest.mark.parametrize("name", BAD_INPUT)
def test_bad_input_exits_2_with_one_line(name, tmp_path, runs_dir):
    body, overrides, expected = BAD_INPUT[name]
    result = CliRunner().invoke(app, ["train", *_case(tmp_path, body, overrides)])
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    for text in expected:
        assert text in lines[0]
    assert "Traceback" not in result.output and "Traceback" not in result.stderr
    completed = [p for p in runs_dir.glob("*/meta.json") if json.loads(p.read_text())["status"] == "completed"]
    assert completed == []


def test_missing_file_exits_2(tmp_path):
    result = CliRunner().invoke(app, ["train", str(tmp_path / "nope.yaml")])
    assert result.exit_code == 2
    assert result.stderr == f"error: {tmp_path / 'nope.yaml'}: no such file\n"


def test_no_config_and_no_resume_exits_2():
    result = CliRunner().invoke(app, ["train"])
    assert result.exit_code == 2
    assert result.stderr.startswith("error: nnlab train: give a config file")


def test_device_choice_is_checked(tmp_path, runs_dir):
    """--device is checked against the device list of the backend this process runs on."""
    from nnlab.training import backend

    name = backend.choose()
    if name == "tensorflow":
        import tensorflow as tf

        gpus, shown = tf.config.list_physical_devices("GPU"), "TensorFlow"
    else:
        import jax

        gpus, shown = [d for d in jax.devices() if d.platform != "cpu"], "JAX"
    path = write_config(tmp_path / "d.yaml", tiny_digits_config(epochs=1))
    result = CliRunner().invoke(app, ["train", str(path), "--device", "tpu"])
    assert (result.exit_code, result.stderr) == (2, "error: --device: expected one of auto, cpu, gpu (got 'tpu')\n")
    if not gpus:
        result = CliRunner().invoke(app, ["train", str(path), "--device", "gpu"])
        assert result.exit_code == 2
        assert result.stderr.startswith(f"error: --device gpu: {shown} sees no GPU")
        assert not runs_dir.exists() or not list(runs_dir.iterdir())


# ---------------------------------------------------------------------------------------------
# Every bad input: exit 2, one line under 300 characters naming the file and key, no run folder left.
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


def damaged_mnist(damage):
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
    "truncated IDX": (damaged_mnist(truncate), ["train-images-idx3-ubyte.gz", "truncated IDX"]),
    "empty IDX": (damaged_mnist(lambda p: p.write_bytes(gzip.compress(b""))),
                  ["train-images-idx3-ubyte.gz", "not an IDX"]),
    "IDX that is not gzip": (damaged_mnist(lambda p: p.write_bytes(b"\x00\x00\x08\x03garbage")),
                             ["train-images-idx3-ubyte.gz", "not a readable IDX"]),
    "IDX claiming a huge shape": (
        damaged_mnist(lambda p: p.write_bytes(gzip.compress(b"\x00\x00\x08\x03" + b"\xff\xff\xff\xff" * 3))),
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

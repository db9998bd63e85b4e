"""Config loading, overrides, and the one-line errors bad input gets (`nnlab train` exits 2)."""

from __future__ import annotations

import json

import pytest
import yaml
from typer.testing import CliRunner

from nnlab.cli.main import app
from nnlab.config import dump_yaml, load_config, parse_yaml
from nnlab.errors import ConfigError

from conftest import CONFIGS, tiny_digits_config, write_config


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

"""`nnlab train` end to end: the run folder a user gets, dry runs, reproduction, failures."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from conftest import CONFIGS, nnlab, tiny_digits_config, write_config

RUN_FILES = ["config.yaml", "overrides.yaml", "meta.json", "history.csv", "metrics.json", "summary.txt", "model.keras",
             "predictions.npz", "checkpoint/state.json", "plots/curves.png"]


def only_run(runs_dir: Path) -> Path:
    (run_dir,) = [p for p in runs_dir.iterdir() if p.is_dir()]
    return run_dir


def history(run_dir: Path) -> list[dict]:
    with (run_dir / "history.csv").open() as f:
        return list(csv.DictReader(f))


def test_train_writes_a_complete_run_folder(tmp_path, runs_dir):
    config = write_config(tmp_path / "tiny.yaml", tiny_digits_config(epochs=3, optimizer={"name": "adam", "learning_rate": 0.01}))
    result = nnlab("train", str(config), "model.hidden=[12]")
    assert result.returncode == 0, result.stderr
    run_dir = only_run(runs_dir)
    lines = result.stdout.strip().splitlines()
    assert lines[0].startswith(f"run {run_dir.name}: training tiny (real data train 200 / val 100")
    assert [" ".join(line.split()[:2]) for line in lines[1:4]] == ["epoch 1/3", "epoch 2/3", "epoch 3/3"]
    assert all(len(line) <= 80 for line in lines[1:4]), lines
    assert lines[-3:-1] == [f"run id: {run_dir.name}", f"run folder: {run_dir}"]
    assert lines[-1].startswith("val_accuracy: ")
    for name in RUN_FILES + ["confusion_matrix.csv", "classification_report.json", "plots/confusion_matrix.png"]:
        assert (run_dir / name).is_file(), name
    assert [p.name for p in run_dir.rglob(".*")] == [".lock"]  # the owner lock; no temporary files left behind
    meta = json.loads((run_dir / "meta.json").read_text())
    assert meta["status"] == "completed" and meta["epochs_done"] == 3
    assert meta["parameters"]["total"] == 64 * 12 + 12 + 12 * 10 + 10
    assert meta["data"]["sizes"] == {"train": 200, "val": 100}
    assert meta["device"]["used"] == "cpu"
    assert yaml.safe_load((run_dir / "overrides.yaml").read_text())["overrides"] == ["model.hidden=[12]"]
    assert yaml.safe_load((run_dir / "config.yaml").read_text())["model"]["hidden"] == [12]
    rows = history(run_dir)
    assert [int(r["epoch"]) for r in rows] == [1, 2, 3]
    assert float(rows[-1]["loss"]) < float(rows[0]["loss"])  # it learned
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert set(metrics) == {"train", "val"}
    assert metrics["val"]["accuracy"] == pytest.approx(meta["main_metric"]["value"])
    assert 0.2 < metrics["val"]["accuracy"] <= 1.0  # chance is 0.1
    matrix = list(csv.reader((run_dir / "confusion_matrix.csv").open()))
    assert matrix[0] == ["true \\ predicted", *map(str, range(10))]
    assert sum(int(v) for row in matrix[1:] for v in row[1:]) == 100
    with np.load(run_dir / "predictions.npz") as predictions:
        assert predictions["val_y_pred"].shape == (100, 10)


def test_a_run_config_reproduces_the_run(tmp_path, runs_dir):
    config = write_config(tmp_path / "tiny.yaml", tiny_digits_config(deterministic=True))
    assert nnlab("train", str(config)).returncode == 0
    first = only_run(runs_dir)
    again = nnlab("train", str(first / "config.yaml"))
    assert again.returncode == 0, again.stderr
    (second,) = [p for p in runs_dir.iterdir() if p != first]
    assert (second / "config.yaml").read_text() == (first / "config.yaml").read_text()
    assert [r["loss"] for r in history(second)] == [r["loss"] for r in history(first)]


def test_dry_run_prints_config_and_summary_and_trains_nothing(tmp_path, runs_dir):
    result = nnlab("train", str(CONFIGS / "addition_lstm.yaml"), "model.units=16", "data.n=200", "--dry-run")
    assert result.returncode == 0, result.stderr
    assert "name: addition_lstm" in result.stdout
    assert "units: 16" in result.stdout
    assert "RepeatVector" in result.stdout
    lstm = 4 * 16 * (12 + 16 + 1)
    decoder = 4 * 16 * (16 + 16 + 1)
    assert f"parameters: {lstm + decoder + 16 * 12 + 12:,}" in result.stdout
    assert not runs_dir.exists() or not list(runs_dir.iterdir())


def test_seq2seq_run_writes_decoded_examples(tmp_path, runs_dir):
    result = nnlab("train", str(CONFIGS / "addition_lstm.yaml"), "data.n=300", "model.units=8", "train.epochs=1",
                   "train.early_stopping=null")
    assert result.returncode == 0, result.stderr
    run_dir = only_run(runs_dir)
    examples = (run_dir / "examples.txt").read_text().splitlines()
    assert len(examples) == 20
    assert all(line[:2] in ("ok", "XX") and "->" in line and "(true '" in line for line in examples)
    decoded = json.loads((run_dir / "examples.json").read_text())  # the records the reports read, one per line
    assert [f"{'ok' if e['right'] else 'XX'}  {e['input']!r} -> {e['predicted']!r}  (true {e['true']!r})"
            for e in decoded] == examples
    val = json.loads((run_dir / "metrics.json").read_text())["val"]
    assert {"char_accuracy", "sequence_accuracy", "accuracy", "loss"} <= set(val)
    assert val["sequence_accuracy"] <= val["char_accuracy"]


def test_mnist_from_idx_files(mnist_idx, tmp_path, runs_dir):
    config = {"name": "m", "data": {"name": "mnist", "n_train": 200}, "model": {"name": "mlp", "hidden": [8]},
              "train": {"epochs": 1}}
    result = nnlab("train", str(write_config(tmp_path / "m.yaml", config)))
    assert result.returncode == 0, result.stderr
    meta = json.loads((only_run(runs_dir) / "meta.json").read_text())
    assert meta["data"]["path"] == str(mnist_idx)
    assert meta["data"]["sizes"] == {"train": 200, "val": 100}


def test_mnist56_is_binary_with_sensitivity_and_specificity(mnist_idx, tmp_path, runs_dir):
    config = {"name": "m56", "data": {"name": "mnist56"}, "model": {"name": "mlp", "hidden": [4]}, "train": {"epochs": 1}}
    result = nnlab("train", str(write_config(tmp_path / "m56.yaml", config)))
    assert result.returncode == 0, result.stderr
    run_dir = only_run(runs_dir)
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert {"accuracy", "sensitivity", "specificity", "roc_auc"} <= set(metrics["train"]) & set(metrics["val"])
    assert (run_dir / "confusion_matrix.csv").read_text().splitlines()[0] == "true \\ predicted,5,6"


def test_squared_error_on_one_hot_targets_and_sgd_schedule(tmp_path, runs_dir):
    """Seed 004's first model: relu outputs, squared error on one-hot targets, SGD with a schedule."""
    config = tiny_digits_config(loss="mse", optimizer={"name": "sgd", "learning_rate": 0.1, "momentum": 0.5},
                                lr_schedule={"name": "exponential_decay", "decay_rate": 0.5, "decay_epochs": 1})
    config["model"]["output_activation"] = "relu"
    result = nnlab("train", str(write_config(tmp_path / "sq.yaml", config)))
    assert result.returncode == 0, result.stderr
    rows = history(only_run(runs_dir))
    assert float(rows[1]["learning_rate"]) == pytest.approx(0.1 * 0.5 ** 2, rel=1e-3)  # after two epochs of steps


def test_early_stopping_stops_and_is_recorded(tmp_path, runs_dir):
    config = tiny_digits_config(epochs=30, optimizer={"name": "sgd", "learning_rate": 1e-9},
                                early_stopping={"monitor": "val_loss", "patience": 1, "min_delta": 0.5})
    result = nnlab("train", str(write_config(tmp_path / "es.yaml", config)))
    assert result.returncode == 0, result.stderr
    run_dir = only_run(runs_dir)
    assert len(history(run_dir)) == 2
    assert json.loads((run_dir / "meta.json").read_text())["epochs_done"] == 2


def test_nan_loss_fails_the_run_with_exit_1(tmp_path, runs_dir):
    config = tiny_digits_config(epochs=5, optimizer={"name": "sgd", "learning_rate": 1e30})
    result = nnlab("train", str(write_config(tmp_path / "nan.yaml", config)))
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [result.stderr.strip()]
    assert "NaN" in result.stderr
    meta = json.loads((only_run(runs_dir) / "meta.json").read_text())
    assert meta["status"] == "failed" and "NaN" in meta["reason"]


def test_runs_on_an_empty_folder(runs_dir):
    result = nnlab("runs")
    assert (result.returncode, result.stdout) == (0, f"no runs in {runs_dir}\n")

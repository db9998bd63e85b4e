"""experiment.py in process: the run folder train writes (readable by others, nothing left when stopped before
meta.json, where it goes), resume's checks of what it continues, training a run further, and the shipped image
configs trained for an epoch on tiny real-format files.

One tiny run is trained once (in-process) and copied into each test's runs folder.
"""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import stat

import numpy as np
import pytest
from typer.testing import CliRunner

from nnlab import experiment, runs
from nnlab.cli.main import app

from conftest import CONFIGS, one_error_line, tiny_digits_config, write_config
from vision_data import write_cifar_batches


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A completed 3-epoch run, trained under umask 022."""
    root = tmp_path_factory.mktemp("trained")
    # A checkpoint every epoch, so the one before the last is kept beside it.
    config = write_config(root / "tiny.yaml", tiny_digits_config(epochs=3, checkpoint_every=0))
    previous = os.umask(0o022)
    try:
        run_dir = experiment.train(config, runs_dir=root / "runs", stream=io.StringIO())
    finally:
        os.umask(previous)
    return run_dir


def copy_run(trained, runs_dir, name=None):
    target = runs_dir / (name or trained.name)
    shutil.copytree(trained, target)
    return target


def invoke(*args):
    return CliRunner().invoke(app, list(args))


def test_files_are_readable_by_group_and_world_under_umask_022(trained):
    files = [p for p in trained.rglob("*") if p.is_file() and p.name != runs.LOCK]
    assert {"model.keras", "meta.json", "history.csv", "curves.png"} <= {p.name for p in files}
    unreadable = [p.name for p in files if stat.S_IMODE(p.stat().st_mode) & 0o044 != 0o044]
    assert unreadable == []


def test_resume_with_a_corrupt_state_json_leaves_the_run_as_it_was(trained, runs_dir):
    run_dir = copy_run(trained, runs_dir)
    (run_dir / "checkpoint" / "state.json").write_text('{"epoch": 3, "mod')
    meta_before = (run_dir / "meta.json").read_bytes()
    line = one_error_line(invoke("train", "--resume", run_dir.name, "train.epochs=5"))
    assert f"{run_dir / 'checkpoint' / 'state.json'}: not valid JSON" in line
    assert (run_dir / "meta.json").read_bytes() == meta_before


def test_resume_refuses_a_checkpoint_ahead_of_history_csv(trained, runs_dir):
    run_dir = copy_run(trained, runs_dir)
    rows = (run_dir / "history.csv").read_text().splitlines()
    (run_dir / "history.csv").write_text("\n".join(rows[:2]) + "\n")  # epoch 1 only; the checkpoint is after 3
    meta_before = (run_dir / "meta.json").read_bytes()
    line = one_error_line(invoke("train", "--resume", run_dir.name, "train.epochs=5"))
    assert "cannot resume" in line and "history.csv lacks epochs up to 3" in line
    assert (run_dir / "meta.json").read_bytes() == meta_before


def test_train_further_falls_back_past_a_truncated_checkpoint_and_clears_stale_temporaries(trained, runs_dir):
    run_dir = copy_run(trained, runs_dir)
    state = json.loads((run_dir / "checkpoint" / "state.json").read_text())
    assert state["previous"]["epoch"] == 2 and (run_dir / "checkpoint" / state["previous"]["model"]).is_file()
    newest = run_dir / "checkpoint" / state["model"]
    newest.write_bytes(newest.read_bytes()[:500])  # a truncated newest checkpoint: fall back one epoch
    stale = [run_dir / "checkpoint" / ".epoch-0004-x1y2z3w4.keras", run_dir / ".meta-abcdefgh.json"]
    for path in stale:
        path.write_text("half written")

    result = invoke("train", "--resume", run_dir.name, "train.epochs=5")
    assert result.exit_code == 0, result.stderr
    assert result.stdout.startswith(f"run {run_dir.name}: resuming tiny after epoch 2/5")
    assert [int(r["epoch"]) for r in csv.DictReader(open(run_dir / "history.csv"))] == [1, 2, 3, 4, 5]
    assert not any(p.exists() for p in stale)
    meta = runs.read_json(run_dir / "meta.json")
    assert (meta["status"], meta["epochs_done"], meta["epochs_planned"]) == ("completed", 5, 5)
    assert meta["extended"][0] | {"at": None} == {"from": 3, "to": 5, "after_epoch": 3, "at": None}
    assert "epochs: 5" in (run_dir / "config.yaml").read_text()


def test_train_further_is_the_only_change_resume_takes(trained, runs_dir):
    run_dir = copy_run(trained, runs_dir)
    assert "the run has 3 epochs already" in one_error_line(invoke("train", "--resume", run_dir.name, "train.epochs=3"))
    assert "only train.epochs=N may change" in one_error_line(
        invoke("train", "--resume", run_dir.name, "model.hidden=[3]"))
    assert "train.epochs=13" in one_error_line(invoke("train", "--resume", run_dir.name))  # completed: says how


def test_a_report_taken_before_more_training_is_refreshed(trained, runs_dir):
    run_dir = copy_run(trained, runs_dir)
    assert invoke("report", run_dir.name).exit_code == 0
    before = (run_dir / "report.html").read_text()
    assert invoke("train", "--resume", run_dir.name, "train.epochs=4").exit_code == 0
    after = (run_dir / "report.html").read_text()
    assert after != before and ">4<" in after


def test_runs_dir_order_and_a_relative_data_path_stored_resolved(tmp_path, monkeypatch, mnist_idx):
    """--runs-dir beats output.runs_dir beats $NNLAB_RUNS_DIR; data.path is stored absolute."""
    monkeypatch.chdir(tmp_path)
    config = write_config(tmp_path / "m.yaml", {
        "name": "m", "data": {"name": "mnist", "path": "data/mnist", "n_train": 40, "download": False},
        "model": {"name": "mlp", "hidden": [4]}, "train": {"epochs": 1},
        "output": {"runs_dir": "from-config", "plots": False}})
    result = invoke("train", str(config))
    assert result.exit_code == 0, result.stderr
    (run_dir,) = (tmp_path / "from-config").iterdir()  # not $NNLAB_RUNS_DIR
    assert runs.read_json(run_dir / "meta.json")["data"]["path"] == str(mnist_idx)
    assert f"path: {mnist_idx}" in (run_dir / "config.yaml").read_text()
    assert not (tmp_path / "runs").exists()


def test_a_run_stopped_before_meta_json_leaves_no_empty_folder(tmp_path, runs_dir, monkeypatch):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(runs, "new_meta", interrupted)
    with pytest.raises(KeyboardInterrupt):
        experiment.train(write_config(tmp_path / "t.yaml", tiny_digits_config(epochs=1)), runs_dir=runs_dir,
                         stream=io.StringIO())
    assert list(runs_dir.iterdir()) == []


# ---------------------------------------------------------------------------------------------
# The shipped image configs, one epoch each on tiny files in the real formats.
TINY = ["train.epochs=1", "output.plots=false"]
CIFAR_BATCHES = [*TINY, "data.download=false", "data.allow_pickle=true"]  # the pickled batches need the opt-in


@pytest.mark.parametrize("config", ["cifar10_cnn", "cifar10_cnn_bn", "cifar10_cnn12"])
def test_cifar10_configs_train_one_epoch_on_tiny_pickle_batches(tmp_path, runs_dir, config):
    write_cifar_batches(tmp_path / "data" / "cifar10", per_batch=4, test=10)
    run_dir = experiment.train(CONFIGS / f"{config}.yaml", CIFAR_BATCHES, runs_dir=runs_dir)
    meta = runs.read_json(run_dir / runs.META)
    assert meta["status"] == "completed" and meta["data"]["subset"] is True
    scores = runs.read_json(run_dir / runs.METRICS)
    assert 0 <= scores["val"]["accuracy"] <= 1 and np.isfinite(scores["val"]["log_loss"])
    with open(run_dir / runs.CONFUSION) as f:
        header = next(csv.reader(f))
    assert header[1:4] == ["airplane", "automobile", "bird"]


@pytest.mark.parametrize("config", ["mnist56_cnn", "mnist56_cnn_small", "mnist_cnn", "mnist_depth_sigmoid",
                                    "mnist_depth_relu"])
def test_mnist_configs_train_on_tiny_idx_files(mnist_idx, runs_dir, config):
    run_dir = experiment.train(CONFIGS / f"{config}.yaml", [*TINY, "train.batch_size=64"], runs_dir=runs_dir)
    assert runs.read_json(run_dir / runs.META)["status"] == "completed"


@pytest.mark.parametrize("config", ["crt_cnn", "r3_cnn"])
def test_shape_configs_train_on_generated_data_with_class_names(runs_dir, config):
    run_dir = experiment.train(CONFIGS / f"{config}.yaml", [*TINY, "data.n_train=30", "data.n_val=15"],
                               runs_dir=runs_dir)
    meta = runs.read_json(run_dir / runs.META)
    assert meta["data"]["source"] == "generated" and meta["data"]["generator"]["n_train"] == 30
    with open(run_dir / runs.CONFUSION) as f:
        rows = list(csv.reader(f))
    names = ["circle", "rectangle", "triangle"] if config == "crt_cnn" else ["square", "horizontal", "vertical"]
    assert rows[0][1:] == names and [row[0] for row in rows[1:]] == names
    assert sum(int(v) for row in rows[1:] for v in row[1:]) == 15
    assert set(runs.read_json(run_dir / runs.METRICS)["val"]) >= {"accuracy", "log_loss"}

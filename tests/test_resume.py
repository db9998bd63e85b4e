"""Resume: a run killed with SIGKILL continues from its last finished epoch, each epoch exactly once."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import time

import pytest

from conftest import NNLAB, nnlab, pretend_interrupted, tiny_digits_config, write_config
from test_train import history, only_run


def _wait_for_epochs(run_dir_parent, n, process, timeout=120):
    deadline = time.time() + timeout
    while time.time() < deadline:
        assert process.poll() is None, "training ended before it could be killed"
        for state in run_dir_parent.glob("*/checkpoint/state.json"):
            if json.loads(state.read_text())["epoch"] >= n:
                return state.parent.parent
        time.sleep(0.02)
    raise AssertionError("no epochs finished in time")


def _files(run_dir):
    return {p: (p.stat().st_mtime_ns, p.stat().st_size) for p in run_dir.rglob("*") if p.is_file() and p.name != ".lock"}


def test_sigkill_then_resume_has_every_epoch_once(tmp_path, runs_dir):
    epochs = 40
    config = write_config(tmp_path / "long.yaml", tiny_digits_config(
        epochs=epochs, checkpoint_every=0,  # a checkpoint every epoch, so the kill lands between two
        early_stopping={"monitor": "val_loss", "patience": 100, "restore_best_weights": True}))
    process = subprocess.Popen([*NNLAB, "train", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                               env=os.environ.copy())
    run_dir = _wait_for_epochs(runs_dir, 3, process)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert process.returncode == -signal.SIGKILL

    meta = json.loads((run_dir / "meta.json").read_text())
    assert meta["status"] == "running"  # nobody could write anything more ...
    listed = nnlab("runs").stdout
    assert f"{run_dir.name}  tiny  interrupted" in listed  # ... but the dead process is noticed
    state = json.loads((run_dir / "checkpoint" / "state.json").read_text())
    done = state["epoch"]
    assert 3 <= done < epochs
    assert {"wait", "best", "best_epoch"} <= set(state["callbacks"][0])
    assert state["best_weights"] is not None  # restore_best_weights survives a resume too
    # A kill between writing history.csv and the checkpoint leaves one row too many: resume cuts it.
    rows = (run_dir / "history.csv").read_text().splitlines()
    (run_dir / "history.csv").write_text("\n".join(rows[: done + 1] + [f"{done + 1}" + rows[-1][rows[-1].index(","):]]) + "\n")

    result = nnlab("train", "--resume", run_dir.name[:17])  # an unambiguous prefix
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"run {run_dir.name}: resuming tiny after epoch {done}/{epochs}")
    assert [int(r["epoch"]) for r in history(run_dir)] == list(range(1, epochs + 1))
    meta = json.loads((run_dir / "meta.json").read_text())
    assert (meta["status"], meta["resumes"], meta["epochs_done"]) == ("completed", 1, epochs)
    assert meta["duration_s"] >= sum(float(r["time_s"]) for r in history(run_dir))  # the killed part counts too

    again = nnlab("train", "--resume", run_dir.name)
    assert again.returncode == 2
    assert again.stderr.startswith(f"error: --resume {run_dir.name}: run {run_dir.name} is already completed (train")


def test_two_resumes_at_once_one_trains_the_other_exits_2_at_once(tmp_path, runs_dir):
    epochs = 30
    config = write_config(tmp_path / "long.yaml", tiny_digits_config(epochs=epochs, checkpoint_every=0))
    first = subprocess.Popen([*NNLAB, "train", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                             env=os.environ.copy())
    run_dir = _wait_for_epochs(runs_dir, 2, first)
    first.send_signal(signal.SIGKILL)
    first.wait()

    both = [subprocess.Popen([*NNLAB, "train", "--resume", run_dir.name], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, env=os.environ.copy()) for _ in range(2)]
    ended = {}
    files_when_completed = None
    while len(ended) < 2:
        for i, process in enumerate(both):
            if i not in ended and process.poll() is not None:
                ended[i] = (process.returncode, *process.communicate(), time.time())
        if files_when_completed is None and json.loads((run_dir / "meta.json").read_text())["status"] == "completed":
            files_when_completed = _files(run_dir)
        time.sleep(0.01)
    (loser_code, _, loser_err, loser_end), (winner_code, winner_out, winner_err, winner_end) = sorted(
        ended.values(), key=lambda e: e[3])
    assert (winner_code, loser_code) == (0, 2), (winner_err, loser_err)
    assert loser_err.startswith(f"error: run {run_dir.name} is in use by pid ")
    assert loser_err.count("\n") == 1
    assert winner_out.startswith(f"run {run_dir.name}: resuming tiny after epoch")
    assert _files(run_dir) == files_when_completed  # nothing was written after the folder read `completed`
    assert [int(r["epoch"]) for r in history(run_dir)] == list(range(1, epochs + 1))
    meta = json.loads((run_dir / "meta.json").read_text())
    assert (meta["status"], meta["resumes"]) == ("completed", 1)


def test_early_stopping_patience_carries_over_a_resume(tmp_path, runs_dir):
    """Stopped after epoch 2 of 10 with patience 3 and no improvement since epoch 1: two more epochs, not four."""
    config = write_config(tmp_path / "es.yaml", tiny_digits_config(
        epochs=2, optimizer={"name": "sgd", "learning_rate": 1e-9},
        early_stopping={"monitor": "val_loss", "patience": 3, "min_delta": 0.5}))
    assert nnlab("train", str(config)).returncode == 0
    run_dir = only_run(runs_dir)
    pretend_interrupted(run_dir, epochs=10)  # a 10-epoch run interrupted after epoch 2
    assert json.loads((run_dir / "checkpoint" / "state.json").read_text())["callbacks"][0]["wait"] == 1

    result = nnlab("train", "--resume", "latest")
    assert result.returncode == 0, result.stderr
    assert [int(r["epoch"]) for r in history(run_dir)] == [1, 2, 3, 4]


def test_resume_unknown_run_exits_2(runs_dir):
    result = nnlab("train", "--resume", "nope")
    assert (result.returncode, result.stderr) == (2, f"error: no run 'nope' in {runs_dir}\n")


def test_ctrl_c_marks_the_run_interrupted_and_exits_130(tmp_path, runs_dir):
    config = write_config(tmp_path / "long.yaml", tiny_digits_config(epochs=1000, checkpoint_every=0))
    process = subprocess.Popen([*NNLAB, "train", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                               text=True, env=os.environ.copy())
    run_dir = _wait_for_epochs(runs_dir, 1, process)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130
    assert stderr.strip().splitlines()[-1] == "interrupted"
    meta = json.loads((run_dir / "meta.json").read_text())
    assert meta["status"] == "interrupted" and "resume" in meta["reason"]


def test_resume_after_early_stop_trains_no_further(tmp_path, runs_dir):
    """Killed after early stopping fired but before evaluation: resume restores best weights and finishes."""
    config = write_config(tmp_path / "es.yaml", tiny_digits_config(
        epochs=30, optimizer={"name": "sgd", "learning_rate": 1e-9},
        early_stopping={"monitor": "val_loss", "patience": 1, "min_delta": 0.5, "restore_best_weights": True}))
    assert nnlab("train", str(config)).returncode == 0
    run_dir = only_run(runs_dir)
    pretend_interrupted(run_dir)
    result = nnlab("train", "--resume", "latest")
    assert result.returncode == 0, result.stderr
    assert "epoch 3" not in result.stdout
    assert [int(r["epoch"]) for r in history(run_dir)] == [1, 2]
    assert json.loads((run_dir / "meta.json").read_text())["status"] == "completed"


def test_checkpoints_at_most_every_checkpoint_every_seconds_and_after_the_last_epoch(tmp_path, monkeypatch):
    """A tiny run with checkpoint_every far above its length checkpoints once, after its last epoch; with 0, every
    epoch; history.csv has every epoch either way."""
    from nnlab import experiment
    from nnlab.training.callbacks import RunCheckpoint

    saved = []
    original = RunCheckpoint.save
    monkeypatch.setattr(RunCheckpoint, "save", lambda self, epochs_done: (saved.append(epochs_done),
                                                                          original(self, epochs_done)))
    for every, expected in ((3600, [4]), (0, [1, 2, 3, 4])):
        saved.clear()
        config = write_config(tmp_path / "tiny.yaml", tiny_digits_config(epochs=4, checkpoint_every=every))
        run_dir = experiment.train(config, runs_dir=tmp_path / "runs", stream=io.StringIO())
        assert saved == expected
        assert [int(r["epoch"]) for r in history(run_dir)] == [1, 2, 3, 4]
        assert json.loads((run_dir / "checkpoint" / "state.json").read_text())["epoch"] == 4


def test_a_checkpoint_keeps_the_random_state_and_refuses_a_damaged_one(tmp_path):
    import random

    import numpy as np

    from nnlab.errors import RunDamagedError
    from nnlab.training.callbacks import random_state, restore_random_state

    np.random.seed(5)
    random.seed(5)
    saved = json.loads(json.dumps(random_state()))  # as state.json holds it
    expected = (np.random.permutation(10).tolist(), random.random())
    np.random.seed(6)
    random.seed(6)
    restore_random_state(saved, tmp_path / "state.json")
    assert (np.random.permutation(10).tolist(), random.random()) == expected
    saved["numpy"]["keys"] = [1, 2, 3]
    with pytest.raises(RunDamagedError, match=r"state.json: cannot resume: its random state is damaged \(IndexError\)"):
        restore_random_state(saved, tmp_path / "state.json")


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")  # the swallowed one, on purpose
def test_a_ctrl_c_that_python_swallowed_still_stops_training_at_the_epoch_end():
    """A KeyboardInterrupt raised inside a garbage-collector callback (JAX registers one) is printed as
    'Exception ignored' and lost; the signal was noted, so the next epoch end stops training all the same."""
    import gc

    from nnlab.training.callbacks import StopCheck, noticed_signals

    def interrupt_during_gc(phase, info):
        if phase == "start":
            gc.callbacks.remove(interrupt_during_gc)
            signal.raise_signal(signal.SIGINT)

    with noticed_signals():
        StopCheck().on_epoch_end(0)  # nothing noticed yet
        gc.callbacks.append(interrupt_during_gc)
        gc.collect()  # the KeyboardInterrupt is raised in the callback, and swallowed there
        with pytest.raises(KeyboardInterrupt):
            StopCheck().on_epoch_end(1)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # put back as it was

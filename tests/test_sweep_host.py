"""Warm trial hosts: one process trains trial after trial with the numbers `nnlab train` gives alone, and every
way a trial can end (finished, failed, pruned, killing its host) comes back as a typed message."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pytest
from conftest import tiny_digits_config, write_config
from golden import CONFIGS, numbers, write_mnist
from test_golden_runs import differences, stored_numbers

from nnlab.sweeps.host import TrialHost

# Loaded into the host through PYTHONPATH: a trial named `exit_me` ends its process as a crashing library would.
_FAULTS = """
import os
import nnlab.experiment as experiment
_run = experiment._run
def _faulty_run(model, config, *args, **kwargs):
    if config.name == "exit_me":
        os._exit(3)
    return _run(model, config, *args, **kwargs)
experiment._run = _faulty_run
"""


@pytest.fixture
def host(tmp_path):
    """A started host (one thread) that loads the fault injector; closed after the test."""
    faults = tmp_path / "faults"
    faults.mkdir()
    (faults / "sitecustomize.py").write_text(_FAULTS)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(faults), os.environ.get("PYTHONPATH", "")])}
    handle = TrialHost(threads=1, env=env)
    handle.start()
    yield handle
    handle.close()


def train(host: TrialHost, config: Path, tmp_path: Path, *overrides: str, **kwargs) -> list[dict]:
    return list(host.train(config, list(overrides), runs_dir=tmp_path / "runs", log=tmp_path / "trial.log", **kwargs))


def test_one_host_trains_the_golden_runs_in_another_order_with_the_stored_numbers(host, tmp_path, isolated):
    """What ran before a trial in its host does not move its numbers: the five golden configurations, trained
    in reverse order in one host (the MLP twice), equal the stored numbers of runs made one process each."""
    write_mnist(isolated / "data" / "mnist")
    stored = stored_numbers()
    names = [*reversed(CONFIGS), "mlp"]
    pid = host.process.pid
    for name in names:
        config = write_config(tmp_path / f"{name}.yaml", CONFIGS[name])
        messages = train(host, config, tmp_path)
        assert [m["event"] for m in messages if m["event"] != "epoch"] == ["started", "finished"], messages[-1]
        epochs = [m["epoch"] for m in messages if m["event"] == "epoch"]
        assert epochs == list(range(1, CONFIGS[name]["train"]["epochs"] + 1))
        run_dir = Path(messages[-1]["run_dir"])
        assert messages[0]["run_id"] == run_dir.name
        assert differences(stored[name], numbers(run_dir)) == [], name
        meta = json.loads((run_dir / "meta.json").read_text())
        assert meta["status"] == "completed" and meta["pid"] == pid and meta["timings_s"]["startup"] == 0.0
    assert host.trials == len(names) and host.alive and not host.worn


def test_a_trial_that_fails_or_kills_its_host_is_reported_and_a_new_host_trains_on(host, tmp_path):
    nan = tiny_digits_config(epochs=5, optimizer={"name": "sgd", "learning_rate": 1e30})  # the loss becomes NaN
    bad = write_config(tmp_path / "nan.yaml", nan)
    messages = train(host, bad, tmp_path)
    assert messages[-1]["event"] == "failed" and "NaN" in messages[-1]["reason"]
    assert json.loads((Path(messages[-1]["run_dir"]) / "meta.json").read_text())["status"] == "failed"
    missing = train(host, tmp_path / "missing.yaml", tmp_path)  # fails before a run folder exists
    assert missing == [{"event": "failed", "run_dir": None, "reason": missing[0]["reason"], "error": "ConfigError"}]
    assert str(tmp_path / "missing.yaml") in missing[0]["reason"]
    assert host.alive  # failures of a trial are the trial's

    exits = write_config(tmp_path / "exit.yaml", {**tiny_digits_config(), "name": "exit_me"})
    messages = train(host, exits, tmp_path)
    assert messages[-1] == {"event": "died", "reason": "the trial host exited with code 3", "returncode": 3}
    assert not host.alive and host.worn

    host.start()  # the worker's answer: a fresh host
    config = write_config(tmp_path / "tiny.yaml", tiny_digits_config(epochs=30))
    events = host.train(config, [], runs_dir=tmp_path / "runs", log=tmp_path / "trial.log")
    for message in events:
        if message["event"] == "epoch":
            os.kill(host.process.pid, signal.SIGKILL)  # as the out-of-memory killer would
    assert message == {"event": "died", "reason": "the trial host was killed by SIGKILL (out of memory?)",
                       "returncode": -signal.SIGKILL}


def test_stop_prunes_the_trial_after_its_epoch_and_memory_wears_a_host(host, tmp_path):
    config = write_config(tmp_path / "tiny.yaml", tiny_digits_config(epochs=20))
    events = host.train(config, [], runs_dir=tmp_path / "runs", log=tmp_path / "trial.log")
    for message in events:
        if message["event"] == "epoch" and message["epoch"] == 1:
            host.stop_trial()
    assert message["event"] == "pruned" and message["reason"].startswith("pruned after epoch ")
    run_dir = Path(message["run_dir"])
    meta = json.loads((run_dir / "meta.json").read_text())
    assert (meta["status"], meta["reason"]) == ("pruned", message["reason"])
    assert 1 <= len((run_dir / "history.csv").read_text().splitlines()) - 1 < 20

    assert host.alive and not host.worn  # (worn waits for the host's cleanup and reads its memory)
    assert host.last_rss_mb > 100
    host.max_rss_mb = host.last_rss_mb - 1  # a limit the host has passed
    assert host.worn


def test_a_silent_host_ticks_and_a_hung_one_is_killed_and_reported(host, tmp_path):
    config = write_config(tmp_path / "tiny.yaml", tiny_digits_config(epochs=2))
    os.kill(host.process.pid, signal.SIGSTOP)  # a host that says nothing (as a hung trial would)
    events = host.train(config, [], runs_dir=tmp_path / "runs", log=tmp_path / "trial.log", tick_s=0.2)
    assert next(events) == next(events) == {"event": "tick"}
    ended = host.kill()  # the worker's verdict: hung
    assert ended.reason == "the trial host was killed by SIGKILL (out of memory?)" and not host.alive

"""Warm trial hosts: one process trains trial after trial with the numbers `nnlab train` gives alone, and every
way a trial can end (finished, failed, pruned, killing its host) comes back as a typed message."""

from __future__ import annotations

import csv
import json
import os
import re
import signal
from pathlib import Path

import pytest
import yaml
from conftest import nnlab, tiny_digits_config, write_config
from golden import CONFIGS, numbers, write_mnist
from test_golden_runs import differences, stored_numbers

from nnlab import runs
from nnlab.sweeps.host import TrialHost

# Loaded into every process through PYTHONPATH: a trial named `exit_me` or `faulty-001` ends its process as a
# crashing library would, `faulty-002` is killed as by the out-of-memory killer, and every message that
# `nnlab train` prints about its run is reworded (nothing in a sweep may depend on that text).
_FAULTS = """
import builtins
import os
import signal
import nnlab.experiment as experiment
_run = experiment._run
def _faulty_run(model, config, *args, **kwargs):
    if config.name in ("exit_me", "faulty-001"):
        os._exit(3)
    if config.name == "faulty-002":
        os.kill(os.getpid(), signal.SIGKILL)
    return _run(model, config, *args, **kwargs)
experiment._run = _faulty_run
_print = builtins.print
def _reworded(*args, **kwargs):
    if args and isinstance(args[0], str) and args[0].startswith("run "):
        args = ("Reworded: now training " + args[0][4:].replace(": training", " with"), *args[1:])
    _print(*args, **kwargs)
builtins.print = _reworded
"""


def fault_env(tmp_path: Path) -> dict[str, str]:
    faults = tmp_path / "faults"
    faults.mkdir(exist_ok=True)
    (faults / "sitecustomize.py").write_text(_FAULTS)
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(faults), os.environ.get("PYTHONPATH", "")])}


@pytest.fixture
def host(tmp_path):
    """A started host (one thread) that loads the fault injector; closed after the test."""
    handle = TrialHost(threads=1, env=fault_env(tmp_path))
    handle.start()
    yield handle
    handle.close()


def train(host: TrialHost, config: Path, tmp_path: Path, *overrides: str, **kwargs) -> list[dict]:
    return list(host.train(config, list(overrides), runs_dir=tmp_path / "runs", log=tmp_path / "trial.log", **kwargs))


def test_one_host_trains_the_golden_runs_in_another_order_with_the_stored_numbers(host, tmp_path, isolated):
    """What ran before a trial in its host does not move its numbers: the five golden configurations, trained
    in reverse order in one host (the MLP again at the end, twice: the second reuses the first's data), equal
    the stored numbers of runs made one process each."""
    write_mnist(isolated / "data" / "mnist")
    stored, rel, _ = stored_numbers()
    names = [*reversed(CONFIGS), "mlp", "mlp"]
    pid = host.process.pid
    for name in names:
        config = write_config(tmp_path / f"{name}.yaml", CONFIGS[name])
        messages = train(host, config, tmp_path)
        assert [m["event"] for m in messages if m["event"] != "epoch"] == ["started", "finished"], messages[-1]
        epochs = [m["epoch"] for m in messages if m["event"] == "epoch"]
        assert epochs == list(range(1, CONFIGS[name]["train"]["epochs"] + 1))
        run_dir = Path(messages[-1]["run_dir"])
        assert messages[0]["run_id"] == run_dir.name
        assert differences(stored[name], numbers(run_dir), rel=rel) == [], name
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
    over = train(host, config, tmp_path, "max_params=1000")  # a point over the budget: pruned, no run folder
    assert over == [{"event": "pruned", "run_dir": None, "parameters": 1210,
                     "reason": "max_params: the model has 1,210 parameters, more than max_params 1,000"}]
    assert len(list((tmp_path / "runs").iterdir())) == 1

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


# ---------------------------------------------------------------------------------------------
# Sweeps through their workers' hosts, the way a user types them.
def sweep_runs(runs_dir: Path) -> list[dict]:
    """Each trial's run meta, in trial order."""
    metas = [runs.read_json(p / runs.META) for p in runs.list_runs(runs_dir)]
    return sorted(metas, key=lambda m: m["sweep"]["trial"])


def test_a_sweep_survives_trials_that_kill_their_host_and_reworded_messages(tmp_path, isolated):
    """Trial 1 calls os._exit, trial 2 is SIGKILLed; both are failed with how their host ended, each next trial
    gets a fresh host, and `nnlab train`'s messages being reworded changes nothing."""
    base = write_config(tmp_path / "faulty.yaml", {**tiny_digits_config(epochs=2), "name": "faulty"})
    result = nnlab("sweep", str(base), "model.hidden=[4],[5],[6],[7],[8]", "--threads", "1",
                   env=fault_env(tmp_path))
    assert result.returncode == 1, result.stdout + result.stderr
    metas = sweep_runs(isolated / "runs")
    assert [m["status"] for m in metas] == ["completed", "failed", "failed", "completed", "completed"]
    assert metas[1]["reason"] == "the trial host exited with code 3"
    assert metas[2]["reason"] == "the trial host was killed by SIGKILL (out of memory?)"
    # Host A trains trial 0 and dies in trial 1; B dies in trial 2; C trains trials 3 and 4.
    pids = [m["sweep"]["host"]["pid"] for m in metas]
    assert pids[0] == pids[1] and pids[3] == pids[4] and len(set(pids)) == 3, pids
    assert [m["sweep"]["host"]["trial"] for m in metas] == [1, 2, 1, 1, 2]
    (sweep_dir,) = (isolated / "runs" / "sweeps").iterdir()
    with (sweep_dir / "trials.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert [r["status"] for r in rows] == [m["status"] for m in metas]
    assert rows[1]["reason"] == metas[1]["reason"] and rows[2]["reason"] == metas[2]["reason"]
    assert yaml.safe_load((sweep_dir / "sweep.yaml").read_text())["trial_hosts"] == {
        "isolate": False, "max_trials": 50, "max_rss_mb": 4096}
    log = (sweep_dir / "logs" / "trial-000-seed0-attempt1.log").read_text()
    assert "Reworded: now training" in log and "run " not in log.split("\n")[0]


def test_isolate_recorded_at_creation_gives_every_trial_a_fresh_process_on_resume(tmp_path, isolated):
    base = write_config(tmp_path / "tiny.yaml", tiny_digits_config(epochs=1))
    created = nnlab("sweep", str(base), "model.hidden=[4],[5],[6]", "--isolate", "--workers", "0")
    assert created.returncode == 0, created.stderr
    sweep_id = next(line.split(": ", 1)[1] for line in created.stdout.splitlines() if line.startswith("sweep id: "))
    resumed = nnlab("sweep", "--resume", sweep_id, "--threads", "1")
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    hosts = [m["sweep"]["host"] for m in sweep_runs(isolated / "runs")]
    assert len({h["pid"] for h in hosts}) == 3 and all(h["isolated"] and h["trial"] == 1 for h in hosts)


def test_a_host_past_its_memory_limit_is_replaced_between_trials(tmp_path, isolated):
    base = write_config(tmp_path / "tiny.yaml", tiny_digits_config(epochs=1))
    result = nnlab("sweep", str(base), "model.hidden=[4],[5]", "--host-memory", "64", "--threads", "1")
    assert result.returncode == 0, result.stdout + result.stderr
    metas = sweep_runs(isolated / "runs")
    assert [m["status"] for m in metas] == ["completed"] * 2
    assert metas[0]["sweep"]["host"]["pid"] != metas[1]["sweep"]["host"]["pid"]
    (sweep_dir,) = (isolated / "runs" / "sweeps").iterdir()
    (worker_log,) = (sweep_dir / "logs").glob("w0-*.log")
    assert re.search(r"trial host \d+ replaced: resident memory \d+ MiB > 64 MiB", worker_log.read_text())

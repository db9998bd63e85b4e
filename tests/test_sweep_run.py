"""One real sweep, shared by every test here: killed with SIGKILL mid-trial (parent and workers), resumed,
with one trial that fails (NaN loss). Trials are tiny digits MLPs; each trial is a fresh process."""

from __future__ import annotations

import csv
import os
import signal
import subprocess
from pathlib import Path

import pytest

from conftest import NNLAB, REPO, nnlab, tiny_digits_config, wait_for, write_config
from nnlab import runs
from nnlab.config import load_config
from nnlab.sweeps import aggregate


def children(pid: int) -> list[int]:
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            out.append(int(stat.parent.name))
    return out


def gone(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except OSError:
        return True


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    """Grid of two points (learning rate 0.01, then 1e30, which makes the loss NaN), one worker; killed in
    the middle of trial 0, then resumed."""
    root = tmp_path_factory.mktemp("sweep")
    env = {"NNLAB_RUNS_DIR": str(root / "runs"), "NNLAB_CACHE_DIR": str(root / "cache"),
           "NNLAB_DATA_DIR": str(root / "data"), "KERAS_HOME": str(root / "keras"), "TF_CPP_MIN_LOG_LEVEL": "2"}
    runs_dir = root / "runs"
    base = write_config(root / "tiny.yaml", tiny_digits_config(epochs=40))
    parent = subprocess.Popen([*NNLAB, "sweep", str(base), "train.optimizer.learning_rate=0.01,1e30"],
                              env={**os.environ, **env}, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              start_new_session=True)
    try:
        def trial_mid_epoch():
            for run_dir in runs.list_runs(runs_dir):
                if len(runs.read_history(run_dir)) >= 2:
                    return run_dir
            return None

        killed_run = wait_for(trial_mid_epoch, 240, "trial 0 to finish two epochs")
        trainer = runs.read_json(killed_run / runs.META)["pid"]
        workers = children(parent.pid)
        assert workers, "the sweep runs its worker in a separate process"
        for pid in [parent.pid, *workers]:
            os.kill(pid, signal.SIGKILL)
        parent.wait()
        orphan_died = wait_for(lambda: gone(trainer), 20, "the trial's training process to die with its worker")
    finally:
        if parent.poll() is None:
            os.killpg(parent.pid, signal.SIGKILL)
    (sweep_dir,) = aggregate.list_sweeps(runs_dir)
    resumed = nnlab("sweep", "--resume", sweep_dir.name, env=env, timeout=400)
    with (sweep_dir / aggregate.TRIALS).open() as f:
        rows = list(csv.DictReader(f))
    return {"env": env, "runs_dir": runs_dir, "sweep_dir": sweep_dir, "killed_run": killed_run,
            "orphan_died": orphan_died, "resumed": resumed, "rows": rows}


def test_killed_sweep_resumes_and_runs_every_planned_trial_exactly_once(sweep):
    rows = sweep["rows"]
    assert [r["trial"] for r in rows] == ["0", "1"]
    assert rows[0]["status"] == "completed" and rows[0]["attempt"] == "2"  # the killed trial ran again
    assert sweep["orphan_died"]
    killed = sweep["killed_run"]
    assert runs.effective_status(runs.read_json(killed / runs.META), killed) == "interrupted"
    assert rows[0]["run_id"] != killed.name
    # Every run folder but the killed one belongs to exactly one planned trial; trial 0 completed once.
    metas = {p.name: runs.read_json(p / runs.META) for p in runs.list_runs(sweep["runs_dir"]) if p != killed}
    trials = sorted(m["sweep"]["trial"] for m in metas.values())
    assert trials == [0, 1]
    assert sum(m["status"] == "completed" for m in metas.values()) == 1
    assert {rows[0]["run_id"], rows[1]["run_id"]} == set(metas)


def test_a_failed_trial_is_recorded_with_its_reason_and_the_sweep_exits_1(sweep):
    result, rows = sweep["resumed"], sweep["rows"]
    assert result.returncode == 1, result.stdout + result.stderr
    failed = rows[1]
    assert failed["status"] == "failed" and "NaN" in failed["reason"], failed
    assert failed["train.optimizer.learning_rate"] == "1e+30" and failed["val_loss"] == ""
    assert float(rows[0]["val_loss"]) > 0 and float(rows[0]["duration_s"]) > 0
    lines = result.stdout.splitlines()
    assert f"sweep id: {sweep['sweep_dir'].name}" in lines
    assert f"sweep folder: {sweep['sweep_dir']}" in lines
    assert lines[-1].startswith("best point: learning_rate=0.01")
    best = load_config(sweep["sweep_dir"] / aggregate.BEST)  # a full experiment file
    assert best.train.optimizer.learning_rate == 0.01 and best.train.epochs == 40


def test_trials_csv_follows_the_output_contract(sweep):
    header = (sweep["sweep_dir"] / aggregate.TRIALS).read_text().splitlines()[0].split(",")
    for column in ("trial", "status", "seed", "run_id", "train.optimizer.learning_rate", "val_loss", "duration_s",
                   "reason"):
        assert column in header
    meta = runs.read_json(sweep["runs_dir"] / sweep["rows"][0]["run_id"] / runs.META)
    assert meta["sweep"]["id"] == sweep["sweep_dir"].name and meta["sweep"]["threads"] >= 1


def test_report_and_runs_show_the_sweep(sweep):
    env, sweep_dir = sweep["env"], sweep["sweep_dir"]
    # A prefix only the sweep has: a stamp-only prefix also names the trials' runs, and a run wins
    # when exactly one matches (the sweep's runs can start in the next ten minutes).
    result = nnlab("report", sweep_dir.name[:-1], env=env)
    assert result.returncode == 0, result.stderr
    page = (sweep_dir / "report.html").read_text()
    run_id = sweep["rows"][0]["run_id"]
    assert f'href="../../{run_id}/report.html"' in page and "metric_vs_train_optimizer_learning_rate" in page
    assert (sweep["runs_dir"] / run_id / "report.html").is_file()
    assert (sweep_dir / "plots" / "curves.png").is_file()
    listing = nnlab("runs", env=env)  # the trials folded into the sweep's line; --sweep lists them
    assert sweep_dir.name in listing.stdout and run_id not in listing.stdout
    assert run_id in nnlab("runs", "--sweep", sweep_dir.name, env=env).stdout
    trial_report = nnlab("report", run_id, "--no-html", env=env)
    assert trial_report.returncode == 0 and run_id in trial_report.stdout


def test_a_jax_sweep_runs_its_trials_on_jax(tmp_path, runs_dir):
    """Each trial is a fresh JAX process with NNLAB_THREADS set (here every usable core: one worker); a point
    over the base's max_params (8 hidden units: 610 parameters) is pruned without a run folder."""
    base = write_config(tmp_path / "tiny.yaml", {**tiny_digits_config(epochs=1), "max_params": 400})
    result = nnlab("sweep", str(base), "model.hidden=[4],[8]", "--backend", "jax", "--workers", "1")
    assert result.returncode == 0, result.stdout + result.stderr
    sweep_dir = next((runs_dir / "sweeps").iterdir())
    with (sweep_dir / aggregate.TRIALS).open() as f:
        rows = list(csv.DictReader(f))
    assert [r["status"] for r in rows] == ["completed", "pruned"], rows
    assert (rows[1]["run_id"], rows[1]["parameters"]) == ("", "610")
    assert rows[1]["reason"] == "max_params: the model has 610 parameters, more than max_params 400"
    for row in rows[:1]:
        meta = runs.read_json(runs_dir / row["run_id"] / runs.META)
        assert meta["device"]["backend"] == "jax" and meta["sweep"]["threads"] == aggregate.default_threads(1)


def test_retry_failed_reruns_only_the_failed_trials(sweep):
    """Last here: it adds an attempt to the shared sweep. Trial 1 (the NaN one) runs again, trial 0 does not."""
    before = {p.name for p in runs.list_runs(sweep["runs_dir"])}
    result = nnlab("sweep", "--resume", sweep["sweep_dir"].name, "--retry-failed", env=sweep["env"], timeout=400)
    assert result.returncode == 1, result.stdout + result.stderr  # it fails again: NaN is NaN
    with (sweep["sweep_dir"] / aggregate.TRIALS).open() as f:
        rows = list(csv.DictReader(f))
    old = sweep["rows"]
    assert rows[0] == old[0]  # untouched: same run, same attempt
    assert rows[1]["status"] == "failed" and int(rows[1]["attempt"]) == int(old[1]["attempt"]) + 1
    new = {p.name for p in runs.list_runs(sweep["runs_dir"])} - before
    assert new == {rows[1]["run_id"]}

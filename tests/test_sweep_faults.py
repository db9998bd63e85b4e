"""Sweeps against the faults of real machines: workers that share a hostname but not a PID namespace, a
worker stopped (SIGSTOP) longer than the grace period, a worker killed while others finish its trials,
pruning with several workers, a Bayesian sweep with two workers. Trials are tiny digits MLPs."""

from __future__ import annotations

import csv
import os
import signal
import subprocess
from collections import Counter
from pathlib import Path

import pytest
import yaml

from conftest import NNLAB, REPO, nnlab, tiny_digits_config, wait_for, write_config
from nnlab import runs
from nnlab.sweeps import aggregate


def parent_of(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


def rows_of(sweep_dir: Path) -> list[dict]:
    with (sweep_dir / aggregate.TRIALS).open() as f:
        return list(csv.DictReader(f))


def run_metas(runs_dir: Path) -> dict[str, dict]:
    return {p.name: runs.read_json(p / runs.META) for p in runs.list_runs(runs_dir)}


def assert_each_trial_completed_once(runs_dir: Path, sweep_dir: Path, trials: int) -> None:
    """Every planned (point, seed) has exactly one completed run folder, and no run folder trained twice."""
    metas = run_metas(runs_dir)
    completed = Counter((m["sweep"]["point"], m["seed"]) for m in metas.values() if m["status"] == "completed")
    assert len(completed) == trials and set(completed.values()) == {1}, completed
    assert len(metas) == trials, {k: (m["status"], m.get("sweep")) for k, m in metas.items()}
    rows = rows_of(sweep_dir)
    assert [r["status"] for r in rows] == ["completed"] * trials, rows
    assert {r["run_id"] for r in rows} == set(metas)


def sweep_id_of(result: subprocess.CompletedProcess) -> str:
    return next(line.split(": ", 1)[1] for line in result.stdout.splitlines() if line.startswith("sweep id: "))


def test_workers_sharing_a_hostname_but_not_a_pid_namespace_run_each_trial_once(tmp_path, runs_dir):
    """Two `--resume` processes, each in its own PID namespace (as two containers with --network host):
    their pids mean nothing to each other, so only leases may decide who is alive."""
    base = write_config(tmp_path / "tiny.yaml", tiny_digits_config(epochs=3))
    created = nnlab("sweep", str(base), "model.hidden=[4],[5],[6],[7]", "--workers", "0")
    assert created.returncode == 0, created.stderr
    sweep_id = sweep_id_of(created)
    # Padding processes make the two namespaces' worker pids differ (2 and 5): each pid is dead, or
    # someone else, in the other namespace.
    pads = ["", "/bin/true; /bin/true; /bin/true; "]
    procs = [subprocess.Popen(["unshare", "--pid", "--fork", "--mount-proc", "--kill-child", "sh", "-c",
                               pad + 'exec "$@"', "sh", *NNLAB, "sweep", "--resume", sweep_id],
                              cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
             for pad in pads]
    try:
        outputs = [p.communicate(timeout=300)[0] for p in procs]
    finally:
        for p in procs:  # a namespace's processes all die with its first one
            if p.poll() is None:
                p.kill()
    assert [p.returncode for p in procs] == [0, 0], outputs
    (sweep_dir,) = aggregate.list_sweeps(runs_dir)
    assert_each_trial_completed_once(runs_dir, sweep_dir, 4)
    workers = {m["sweep"]["worker"] for m in run_metas(runs_dir).values()}
    assert len(workers) == 2, workers  # both namespaces trained


def training_run(runs_dir):
    """A run folder whose training process is at work (it owns the run) and has finished an epoch, or None."""
    for run_dir in runs.list_runs(runs_dir):
        if runs.read_history(run_dir) and runs.run_is_owned(run_dir):
            return run_dir
    return None


def was_adopted(run_dir) -> bool:
    """The run's meta.json carries the trial record of an attempt that adopted it (not the one that trained it)."""
    record = runs.read_json(run_dir / runs.META).get("sweep")
    return isinstance(record, dict) and record.get("adopted") is True


def test_a_worker_stopped_longer_than_the_grace_period_trains_nothing_twice(tmp_path, runs_dir):
    """SIGSTOP a worker while its training child runs (a suspended laptop, Ctrl-Z of the worker alone): the
    child finishes the run, the grace period passes; the other worker adopts the finished run instead of
    training it again, and the stopped worker, resumed, records nothing."""
    # Long enough that the stop lands while the child trains (12 epochs could end before it on a quiet machine,
    # and the worker recorded the run itself: no test of the fault).
    base = write_config(tmp_path / "tiny.yaml", tiny_digits_config(epochs=40, batch_size=8))
    env = {**os.environ, "NNLAB_SWEEP_GRACE_S": "2"}
    parent = subprocess.Popen([*NNLAB, "sweep", str(base), "model.hidden=[4],[5],[6]", "--workers", "2"], env=env,
                              cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        run_dir = wait_for(lambda: training_run(runs_dir), 120, "a trial's first epoch")
        worker = parent_of(runs.read_json(run_dir / runs.META)["pid"])
        os.kill(worker, signal.SIGSTOP)
        assert runs.read_json(run_dir / runs.META)["status"] == "running"  # stopped while its child trains
        try:
            wait_for(lambda: runs.read_json(run_dir / runs.META)["status"] == "completed", 120,
                     "the stopped worker's child to finish its run")
            # Past the grace period (heartbeat and history both old), the other worker, once free of its own
            # trial, re-enqueues the stopped one's and adopts the finished run: the worker stays stopped until then.
            wait_for(lambda: was_adopted(run_dir), 120, "the other worker to adopt the finished run")
        finally:
            os.kill(worker, signal.SIGCONT)
        output = parent.communicate(timeout=300)[0]
    finally:
        if parent.poll() is None:
            parent.kill()
    assert parent.returncode == 0, output
    (sweep_dir,) = aggregate.list_sweeps(runs_dir)
    assert_each_trial_completed_once(runs_dir, sweep_dir, 3)
    assert was_adopted(run_dir)  # and the stopped worker, resumed, wrote nothing over it
    assert "was re-enqueued by another process" in "".join(
        p.read_text() for p in (sweep_dir / aggregate.LOGS).glob("w*.log"))


def test_a_worker_killed_while_the_others_finish_its_trials_is_not_a_failed_sweep(tmp_path, runs_dir):
    base = write_config(tmp_path / "tiny.yaml", tiny_digits_config(epochs=12, batch_size=8))
    parent = subprocess.Popen([*NNLAB, "sweep", str(base), "model.hidden=[4],[5],[6]", "--workers", "2"], cwd=REPO,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        run_dir = wait_for(lambda: training_run(runs_dir), 120, "a trial's first epoch")
        os.kill(parent_of(runs.read_json(run_dir / runs.META)["pid"]), signal.SIGKILL)  # its child dies with it
        output = parent.communicate(timeout=300)[0]
    finally:
        if parent.poll() is None:
            parent.kill()
    assert parent.returncode == 0, output
    assert "note: 1 worker(s) died" in output and "error:" not in output
    (sweep_dir,) = aggregate.list_sweeps(runs_dir)
    assert aggregate.read_state(sweep_dir)["status"] == "completed"
    assert (sweep_dir / aggregate.PLOTS).is_dir()
    metas = run_metas(runs_dir)
    done = Counter(m["sweep"]["trial"] for m in metas.values() if m["status"] == "completed")
    assert sorted(done) == [0, 1, 2] and set(done.values()) == {1}
    assert runs.effective_status(metas[run_dir.name], run_dir) == "interrupted"  # the killed one's run


@pytest.mark.parametrize("rule", [{"type": "median", "startup_trials": 2, "min_epochs": 1},
                                  {"type": "hyperband", "min_iter": 1, "max_iter": 2, "eta": 3}],
                         ids=["median", "hyperband"])
def test_pruning_with_two_workers_stops_a_planted_bad_point(tmp_path, runs_dir, rule):
    """Three good learning rates, then one that learns nothing (the planted bad point), two workers."""
    write_config(tmp_path / "tiny.yaml", tiny_digits_config(epochs=8, batch_size=8))
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump({"base": "tiny.yaml", "metric": {"name": "val_loss"}, "early_terminate": rule,
                                    "parameters": {"train.optimizer.learning_rate": {
                                        "values": [0.01, 0.011, 0.012, 1.0e-9]}}}))
    result = nnlab("sweep", str(path), "--workers", "2")
    assert result.returncode == 0, result.stdout + result.stderr
    (sweep_dir,) = aggregate.list_sweeps(runs_dir)
    rows = rows_of(sweep_dir)
    bad = rows[-1]
    assert bad["status"] == "pruned" and bad["reason"].startswith("pruned after epoch"), rows
    meta = runs.read_json(runs_dir / bad["run_id"] / runs.META)
    assert meta["status"] == "pruned" and "resume" not in (meta.get("reason") or "")
    assert len(runs.read_history(runs_dir / bad["run_id"])) < 8
    listing = nnlab("runs", "--status", "pruned", "--trials")  # trials are folded under their sweep otherwise
    assert listing.returncode == 0 and bad["run_id"] in listing.stdout


def test_a_bayes_sweep_with_two_workers_runs_exactly_run_cap_points_times_repeats(tmp_path, runs_dir):
    write_config(tmp_path / "tiny.yaml", tiny_digits_config(epochs=1))
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump({"base": "tiny.yaml", "method": "bayes", "run_cap": 2, "repeats": 2,
                                    "parameters": {"train.optimizer.learning_rate": {
                                        "min": 1.0e-3, "max": 1.0e-1, "distribution": "log_uniform_values"}}}))
    result = nnlab("sweep", str(path), "--workers", "2")
    assert result.returncode == 0, result.stdout + result.stderr
    (sweep_dir,) = aggregate.list_sweeps(runs_dir)
    rows = rows_of(sweep_dir)
    assert len(rows) == 4 and {r["status"] for r in rows} == {"completed"}
    assert Counter(r["trial"] for r in rows) == {"0": 2, "1": 2}
    metas = run_metas(runs_dir)
    assert len(metas) == 4 and all(m["status"] == "completed" for m in metas.values())
    assert sorted((m["sweep"]["point"], m["seed"]) for m in metas.values()) == [
        (p, s) for p in range(2) for s in (0, 1)]
    assert len({r["train.optimizer.learning_rate"] for r in rows}) == 2  # one sampled value per point


def test_a_trial_that_hangs_is_stopped_and_recorded_failed_with_the_reason(tmp_path, runs_dir):
    """The training child stops making epochs (here: SIGSTOP, as a deadlock or a stuck read would look)."""
    base = write_config(tmp_path / "tiny.yaml", tiny_digits_config(epochs=200, batch_size=8))
    parent = subprocess.Popen([*NNLAB, "sweep", str(base), "model.hidden=[4],[5]"], cwd=REPO,
                              env={**os.environ, "NNLAB_SWEEP_HANG_S": "8"}, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True)
    try:
        run_dir = wait_for(lambda: training_run(runs_dir), 120, "a trial's first epoch")
        os.kill(runs.read_json(run_dir / runs.META)["pid"], signal.SIGSTOP)
        wait_for(lambda: runs.read_json(run_dir / runs.META)["status"] != "running", 60, "the hung trial to be stopped")
        parent.kill()  # the other trial would train 200 epochs; what matters is recorded now
        parent.wait()
    finally:
        if parent.poll() is None:
            parent.kill()
    meta = runs.read_json(run_dir / runs.META)
    assert meta["status"] == "failed" and meta["reason"].startswith("no epoch for "), meta
    assert "NNLAB_SWEEP_HANG_S=8" in meta["reason"] and meta["sweep"]["trial"] == 0


def test_ctrl_c_stops_a_two_worker_sweep_at_once_and_resume_continues_the_cut_off_runs(tmp_path, runs_dir):
    """Ctrl-C (SIGINT to the terminal's process group): exit 130 within 3 s, the resume command printed; the
    resume continues each cut-off run in its own folder from its checkpoint, so no run is left `interrupted`
    and no epoch appears twice in a history."""
    import time

    base = write_config(tmp_path / "tiny.yaml", tiny_digits_config(epochs=40, batch_size=8, checkpoint_every=0))
    parent = subprocess.Popen([*NNLAB, "sweep", str(base), "model.hidden=[4],[5]", "--workers", "2"], cwd=REPO,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        def both_training():
            found = [r for r in runs.list_runs(runs_dir) if len(runs.read_history(r)) >= 3]
            return found if len(found) == 2 else None

        wait_for(both_training, 180, "both trials' third epoch")
        sent = time.monotonic()
        os.killpg(parent.pid, signal.SIGINT)  # what the terminal sends to every process in the group on Ctrl-C
        out, _ = parent.communicate(timeout=60)
        took = time.monotonic() - sent
    finally:
        if parent.poll() is None:
            os.killpg(parent.pid, signal.SIGKILL)
    sweep_id = next((runs_dir / "sweeps").iterdir()).name
    assert parent.returncode == 130, out
    assert took < 3, f"{took:.1f}s from SIGINT to exit"
    assert f"nnlab sweep --resume {sweep_id}" in out
    cut = {p.name: len(runs.read_history(p)) for p in runs.list_runs(runs_dir)}
    assert [runs.read_json(runs_dir / r / runs.META)["status"] for r in cut] == ["interrupted"] * 2
    assert all(0 < n < 40 for n in cut.values()), cut

    resumed = nnlab("sweep", "--resume", sweep_id, env={"NNLAB_RUNS_DIR": str(runs_dir)})
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    metas = run_metas(runs_dir)
    assert set(metas) == set(cut)  # the same two folders, continued
    for run_id, meta in metas.items():
        assert meta["status"] == "completed" and meta["sweep"]["resumed"] is True and meta["sweep"]["attempt"] == 2
        epochs = [row["epoch"] for row in runs.read_history(runs_dir / run_id)]
        assert epochs == list(range(1, 41)), epochs
    assert [r["status"] for r in rows_of(next((runs_dir / "sweeps").iterdir()))] == ["completed"] * 2

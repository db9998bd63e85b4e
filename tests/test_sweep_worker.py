"""The worker's claim loop against a fake store, leases and fencing against a real journal study, and the
trials table's statuses. No training here, except one child stopped at once when its lease is taken."""

from __future__ import annotations

import os
import time

import optuna
import pytest

from conftest import tiny_digits_config, write_config
from nnlab import runs
from nnlab.sweeps import study as studies
from nnlab.sweeps import worker
from nnlab.sweeps.spec import SweepSpec, load_sweep
from nnlab.sweeps.study import Claim, LeaseLost


class FakeStudy:
    """The SweepStudy methods the claim loop uses, over a list of claims in memory."""

    def __init__(self, claims: list[Claim], spec: SweepSpec):
        self.waiting = list(claims)
        self.spec, self.base, self.sweep_name = spec, {}, "fake"
        self.ended: dict[int, tuple] = {}  # index -> (status, value, attrs)
        self.requeued: list[int] = []
        self.lost: set[int] = set()  # indices whose lease another process took

    def requeue_stale(self, **_):
        return 0

    def claim(self, after_point=None):
        return self.waiting.pop(0) if self.waiting else None

    def unfinished(self):
        return bool(self.waiting)

    def set_attrs(self, claim, **attrs):
        if claim.index in self.lost:
            raise LeaseLost(str(claim.index))
        claim.attrs.update(attrs)

    def heartbeat(self, claim):
        self.set_attrs(claim, heartbeat=time.time())

    def suggest(self, claim):
        return claim.params or {"x": claim.index}

    def finish(self, claim, status, value=None):
        if claim.index in self.lost:
            raise LeaseLost(str(claim.index))
        self.ended[claim.index] = (status, value, dict(claim.attrs))

    def requeue(self, claim, reason, **_):
        self.requeued.append(claim.index)
        return True

    def rows(self):
        return []


def claim(index: int, seeds: list[int], **attrs) -> Claim:
    return Claim(number=index, trial_id=index, attrs={"index": index, "point": index, "seeds": seeds, "attempt": 1,
                                                      "params": {"x": index}, **attrs})


@pytest.fixture
def loop(tmp_path, monkeypatch):
    """Run the claim loop over `claims`; `outcomes[(index, seed)]` is a status, or an exception to raise."""
    def run(claims, outcomes):
        trained = []

        def fake_run_one(ctx, c, params, seed, *, report, stream):
            trained.append((c.index, seed))
            outcome = outcomes.get((c.index, seed), "completed")
            if isinstance(outcome, BaseException):
                raise outcome
            return {"seed": seed, "status": outcome, "value": float(seed + 1) if outcome == "completed" else None,
                    "reason": None if outcome == "completed" else f"{outcome} here", "run_id": f"r{c.index}-{seed}"}

        monkeypatch.setattr(worker, "run_one", fake_run_one)
        store = FakeStudy(claims, SweepSpec.model_validate({"parameters": {"x": {"values": [1]}}}))
        (tmp_path / "sweep").mkdir(exist_ok=True)
        ctx = worker.WorkerContext(tmp_path / "sweep", tmp_path, store, threads=1, worker="w-test")
        code = worker.claim_loop(ctx, open(os.devnull, "w"))
        return code, store, trained
    return run


def test_the_loop_runs_every_seed_of_each_claim_and_records_the_mean(loop):
    code, store, trained = loop([claim(0, [0, 1]), claim(1, [0])], {})
    assert code == 0 and trained == [(0, 0), (0, 1), (1, 0)]
    assert store.ended[0][:2] == ("completed", 1.5) and store.ended[1][:2] == ("completed", 1.0)
    assert [r["seed"] for r in store.ended[0][2]["runs"]] == [0, 1]


def test_a_pruned_seed_ends_its_trial_and_a_failed_one_records_its_reason(loop):
    code, store, trained = loop([claim(0, [0, 1, 2]), claim(1, [0, 1])], {(0, 0): "pruned", (1, 1): "failed"})
    assert trained == [(0, 0), (1, 0), (1, 1)]  # the pruned point's later seeds never run
    assert store.ended[0][0] == "pruned"
    assert store.ended[1][0] == "failed" and store.ended[1][2]["reason"] == "failed here"


def test_a_lost_lease_records_nothing_and_the_loop_goes_on(loop):
    lost = LeaseLost("trial 0")
    code, store, trained = loop([claim(0, [0, 1]), claim(1, [0])], {(0, 0): lost})
    assert code == 0 and trained == [(0, 0), (1, 0)]
    assert 0 not in store.ended and store.ended[1][0] == "completed" and store.requeued == []


def test_a_retry_trains_only_the_seeds_its_earlier_attempt_did_not_complete(loop):
    earlier = [{"seed": 0, "status": "completed", "value": 3.0, "reason": None, "run_id": "old"}]
    code, store, trained = loop([claim(0, [0, 1], runs=earlier, attempt=2)], {})
    assert trained == [(0, 1)] and store.ended[0][:2] == ("completed", 2.5)  # (3.0 + 2.0) / 2


def test_ctrl_c_requeues_the_running_trial(loop, monkeypatch):
    monkeypatch.setattr(worker, "ignore_signals", lambda: None)  # the worker process's own signal handling
    code, store, trained = loop([claim(0, [0]), claim(1, [0])], {(0, 0): KeyboardInterrupt()})
    assert code == 130 and store.requeued == [0] and trained == [(0, 0)]


def test_the_repeats_of_a_pruned_point_that_never_ran_are_skipped_not_pruned():
    spec = SweepSpec.model_validate({"method": "bayes", "run_cap": 1, "repeats": 3,
                                     "parameters": {"x": {"min": 0.0, "max": 1.0}}})
    trial = optuna.trial.create_trial(state=optuna.trial.TrialState.PRUNED, user_attrs={
        "index": 0, "point": 0, "seeds": [0, 1, 2], "attempt": 1, "params": {"x": 0.5},
        "runs": [{"seed": 0, "status": "pruned", "reason": "pruned after epoch 2", "run_id": "r"}]})
    rows = studies.trial_rows([trial], spec)
    assert [r["status"] for r in rows] == ["pruned", "skipped", "skipped"]
    assert rows[1]["reason"] == "its point was pruned on an earlier seed"


# ---------------------------------------------------------------------------------------------
# Leases and fencing on a real journal study.
@pytest.fixture
def sweep_dir(tmp_path):
    base = write_config(tmp_path / "tiny.yaml", tiny_digits_config(epochs=1))
    return studies.create(load_sweep(base, ["model.hidden=[4],[8]"]), tmp_path / "runs", "journal", ["test"])


def test_a_superseded_attempt_can_write_nothing(sweep_dir):
    mine = studies.load("journal", sweep_dir)
    other = studies.load("journal", sweep_dir)  # another process's view
    claimed = mine.claim()
    mine.set_attrs(claimed, worker={"id": "w-me"}, heartbeat=time.time() - 1000)
    assert other.requeue_stale(grace_s=60) == 1  # no sign of life for 1000 s
    for write in (lambda: mine.heartbeat(claimed), lambda: mine.set_attrs(claimed, runs=[]),
                  lambda: mine.finish(claimed, "completed", 1.0), lambda: mine.report(claimed, 1.0, 1)):
        with pytest.raises(LeaseLost):
            write()
    retry = other.claim()
    assert (retry.index, retry.attempt) == (claimed.index, 2)
    other.finish(retry, "completed", 0.5)
    assert [r["status"] for r in other.rows()] == ["completed", "waiting"]


def test_liveness_is_the_lease_and_the_training_process_never_the_pid(sweep_dir, tmp_path):
    study = studies.load("journal", sweep_dir)
    claimed = study.claim()
    lease = studies.hold_lease(sweep_dir, "w-alive")
    run_dir = runs.create_run_dir(sweep_dir.parent.parent, "trial")
    # A pid that means nothing here (another PID namespace), an old heartbeat, but the child holds its run.
    study.set_attrs(claimed, worker={"id": "w-alive", "host": "same-host", "pid": 1}, heartbeat=time.time() - 1000,
                    current_run=run_dir.name)
    trial = study.trials((optuna.trial.TrialState.RUNNING,))[0]
    with runs.claimed(run_dir):
        assert study.gone(trial, grace_s=60) is None
    assert study.gone(trial, grace_s=60) == "no heartbeat for 1000s"
    study.set_attrs(claimed, heartbeat=time.time())
    trial = study.trials((optuna.trial.TrialState.RUNNING,))[0]
    assert study.gone(trial, grace_s=60) is None
    os.close(lease)  # the worker died: its lease file is free at once, whatever its heartbeat says
    assert study.gone(trial, grace_s=60) == "its worker is gone"


def test_a_training_process_is_alive_before_its_run_folder_is_known(sweep_dir):
    """A worker stopped right after starting its child: no run folder named yet, an old heartbeat, but the
    child holds the attempt's lock file beside its log."""
    import fcntl

    study = studies.load("journal", sweep_dir)
    claimed = study.claim()
    (sweep_dir / "logs").mkdir(exist_ok=True)
    study.set_attrs(claimed, worker={"id": "w-stopped"}, heartbeat=time.time() - 1000,
                    current_log="trial-000-seed0-attempt1.log")
    trial = study.trials((optuna.trial.TrialState.RUNNING,))[0]
    child = os.open(sweep_dir / "logs" / "trial-000-seed0-attempt1.lock", os.O_RDWR | os.O_CREAT)
    fcntl.flock(child, fcntl.LOCK_EX)
    assert study.gone(trial, grace_s=60) is None
    os.close(child)  # the child ended
    assert study.gone(trial, grace_s=60) == "no heartbeat for 1000s"


def test_a_worker_whose_lease_was_taken_stops_its_child_at_once(tmp_path, monkeypatch):
    monkeypatch.setattr(worker, "HEARTBEAT_S", 0.2)
    base = write_config(tmp_path / "long.yaml", tiny_digits_config(epochs=1000))
    sweep_dir = studies.create(load_sweep(base, ["model.hidden=[4],[8]"]), tmp_path / "runs", "journal", ["test"])
    store = studies.load("journal", sweep_dir)
    claimed = store.claim()
    store.set_attrs(claimed, worker={"id": "w-me"}, heartbeat=time.time())
    ctx = worker.WorkerContext(sweep_dir, sweep_dir.parent.parent, store, threads=1, worker="w-me")

    def requeue_when_the_run_trains():
        while not any((p / runs.HISTORY).is_file() for p in runs.list_runs(ctx.runs_dir)):
            time.sleep(0.1)
        other = studies.load("journal", sweep_dir)
        other.requeue(other.trials((optuna.trial.TrialState.RUNNING,))[0], "taken by a test")

    import threading

    thief = threading.Thread(target=requeue_when_the_run_trains, daemon=True)
    thief.start()
    with pytest.raises(LeaseLost):
        worker.run_one(ctx, claimed, {}, 0, report=False, stream=open(os.devnull, "w"))
    thief.join(timeout=60)
    assert ctx.host is not None and not ctx.host.alive  # its trial host was stopped, not left training
    (run_dir,) = runs.list_runs(ctx.runs_dir)
    meta = runs.read_json(run_dir / runs.META)
    # Nothing recorded for the stale attempt: the run names only its sweep (from NNLAB_SWEEP, as every trial's
    # does from its start), not the trial record a worker writes when it records a result.
    assert meta["status"] == "interrupted" and not isinstance(meta.get("sweep"), dict)
    assert len(runs.read_history(run_dir)) < 1000


def test_a_worker_claims_its_last_point_again_and_avoids_points_others_train(tmp_path):
    """Warm hosts keep a model's compiled programs: a worker takes another seed of the point it trained last,
    and a worker starting a new point takes one nobody trains, so two hosts never compile one model at once."""
    base = write_config(tmp_path / "tiny.yaml", tiny_digits_config(epochs=1))
    sweep_dir = studies.create(load_sweep(base, ["model.hidden=[4],[8],[16]"], repeats=2), tmp_path / "runs",
                               "journal", ["test"])
    mine, theirs = studies.load("journal", sweep_dir), studies.load("journal", sweep_dir)
    first = mine.claim()
    assert (first.index, first.attrs["point"]) == (0, 0)
    other = theirs.claim()  # point 0 is being trained: the next point instead
    assert other.attrs["point"] == 1
    again = mine.claim(after_point=0)
    assert again.attrs["point"] == 0 and again.index != first.index
    third = theirs.claim(after_point=1)
    assert third.attrs["point"] == 1
    assert mine.claim(after_point=0).attrs["point"] == 2  # point 0 done, point 1 taken: the free one


def test_a_drive_whose_workers_are_done_waits_for_a_trial_a_live_worker_elsewhere_trains(sweep_dir):
    """Two `--resume` processes (two containers; or --join on two machines): the one whose own workers run out
    of trials first waits for the other's running trial instead of calling it left over (it exited 1)."""
    from nnlab.sweeps import driver

    study = studies.load("journal", sweep_dir)
    claimed = study.claim()
    lease = studies.hold_lease(sweep_dir, "w-elsewhere")
    study.set_attrs(claimed, worker={"id": "w-elsewhere"}, heartbeat=time.time())
    assert driver.running_elsewhere(study)  # alive elsewhere: wait
    os.close(lease)  # that worker died
    assert not driver.running_elsewhere(study)  # its trial is re-enqueued: left for a resume
    assert study.rows()[0]["status"] == "waiting"

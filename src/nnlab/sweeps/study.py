"""The sweep's study: the one module that touches Optuna, only through its public storage API.

Exactly-once (SWEEPS.md): only the process that creates the study enqueues trials (every grid/random point
times every seed; for bayes one empty slot per point, sampled by TPE when claimed), then marks the study
ready. A worker claims a WAITING trial with the storage's compare-and-set move to RUNNING and never calls
`study.ask()`, which would sample new trials. Each attempt of a planned trial is its own Optuna trial:
re-enqueueing marks the old attempt failed (a state update exactly one process wins) and adds the next
attempt, so every later write of the old attempt is refused by the store (`LeaseLost`).
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna
from optuna.exceptions import UpdateFinishedTrialError
from optuna.trial import TrialState

from nnlab import runs
from nnlab.config import dump_yaml, read_yaml
from nnlab.errors import ConfigError, first_line
from nnlab.sweeps import aggregate
from nnlab.sweeps.spec import Sweep, SweepSpec

HEARTBEAT_S = 5.0
GRACE_S = float(os.environ.get("NNLAB_SWEEP_GRACE_S", "60"))  # a heartbeat older than this: the worker is gone
READY = "nnlab_ready"
STATUS = {TrialState.COMPLETE: "completed", TrialState.FAIL: "failed", TrialState.PRUNED: "pruned",
          TrialState.RUNNING: "running", TrialState.WAITING: "waiting"}
_FINAL = {"completed": TrialState.COMPLETE, "failed": TrialState.FAIL, "pruned": TrialState.PRUNED}

optuna.logging.set_verbosity(optuna.logging.WARNING)


class LeaseLost(Exception):
    """This attempt was re-enqueued by another process: the store refuses its writes."""


# ---------------------------------------------------------------------------------------------
# Storage.
def open_storage(url: str, sweep_dir: Path | None):
    """`journal` (a file in the sweep folder) or an SQLAlchemy URL such as postgresql://user@host/db."""
    if url == "journal":
        from optuna.storages import JournalStorage
        from optuna.storages.journal import JournalFileBackend

        return JournalStorage(JournalFileBackend(str(Path(sweep_dir) / aggregate.JOURNAL)))
    if url.startswith("postgresql"):
        try:
            import psycopg  # noqa: F401
        except ImportError:
            raise ConfigError("--storage postgresql://...: the driver is missing; pip install 'nnlab[postgres]'") from None
    try:
        return optuna.storages.RDBStorage(url, engine_kwargs={"pool_pre_ping": True})
    except Exception as exc:  # bad URL, server down, wrong password: one line
        raise ConfigError(f"--storage {aggregate.masked_url(url)}: cannot open the study storage: "
                          f"{aggregate.masked_url(first_line(exc))}") from None


def _pruner(spec: SweepSpec):
    rule = spec.early_terminate
    if rule is None:
        return optuna.pruners.NopPruner()
    if rule.type == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=rule.startup_trials, n_warmup_steps=rule.min_epochs)
    return optuna.pruners.HyperbandPruner(min_resource=rule.min_iter, reduction_factor=rule.eta)


# ---------------------------------------------------------------------------------------------
# A claimed trial, and the study as workers and the driver see it.
@dataclass
class Claim:
    """One attempt of one planned trial, moved to RUNNING by this process."""

    number: int  # the Optuna trial number of this attempt
    trial_id: int
    attrs: dict[str, Any] = field(default_factory=dict)

    @property
    def index(self) -> int:
        return self.attrs["index"]

    @property
    def attempt(self) -> int:
        return self.attrs.get("attempt", 1)

    @property
    def seeds(self) -> list[int]:
        return list(self.attrs.get("seeds", []))

    @property
    def params(self) -> dict[str, Any] | None:
        return self.attrs.get("params")


class SweepStudy:
    """The study of one sweep: claims, heartbeats, results and re-enqueueing, through the storage's public API."""

    def __init__(self, storage, name: str, spec: SweepSpec | None = None):
        self.storage = storage
        self.name = name
        self.study = optuna.load_study(study_name=name, storage=storage)
        attrs = self.study.user_attrs
        self.spec = spec or SweepSpec.model_validate(attrs["nnlab_spec"])
        self.base: dict[str, Any] = attrs.get("nnlab_base", {})
        self.sweep_name: str = attrs.get("nnlab_name", name)
        self.study.pruner = _pruner(self.spec)
        self._study_id = storage.get_study_id_from_name(name)
        self._handles: dict[int, Any] = {}

    # -- reading
    def trials(self, states: tuple[TrialState, ...] | None = None) -> list:
        return self.study.get_trials(deepcopy=False, states=states)

    def unfinished(self) -> bool:
        """True while some trial waits or runs."""
        return bool(self.trials((TrialState.RUNNING, TrialState.WAITING)))

    def rows(self) -> list[dict[str, Any]]:
        return trial_rows(self.trials(), self.spec)

    def _id(self, number: int) -> int:
        return self.storage.get_trial_id_from_study_id_trial_number(self._study_id, number)

    # -- claiming
    def claim(self) -> Claim | None:
        """Move one WAITING trial to RUNNING with the storage's compare-and-set; retries first. None if none left."""
        waiting = self.trials((TrialState.WAITING,))
        for trial in sorted(waiting, key=lambda t: ("retry_of" not in t.user_attrs, t.number)):
            trial_id = self._id(trial.number)
            try:
                if self.storage.set_trial_state_values(trial_id, TrialState.RUNNING):
                    return Claim(trial.number, trial_id, dict(self.storage.get_trial(trial_id).user_attrs))
            except UpdateFinishedTrialError:
                continue
        return None

    def set_attrs(self, claim: Claim, **attrs: Any) -> None:
        """Record user attributes of a claimed attempt; LeaseLost when it was re-enqueued meanwhile."""
        try:
            for key, value in attrs.items():
                self.storage.set_trial_user_attr(claim.trial_id, key, value)
        except UpdateFinishedTrialError:
            raise LeaseLost(f"trial {claim.index} attempt {claim.attempt}") from None
        claim.attrs.update(attrs)

    def heartbeat(self, claim: Claim) -> None:
        self.set_attrs(claim, heartbeat=time.time())

    def _handle(self, claim: Claim):
        if claim.trial_id not in self._handles:
            self._handles[claim.trial_id] = optuna.trial.Trial(self.study, claim.trial_id)
        return self._handles[claim.trial_id]

    def suggest(self, claim: Claim) -> dict[str, Any]:
        """The claim's point: stored with it (grid, random, a retry), else sampled by TPE now (bayes)."""
        if claim.params is not None:
            return claim.params
        self.study.sampler = optuna.samplers.TPESampler(seed=self.spec.seed + claim.number, constant_liar=True)
        handle = self._handle(claim)
        params = {}
        for path, p in self.spec.parameters.items():
            if p.kind == "constant":
                continue
            if p.kind == "categorical":  # categories are stored as JSON text (Optuna takes scalars)
                params[path] = json.loads(handle.suggest_categorical(path, [json.dumps(v) for v in p.values]))
            elif p.kind == "int_uniform":
                params[path] = handle.suggest_int(path, int(p.min), int(p.max))
            elif p.kind == "q_uniform":
                params[path] = handle.suggest_float(path, p.min, p.max, step=p.q)
            else:
                params[path] = handle.suggest_float(path, p.min, p.max, log=p.kind == "log_uniform_values")
        self.set_attrs(claim, params=params)
        return params

    def report(self, claim: Claim, value: float, epoch: int) -> bool:
        """Report one epoch's metric to the pruner; True when it says to stop the trial."""
        handle = self._handle(claim)
        try:
            handle.report(value, epoch)
        except UpdateFinishedTrialError:
            raise LeaseLost(f"trial {claim.index} attempt {claim.attempt}") from None
        return handle.should_prune()

    def finish(self, claim: Claim, status: str, value: float | None = None) -> None:
        """Record the attempt's end (completed with its value, failed or pruned); LeaseLost if superseded."""
        try:
            self.study.tell(claim.number, value if status == "completed" else None, state=_FINAL[status])
        except (UpdateFinishedTrialError, ValueError, RuntimeError):
            if self.storage.get_trial(claim.trial_id).state.is_finished():
                raise LeaseLost(f"trial {claim.index} attempt {claim.attempt}") from None
            raise

    # -- re-enqueueing: stale, interrupted and (on request) failed trials
    def requeue(self, trial, reason: str, *, already_failed: bool = False) -> bool:
        """Mark `trial` (a FrozenTrial or Claim) failed with `reason` and enqueue its next attempt; False if
        another process won."""
        number = trial.number
        trial_id = self._id(number)
        frozen = self.storage.get_trial(trial_id)
        if not already_failed:
            try:
                self.storage.set_trial_user_attr(trial_id, "reason", reason)
                self.storage.set_trial_state_values(trial_id, TrialState.FAIL)
            except UpdateFinishedTrialError:
                return False
        keep = {k: v for k, v in frozen.user_attrs.items() if k in ("index", "point", "seeds", "params")}
        keep.update(attempt=frozen.user_attrs.get("attempt", 1) + 1, retry_of=number)
        self.study.add_trial(optuna.trial.create_trial(state=TrialState.WAITING, params=frozen.params,
                                                       distributions=frozen.distributions, user_attrs=keep))
        return True

    def requeue_stale(self, *, grace_s: float = GRACE_S) -> int:
        """Re-enqueue RUNNING trials whose worker is gone; return how many this process re-enqueued."""
        count = 0
        now = time.time()
        for trial in self.trials((TrialState.RUNNING,)):
            worker = trial.user_attrs.get("worker") or {}
            beat = trial.user_attrs.get("heartbeat") or (trial.datetime_start.timestamp() if trial.datetime_start else now)
            dead_here = worker.get("host") == aggregate.host() and not process_alive(worker.get("pid"))
            if dead_here or now - beat > grace_s:
                why = "its worker died" if dead_here else f"no heartbeat for {now - beat:.0f}s"
                count += self.requeue(trial, f"rerun: {why}")
        return count

    def requeue_failed(self) -> int:
        """--retry-failed: enqueue another attempt of every trial whose latest attempt failed."""
        failed = [t for t in latest_attempts(self.trials()) if t.state == TrialState.FAIL]
        return sum(self.requeue(t, "", already_failed=True) for t in failed)


def process_alive(pid: int | None) -> bool:
    """True while `pid` runs; a zombie (killed, not yet reaped by its new parent) counts as dead."""
    if not pid:
        return False
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        return state not in ("Z", "X")
    except (OSError, IndexError):
        return runs._alive(pid) if not Path("/proc").is_dir() else False


# ---------------------------------------------------------------------------------------------
# Creating, joining and loading a sweep's study.
def load(storage_url: str, sweep_dir: Path, sweep_id: str | None = None) -> SweepStudy:
    """The study of the sweep in `sweep_dir` (ConfigError when it is missing or its creation was cut short)."""
    storage = open_storage(storage_url, sweep_dir)
    sweep_id = sweep_id or sweep_dir.name
    try:
        user_attrs = optuna.load_study(study_name=sweep_id, storage=storage).user_attrs
    except KeyError:
        raise ConfigError(f"no sweep {sweep_id!r} in this storage") from None
    if not user_attrs.get(READY):
        raise ConfigError(f"sweep {sweep_id}: its creation was cut short before every trial was enqueued; "
                          "start the sweep again")
    return SweepStudy(storage, sweep_id)


def create(sweep: Sweep, runs_dir: Path, storage_url: str, command: list[str]) -> Path:
    """Make the sweep folder and the study, enqueue every trial, mark the study ready; return the folder."""
    sweep_dir = runs.create_run_dir(aggregate.sweeps_dir(runs_dir), sweep.name)
    try:
        storage = open_storage(storage_url, sweep_dir)
        study = optuna.create_study(study_name=sweep_dir.name, storage=storage, direction=sweep.spec.metric.goal)
    except BaseException:
        import shutil

        shutil.rmtree(sweep_dir, ignore_errors=True)
        raise
    runs.write_text(sweep_dir / aggregate.SWEEP, dump_yaml({**sweep.to_dict(), "source": sweep.source,
                                                             "storage": aggregate.masked_url(storage_url),
                                                             "created": runs._iso(time.time()), "command": command}))
    runs.write_text(sweep_dir / aggregate.BASE, dump_yaml(sweep.base))
    study.set_user_attr("nnlab_spec", sweep.spec.model_dump(mode="json", exclude_unset=True))
    study.set_user_attr("nnlab_name", sweep.name)
    study.set_user_attr("nnlab_base", sweep.base)
    study.set_user_attr("nnlab_source", sweep.source)
    if sweep.spec.method == "bayes":
        slots = [{"index": i, "point": i, "seeds": sweep.seeds} for i in range(sweep.spec.run_cap)]
    else:
        slots = [{"index": t.index, "point": t.point, "seeds": [t.seed], "params": t.params} for t in sweep.trials()]
    study.add_trials([optuna.trial.create_trial(state=TrialState.WAITING, user_attrs={**slot, "attempt": 1})
                      for slot in slots])
    study.set_user_attr(READY, True)
    return sweep_dir


def attach(sweep_id: str, runs_dir: Path, storage_url: str, *, wait_s: float = 600) -> Path:
    """--join: the local sweep folder of a study that lives in a shared storage (made here when missing)."""
    storage = open_storage(storage_url, None)
    deadline = time.time() + wait_s
    while True:
        try:
            study = optuna.load_study(study_name=sweep_id, storage=storage)
        except KeyError:
            raise ConfigError(f"--join {sweep_id}: no such sweep in {aggregate.masked_url(storage_url)}") from None
        if study.user_attrs.get(READY):
            break
        if time.time() > deadline:
            raise ConfigError(f"--join {sweep_id}: the sweep was never marked ready (its creator died?)")
        time.sleep(1)
    sweep_dir = aggregate.sweeps_dir(runs_dir) / sweep_id
    if not (sweep_dir / aggregate.SWEEP).is_file():
        sweep_dir.mkdir(parents=True, exist_ok=True)
        spec = study.user_attrs["nnlab_spec"]
        runs.write_text(sweep_dir / aggregate.SWEEP, dump_yaml({**spec, "name": study.user_attrs["nnlab_name"],
                                                                 "source": study.user_attrs["nnlab_source"],
                                                                 "storage": aggregate.masked_url(storage_url),
                                                                 "joined": True}))
        runs.write_text(sweep_dir / aggregate.BASE, dump_yaml(study.user_attrs["nnlab_base"]))
    return sweep_dir


def read_sweep_file(sweep_dir: Path) -> dict[str, Any]:
    path = sweep_dir / aggregate.SWEEP
    if not path.is_file():
        raise ConfigError(f"{sweep_dir}: not a sweep folder (no {aggregate.SWEEP})")
    return read_yaml(path) or {}


# ---------------------------------------------------------------------------------------------
# Tables: a trial that was re-enqueued is superseded by its retry; rows show the latest attempt.
def latest_attempts(trials) -> list:
    latest: dict[int, Any] = {}
    for trial in trials:
        index = trial.user_attrs.get("index")
        if index is not None and (index not in latest or trial.number > latest[index].number):
            latest[index] = trial
    return [latest[i] for i in sorted(latest)]


def trial_rows(trials, spec: SweepSpec) -> list[dict[str, Any]]:
    """One row per planned run (grid/random: one per trial; bayes: one per repeat of each point)."""
    metric = spec.metric.name
    rows = []
    for trial in latest_attempts(trials):
        attrs = trial.user_attrs
        params = attrs.get("params") or _decode_params(trial.params)
        done = {r["seed"]: r for r in attrs.get("runs", [])}
        for seed in attrs.get("seeds", []):
            run = done.get(seed, {})
            status = run.get("status") or STATUS.get(trial.state, "waiting")
            if trial.state == TrialState.RUNNING and not run:
                status = "running" if seed == attrs.get("current_seed") else "waiting"
            if trial.state.is_finished() and not run:
                status = STATUS[trial.state]
            reason = run.get("reason") or (attrs.get("reason") if status == "failed" else None)
            rows.append({"trial": attrs["index"], "status": status, "seed": seed, "run_id": run.get("run_id"),
                         **params, metric: run.get("value"), "duration_s": run.get("duration_s"), "reason": reason,
                         "point": attrs.get("point"), "attempt": attrs.get("attempt", 1),
                         "parameters": run.get("parameters"), "threads": attrs.get("threads"),
                         "worker": (attrs.get("worker") or {}).get("name")})
    return rows


def _decode_params(params: dict[str, Any]) -> dict[str, Any]:
    return {k: json.loads(v) if isinstance(v, str) and v[:1] in "[{\"" else v for k, v in params.items()}


def write_tables(sweep_dir: Path, study: SweepStudy) -> list[dict[str, Any]]:
    """trials.csv, summary.csv and best.yaml from the study (any process may call it: atomic writes)."""
    spec, name = study.spec, study.sweep_name
    swept = [p for p, s in spec.parameters.items() if s.kind != "constant"]
    rows = study.rows()
    aggregate.write_trials(sweep_dir, rows, swept, spec.metric.name)
    points = aggregate.summarize(rows, swept, spec.metric.name)
    aggregate.write_summary(sweep_dir, points, swept, spec.metric.name)
    best = aggregate.best_point(points, spec.metric.goal)
    if best is not None:
        sweep = Sweep(spec=spec, name=name, source=str(sweep_dir / aggregate.SWEEP), base=study.base)
        config = sweep.trial_config(best.params, None, f"{name}-best")
        aggregate.write_best(sweep_dir, config, f"best point of sweep {sweep_dir.name}: {spec.metric.name} "
                             f"{best.mean:.4f} +- {best.std:.4f} over {best.n} run(s); train it: nnlab train best.yaml")
    return rows


__all__ = ["Claim", "LeaseLost", "SweepStudy", "attach", "create", "latest_attempts", "load", "open_storage",
           "read_sweep_file", "trial_rows", "write_tables"]

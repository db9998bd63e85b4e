"""The sweep's study: the one module that touches Optuna, only through its public storage API.

Exactly-once (SWEEPS.md): only the process that creates the study enqueues trials (every grid/random point
times every seed; for bayes one empty slot per point, sampled by TPE when claimed), then marks the study
ready. A worker claims a WAITING trial with the storage's compare-and-set move to RUNNING and never calls
`study.ask()`, which would sample new trials. Each attempt of a planned trial is its own Optuna trial:
re-enqueueing marks the old attempt failed (a state update exactly one process wins) and adds the next
attempt, so every later write of the old attempt is refused by the store (`LeaseLost`).
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna
from optuna.exceptions import UpdateFinishedTrialError
from optuna.trial import TrialState

from nnlab import runs
from nnlab.config import read_yaml
from nnlab.errors import ConfigError, NnlabError, first_line
from nnlab.sweeps import aggregate
from nnlab.sweeps.spec import Sweep, SweepSpec

GRACE_S = float(os.environ.get("NNLAB_SWEEP_GRACE_S", "60"))  # no sign of life for this long: the worker is gone
HEARTBEAT_S = min(5.0, GRACE_S / 4)  # several beats per grace period, so one late beat is not a death
STORAGE_WAIT_S = float(os.environ.get("NNLAB_SWEEP_STORAGE_WAIT_S", "300"))  # how long a database may not answer
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

        path = Path(sweep_dir) / aggregate.JOURNAL
        copy = repair_journal(path)
        if copy is not None:
            print(f"note: {path}: its last record was cut short (power loss, full disk?) and was dropped; "
                  f"what was cut is kept in {copy.name}", file=sys.stderr, flush=True)
        return JournalStorage(JournalFileBackend(str(path)))
    if url.startswith("postgresql"):
        try:
            import psycopg  # noqa: F401
        except ImportError:
            raise ConfigError("--storage postgresql://...: the driver is missing; pip install 'nnlab[postgres]'") from None
    try:
        storage = optuna.storages.RDBStorage(_quoted_password(url), engine_kwargs={"pool_pre_ping": True})
    except Exception as exc:  # bad URL, server down, wrong password: one line
        raise ConfigError(f"--storage {aggregate.masked_url(url)}: cannot open the study storage: "
                          f"{aggregate.masked_url(first_line(exc))}") from None
    return PatientStorage(storage, aggregate.masked_url(url))


class StorageUnavailableError(NnlabError):
    """The study's database stayed unreachable for longer than NNLAB_SWEEP_STORAGE_WAIT_S: the sweep stops,
    interrupted and resumable. Exit code 130, as for Ctrl-C."""

    exit_code = 130


class PatientStorage:
    """A database storage whose calls wait out a server that blinks (a restart, a failover, a network cut):
    each call is retried with growing pauses (0.5 s doubling to 10 s) for up to `wait_s` seconds
    (NNLAB_SWEEP_STORAGE_WAIT_S, default 300), while the trials' training processes go on; then
    StorageUnavailableError. Only connection errors are retried, never an answer such as "trial finished"."""

    def __init__(self, inner, shown_url: str, wait_s: float | None = None):
        self._inner = inner
        self._shown_url = shown_url
        self.wait_s = STORAGE_WAIT_S if wait_s is None else wait_s

    def __getattr__(self, name: str):
        attr = getattr(self._inner, name)
        if not callable(attr) or name.startswith("_"):
            return attr

        def patient(*args, **kwargs):
            deadline, pause = None, 0.5
            while True:
                try:
                    return attr(*args, **kwargs)
                except _CONNECTION_ERRORS as exc:
                    now = time.time()
                    if deadline is None:
                        deadline = now + self.wait_s
                        print(f"note: the study storage {self._shown_url} does not answer "
                              f"({aggregate.masked_url(first_line(exc, 120))}); retrying for up to {self.wait_s:.0f}s",
                              file=sys.stderr, flush=True)
                    if now >= deadline:
                        raise StorageUnavailableError(
                            f"the study storage {self._shown_url} did not answer for {self.wait_s:.0f}s "
                            "(NNLAB_SWEEP_STORAGE_WAIT_S); the sweep stopped, interrupted: once the database is "
                            "back, nnlab sweep --resume finishes it") from None
                    time.sleep(min(pause, max(0.0, deadline - now)))
                    pause = min(2 * pause, 10.0)
        return patient


def _connection_errors() -> tuple[type[BaseException], ...]:
    from optuna.exceptions import StorageInternalError

    errors: list[type[BaseException]] = [StorageInternalError]
    try:
        import sqlalchemy.exc

        errors += [sqlalchemy.exc.OperationalError, sqlalchemy.exc.InterfaceError]
    except ImportError:
        pass
    return tuple(errors)


_CONNECTION_ERRORS = _connection_errors()


def _quoted_password(url: str) -> str:
    """The URL with its password percent-encoded: `user:p@ss@host` means the password `p@ss` (everything up
    to the last @ before the query), where SQLAlchemy would read the password `p` and the host `ss@host`."""
    from urllib.parse import quote, unquote

    head, mark, query = url.partition("?")
    match = re.match(r"^([\w+]+://[^:/@]*):(.*)@([^@]*)$", head)
    if match is None:
        return url
    return f"{match[1]}:{quote(unquote(match[2]), safe='')}@{match[3]}{mark}{query}"


def repair_journal(path: Path) -> Path | None:
    """Drop an incomplete last record of a journal (a write torn by power loss or a full disk), as a
    write-ahead log does on recovery, keeping what was cut in a copy beside it; returns the copy's path.
    A damaged record anywhere else is a ConfigError naming the file and the line: that is not a torn write."""
    from optuna.storages.journal import JournalFileSymlinkLock

    if not path.is_file() or path.stat().st_size == 0:
        return None
    lock = JournalFileSymlinkLock(str(path))  # the lock Optuna's appends take: no append is half-written now
    lock.acquire()
    try:
        data = path.read_bytes()
        lines = data.split(b"\n")
        tail = lines.pop()  # the bytes after the last newline: empty unless the last write was torn
        bad = [i for i, line in enumerate(lines) if not _is_record(line)]
        keep = len(lines)
        if not tail and bad and bad[-1] == len(lines) - 1:  # a torn record that still got its newline
            keep, bad = bad[-1], bad[:-1]
        if bad:
            raise ConfigError(f"{path}: line {bad[0] + 1} of {len(lines)} is not a journal record, so the study is "
                              "damaged in the middle (not a torn last write); restore the file from a backup, or "
                              "move it aside and start the sweep again")
        if keep == len(lines) and not tail:
            return None
        offset = sum(len(line) + 1 for line in lines[:keep])
        copy = path.with_name(f"{path.name}.torn-{time.strftime('%Y%m%d-%H%M%S')}")
        copy.write_bytes(data[offset:])
        os.truncate(path, offset)
        return copy
    finally:
        lock.release()


def _is_record(line: bytes) -> bool:
    try:
        return isinstance(json.loads(line), dict)
    except ValueError:
        return False


def _pruner(spec: SweepSpec):
    rule = spec.early_terminate
    if rule is None:
        return optuna.pruners.NopPruner()
    if rule.type == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=rule.startup_trials, n_warmup_steps=rule.min_epochs)
    return optuna.pruners.HyperbandPruner(min_resource=rule.min_iter, max_resource=rule.max_iter or "auto",
                                          reduction_factor=rule.eta)


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

    def __init__(self, storage, name: str, spec: SweepSpec | None = None, sweep_dir: Path | None = None):
        self.storage = storage
        self.name = name
        self.sweep_dir = sweep_dir  # this machine's sweep folder: worker leases and trial run folders are read there
        self.study = optuna.load_study(study_name=name, storage=storage)
        attrs = self.study.user_attrs
        self.spec = spec or SweepSpec.model_validate(attrs["nnlab_spec"])
        self.base: dict[str, Any] = attrs.get("nnlab_base", {})
        self.sweep_name: str = attrs.get("nnlab_name", name)
        self.study.pruner = _pruner(self.spec)
        self._study_id = storage.get_study_id_from_name(name)
        self._handles: dict[int, Any] = {}

    # -- the sweep folder's files against the study
    def check_folder(self, sweep_dir: Path) -> None:
        """The study is the source of truth: ConfigError (one line) when the folder's sweep.yaml or base.yaml
        say otherwise (edited between a kill and --resume), so that no trial trains a mix of both."""
        info = read_sweep_file(sweep_dir)
        differ = []
        try:
            fields = {k: v for k, v in info.items() if k in SweepSpec.model_fields and k != "name"}  # name: below
            spec = SweepSpec.model_validate(fields)
            mine, theirs = self.spec.model_dump(mode="json"), spec.model_dump(mode="json")
            differ += [k for k in mine if k not in ("base", "name") and mine[k] != theirs[k]]
        except ValueError:
            differ.append("its settings")
        if info.get("name") != self.sweep_name:
            differ.append("name")
        if differ:
            raise ConfigError(f"{sweep_dir / aggregate.SWEEP}: {', '.join(differ)} differ from what the study recorded "
                              "when the sweep was created; a sweep cannot change on resume: undo the edit, or start "
                              "a new sweep")
        base_path = sweep_dir / aggregate.BASE
        base = read_yaml(base_path) if base_path.is_file() else None
        if base != self.base:
            keys = _differing_keys(self.base, base or {})
            raise ConfigError(f"{base_path}: {', '.join(keys[:3]) or 'its contents'} differ from what the study "
                              "recorded when the sweep was created; a sweep cannot change on resume: undo the edit, "
                              "or start a new sweep")

    # -- reading
    def trials(self, states: tuple[TrialState, ...] | None = None) -> list:
        return self.study.get_trials(deepcopy=False, states=states)

    def unfinished(self) -> bool:
        """True while some trial waits or runs."""
        return bool(self.trials((TrialState.RUNNING, TrialState.WAITING)))

    def running(self) -> bool:
        """True while some trial runs (in this process's workers or anybody's)."""
        return bool(self.trials((TrialState.RUNNING,)))

    def rows(self) -> list[dict[str, Any]]:
        return trial_rows(self.trials(), self.spec)

    def _id(self, number: int) -> int:
        return self.storage.get_trial_id_from_study_id_trial_number(self._study_id, number)

    # -- claiming
    def claim(self, after_point: int | None = None) -> Claim | None:
        """Move one WAITING trial to RUNNING with the storage's compare-and-set; None if none is left.

        Retries first; then another seed of `after_point` (the point the worker trained last: its warm host has
        that model's programs compiled); then a point no other worker is training (so two hosts do not compile
        the same model at once); then the lowest trial number. Which worker trains a trial never changes its
        numbers."""
        waiting = self.trials((TrialState.WAITING,))
        busy = {t.user_attrs.get("point") for t in self.trials((TrialState.RUNNING,))} - {after_point}

        def order(t) -> tuple:
            point = t.user_attrs.get("point")
            return ("retry_of" not in t.user_attrs, point != after_point or after_point is None, point in busy,
                    t.number)

        for trial in sorted(waiting, key=order):
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
        another process won. The next attempt keeps the runs this one completed (recorded, or found finished in
        its run folder: a worker stopped while its host completed the run), so none trains twice, and resumes the
        run a Ctrl-C cut off (`_take_over`)."""
        number = trial.number
        trial_id = self._id(number)
        if not already_failed:
            try:
                self.storage.set_trial_user_attr(trial_id, "reason", reason)
                self.storage.set_trial_state_values(trial_id, TrialState.FAIL)
            except UpdateFinishedTrialError:
                return False
        frozen = self.storage.get_trial(trial_id)
        attrs = frozen.user_attrs
        keep = {k: v for k, v in attrs.items() if k in ("index", "point", "seeds", "params")}
        done = [r for r in attrs.get("runs", []) if r.get("status") == "completed"]
        adopted, cut = self._take_over(attrs, {r["seed"] for r in done}) if not already_failed else (None, None)
        done += [adopted] if adopted else []
        keep.update(attempt=attrs.get("attempt", 1) + 1, retry_of=number, **({"runs": done} if done else {}),
                    **({"resume": cut} if cut else {}))
        self.study.add_trial(optuna.trial.create_trial(state=TrialState.WAITING, params=frozen.params,
                                                       distributions=frozen.distributions, user_attrs=keep))
        return True

    def _take_over(self, attrs: dict[str, Any], done: set[int]
                   ) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
        """What the next attempt takes over from the run the superseded attempt was training, when its folder is
        here and nobody trains it any more: (the run's record, None) when it completed (adopted, not trained
        again); (None, {seed, run_id}) when it was interrupted (Ctrl-C, SIGTERM: the next attempt resumes it in
        its own folder, from its checkpoint or from the start, rather than leaving it `interrupted`)."""
        run_dir = self._run_dir(attrs)
        seed = attrs.get("current_seed")
        if run_dir is None or seed in done or not (run_dir / runs.META).is_file():
            return None, None
        try:
            with runs.claimed(run_dir):  # nobody trains it any more
                meta = runs.read_json(run_dir / runs.META)
                if meta.get("status") == "interrupted":
                    return None, {"seed": seed, "run_id": run_dir.name}
                if meta.get("status") != "completed":
                    return None, None
                value, reason = aggregate.read_metric(run_dir, self.spec.metric.name)
                if reason is not None:
                    return None, None
                runs.update_meta(run_dir, sweep={"id": self.name, "trial": attrs.get("index"),
                                                 "point": attrs.get("point"), "attempt": attrs.get("attempt", 1),
                                                 "threads": attrs.get("threads"),
                                                 "worker": (attrs.get("worker") or {}).get("name"), "adopted": True})
        except (NnlabError, OSError, ValueError):
            return None, None
        return {"seed": seed, "run_id": run_dir.name, "status": "completed", "value": value, "reason": None,
                "parameters": (meta.get("parameters") or {}).get("total"), "duration_s": meta.get("duration_s"),
                "train_s": meta.get("duration_s")}, None

    def _run_dir(self, attrs: dict[str, Any]) -> Path | None:
        if self.sweep_dir is None:
            return None
        runs_dir = self.sweep_dir.parent.parent
        run_id, log = attrs.get("current_run"), attrs.get("current_log")
        if not run_id and log:  # the worker stopped before it recorded the run: its host wrote it in the lock file
            from nnlab.sweeps.host import trial_run_id

            run_id = trial_run_id((self.sweep_dir / aggregate.LOGS / log).with_suffix(".lock"))
        run_dir = runs_dir / run_id if run_id else None
        return run_dir if run_dir is not None and run_dir.is_dir() else None

    def gone(self, trial, *, grace_s: float = GRACE_S, now: float | None = None) -> str | None:
        """Why the attempt `trial` has nobody working on it, or None while there is a sign of life.

        Signs of life: its training process (its trial host holds the attempt's lock file beside its log while it
        trains it, and the run's lock; or wrote history.csv within the grace period) and its worker's lease (a
        heartbeat within the grace period). A worker's lease file in this
        sweep folder that nobody holds means the worker is gone (the kernel drops the lock when a process dies,
        in any PID namespace); pids and host names are never compared.
        """
        now = time.time() if now is None else now
        attrs = trial.user_attrs
        if self.sweep_dir is not None and attrs.get("current_log"):
            child_lock = (self.sweep_dir / aggregate.LOGS / attrs["current_log"]).with_suffix(".lock")
            if runs.flock_held(child_lock):  # its training process lives (even if its worker is stopped)
                return None
        run_dir = self._run_dir(attrs)
        if run_dir is not None:
            if runs.run_is_owned(run_dir):
                return None
            history = run_dir / runs.HISTORY
            if history.is_file() and now - history.stat().st_mtime <= grace_s and lease_held(self, attrs) is not False:
                return None
        if lease_held(self, attrs) is False:
            return "its worker is gone"
        beat = attrs.get("heartbeat") or (trial.datetime_start.timestamp() if trial.datetime_start else now)
        return f"no heartbeat for {now - beat:.0f}s" if now - beat > grace_s else None

    def requeue_stale(self, *, grace_s: float = GRACE_S) -> int:
        """Re-enqueue RUNNING trials nobody works on (see `gone`); return how many this process re-enqueued."""
        count = 0
        now = time.time()
        for trial in self.trials((TrialState.RUNNING,)):
            why = self.gone(trial, grace_s=grace_s, now=now)
            if why:
                count += self.requeue(trial, f"rerun: {why}")
        return count

    def requeue_failed(self) -> int:
        """--retry-failed: enqueue another attempt of every trial whose latest attempt failed."""
        failed = [t for t in latest_attempts(self.trials()) if t.state == TrialState.FAIL]
        return sum(self.requeue(t, "", already_failed=True) for t in failed)


def _differing_keys(a: Any, b: Any, prefix: str = "") -> list[str]:
    """Dotted keys whose values differ between two nested dicts."""
    if isinstance(a, dict) and isinstance(b, dict):
        return [key for k in sorted(set(a) | set(b), key=str)
                for key in _differing_keys(a.get(k), b.get(k), f"{prefix}{k}.")]
    return [] if a == b else [prefix.rstrip(".")]


# ---------------------------------------------------------------------------------------------
# Worker leases: each worker holds an flock on sweep_dir/workers/<id>.lock for as long as it lives.
def lease_path(sweep_dir: Path, worker_id: str) -> Path:
    return Path(sweep_dir) / "workers" / f"{worker_id}.lock"


def hold_lease(sweep_dir: Path, worker_id: str) -> int:
    """Take this worker's lease file (kept open for the life of the process); returns its descriptor."""
    path = lease_path(sweep_dir, worker_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    return fd


def lease_held(study: SweepStudy, attrs: dict[str, Any]) -> bool | None:
    """True while the attempt's worker holds its lease file here, False when nobody does, None when unknown
    (no lease file in this sweep folder: the worker runs on another machine)."""
    worker = (attrs.get("worker") or {}).get("id")
    if study.sweep_dir is None or not worker:
        return None
    return runs.flock_held(lease_path(study.sweep_dir, worker))


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
    return SweepStudy(storage, sweep_id, sweep_dir=sweep_dir)


def create(sweep: Sweep, runs_dir: Path, storage_url: str, command: list[str],
           trial_hosts: dict[str, Any] | None = None) -> Path:
    """Make the sweep folder and the study, enqueue every trial, mark the study ready; return the folder."""
    sweep_dir = runs.create_run_dir(aggregate.sweeps_dir(runs_dir), sweep.name)
    try:
        storage = open_storage(storage_url, sweep_dir)
        study = optuna.create_study(study_name=sweep_dir.name, storage=storage, direction=sweep.spec.metric.goal)
    except BaseException:
        import shutil

        shutil.rmtree(sweep_dir, ignore_errors=True)
        raise
    aggregate.write_sweep_files(sweep_dir, {**sweep.to_dict(), "source": sweep.source,
                                            "storage": aggregate.masked_url(storage_url), "created": runs.now_iso(),
                                            "command": command, **({"trial_hosts": trial_hosts} if trial_hosts else {})},
                                sweep.base)
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
        aggregate.write_sweep_files(sweep_dir, {**spec, "name": study.user_attrs["nnlab_name"],
                                                "source": study.user_attrs["nnlab_source"],
                                                "storage": aggregate.masked_url(storage_url), "joined": True},
                                    study.user_attrs["nnlab_base"])
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
                if trial.state == TrialState.PRUNED and attrs.get("runs"):
                    status = "skipped"  # a later repeat of a point pruned on an earlier seed: it never ran
            reason = "its point was pruned on an earlier seed" if status == "skipped" else None
            reason = run.get("reason") or reason or (attrs.get("reason") if status == "failed" else None)
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


__all__ = ["Claim", "LeaseLost", "PatientStorage", "StorageUnavailableError", "SweepStudy", "attach", "create",
           "latest_attempts", "load", "open_storage", "read_sweep_file", "repair_journal", "trial_rows", "write_tables"]

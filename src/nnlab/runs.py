"""Run folders: ids, file names, atomic writes, status in meta.json, lookup by id or prefix."""

from __future__ import annotations

import contextlib
import csv
import errno
import fcntl
import io
import json
import os
import re
import secrets
import shutil
import socket
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any, Callable, Iterator

from nnlab.errors import ConfigError, RunBusyError, RunDamagedError, RunNotFoundError, one_line

CONFIG = "config.yaml"
OVERRIDES = "overrides.yaml"
META = "meta.json"
HISTORY = "history.csv"
METRICS = "metrics.json"
SUMMARY = "summary.txt"
MODEL = "model.keras"
CHECKPOINT = "checkpoint"
PREDICTIONS = "predictions.npz"
CONFUSION = "confusion_matrix.csv"
CLASS_REPORT = "classification_report.json"
EXAMPLES = "examples.txt"  # seq2seq: decoded examples, one readable line each
DECODED = "examples.json"  # the same examples as records (input, predicted, true, right): what reports read
REPORT = "report.html"
PLOTS = "plots"
TENSORBOARD = "tensorboard"
LOCK = ".lock"  # held (flock) by the one process that trains the run, for as long as it lives
EVALUATIONS = "evaluations"  # evaluations/<stamp>-<split>-<4 hex>/: one `nnlab evaluate` each
EVALUATION = "evaluation.json"  # what an evaluation folder evaluated (split, data, overrides, model)

STATUSES = ("running", "completed", "failed", "interrupted", "pruned")  # pruned: stopped by a sweep's pruner


def default_runs_dir() -> Path:
    return Path(os.environ.get("NNLAB_RUNS_DIR") or "runs")


def cache_root() -> Path:
    """Where nnlab caches what it can make again (generated data, JAX's compiled programs)."""
    return Path(os.environ.get("NNLAB_CACHE_DIR") or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "nnlab")


# ---------------------------------------------------------------------------------------------
# Atomic writes: every file in a run folder is written to a temporary name, then renamed.
@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside `path` (same suffix); rename it onto `path` on success.

    The file gets the permissions a plain open() would (0666 less the umask), not mkstemp's 0600,
    so a shared course folder or a web server can read reports and models.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}-", suffix="".join(path.suffixes) or ".tmp")
    os.fchmod(fd, 0o666 & ~_umask())
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.replace(tmp_path, path)
    finally:
        tmp_path.unlink(missing_ok=True)


@contextlib.contextmanager
def atomic_folder(path: str | Path) -> Iterator[Path]:
    """Yield a temporary folder beside `path`; on success put it in place of `path` (a folder), whole.

    Two processes may redraw one derived folder at once: each builds its own and the last swap wins, and a reader
    never sees a half-filled folder. Linux renames a folder only onto a missing or empty one, so the old folder
    is first moved aside under a fresh name, then deleted.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}-"))
    try:
        yield work
        for _ in range(8):  # each retry means another writer swapped in between: bounded, it cannot spin
            try:
                os.replace(work, path)
                return
            except OSError as exc:
                if exc.errno not in (errno.ENOTEMPTY, errno.EEXIST):
                    raise
            aside = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}-old-"))
            with contextlib.suppress(FileNotFoundError):
                os.replace(path, aside)  # onto the empty folder mkdtemp made
            shutil.rmtree(aside, ignore_errors=True)
        raise OSError(errno.EBUSY, f"{path} kept being replaced by another process")
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _umask() -> int:
    """The process's umask, read without changing it where Linux allows (os.umask would, briefly, for all threads)."""
    with contextlib.suppress(OSError, ValueError, StopIteration):
        with open("/proc/self/status") as f:
            return int(next(line for line in f if line.startswith("Umask:")).split()[1], 8)
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def remove_temp_files(run_dir: str | Path) -> list[Path]:
    """Delete the half-written temporaries (`.<name>-<random>.<ext>`) a killed process left; return them.

    Only the run's owner calls this (it holds the lock), so no temporary belongs to a live writer.
    """
    stale = [p for p in Path(run_dir).rglob(".*") if p.is_file() and p.name != LOCK]
    for path in stale:
        path.unlink(missing_ok=True)
    return stale


def write_text(path: str | Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def write_json(path: str | Path, data: Any) -> None:
    write_text(path, json.dumps(data, indent=2, default=_jsonable) + "\n")


def _jsonable(value: Any) -> Any:
    if hasattr(value, "tolist"):  # numpy scalars and arrays
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"cannot write {type(value).__name__} to JSON")


def read_json(path: str | Path) -> Any:
    """A run file's JSON; RunDamagedError (one line naming the file) when it is not readable JSON."""
    path = Path(path)
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise RunDamagedError(f"{path}: missing") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise RunDamagedError(f"{path}: cannot read ({one_line(exc, 80)})") from None
    except json.JSONDecodeError as exc:
        raise RunDamagedError(f"{path}: not valid JSON (line {exc.lineno}: {exc.msg}; truncated or edited?)") from None


def read_history(run_dir: str | Path) -> list[dict[str, Any]]:
    """history.csv as a list of rows (numbers as floats, epoch as int)."""
    path = Path(run_dir) / HISTORY
    if not path.is_file():
        return []
    rows = []
    try:
        with path.open(newline="") as f:
            for line, row in enumerate(csv.DictReader(f), start=2):
                if None in row or None in row.values():
                    raise ValueError("wrong number of columns")
                rows.append({k: int(v) if k == "epoch" else float(v) for k, v in row.items()})
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise RunDamagedError(f"{path}: cannot read ({one_line(exc, 80)})") from None
    except ValueError as exc:
        raise RunDamagedError(f"{path}: line {line}: {one_line(exc, 80)} (truncated or edited?)") from None
    return rows


def append_history(run_dir: str | Path, columns: list[str], row: dict[str, Any]) -> None:
    """Add one row to a history.csv that has these columns: one small append, not a rewrite (a rewrite
    through a temporary file costs ~10 ms on a busy disk, per epoch)."""
    text = io.StringIO()
    csv.DictWriter(text, fieldnames=columns, lineterminator="\n").writerow(row)
    with (Path(run_dir) / HISTORY).open("a") as f:
        f.write(text.getvalue())


def read_checkpoint(run_dir: str | Path) -> dict[str, Any] | None:
    """checkpoint/state.json (the last finished epoch and, under `previous`, the one before), if any.

    Here, not beside the checkpoint callback, so that `--resume` can read it before Keras is imported
    (the backend must be chosen first)."""
    from nnlab.errors import RunDamagedError

    path = Path(run_dir) / CHECKPOINT / "state.json"
    if not path.is_file():
        return None
    state = read_json(path)
    if not isinstance(state, dict) or not isinstance(state.get("epoch"), int) or not isinstance(state.get("model"), str):
        raise RunDamagedError(f"{path}: not a checkpoint state (needs epoch and model)")
    return state


def write_examples(folder: str | Path, examples: list[dict[str, Any]]) -> None:
    """Decoded examples, each {input, predicted, true, right}: as records (examples.json) and as lines
    (examples.txt, `example_line`)."""
    write_json(Path(folder) / DECODED, examples)
    write_text(Path(folder) / EXAMPLES, "".join(example_line(e) + "\n" for e in examples))


def example_line(example: dict[str, Any]) -> str:
    """`ok  '12+345' -> '357 '  (true '357 ')`: XX instead of ok when the prediction is wrong."""
    return (f"{'ok' if example['right'] else 'XX'}  {example['input']!r} -> {example['predicted']!r}  "
            f"(true {example['true']!r})")


def read_examples(folder: str | Path) -> list[dict[str, Any]] | None:
    """examples.json's records, if the folder has them (runs from before it was written have only examples.txt)."""
    path = Path(folder) / DECODED
    if not path.is_file():
        return None
    records = read_json(path)
    keys = {"input", "predicted", "true", "right"}
    if not isinstance(records, list) or not all(isinstance(r, dict) and keys <= set(r) for r in records):
        raise RunDamagedError(f"{path}: not a list of decoded examples (input, predicted, true, right)")
    return records


def stopped_early(state: dict[str, Any] | None) -> bool:
    """Whether a checkpoint state (`read_checkpoint`) records that early stopping ended the run."""
    return bool(state) and any(cb.get("stopped_epoch", 0) > 0 for cb in state.get("callbacks", []))


def write_history(run_dir: str | Path, rows: list[dict[str, Any]]) -> None:
    columns = list(dict.fromkeys(k for row in rows for k in row))
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    write_text(Path(run_dir) / HISTORY, text.getvalue())


# ---------------------------------------------------------------------------------------------
# Creating and updating runs.
def check_runs_dir(runs_dir: str | Path) -> Path:
    """ConfigError unless run folders can be made under `runs_dir` (checked before any slow step)."""
    runs_dir = Path(runs_dir)
    for folder in (runs_dir, *runs_dir.parents):
        if folder.exists():
            if not folder.is_dir():
                raise ConfigError(f"runs folder {runs_dir}: {folder} is a file, not a folder (--runs-dir, "
                                  "output.runs_dir or NNLAB_RUNS_DIR)")
            if not os.access(folder, os.W_OK | os.X_OK):
                raise ConfigError(f"runs folder {runs_dir}: {folder} is not writable")
            break
    return runs_dir


def create_run_dir(runs_dir: str | Path, name: str) -> Path:
    """Make `runs_dir/<YYYYMMDD-HHMMSS>-<name>-<4 hex>/` with an exclusive mkdir (never collides); runs and
    evaluations are named so."""
    runs_dir = Path(runs_dir)
    runs_dir.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    while True:
        run_dir = runs_dir / f"{stamp}-{name}-{secrets.token_hex(2)}"
        try:
            run_dir.mkdir()
            return run_dir
        except FileExistsError:
            continue


@contextlib.contextmanager
def removed_unless_started(run_dir: str | Path) -> Iterator[None]:
    """A folder stopped (Ctrl-C, SIGTERM, an error) before its meta.json was written is removed, not left empty."""
    try:
        yield
    except BaseException:
        if not (Path(run_dir) / META).is_file():
            shutil.rmtree(run_dir, ignore_errors=True)
        raise


def new_meta(config_name: str, seed: int, command: list[str], extra: dict[str, Any]) -> dict[str, Any]:
    now = time.time()
    return {
        "status": "running",
        "name": config_name,
        "seed": seed,
        "created": _iso(now),
        "started_at": now,
        "finished_at": None,
        "duration_s": None,
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "command": command,
        "git_commit": _git_commit(),
        **extra,
    }


def update_meta(run_dir: str | Path, **changes: Any) -> dict[str, Any]:
    path = Path(run_dir) / META
    meta = read_json(path)
    meta.update(changes)
    write_json(path, meta)
    return meta


def finish_meta(run_dir: str | Path, status: str, **changes: Any) -> dict[str, Any]:
    """Set the final status (completed, failed, interrupted or pruned) and the duration."""
    assert status in STATUSES
    meta = read_json(Path(run_dir) / META)
    now = time.time()
    active = meta.get("active_s", 0.0) + now - meta.get("resumed_at", meta["started_at"])
    return update_meta(run_dir, status=status, finished_at=now, duration_s=round(active, 3), active_s=active, **changes)


def restart_meta(run_dir: str | Path, **changes: Any) -> dict[str, Any]:
    """Mark a stopped run running again; a killed segment counts until its last file write."""
    run_dir = Path(run_dir)
    meta = read_json(run_dir / META)
    active = meta.get("active_s", 0.0)
    if meta.get("finished_at") is None:  # killed: nothing recorded when it stopped
        last_write = max(p.stat().st_mtime for p in run_dir.rglob("*") if p.is_file() and p.name != LOCK)
        active += max(0.0, last_write - meta.get("resumed_at", meta["started_at"]))
    return update_meta(run_dir, status="running", pid=os.getpid(), resumed_at=time.time(), finished_at=None,
                       reason=None, active_s=active, resumes=meta.get("resumes", 0) + 1, **changes)


def now_iso() -> str:
    return _iso(time.time())


def _iso(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp).astimezone().isoformat(timespec="seconds")


def _git_commit() -> str | None:
    head = _find_up(Path.cwd(), ".git")
    if head is None:
        return None
    with contextlib.suppress(OSError):
        ref = (head / "HEAD").read_text().strip()
        if ref.startswith("ref: "):
            ref_path = head / ref[5:]
            if ref_path.exists():
                return ref_path.read_text().strip()
            for line in (head / "packed-refs").read_text().splitlines():
                if line.endswith(" " + ref[5:]):
                    return line.split()[0]
            return None
        return ref
    return None


def _find_up(start: Path, name: str) -> Path | None:
    for folder in (start, *start.parents):
        if (folder / name).is_dir():
            return folder / name
    return None


# ---------------------------------------------------------------------------------------------
# Finding runs.
RUN_ID = re.compile(r"^\d{8}-\d{6}-[A-Za-z0-9][A-Za-z0-9_.-]*-[0-9a-f]{4}$")


def list_runs(runs_dir: str | Path) -> list[Path]:
    """Run folders (those holding meta.json), newest first."""
    runs_dir = Path(runs_dir)
    if runs_dir.exists() and not runs_dir.is_dir():
        raise ConfigError(f"runs folder {runs_dir} is a file, not a folder")
    if not runs_dir.is_dir():
        return []
    found = [p for p in runs_dir.iterdir() if (p / META).is_file()]
    return sorted(found, key=lambda p: p.name, reverse=True)


def unfinished_folders(runs_dir: str | Path) -> list[Path]:
    """Folders named like runs but without meta.json: a process stopped in its first moments."""
    runs_dir = Path(runs_dir)
    if not runs_dir.is_dir():
        return []
    return sorted((p for p in runs_dir.iterdir() if RUN_ID.match(p.name) and p.is_dir() and not (p / META).exists()),
                  key=lambda p: p.name, reverse=True)


def find_run(ref: str, runs_dir: str | Path) -> Path:
    """A run by folder path, full id, unique id prefix, or `latest`."""
    return find_folder(ref, lambda: list_runs(runs_dir), marker=META, kind="run", where=runs_dir)


def find_folder(ref: str, newest_first: Callable[[], list[Path]], *, marker: str, kind: str,
                where: str | Path) -> Path:
    """A run or sweep folder by its path (holding `marker`), full id, unique id prefix, or `latest`."""
    as_path = Path(ref)
    if (as_path / marker).is_file():
        return as_path
    folders = newest_first()
    if ref == "latest":
        if not folders:
            raise RunNotFoundError(f"no {kind}s in {where}")
        return folders[0]
    matches = [p for p in folders if p.name == ref] or [p for p in folders if p.name.startswith(ref)]
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise RunNotFoundError(f"no {kind} {ref!r} in {where}")
    names = ", ".join(p.name for p in matches[:10])
    raise RunNotFoundError(f"{kind} prefix {ref!r} is ambiguous in {where}: {names}")


# ---------------------------------------------------------------------------------------------
# One process owns a run: an flock on run_dir/.lock, held until the owner finishes or dies.
# The kernel drops the lock when its process dies (kill -9 included), so a lock that can be taken
# means nobody trains the run: no pid or host guessing.
@contextlib.contextmanager
def claimed(run_dir: str | Path, *, force: bool = False) -> Iterator[None]:
    """Own `run_dir` for the body; RunBusyError (exit 2) names the owner when another process has it.

    `force` goes on without a lock where the file system cannot lock (the user vouches nobody else trains it).
    """
    path = Path(run_dir) / LOCK
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        for attempt in range(5):  # a reader's momentary shared lock (run_is_owned) is not an owner
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if attempt == 4:
                    raise RunBusyError(f"run {Path(run_dir).name} is in use by {_owner(path)}; "
                                       "wait for it to end or stop that process") from None
                time.sleep(0.05)
            except OSError as exc:
                if not force:
                    raise ConfigError(f"cannot lock {path} ({os.strerror(exc.errno or errno.ENOLCK)}); if no other "
                                      "process trains this run, pass --force") from None
                break
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "since": _iso(time.time())})
                  .encode(), 0)
        yield
    finally:
        os.close(fd)  # closing the only descriptor releases the lock


def run_is_owned(run_dir: str | Path) -> bool | None:
    """True while a process holds the run's lock, False when none does, None for a folder without a lock file."""
    return flock_held(Path(run_dir) / LOCK)


def flock_held(path: str | Path) -> bool | None:
    """True while some process holds an flock on `path`, False when none does, None without the file (or
    where the file system has no working locks)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        return False
    except BlockingIOError:
        return True
    except OSError:  # no working locks here: the callers fall back (a recorded pid, a heartbeat)
        return None
    finally:
        os.close(fd)


def _owner(lock_path: Path) -> str:
    with contextlib.suppress(OSError, ValueError):
        owner = json.loads(lock_path.read_text()[:1000])
        return f"pid {owner['pid']} on {owner['host']} (since {owner['since']})"
    return "another process"


def effective_status(meta: dict[str, Any], run_dir: str | Path | None = None) -> str:
    """The recorded status, except a `running` run that nobody trains any more reads `interrupted`.

    With `run_dir`, the run's lock decides; folders from before locks existed fall back to the recorded pid.
    """
    status = meta.get("status", "unknown")
    if status != "running":
        return status
    owned = run_is_owned(run_dir) if run_dir is not None else None
    if owned is None:
        owned = meta.get("host") != socket.gethostname() or _alive(meta.get("pid"))
    return "running" if owned else "interrupted"


def _alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True

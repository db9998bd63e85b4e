"""A warm trial host: one long-lived child of a sweep worker that imports Keras and its backend once and trains
the worker's trials one after another, in-process, through `experiment.train_config` (what `nnlab train` runs),
so a trial's run folder is exactly what `nnlab train` writes.

The worker and its host talk in typed messages, one JSON object per line, never in printed text:
- worker -> host, on the host's stdin: `{"op": "train", "config_file", "overrides", "runs_dir", "command",
  "log", "lock", "pruning", "resume"}` (`resume`: a run folder to continue instead); with `pruning`, after
  each epoch the host waits (a few seconds at most) for the pruner's verdict `{"op": "go", "epoch": N}` or
  `{"op": "stop"}` (stop the trial after this epoch); `{"op": "exit"}`.
- host -> worker, on a pipe of its own (what trials print goes to the trial's log file): `ready` (pid,
  backend), `started` (run_id, run_dir), `epoch` (epoch, logs), `finished` (run_dir), `pruned` (run_dir,
  reason; run_dir null and `parameters` for a model over the config's max_params) or `failed` (run_dir or
  null, reason, error), then `idle` (rss_mb, cleanup_s) once it has cleaned up.
  A trial that kills its host (a segfault, `os._exit`, the kernel's out-of-memory killer, SIGKILL) sends
  nothing: the worker sees the pipe close and records how the process ended.

While it trains a trial the host holds an flock on the trial's `lock` file (its sign of life, whatever its
worker is doing) and writes the run's id into it once the run folder exists (`trial_run_id` reads it back).

Between trials the host clears Keras's session and collects garbage; the worker replaces it after
`max_trials` trials, when its resident memory passed `max_rss_mb`, and whenever it died. Each trial seeds its
own random stream (`experiment`), so a trial's numbers do not depend on what the host trained before it.
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

MAX_TRIALS = 50  # trials per host before it is replaced (sweep.yaml records the values used)
MAX_RSS_MB = 4096  # a host whose resident memory passed this after a trial is replaced
READY_TIMEOUT_S = 300.0  # importing Keras and its backend on a loaded machine
_CLOSED, _SILENT = object(), object()  # what `TrialHost._next` returns when no message came
MAX_MESSAGE_BYTES = 1 << 20  # one message line is far smaller
VERDICT_WAIT_S = 10.0  # how long a trial waits after an epoch for the pruner's verdict before it trains on


def rss_mb(pid: int | str = "self") -> float:
    """Resident memory of a process in MiB (0 where /proc cannot say)."""
    try:
        pages = int(Path(f"/proc/{pid}/statm").read_text().split()[1])
    except (OSError, ValueError, IndexError):
        return 0.0
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


# ---------------------------------------------------------------------------------------------
# The worker's side.
@dataclass
class HostEnded:
    """How a host process ended, as a one-line reason (`killed by SIGKILL`, `exited with code 3`)."""

    returncode: int | None

    @property
    def reason(self) -> str:
        code = self.returncode
        if code is not None and code < 0:
            try:
                name = signal.Signals(-code).name
            except ValueError:
                name = f"signal {-code}"
            return f"the trial host was killed by {name}" + (" (out of memory?)" if name == "SIGKILL" else "")
        return f"the trial host exited with code {code}"


@dataclass
class TrialHost:
    """The worker's handle on one host process; `start`, then `train` per trial, `close` at the end."""

    backend: str | None = None
    device: str = "auto"
    threads: int | None = None
    env: dict[str, str] | None = None
    max_trials: int = MAX_TRIALS
    max_rss_mb: float = MAX_RSS_MB
    trials: int = 0
    last_rss_mb: float = 0.0
    last_cleanup_s: float = 0.0  # how long the host took to clean up after its last trial
    process: subprocess.Popen | None = field(default=None, repr=False)
    _events: int = field(default=-1, repr=False)  # the read end of the host's message pipe
    _buffer: bytes = field(default=b"", repr=False)
    _cleaning: bool = field(default=False, repr=False)

    def start(self, preexec_fn=None) -> None:
        """Start the process and wait until it has imported Keras (its `ready` message)."""
        read_fd, write_fd = os.pipe()
        command = [sys.executable, "-m", "nnlab.sweeps.host", "--fd", str(write_fd), "--device", self.device]
        if self.backend:
            command += ["--backend", self.backend]
        if self.threads:
            command += ["--threads", str(self.threads)]
        self.process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                        stderr=subprocess.DEVNULL, pass_fds=(write_fd,), env=self.env,
                                        preexec_fn=preexec_fn, text=True)
        os.close(write_fd)
        self._events, self._buffer = read_fd, b""
        message = self._next(READY_TIMEOUT_S)
        if not isinstance(message, dict) or message.get("event") != "ready":
            ended = self.kill(grace_s=5.0)
            reason = message.get("reason") if isinstance(message, dict) else ended.reason
            raise RuntimeError(f"the trial host did not start: {reason}")
        self.trials, self._cleaning = 0, False
        self.last_rss_mb = float(message.get("rss_mb", 0.0))

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    @property
    def worn(self) -> bool:
        """True when the host should be replaced before the next trial (after its cleanup of the last one)."""
        self._wait_idle()
        return not self.alive or self.trials >= self.max_trials or self.last_rss_mb > self.max_rss_mb

    def _wait_idle(self, timeout_s: float = 120.0) -> None:
        """Wait for the `idle` message the host sends once it has cleaned up after a trial (the worker does its
        bookkeeping meanwhile), and take its resident memory."""
        while self._cleaning and self.alive:
            message = self._next(timeout_s)
            if not isinstance(message, dict):
                return  # died or silent: `alive` or the next trial tells
            if message.get("event") == "idle":
                self._cleaning = False
                self.last_rss_mb = float(message.get("rss_mb", self.last_rss_mb))
                self.last_cleanup_s = float(message.get("cleanup_s", 0.0))

    def train(self, config_file: str | Path, overrides: list[str], *, runs_dir: str | Path, log: str | Path,
              command: list[str] | None = None, lock: str | Path | None = None, pruning: bool = False,
              resume: str | Path | None = None, tick_s: float | None = None) -> Iterator[dict[str, Any]]:
        """Send one trial; yield the host's messages (`started`, `epoch` ..., then `finished`, `pruned` or
        `failed`), and `{"event": "tick"}` after each `tick_s` seconds without one (the worker's moment to beat
        its heartbeat, or to judge the trial hung and `kill` the host). If the host dies meanwhile, the last
        message is `{"event": "died", "reason": ..., "returncode": ...}`. With `pruning`, answer each `epoch`
        with `verdict`. With `resume` (a run folder), that run continues from its checkpoint instead (the
        trial a Ctrl-C cut off); `config_file` and `overrides` are then not used."""
        self._wait_idle()
        self._send({"op": "train", "config_file": str(config_file), "overrides": list(overrides),
                    "runs_dir": str(runs_dir), "log": str(log), "command": command,
                    "lock": str(lock) if lock else None, "pruning": pruning,
                    "resume": str(resume) if resume else None})
        self.trials += 1
        self._cleaning = True  # until the host's `idle` after this trial
        while True:
            message = self._next(tick_s)
            if message is _SILENT:
                yield {"event": "tick"}
                continue
            if message is _CLOSED:  # the host died: reap it (a process whose pipe closed is ending)
                ended = self.kill(grace_s=5.0)
                yield {"event": "died", "reason": ended.reason, "returncode": ended.returncode}
                return
            if message.get("event") == "idle":  # a late one, of the trial before
                continue
            yield message
            if message.get("event") in ("finished", "pruned", "failed"):
                return

    def stop_trial(self) -> None:
        """Ask the host to stop the current trial after the epoch it is in (it is then recorded `pruned`)."""
        self._send({"op": "stop"})

    def verdict(self, epoch: int, *, stop: bool) -> None:
        """The pruner's answer to an `epoch` message of a trial sent with `pruning`: train on, or stop here."""
        self._send({"op": "stop"} if stop else {"op": "go", "epoch": epoch})

    def terminate(self, grace_s: float = 30.0) -> HostEnded:
        """Stop the host as Ctrl-C stops `nnlab train` (SIGTERM: its run is marked interrupted); kill it if it
        is still there after `grace_s` seconds."""
        if self.alive:
            self.process.send_signal(signal.SIGTERM)
        return self.kill(grace_s)

    def close(self, timeout_s: float = 10.0) -> None:
        """Let the host exit; kill it if it does not within `timeout_s`."""
        if self.alive:
            self._send({"op": "exit"})
            try:
                self.process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                pass
        self.kill()

    def kill(self, grace_s: float = 0.0) -> HostEnded:
        """Kill the host (if it still runs after `grace_s` seconds) and reap it; how it ended."""
        if self.process is None:
            return HostEnded(None)
        try:
            self.process.wait(grace_s)
        except subprocess.TimeoutExpired:
            self.process.kill()
        returncode = self.process.wait()
        try:
            self.process.stdin.close()
        except OSError:
            pass
        if self._events >= 0:
            os.close(self._events)
            self._events, self._buffer = -1, b""
        return HostEnded(returncode)

    def _send(self, message: dict[str, Any]) -> None:
        try:
            self.process.stdin.write(json.dumps(message) + "\n")
            self.process.stdin.flush()
        except (OSError, ValueError):  # the host is gone: the next read says how it ended
            pass

    def _next(self, timeout_s: float | None) -> dict[str, Any] | object:
        """The next message; _CLOSED at end of file (the host died), _SILENT after `timeout_s` s without one."""
        import select

        while True:
            if b"\n" in self._buffer:
                line, self._buffer = self._buffer.split(b"\n", 1)
                try:
                    message = json.loads(line)
                except ValueError:
                    continue  # not a message (a torn line of a dying host): the next read tells
                if isinstance(message, dict):
                    return message
                continue
            if timeout_s is not None and not select.select([self._events], [], [], timeout_s)[0]:
                return _SILENT
            chunk = os.read(self._events, 1 << 16)
            if not chunk:
                return _CLOSED
            if len(self._buffer) > MAX_MESSAGE_BYTES:  # a host that writes without end is not one
                return _CLOSED
            self._buffer += chunk


# ---------------------------------------------------------------------------------------------
# The host's side.
class _Channel:
    """The host's end: messages out on the worker's pipe, commands in from stdin (read by a thread, so that a
    `stop` arrives while a trial trains)."""

    def __init__(self, fd: int):
        self.out = os.fdopen(fd, "w", encoding="utf-8", buffering=1)
        self.commands: queue.Queue = queue.Queue()
        self.stop = threading.Event()
        self.pruning = False  # the current trial waits for a verdict after each epoch
        self._verdicts = threading.Condition()
        self._verdict_epoch = 0
        threading.Thread(target=self._read, daemon=True).start()

    def start_trial(self, pruning: bool) -> None:
        with self._verdicts:
            self.stop.clear()
            self.pruning, self._verdict_epoch = pruning, 0

    def await_verdict(self, epoch: int, timeout_s: float = VERDICT_WAIT_S) -> None:
        """Wait until the worker has judged `epoch` (or said stop); a worker that is slow to answer (its storage
        is away, it is paused) only lets the trial train on, and its `stop` then ends a later epoch."""
        with self._verdicts:
            self._verdicts.wait_for(lambda: self._verdict_epoch >= epoch or self.stop.is_set(), timeout_s)

    def send(self, event: str, **fields: Any) -> None:
        self.out.write(json.dumps({"event": event, **fields}, default=str) + "\n")
        self.out.flush()

    def _read(self) -> None:
        for line in sys.stdin:
            try:
                command = json.loads(line)
            except ValueError:
                continue
            if not isinstance(command, dict):
                continue
            if command.get("op") in ("stop", "go"):
                with self._verdicts:
                    if command["op"] == "stop":
                        self.stop.set()
                    elif isinstance(command.get("epoch"), int):
                        self._verdict_epoch = max(self._verdict_epoch, command["epoch"])
                    self._verdicts.notify_all()
            else:
                self.commands.put(command)
        self.commands.put({"op": "exit"})  # the worker is gone


def _reporter(channel: _Channel):
    """A Keras callback (after nnlab's own, so the epoch's row and checkpoint are written): each epoch's logs to
    the worker; a `stop` from the worker ends the trial there, recorded as pruned."""
    import keras

    from nnlab.errors import RunPruned

    class Reporter(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            channel.send("epoch", epoch=epoch + 1, logs={k: float(v) for k, v in (logs or {}).items()})
            if channel.pruning:
                channel.await_verdict(epoch + 1)
            if channel.stop.is_set():
                raise RunPruned(f"pruned after epoch {epoch + 1}")

    return Reporter()


_DATA: dict = {}  # the data of the host's last trial, reused by the next when its data section is the same


def _train(channel: _Channel, command: dict[str, Any], device: str, backend_name: str | None,
           threads: int | None) -> None:
    from nnlab import experiment
    from nnlab.config import load_config
    from nnlab.experiment import Timer
    from nnlab.errors import OverBudget, RunPruned, first_line

    started: dict[str, Path] = {}
    lock = _TrialLock(command.get("lock"))

    def on_start(run_dir: Path) -> None:
        started["run_dir"] = run_dir
        lock.record(run_dir.name)
        channel.send("started", run_id=run_dir.name, run_dir=str(run_dir))

    channel.start_trial(bool(command.get("pruning")))
    with lock, open(command["log"], "a", encoding="utf-8") as log, _output_to(log):
        try:
            if command.get("resume"):
                run_dir = experiment.resume(
                    command["resume"], runs_dir=command["runs_dir"], device=device, backend=backend_name,
                    threads=threads, command=command.get("command"), stream=log, timer=Timer(startup=0.0),
                    on_start=on_start, callbacks=[_reporter(channel)])
            else:
                config = load_config(command["config_file"], command.get("overrides") or [])
                run_dir = experiment.train_config(
                    config, source=command["config_file"], overrides=command.get("overrides") or [],
                    runs_dir=command["runs_dir"], device=device, backend=backend_name, threads=threads,
                    command=command.get("command"), stream=log, timer=Timer(startup=0.0), on_start=on_start,
                    callbacks=[_reporter(channel)], data_cache=_DATA)
            channel.send("finished", run_dir=str(run_dir))
        except RunPruned as exc:
            run_dir = started.get("run_dir")
            channel.send("pruned", run_dir=str(run_dir) if run_dir else None, reason=str(exc))
        except OverBudget as exc:  # more parameters than max_params: pruned before a run folder exists
            channel.send("pruned", run_dir=None, reason=exc.detail, parameters=exc.parameters)
        except Exception as exc:  # noqa: BLE001  (every failure of a trial is the trial's, reported in one line)
            print(f"error: {first_line(exc)}", file=log, flush=True)
            run_dir = started.get("run_dir")
            channel.send("failed", run_dir=str(run_dir) if run_dir else None, reason=first_line(exc),
                         error=type(exc).__name__)
    # The worker records the result meanwhile: free what the trial left (Keras's session; clearing it also
    # collects garbage), then say how much memory the host holds.
    import keras

    began = time.perf_counter()
    keras.backend.clear_session()
    channel.send("idle", rss_mb=round(rss_mb(), 1), cleanup_s=round(time.perf_counter() - began, 3))


class _TrialLock:
    """The trial's sign of life: an flock held while the host trains it, the run's id written inside."""

    def __init__(self, path: str | None):
        self.path, self.fd = path, -1

    def __enter__(self):
        import fcntl

        if self.path:
            self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            fcntl.flock(self.fd, fcntl.LOCK_EX)
        return self

    def record(self, run_id: str) -> None:
        if self.fd >= 0:
            os.ftruncate(self.fd, 0)
            os.pwrite(self.fd, json.dumps({"run_id": run_id}).encode(), 0)

    def __exit__(self, *exc):
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


def trial_run_id(lock_path: Path) -> str | None:
    """The run id a host wrote into a trial's lock file, or None (not started yet, or no such file)."""
    try:
        text = Path(lock_path).read_text(errors="replace")[:4096]
        record = json.loads(text) if text.strip() else None
    except (OSError, ValueError):
        return None
    run_id = record.get("run_id") if isinstance(record, dict) else None
    return run_id if isinstance(run_id, str) and run_id and "/" not in run_id and run_id not in (".", "..") else None


class _output_to:
    """Send this process's stdout and stderr (file descriptors 1 and 2: Python, TensorFlow's C++ logs) to a file."""

    def __init__(self, file):
        self.file = file

    def __enter__(self):
        sys.stdout.flush()
        sys.stderr.flush()
        self.saved = (os.dup(1), os.dup(2))
        os.dup2(self.file.fileno(), 1)
        os.dup2(self.file.fileno(), 2)

    def __exit__(self, *exc):
        sys.stdout.flush()
        sys.stderr.flush()
        for fd, saved in zip((1, 2), self.saved):
            os.dup2(saved, fd)
            os.close(saved)


def _interrupt(signum, frame):
    """SIGTERM from the worker: stop the trial as Ctrl-C stops `nnlab train` (the run is marked interrupted)."""
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m nnlab.sweeps.host")
    parser.add_argument("--fd", type=int, required=True)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--backend")
    parser.add_argument("--threads", type=int)
    args = parser.parse_args(argv)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the worker, which stops its host
    signal.signal(signal.SIGTERM, _interrupt)
    channel = _Channel(args.fd)
    from nnlab.errors import first_line
    from nnlab.training import backend

    try:
        name = backend.choose(args.backend)
        backend.configure(args.device, backend=name, num_threads=args.threads)
    except Exception as exc:  # noqa: BLE001
        channel.send("failed", run_dir=None, reason=first_line(exc), error=type(exc).__name__)
        return 2
    import gc

    import nnlab.experiment  # noqa: F401  (imported once here, not in the first trial)
    import nnlab.training.fit  # noqa: F401

    gc.freeze()  # what the imports made lives as long as the host: the collections after each trial skip it
    channel.send("ready", pid=os.getpid(), backend=name, rss_mb=round(rss_mb(), 1), time=time.time())
    while True:
        command = channel.commands.get()
        if command.get("op") != "train":
            return 0
        try:
            _train(channel, command, args.device, name, args.threads)
        except KeyboardInterrupt:  # SIGTERM: the run is recorded interrupted by experiment; the host ends
            return 130


if __name__ == "__main__":
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)  # every file is closed and every message sent: skip the backend's slow teardown (Ctrl-C waits)

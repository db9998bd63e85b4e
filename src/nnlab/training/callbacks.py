"""Callbacks Keras lacks: a per-epoch progress line, an in-epoch progress bar on terminals, and a checkpoint that
makes runs resumable."""

from __future__ import annotations

import contextlib
import math
import os
import random
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

import keras
import numpy as np

from nnlab import runs
from nnlab.errors import RunDamagedError
from nnlab.runs import append_history, read_checkpoint, write_history

# Epoch logs nnlab's callbacks add to Keras's own (not numbers model.evaluate returns).
NNLAB_LOGS = ("nmse", "val_nmse")
# Attributes of stateful Keras callbacks that BackupAndRestore does not keep.
_STATE_ATTRS = ("wait", "best", "best_epoch", "stopped_epoch", "cooldown_counter")


def read_weights(path: Path) -> list[np.ndarray]:
    """Weights saved by RunCheckpoint (best weights of early stopping), in model order."""
    with np.load(path, allow_pickle=False) as data:
        return [data[f"arr_{i}"] for i in range(len(data.files))]


class RunCheckpoint(keras.callbacks.Callback):
    """At every epoch end history.csv; then, when `every` seconds have passed since the last checkpoint
    (and after the last epoch), the model with its optimizer and the state of the other stateful
    callbacks (early stopping patience and best value, plateau counters).

    `state.json` is written last and names the files of its epoch, so a kill at any moment leaves
    the previous checkpoint intact; a resume cuts history.csv back to it and trains the later
    epochs again, so each epoch appears once and at most `every` seconds of work are lost.
    """

    def __init__(self, run_dir: Path, stateful: list[keras.callbacks.Callback], history: list[dict], resume_state=None,
                 every: float = 0.0):
        super().__init__()
        self.run_dir = Path(run_dir)
        self.folder = self.run_dir / runs.CHECKPOINT
        self.stateful = stateful
        self.history = history
        self.resume_state = resume_state
        self.every = every
        self.seconds = 0.0  # spent writing checkpoints
        self.columns: list[str] | None = None  # of history.csv as this process wrote it
        self.last_end = self.last_save = None

    def on_train_begin(self, logs=None):
        # Runs after the stateful callbacks' own on_train_begin, which resets them.
        if self.resume_state:
            for callback, state in zip(self.stateful, self.resume_state["callbacks"]):
                for name, value in state.items():
                    setattr(callback, name, value)
            if self.resume_state.get("random"):
                restore_random_state(self.resume_state["random"], self.folder / "state.json")
            weights_file = self.resume_state.get("best_weights")
            if weights_file:
                weights = read_weights(self.folder / weights_file)
                for callback in self.stateful:
                    if hasattr(callback, "best_weights"):
                        callback.best_weights = weights
        self.last_end = self.last_save = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        now = time.perf_counter()
        row = {"epoch": epoch + 1, **{k: float(v) for k, v in sorted((logs or {}).items(), key=_log_order)}}
        row["learning_rate"] = float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))
        row["time_s"] = round(now - self.last_end, 4)  # since the previous epoch ended, its checkpoint included
        self.history.append(row)
        # Before the checkpoint (resume cuts extra rows back); rewritten whole when it starts or its columns change.
        columns = list(dict.fromkeys(k for r in self.history for k in r))
        if columns == self.columns:
            append_history(self.run_dir, columns, row)
        else:
            write_history(self.run_dir, self.history)
            self.columns = columns
        finite = all(math.isfinite(v) for v in row.values())
        if not finite:
            self.model.stop_training = True  # NaN or infinite: fit() fails the run (checked per epoch, not per batch)
        last = epoch + 1 >= (self.params.get("epochs") or 0) or self.model.stop_training
        if finite and (last or now - self.last_save >= self.every):  # never a checkpoint of NaN weights
            self.save(epoch + 1)
            self.last_save = time.perf_counter()
            self.seconds += self.last_save - now
        self.last_end = now

    def save(self, epochs_done: int) -> None:
        self.folder.mkdir(exist_ok=True)
        model_file = f"epoch-{epochs_done:04d}.keras"
        with runs.atomic_path(self.folder / model_file) as tmp:
            self.model.save(tmp)
        states, best_file = [], None
        for callback in self.stateful:
            states.append({k: _plain(getattr(callback, k)) for k in _STATE_ATTRS if hasattr(callback, k)})
            if getattr(callback, "best_weights", None) is not None:
                best_file = f"best-{epochs_done:04d}.npz"
                with runs.atomic_path(self.folder / best_file) as tmp:
                    np.savez(tmp, *callback.best_weights)
        state = {"epoch": epochs_done, "model": model_file, "best_weights": best_file, "callbacks": states,
                 "random": random_state()}
        previous = read_checkpoint(self.run_dir) if (self.folder / "state.json").is_file() else None
        if previous and previous.get("epoch", epochs_done) < epochs_done:  # kept until this one is complete
            state["previous"] = {k: v for k, v in previous.items() if k != "previous"}
        runs.write_json(self.folder / "state.json", state)
        keep = {"state.json"} | {s.get(k) for s in (state, state.get("previous") or {}) for k in ("model", "best_weights")}
        for old in self.folder.iterdir():
            if old.name not in keep and not old.name.startswith("."):
                old.unlink()


def random_state() -> dict[str, Any]:
    """The global random states the next epoch draws from (JAX's and NumPy's data adapters shuffle with NumPy's
    global generator), as JSON: a resume continues the same random stream as the run that was not stopped."""
    _, keys, pos, has_gauss, gauss = np.random.get_state()
    version, internal, gauss_next = random.getstate()
    return {"numpy": {"keys": keys.tolist(), "pos": int(pos), "has_gauss": int(has_gauss), "gauss": float(gauss)},
            "python": {"version": version, "internal": list(internal), "gauss_next": gauss_next}}


def restore_random_state(state: dict[str, Any], source: Path) -> None:
    """Put back what `random_state` recorded; RunDamagedError (one line) for a state that is not one."""
    try:
        n = state["numpy"]
        np.random.set_state(("MT19937", np.asarray(n["keys"], dtype=np.uint32), int(n["pos"]), int(n["has_gauss"]),
                             float(n["gauss"])))
        p = state["python"]
        random.setstate((int(p["version"]), tuple(int(v) for v in p["internal"]), p["gauss_next"]))
    except (KeyError, IndexError, TypeError, ValueError, OverflowError) as exc:
        raise RunDamagedError(f"{source}: cannot resume: its random state is damaged ({type(exc).__name__})") from None


_signalled = threading.Event()  # a SIGINT or SIGTERM arrived while training (see `noticed_signals`)


@contextlib.contextmanager
def noticed_signals():
    """Note Ctrl-C and SIGTERM before their own handlers run, for `StopCheck`.

    Python raises KeyboardInterrupt wherever the main thread is; when that is a garbage-collector callback
    (JAX registers one) the exception is printed as "Exception ignored" and lost, and training went on.
    A signal that is ignored (a sweep's trial host ignores SIGINT) stays ignored.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    _signalled.clear()
    previous: dict[int, Any] = {}

    def note(signum, frame):
        _signalled.set()
        handler = previous[signum]
        if callable(handler):
            handler(signum, frame)
        elif signum == signal.SIGINT:
            raise KeyboardInterrupt
        else:  # SIG_DFL: end as the signal would have
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)

    for signum in (signal.SIGINT, signal.SIGTERM):
        handler = signal.getsignal(signum)
        if handler not in (signal.SIG_IGN, None):
            previous[signum] = handler
            signal.signal(signum, note)
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


class StopCheck(keras.callbacks.Callback):
    """At each epoch end, a Ctrl-C or SIGTERM that was noticed but lost (`noticed_signals`) stops training."""

    def on_epoch_end(self, epoch, logs=None):
        if _signalled.is_set():
            raise KeyboardInterrupt


def _log_order(item: tuple[str, Any]) -> tuple[bool, bool]:
    """loss, metrics, val_loss, val_metrics (Keras sorts them alphabetically)."""
    name = item[0]
    return name.startswith("val_"), name.removeprefix("val_") != "loss"


def _plain(value: Any) -> Any:
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    if hasattr(value, "numpy"):
        return float(value.numpy())
    return value


class EpochLogger(keras.callbacks.Callback):
    """One line per epoch (epoch, loss, metrics, time, ETA) within 80 columns; reads well in a terminal and a log.

    The ETA averages the recent epochs of this process after its first, which includes compilation.
    """

    def __init__(self, history: list[dict], stream=None):
        super().__init__()
        self.history = history
        self.stream = stream or sys.stdout
        self.times: list[float] = []

    def on_epoch_end(self, epoch, logs=None):
        total = self.params.get("epochs") or epoch + 1
        row = self.history[-1] if self.history else {}
        width = len(str(total))
        parts = [f"epoch {epoch + 1:>{width}}/{total}"]
        parts += [f"{_short_name(k)} {_fmt(v)}" for k, v in row.items() if k not in ("epoch", "learning_rate", "time_s")]
        seconds = row.get("time_s", 0.0)
        self.times.append(seconds)
        recent = self.times[1:][-5:] or self.times
        eta = (sum(recent) / len(recent)) * (total - epoch - 1)
        parts += [f"{seconds:.1f}s" if seconds < 10 else f"{seconds:.0f}s", f"eta {_duration(eta)}"]
        print(" ".join(parts), file=self.stream, flush=True)


class ProgressBar(keras.callbacks.Callback):
    """On a terminal only: a line within the epoch (steps done, loss, steps per second), redrawn in place
    and cleared before the epoch's line, so log files keep one clean line per epoch."""

    def __init__(self, stream=None):
        super().__init__()
        self.stream = stream or sys.stdout
        self.enabled = bool(getattr(self.stream, "isatty", lambda: False)())
        self.epoch, self.start, self.drawn = 0, 0.0, 0.0

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch, self.start, self.drawn = epoch, time.perf_counter(), 0.0

    def on_train_batch_end(self, batch, logs=None):
        now = time.perf_counter()
        if not self.enabled or now - self.drawn < 0.2:
            return
        self.drawn = now
        steps = self.params.get("steps") or 0
        done = min(batch + 1, steps) if steps else batch + 1  # a call of several steps may end past the epoch
        filled = min(20, 20 * done // steps) if steps else 0
        loss = (logs or {}).get("loss")
        text = (f"epoch {self.epoch + 1}/{self.params.get('epochs')} [{'=' * filled}{' ' * (20 - filled)}] "
                f"{done}/{steps or '?'}" + (f"  loss {_fmt(float(loss))}" if loss is not None else "")
                + f"  {done / max(now - self.start, 1e-9):.0f} steps/s")
        self.stream.write("\r" + text[:79] + "\x1b[K")
        self.stream.flush()

    def on_epoch_end(self, epoch, logs=None):
        if self.enabled and self.drawn:
            self.stream.write("\r\x1b[K")
            self.stream.flush()


_SHORT_NAMES = {"accuracy": "acc", "sparse_categorical_accuracy": "acc", "categorical_accuracy": "acc",
                "binary_accuracy": "acc", "mean_absolute_error": "mae", "mean_squared_error": "mse"}


def _short_name(key: str) -> str:
    prefix = "val_" if key.startswith("val_") else ""
    name = key.removeprefix("val_")
    return prefix + _SHORT_NAMES.get(name, name)


def _fmt(value: float) -> str:
    return f"{value:.4f}" if math.isfinite(value) and abs(value) < 1e4 else f"{value:.4g}"


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m{seconds:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


class NormalizedError(keras.callbacks.Callback):
    """Adds the lab's normalised error to each epoch's logs: MSE divided by the variance of the targets.

    `nmse` uses the training targets' variance, `val_nmse` the validation targets'. It must come
    before RunCheckpoint in the callback list so the values reach history.csv and the progress line.
    """

    def __init__(self, y_train: np.ndarray, y_val: np.ndarray, mse_key: str = "loss"):
        super().__init__()
        self.variances = {"": float(np.var(y_train)), "val_": float(np.var(y_val))}
        self.mse_key = mse_key

    def on_epoch_end(self, epoch, logs=None):
        if logs is None:
            return
        for prefix, variance in self.variances.items():
            value = logs.get(prefix + self.mse_key)
            if value is not None and variance > 0:
                logs[prefix + "nmse"] = float(value) / variance

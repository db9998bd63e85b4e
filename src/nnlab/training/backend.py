"""Everything backend-specific: which Keras backend, its device, determinism, threads, jit and versions.

`configure` must run before Keras is imported: the backend, the visible devices and the thread
pools are fixed at import. Callers that only need to know a saved run's backend (evaluate,
predict, export) use `run_backend` + `configure`.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import importlib.util
import os
import sys
from pathlib import Path
from typing import Any

from nnlab.errors import ConfigError, one_line

BACKENDS = ("tensorflow", "jax")
DEVICES = ("auto", "cpu", "gpu")
EXTRAS = {"tensorflow": "tf-cpu", "jax": "jax"}  # the pip extra that installs each backend
THREADS_ENV = "NNLAB_THREADS"
# Environment variables that change which kernels run or how they round: recorded in meta.json when set.
NUMERIC_ENV = ("TF_ENABLE_ONEDNN_OPTS", "TF_DETERMINISTIC_OPS", "TF_CUDNN_DETERMINISTIC", "TF_XLA_FLAGS", "XLA_FLAGS",
               "OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "OPENBLAS_CORETYPE",
               "JAX_ENABLE_X64", "JAX_DEFAULT_MATMUL_PRECISION", "JAX_PLATFORMS", "CUDA_VISIBLE_DEVICES")


def choose(requested: str | None = None, *, key: str = "backend") -> str:
    """The backend to run on: `requested` (--backend or the file's `backend:`), else $KERAS_BACKEND, else tensorflow.

    Raises ConfigError (exit 2, one line) for an unknown backend or one that is not installed.
    """
    name = requested or os.environ.get("KERAS_BACKEND") or "tensorflow"
    if not requested and os.environ.get("KERAS_BACKEND"):
        key = "KERAS_BACKEND"
    if name not in BACKENDS:
        raise ConfigError(f"{key}: expected one of {', '.join(BACKENDS)} (got {name!r})")
    if importlib.util.find_spec(name) is None:
        other = [b for b in BACKENDS if b != name and importlib.util.find_spec(b) is not None]
        hint = f", or choose the installed one with --backend {other[0]}" if other else ""
        raise ConfigError(f"{key}: {name} is not installed; install it with: pip install 'nnlab[{EXTRAS[name]}]'{hint}")
    return name


def threads(requested: int | None = None) -> int | None:
    """Threads per process: --threads, else $NNLAB_THREADS, else None (the backend's default: every core)."""
    if requested is not None:
        if requested < 1:
            raise ConfigError(f"--threads: expected a whole number >= 1 (got {requested})")
        return requested
    text = os.environ.get(THREADS_ENV, "").strip()
    if not text:
        return None
    if not text.isdigit() or int(text) < 1:
        raise ConfigError(f"{THREADS_ENV}: expected a whole number >= 1 (got {text[:40]!r})")
    return int(text)


def run_backend(run_dir: str | Path) -> str | None:
    """The backend a run folder was trained on (meta.json, else config.yaml), or None when it says nothing."""
    import json

    from nnlab import runs

    run_dir = Path(run_dir)
    with contextlib.suppress(OSError, ValueError):
        name = json.loads((run_dir / runs.META).read_text()).get("device", {}).get("backend")
        if name in BACKENDS:
            return name
    with contextlib.suppress(OSError, ValueError):
        from nnlab.config.yaml_io import parse_yaml  # the leaf module: nnlab.config loads the registries

        name = (parse_yaml((run_dir / runs.CONFIG).read_text()) or {}).get("backend")
        if name in BACKENDS:
            return name
    return None


def configure_for_run(run_dir: str | Path, backend: str | None = None, device: str = "auto", *,
                      seed: int = 0) -> dict[str, Any]:
    """`configure` for a command that loads a saved run (inspect, evaluate, predict, export): the run's own
    backend unless `backend` (a --backend option) says otherwise; $KERAS_BACKEND/tensorflow for old runs.
    Seeded with the run's seed, right away: nothing these commands do needs a later seeding point."""
    info = configure(device, backend=backend or run_backend(run_dir))
    seed_everything(seed)
    return info


def configure(device: str = "auto", *, backend: str | None = None, deterministic: bool = False,
              num_threads: int | None = None) -> dict[str, Any]:
    """Select the backend, device and thread pools, make ops deterministic if asked; seeds nothing.

    Returns what was used (recorded as meta.json's `device`). Must run before Keras is imported;
    called again in the same process it checks that the backend has not changed. Seeding is
    `seed_everything`, called by the caller right before the first step that draws random numbers.
    """
    if device not in DEVICES:
        raise ConfigError(f"--device: expected one of {', '.join(DEVICES)} (got {device!r})")
    backend = choose(backend)
    num_threads = threads(num_threads)
    if "keras" in sys.modules:
        import keras

        if keras.backend.backend() != backend:
            raise ConfigError(f"backend: this process already runs Keras on {keras.backend.backend()}; "
                              f"{backend} needs a fresh process")
    os.environ["KERAS_BACKEND"] = backend
    info: dict[str, Any] = {"requested": device, "backend": backend, "deterministic": deterministic,
                            "threads": num_threads}
    with _keras_without_sklearn():
        if backend == "jax":
            info.update(_configure_jax(device, deterministic, num_threads))
        else:
            info.update(_configure_tensorflow(device, deterministic, num_threads))
        import keras

    info["keras"] = keras.__version__
    info.update(machine())
    return info


def machine() -> dict[str, Any]:
    """The hardware and settings a run's numbers depend on beyond the config: processor, the CPUs this process
    may use (threads split reductions differently), and the numeric environment variables that are set."""
    import platform

    cpu = platform.processor()
    with contextlib.suppress(OSError):
        with open("/proc/cpuinfo") as f:
            cpu = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), cpu)
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    env = {name: one_line(os.environ[name], 300) for name in NUMERIC_ENV if os.environ.get(name)}
    return {"machine": platform.machine(), "cpu": one_line(cpu, 200) or None, "cpus": cpus, "environment": env}


def seed_everything(seed: int) -> None:
    """Seed Python's `random`, NumPy's global generator and Keras's (the backend's) random state.

    The one seeding point of a run: `experiment` calls it right before the data is loaded, after every
    check, so that a check which happens to draw random numbers (instantiating a Keras initializer draws
    a default seed from Python's `random`) cannot move the run's random stream. The golden runs
    (tests/test_golden_runs.py) fail when something draws in between.
    """
    import keras

    keras.utils.set_random_seed(seed)


def _configure_tensorflow(device: str, deterministic: bool, num_threads: int | None) -> dict[str, Any]:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep TensorFlow's start-up chatter out of logs
    if device == "cpu":
        os.environ["CUDA_VISIBLE_DEVICES"] = "-1"  # only effective before TensorFlow is imported
    fresh = "tensorflow" not in sys.modules
    with _quiet_stderr():
        import tensorflow as tf

    if num_threads and fresh:  # thread pools can be sized only before TensorFlow runs its first op
        tf.config.threading.set_intra_op_parallelism_threads(num_threads)
        tf.config.threading.set_inter_op_parallelism_threads(num_threads)
    gpus = tf.config.list_physical_devices("GPU")
    if device == "cpu" and gpus:
        tf.config.set_visible_devices([], "GPU")
        gpus = []
    if device == "gpu" and not gpus:
        raise ConfigError("--device gpu: TensorFlow sees no GPU on this machine (install nnlab[cuda] on a GPU host)")
    for gpu in gpus:
        try:
            tf.config.experimental.set_memory_growth(gpu, True)
        except RuntimeError:  # already initialised in this process
            pass
    if deterministic:
        tf.config.experimental.enable_op_determinism()
    return {"used": "gpu" if gpus else "cpu", "gpus": [gpu.name for gpu in gpus], "tensorflow": tf.__version__,
            "threads": tf.config.threading.get_intra_op_parallelism_threads() or None}  # what TF really uses


def _configure_jax(device: str, deterministic: bool, num_threads: int | None) -> dict[str, Any]:
    if device == "cpu":
        os.environ["JAX_PLATFORMS"] = "cpu"
    fresh = "jax" not in sys.modules  # XLA reads its flags when JAX starts
    flags = os.environ.get("XLA_FLAGS", "").split()
    if num_threads and fresh:
        flags += _limit_cpus(num_threads)
    if deterministic:
        flags += ["--xla_gpu_deterministic_ops=true"]  # XLA on CPU is deterministic already
    if flags:
        os.environ["XLA_FLAGS"] = " ".join(dict.fromkeys(flags))
    import jax

    cache = None
    if fresh and not os.environ.get("JAX_COMPILATION_CACHE_DIR") and importlib.util.find_spec("filelock"):
        # Compiled programs kept on disk: a second run of the same model (a sweep's next trial, a rerun)
        # skips compiling its initialisers and steps, seconds per run of a small model. The size cap
        # needs filelock (in nnlab[jax]); without it no cache, rather than one that grows without end.
        from nnlab.runs import cache_root

        cache = str(cache_root() / "jax")
        jax.config.update("jax_compilation_cache_dir", cache)
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 0)
        jax.config.update("jax_compilation_cache_max_size", 2**30)  # least recently used evicted beyond 1 GiB
    gpus = [d for d in jax.devices() if d.platform in ("gpu", "cuda", "rocm")]
    if device == "gpu" and not gpus:
        raise ConfigError("--device gpu: JAX sees no GPU on this machine (install jax[cuda12] on a GPU host)")
    _hide_tensorflow()
    return {"used": "gpu" if gpus else "cpu", "gpus": [str(d) for d in gpus], "jax": jax.__version__,
            "jaxlib": importlib.metadata.version("jaxlib"), "threads": num_threads if fresh else None,
            "compilation_cache": cache or os.environ.get("JAX_COMPILATION_CACHE_DIR")}


def _limit_cpus(num_threads: int) -> list[str]:
    """XLA has no thread-count flag: its CPU thread pool is as large as the CPUs the process may run on. So
    the process is confined to `num_threads` of them, taken with `claim_cpus`: free ones first, so that two
    sweeps, or a sweep and an `nnlab train --threads 1`, on one machine do not share a CPU while another idles;
    a sweep worker (NNLAB_CPU_SLOT = the worker's number) tries its own slot's first. One thread also turns off
    Eigen's own threads. Returns XLA flags."""
    cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    if 0 < num_threads < len(cpus):
        slot = os.environ.get("NNLAB_CPU_SLOT", "0")
        start = (int(slot) if slot.isdigit() else 0) * num_threads % len(cpus)
        chosen, locks = claim_cpus(cpus[start:] + cpus[:start], num_threads)
        _CPU_LOCKS.extend(locks)
        os.sched_setaffinity(0, chosen)
    return ["--xla_cpu_multi_thread_eigen=false"] if num_threads == 1 else []


_CPU_LOCKS: list[int] = []  # kept open for the process's life; the kernel frees a flock however the process ends


def claim_cpus(order: list[int], n: int) -> tuple[list[int], list[int]]:
    """`n` CPUs, the first in `order` that no other process holds (an exclusive flock on a file per CPU in the
    cache folder), topped up from the start of `order` when fewer are free. Returns (CPUs, lock descriptors
    to keep open); without a writable cache folder, the first `n` in `order` and no locks."""
    import fcntl

    from nnlab.runs import cache_root

    taken: list[int] = []
    locks: list[int] = []
    try:
        folder = cache_root() / "cpus"
        folder.mkdir(parents=True, exist_ok=True)
        for cpu in order:
            if len(taken) == n:
                break
            fd = os.open(folder / f"cpu{cpu}.lock", os.O_RDWR | os.O_CREAT, 0o666)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:  # held by another process
                os.close(fd)
                continue
            taken.append(cpu)
            locks.append(fd)
    except OSError:
        pass
    return sorted(taken + [cpu for cpu in order if cpu not in taken][: n - len(taken)]), locks


def _hide_tensorflow() -> None:
    """Keep TensorFlow out of a JAX process: Keras's serializer asks `tf.available` (importing it, ~2.5 s)
    only to test isinstance(obj, tf.TensorShape), which nothing in a JAX run is."""
    from keras.src.utils import module_utils

    if "tensorflow" not in sys.modules:
        module_utils.tensorflow._available = False


def jit_compile(model) -> bool:
    """XLA compilation chosen on purpose, never taken from a loaded checkpoint: always on JAX (eager JAX
    runs ~100x slower); on TensorFlow Keras's own rule (XLA only on a GPU, for layers it can compile)."""
    import keras
    from keras.src.trainers.trainer import model_supports_jit

    if keras.backend.backend() == "jax":
        return True
    import tensorflow as tf

    return bool(tf.config.list_logical_devices("GPU")) and model_supports_jit(model)


def set_jit(model) -> bool:
    """Give a compiled (or loaded) model this backend's jit_compile; return the value."""
    import keras

    if keras.backend.backend() == "jax":
        for layer in model._flatten_layers():
            if layer.name.startswith("augment_"):  # Keras marks them jit-unsafe for TF's XLA; JAX compiles them
                layer.supports_jit = True
    value = jit_compile(model)
    model.jit_compile = value
    model.train_function = model.test_function = model.predict_function = None  # rebuilt with the new flag
    return value


@contextlib.contextmanager
def _keras_without_sklearn():
    """Import Keras without scikit-learn: Keras imports it (with SciPy, ~0.7 s) only for its scikit-learn
    wrappers, which nnlab does not use (nor do its loaders: `datasets.base.split_off`)."""
    if "keras" in sys.modules or "sklearn" in sys.modules:
        yield
        return
    sys.modules["sklearn"] = None  # `import sklearn` raises ImportError, as if it were not installed
    try:
        yield
    finally:
        del sys.modules["sklearn"]


def import_keras():
    """`import keras` without TensorFlow's C++ start-up lines, as `configure` imports it: for a dataset's download,
    which may run before any `configure` (`nnlab sweep` loads the base's data in its own process to check the metric)."""
    with _quiet_stderr():
        import keras
    return keras


@contextlib.contextmanager
def _quiet_stderr():
    """Silence the C++ log lines TensorFlow prints at import (TF_CPP_MIN_LOG_LEVEL no longer stops them)."""
    if "tensorflow" in sys.modules or os.environ.get("NNLAB_DEBUG"):
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


class JaxWindowSteps:
    """Truncated BPTT on JAX: one batch of whole sequences trained window after window in one compiled call.

    Keras's `train_on_batch` costs more Python per call than a small recurrent model's window costs to
    train (it reads and writes back every variable each time). Here the model's own `train_step` runs
    in a `lax.scan` over the windows: the carried recurrent states are zeroed at the start of the
    batch and passed from each window's step to the next (gradients stop at the borders, as each
    window is its own step); metrics are reset before each window, so each window's logs are its own.
    The variables live in `state` between `load` and `store`; the scan donates them.
    """

    def __init__(self, model, carried: set[int], window: int, sample: tuple):
        """`sample`: one batch of whole training sequences (x, y), for the shapes."""
        import jax
        import jax.numpy as jnp

        self.model = model
        length = sample[0].shape[1]
        model._symbolic_build(data_batch=tuple(a[:, :window] for a in sample))  # compiled metrics get their variables
        zero = [i for i, v in enumerate(model.non_trainable_variables) if id(v) in carried]
        model.reset_metrics()
        fresh_metrics = [v.value for v in model.metrics_variables]
        full, rest = divmod(length, window)

        def train(state, x, y):
            trainable, non_trainable, optimizer = state
            non_trainable = [jnp.zeros_like(v) if i in zero else v for i, v in enumerate(non_trainable)]

            def one(carry, xy):
                logs, (*variables, _) = model.train_step((*carry, fresh_metrics), xy)
                return tuple(variables), logs

            def windows(a):  # (batch, length, ...) -> (full windows, batch, window, ...)
                a = a[:, : full * window]
                return jnp.swapaxes(a.reshape(a.shape[0], full, window, *a.shape[2:]), 0, 1)

            carry, logs = jax.lax.scan(one, (trainable, non_trainable, optimizer), (windows(x), windows(y)))
            logs = [logs]
            if rest:
                carry, last = one(carry, (x[:, full * window :], y[:, full * window :]))
                logs.append(jax.tree.map(lambda v: v[None], last))
            return carry, logs

        self._train = jax.jit(train, donate_argnums=0)
        self.sizes = [window] * full + ([rest] if rest else [])
        self.state = None

    def load(self) -> None:
        m = self.model
        self.state = tuple([v.value for v in vs] for vs in (m.trainable_variables, m.non_trainable_variables,
                                                           m.optimizer.variables))

    def store(self) -> None:
        m = self.model
        if self.state is not None and not any(v.is_deleted() for values in self.state for v in values):
            # (deleted: a Ctrl-C landed inside a step that had taken the buffers; the model keeps its last epoch)
            for variables, values in zip((m.trainable_variables, m.non_trainable_variables, m.optimizer.variables),
                                         self.state):
                for variable, value in zip(variables, values):
                    variable.assign(value)
        self.state = None

    def train(self, x, y) -> list[tuple[dict[str, float], int]]:
        """Each window's logs and length, in order."""
        import numpy as np

        self.state, parts = self._train(self.state, x, y)
        logs = {k: np.concatenate([np.asarray(p[k]).reshape(-1) for p in parts]) for k in parts[0]}
        return [({k: float(v[i]) for k, v in logs.items()}, size) for i, size in enumerate(self.sizes)]


__all__ = ["BACKENDS", "EXTRAS", "JaxWindowSteps", "choose", "configure", "configure_for_run",
           "claim_cpus", "jit_compile", "machine", "run_backend", "seed_everything", "set_jit", "threads"]

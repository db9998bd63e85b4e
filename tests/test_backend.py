"""Backend choice: JAX runs without TensorFlow, what meta.json records, resume on another backend, bad input."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from nnlab.training import backend

from conftest import nnlab, pretend_interrupted, tiny_digits_config, write_config
from test_train import history, only_run

# Runs the CLI in-process, then says which heavy modules it loaded.
PROBE = """
import sys
{before}
from nnlab.cli.main import app
sys.argv = ["nnlab", *{args!r}]
try:
    app()
except SystemExit as exc:
    print("EXIT:", exc.code)
print("LOADED:" + ",".join(sorted(m for m in ("tensorflow", "jax") if sys.modules.get(m) is not None)))
"""


def probe(*args: str, before: str = "", env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", PROBE.format(args=list(args), before=before)], capture_output=True,
                          text=True, env={**os.environ, **(env or {})}, timeout=300)


def succeeded(result: subprocess.CompletedProcess) -> bool:
    return all(line in ("EXIT: 0", "EXIT: None") for line in result.stdout.splitlines() if line.startswith("EXIT:"))


def test_jax_run_never_imports_tensorflow_and_records_its_versions(tmp_path, runs_dir, monkeypatch):
    monkeypatch.delenv("JAX_COMPILATION_CACHE_DIR", raising=False)  # nnlab's own cache folder, not the suite's
    config = write_config(tmp_path / "tiny.yaml", tiny_digits_config(epochs=2))
    result = probe("train", str(config), "--backend", "jax", env={"NNLAB_THREADS": "1", "KERAS_BACKEND": "tensorflow"})
    assert result.returncode == 0 and succeeded(result), result.stderr
    assert result.stdout.strip().splitlines()[-1] == "LOADED:jax"  # TensorFlow is installed, but never imported
    run_dir = only_run(runs_dir)
    meta = json.loads((run_dir / "meta.json").read_text())
    assert meta["status"] == "completed"
    device = meta["device"]
    assert (device["backend"], device["used"], device["jit_compile"], device["threads"]) == ("jax", "cpu", True, 1)
    assert {"jax", "jaxlib", "keras"} <= set(meta["versions"]) and "tensorflow" not in meta["versions"]
    # What the numbers depend on beyond the config: one CPU (NNLAB_THREADS=1 confines JAX), XLA's flags.
    assert device["cpus"] == 1 and device["machine"] and "cpu" in device
    assert "--xla_cpu_multi_thread_eigen=false" in device["environment"]["XLA_FLAGS"]
    cache = tmp_path / "cache" / "jax"  # NNLAB_CACHE_DIR (conftest): the next run of this model skips compiling
    assert device["compilation_cache"] == str(cache) and any(cache.glob("jit_*"))
    assert yaml.safe_load((run_dir / "config.yaml").read_text())["backend"] == "jax"  # --backend beats $KERAS_BACKEND
    phases = meta["timings_s"]
    assert {"startup", "backend", "data", "build", "fit", "checkpoints", "evaluate", "save", "plots", "total"} <= set(phases)
    assert phases["total"] >= phases["fit"] > 0
    # ONNX export of a JAX run: tf2onnx converts it on TensorFlow, checked against the Keras model there.
    exported = nnlab("export", str(run_dir), "--format", "onnx", "--out", str(tmp_path / "model.onnx"))
    assert exported.returncode == 0, exported.stderr
    assert exported.stdout.splitlines()[1].startswith("checked: reloaded with onnxruntime and run on 8 validation")


def test_resume_on_the_other_backend_updates_versions_and_chooses_its_own_jit(tmp_path, runs_dir):
    """A TensorFlow checkpoint (stored jit_compile False) resumed on JAX runs compiled, and meta.json says JAX."""
    config = write_config(tmp_path / "tiny.yaml", {**tiny_digits_config(epochs=1), "backend": "tensorflow"})
    assert nnlab("train", str(config)).returncode == 0
    run_dir = only_run(runs_dir)
    meta = pretend_interrupted(run_dir, epochs=2)
    assert meta["device"]["jit_compile"] is False and "tensorflow" in meta["versions"]

    result = probe("train", "--resume", run_dir.name, "--backend", "jax", env={"KERAS_BACKEND": "tensorflow"})
    assert result.returncode == 0 and succeeded(result), result.stderr
    assert result.stdout.strip().splitlines()[-1] == "LOADED:jax"
    meta = json.loads((run_dir / "meta.json").read_text())
    assert meta["status"] == "completed" and meta["resumes"] == 1
    assert (meta["device"]["backend"], meta["device"]["jit_compile"]) == ("jax", True)
    assert "jax" in meta["versions"] and "tensorflow" not in meta["versions"]
    assert [int(r["epoch"]) for r in history(run_dir)] == [1, 2]
    assert yaml.safe_load((run_dir / "config.yaml").read_text())["backend"] == "jax"  # a later resume continues on JAX


@pytest.mark.parametrize("args, before, env, message", [
    (["--backend", "jax"], "sys.modules['jax'] = None  # as if not installed", {},
     "--backend: jax is not installed; install it with: pip install 'nnlab[jax]'"),
    ([], "sys.modules['tensorflow'] = None", {"KERAS_BACKEND": ""},
     "backend: tensorflow is not installed; install it with: pip install 'nnlab[tf-cpu]', or choose the installed "
     "one with --backend jax"),
    (["--backend", "torch"], "", {}, "--backend: expected one of tensorflow, jax (got 'torch')"),
    ([], "", {"KERAS_BACKEND": "torch"}, "KERAS_BACKEND: expected one of tensorflow, jax (got 'torch')"),
    (["--threads", "0"], "", {}, "--threads: expected a whole number >= 1 (got 0)"),
    ([], "", {"NNLAB_THREADS": "many"}, "NNLAB_THREADS: expected a whole number >= 1 (got 'many')"),
], ids=["jax-missing", "tf-missing", "unknown", "unknown-env", "threads", "threads-env"])
def test_bad_backend_or_threads_is_one_line_exit_2_before_any_import(tmp_path, runs_dir, args, before, env, message):
    config = write_config(tmp_path / "tiny.yaml", tiny_digits_config())
    result = probe("train", str(config), *args, before=before, env=env)
    lines = result.stdout.strip().splitlines()
    assert lines[-2:] == ["EXIT: 2", "LOADED:"], result.stderr
    assert result.stderr.startswith("error: ") and message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not runs_dir.exists() or not list(runs_dir.iterdir())  # nothing left looking like a run


def test_evaluation_reuses_fit_validation_only_where_it_is_the_same_number(tmp_path):
    """metrics.json's val loss/accuracy come from fit's last epoch; they equal a fresh evaluation of the saved model."""
    import io

    import keras

    from nnlab import datasets, experiment
    from nnlab.config import load_config

    config = write_config(tmp_path / "tiny.yaml", tiny_digits_config(epochs=2))
    run_dir = experiment.train(config, runs_dir=tmp_path / "runs", stream=io.StringIO())
    metrics = json.loads((run_dir / "metrics.json").read_text())
    last = history(run_dir)[-1]
    assert metrics["val"]["loss"] == float(last["val_loss"])
    model = keras.models.load_model(run_dir / "model.keras")
    data = datasets.load(load_config(run_dir / "config.yaml").data)
    fresh = model.evaluate(data.x_val, data.y_val, verbose=0, return_dict=True)
    assert metrics["val"]["loss"] == pytest.approx(fresh["loss"], rel=1e-5)
    assert metrics["val"]["accuracy"] == pytest.approx(fresh["accuracy"])


def _pinned_jax(threads: int, slot: str, cache: Path) -> subprocess.CompletedProcess:
    """A fresh process that configures JAX with `threads` as sweep worker `slot`, its CPU locks in `cache`."""
    code = ("import os; from nnlab.training import backend; info = backend.configure(backend='jax', "
            f"num_threads={threads}); import jax.numpy as jnp; float(jnp.ones(3).sum()); "
            "print(sorted(os.sched_getaffinity(0)), os.environ.get('XLA_FLAGS', ''))")
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "NNLAB_CPU_SLOT": slot, "XLA_FLAGS": "", "NNLAB_CACHE_DIR": str(cache)})


@pytest.mark.parametrize("threads, slot", [(1, "0"), (1, "1"), (2, "0"), (64, "0")])
def test_jax_threads_confine_the_process_to_that_many_cpus(threads, slot, tmp_path):
    """XLA sizes its CPU pool from the CPUs the process may use: --threads N confines it to N of them (sweep
    worker k to its own ones), one thread also turns Eigen's pool off; and XLA accepts the flags (an unknown
    one aborts the process)."""
    result = _pinned_jax(threads, slot, tmp_path)
    assert result.returncode == 0, result.stderr
    cpus = sorted(os.sched_getaffinity(0))
    start = int(slot) * threads % len(cpus)
    want = (cpus * 2)[start : start + threads] if threads < len(cpus) else cpus
    assert result.stdout.strip() == f"{want} {'--xla_cpu_multi_thread_eigen=false' if threads == 1 else ''}".strip()


def test_a_cpu_another_process_holds_is_passed_over(tmp_path, monkeypatch):
    """Two sweeps on one machine both have a worker 0: the second's trials must not share the first's CPU while
    another idles. A process holds its CPUs (a flock per CPU) until it exits; the next takes free ones first,
    and only when none is free the ones its slot names."""
    monkeypatch.setenv("NNLAB_CACHE_DIR", str(tmp_path))
    first, first_locks = backend.claim_cpus([0, 1, 2], 1)
    second, second_locks = backend.claim_cpus([0, 1, 2], 1)
    third, third_locks = backend.claim_cpus([0, 1, 2], 2)  # one CPU free: it, and the first of its order
    assert (first, second, third) == ([0], [1], [0, 2])
    assert (len(first_locks), len(second_locks), len(third_locks)) == (1, 1, 1)
    for fd in first_locks + third_locks:
        os.close(fd)  # as when those processes exit
    again, again_locks = backend.claim_cpus([0, 1, 2], 2)
    assert again == [0, 2]
    for fd in second_locks + again_locks:
        os.close(fd)

    cpus = sorted(os.sched_getaffinity(0))  # a real process started as worker 0 of a second sweep
    held, locks = backend.claim_cpus(cpus, 1)
    result = _pinned_jax(1, "0", tmp_path)
    for fd in locks:
        os.close(fd)
    assert result.returncode == 0, result.stderr
    assert held == cpus[:1]
    assert result.stdout.startswith(f"{cpus[1:2] if len(cpus) > 1 else cpus} ")

"""Golden runs: a config and a seed give the same numbers, release after release.

Five tiny but real configurations (tests/golden.py: an MLP, a CNN with augmentation, a GRU with truncated
BPTT, a seq2seq LSTM, a CNN+LSTM) are trained on the backend of this test pass (TensorFlow with
deterministic ops, JAX on the CPU), one thread, and every history number and final metric is compared
exactly with tests/golden_runs.json's numbers for this backend and CPU class (tests/golden.py says why the
class). A change that shifts a random stream or a numeric path fails here. Moving the numbers on purpose is
one command, `make golden`, and a commit message that says why.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import yaml
from conftest import nnlab, pretend_interrupted, write_config
import golden
from golden import CONFIGS, GOLDEN_FILE, cpu_class, numbers, write_mnist

BACKEND = os.environ.get("KERAS_BACKEND") or "tensorflow"
UPDATE_HINT = "if the change is meant, run `make golden` and say why in the commit message"
OTHER_CPU_TOLERANCE = 1e-6  # relative; for a CPU class with no stored numbers (tests/golden.py)


def differences(stored, got, path: str = "", rel: float = 0.0) -> list[str]:
    """Every place where two numbers trees differ (by more than `rel`, relative): `mlp.history[1].loss: stored
    2.24, got 2.25`."""
    if isinstance(stored, dict) and isinstance(got, dict):
        out = [f"{path}.{k}".lstrip(".") + ": stored only" for k in stored if k not in got]
        out += [f"{path}.{k}".lstrip(".") + ": new, not stored" for k in got if k not in stored]
        return out + [d for k in stored if k in got for d in differences(stored[k], got[k], f"{path}.{k}", rel)]
    if isinstance(stored, list) and isinstance(got, list) and len(stored) == len(got):
        return [d for i, (a, b) in enumerate(zip(stored, got)) for d in differences(a, b, f"{path}[{i}]", rel)]
    same = stored == got or (rel > 0 and isinstance(stored, float) and isinstance(got, float)
                             and abs(stored - got) <= rel * max(abs(stored), abs(got)))
    return [] if same else [f"{path.lstrip('.')}: stored {stored!r}, got {got!r}"]


def stored_numbers() -> tuple[dict, float, str]:
    """This backend's stored numbers for this CPU class, compared exactly; else another class's, compared within
    OTHER_CPU_TOLERANCE; and which class they are. Empty when the backend has none."""
    classes = json.loads(GOLDEN_FILE.read_text()).get(BACKEND, {}) if GOLDEN_FILE.is_file() else {}
    if cpu_class() in classes:
        return classes[cpu_class()], 0.0, cpu_class()
    other = min(classes, default="")
    return classes.get(other, {}), OTHER_CPU_TOLERANCE, other


def test_golden_runs_give_the_stored_numbers(isolated, request):
    write_mnist(isolated / "data" / "mnist")  # $NNLAB_DATA_DIR/mnist for the digit sums
    env = {**os.environ, "NNLAB_THREADS": "1"}
    result = subprocess.run([sys.executable, str(Path(__file__).with_name("golden.py")), str(isolated / "golden")],
                            capture_output=True, text=True, env=env, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    got = json.loads(result.stdout)
    assert list(got) == list(CONFIGS)
    if request.config.getoption("--update-golden"):
        everything = json.loads(GOLDEN_FILE.read_text()) if GOLDEN_FILE.is_file() else {}
        everything.setdefault(BACKEND, {})[cpu_class()] = got
        GOLDEN_FILE.write_text(json.dumps(everything, indent=1, sort_keys=True) + "\n")
        return
    stored, rel, stored_class = stored_numbers()
    assert stored, f"{GOLDEN_FILE.name} has no numbers for {BACKEND}; {UPDATE_HINT}"
    found = differences(stored, got, rel=rel)
    shown = "exactly" if not rel else f"within {rel:g} (no numbers stored for CPU class {cpu_class()})"
    assert not found, (f"{len(found)} golden numbers moved on {BACKEND}, compared {shown} with {stored_class}'s:\n"
                       + "\n".join(found[:20]) + f"\n{UPDATE_HINT}")


def test_train_resume_and_sweep_trial_give_the_golden_numbers(tmp_path, runs_dir):
    """The golden MLP trained by `nnlab train` alone, stopped after one epoch and resumed, and as a sweep's
    trial: each run's numbers equal the stored ones (which were trained after four other runs in one process)."""
    stored, rel, _ = stored_numbers()
    stored = stored["mlp"]
    config = write_config(tmp_path / "mlp.yaml", CONFIGS["mlp"])
    env = {"NNLAB_THREADS": "1"}
    alone = nnlab("train", str(config), env=env)
    assert alone.returncode == 0, alone.stderr
    first = sorted(runs_dir.iterdir())
    assert differences(stored, numbers(first[0]), rel=rel) == []

    stopped = nnlab("train", str(config), "train.epochs=1", env=env)
    assert stopped.returncode == 0, stopped.stderr
    (resumed_dir,) = set(runs_dir.iterdir()) - set(first)
    pretend_interrupted(resumed_dir, epochs=CONFIGS["mlp"]["train"]["epochs"])
    resumed = nnlab("train", "--resume", resumed_dir.name, env=env)
    assert resumed.returncode == 0, resumed.stderr
    assert "after epoch 1/3" in resumed.stdout
    assert differences(stored, numbers(resumed_dir), rel=rel) == []

    sweep = write_config(tmp_path / "sweep.yaml", {
        "base": str(config), "method": "grid", "metric": {"name": "val_accuracy", "goal": "maximize"},
        "parameters": {"train.epochs": {"values": [CONFIGS["mlp"]["train"]["epochs"]]}}})
    swept = nnlab("sweep", str(sweep), "--threads", "1")
    assert swept.returncode == 0, swept.stderr
    (trial_dir,) = {p for p in runs_dir.iterdir() if p.name != "sweeps"} - set(first) - {resumed_dir}
    assert yaml.safe_load((trial_dir / "config.yaml").read_text())["seed"] == CONFIGS["mlp"]["seed"]
    assert differences(stored, numbers(trial_dir), rel=rel) == []


def test_differences_name_each_moved_number():
    stored = {"mlp": {"history": [{"loss": 1.5, "accuracy": 0.5}], "metrics": {"val": {"loss": 1.0}}}}
    got = {"mlp": {"history": [{"loss": 1.5000001, "accuracy": 0.5}], "metrics": {"val": {"loss": 1.0, "mae": 2.0}}}}
    assert differences(stored, got) == ["mlp.history[0].loss: stored 1.5, got 1.5000001",
                                        "mlp.metrics.val.mae: new, not stored"]
    assert differences(stored, stored) == []
    assert differences(stored, got, rel=1e-6) == ["mlp.metrics.val.mae: new, not stored"]  # 1.5000001: within
    assert differences({"x": 1.0}, {"x": 1.00001}, rel=1e-6) == ["x: stored 1.0, got 1.00001"]


def test_the_cpu_class_names_the_architecture_and_its_widest_vector_instructions():
    import platform

    assert cpu_class().split("-")[0] == platform.machine()
    assert cpu_class() in {platform.machine(), *(f"{platform.machine()}-{level}" for level in golden.VECTOR_LEVELS)}


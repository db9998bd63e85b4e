"""`nnlab --help`, `nnlab list` and `nnlab runs` must stay instant: no TensorFlow, Keras or matplotlib."""

from __future__ import annotations

import subprocess
import sys

import pytest

HEAVY = ("tensorflow", "keras", "jax", "matplotlib", "sklearn", "optuna")

PROBE = """
import sys
from nnlab.cli.main import app
sys.argv = ["nnlab", *{args!r}]
try:
    app()
except SystemExit as exc:
    print("EXIT:" + str(exc.code))
print("LOADED:" + ",".join(sorted(m for m in {heavy!r} if m in sys.modules)))
"""


def probe(*args: str) -> tuple[str, str, str]:
    """Run nnlab in a fresh process; (exit code, heavy modules it imported, stderr). Also what the tests of
    input refused before Keras loads use (test_keras_names.py, test_evaluate.py)."""
    result = subprocess.run([sys.executable, "-c", PROBE.format(args=list(args), heavy=HEAVY)], capture_output=True,
                            text=True, timeout=300)
    lines = result.stdout.strip().splitlines()
    return lines[-2].removeprefix("EXIT:"), lines[-1].removeprefix("LOADED:"), result.stderr


@pytest.mark.parametrize("args", [["--help"], ["list"], ["runs"], ["train", "--help"], ["report", "--help"],
                                  ["compare", "--help"], ["inspect", "--help"], ["evaluate", "--help"],
                                  ["predict", "--help"], ["export", "--help"], ["sweep", "--help"]], ids=" ".join)
def test_command_imports_nothing_heavy(args):
    code, loaded, stderr = probe(*args)
    assert code == "0", stderr
    assert loaded == ""

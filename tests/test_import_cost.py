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
    code = exc.code
print("LOADED:" + ",".join(sorted(m for m in {heavy!r} if m in sys.modules)))
"""


@pytest.mark.parametrize("args", [["--help"], ["list"], ["runs"], ["train", "--help"], ["report", "--help"],
                                  ["compare", "--help"], ["inspect", "--help"], ["evaluate", "--help"],
                                  ["predict", "--help"], ["export", "--help"], ["sweep", "--help"]], ids=" ".join)
def test_command_imports_nothing_heavy(args):
    result = subprocess.run([sys.executable, "-c", PROBE.format(args=args, heavy=HEAVY)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "LOADED:"

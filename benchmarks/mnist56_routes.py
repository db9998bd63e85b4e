"""Two routes to the same MNIST-56 validation digits must give the same scores (issue 11, must-show 4).

Writes the course's `mnist56.npy` (an object array xtrain, ytrain, xval, yval; images in [0, 1]) from the
real MNIST files: xval/yval are every 5 and 6 of the test set in file order (what the mnist56 loader
validates on), xtrain/ytrain the 2,000 training digits the loader picks for seed 0. Then runs
`nnlab evaluate RUN` (the run's own IDX route) and
`nnlab evaluate RUN data.path=<mnist56.npy> data.allow_pickle=true` (the course file is a pickled object
array, so reading it needs the opt-in) and prints the validation scores of both next to the run's metrics.json.

Usage (repository root, after `nnlab train configs/mnist56_cnn.yaml` with NNLAB_DATA_DIR set):
    NNLAB_DATA_DIR=../shared/datasets .venv/bin/python benchmarks/mnist56_routes.py RUN [--npy PATH]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from nnlab import runs
from nnlab.datasets.mnist import read_mnist


def write_course_npy(path: Path, n_train: int = 2000, seed: int = 0) -> None:
    arrays, source = read_mnist(None, download=False)

    def five_six(x, y):
        keep = (y == 5) | (y == 6)
        return x[keep].astype("float32")[..., None] / 255.0, (y[keep] == 6).astype("float32")

    x_train, y_train = five_six(arrays["x_train"], arrays["y_train"])
    order = np.random.default_rng(seed).permutation(len(x_train))[:n_train]
    x_val, y_val = five_six(arrays["x_test"], arrays["y_test"])
    parts = np.empty(4, dtype=object)
    parts[:] = [x_train[order], y_train[order], x_val, y_val]
    np.save(path, parts, allow_pickle=True)
    print(f"wrote {path} from {source}: xtrain {x_train[order].shape}, xval {x_val.shape} "
          f"({int((y_val == 0).sum())} fives, {int((y_val == 1).sum())} sixes)")


def evaluate(run: str, *overrides: str) -> dict:
    command = [sys.executable, "-m", "nnlab.cli.main", "evaluate", run, *overrides]
    print("$ nnlab evaluate", run, *overrides, flush=True)
    result = subprocess.run(command, capture_output=True, text=True, check=True)
    print(result.stdout, end="")
    folder = Path(result.stdout.splitlines()[0].removeprefix("evaluation: "))
    return runs.read_json(folder / runs.METRICS)["val"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run")
    parser.add_argument("--npy", default=None, help="where to write mnist56.npy (default: a temporary folder)")
    args = parser.parse_args()
    run_dir = runs.find_run(args.run, runs.default_runs_dir())
    npy = Path(args.npy) if args.npy else Path(tempfile.mkdtemp()) / "mnist56.npy"
    write_course_npy(npy)
    trained = runs.read_json(run_dir / runs.METRICS)["val"]
    idx_route = evaluate(str(run_dir))
    npy_route = evaluate(str(run_dir), f"data.path={npy}", "data.allow_pickle=true")  # the file is an object array
    print(f"\n{'metric':<12} {'metrics.json':>14} {'evaluate IDX':>14} {'evaluate npy':>14}")
    for name in trained:
        print(f"{name:<12} {trained[name]:>14.6f} {idx_route[name]:>14.6f} {npy_route[name]:>14.6f}")
    same = all(trained[k] == idx_route[k] for k in trained) and trained["accuracy"] == npy_route["accuracy"]
    print("\nthe routes agree" if same else "\nTHE ROUTES DIFFER")
    sys.exit(0 if same else 1)


if __name__ == "__main__":
    main()

"""Per-epoch time of the addition model: nnlab vs a plain Keras script, side by side in one run.

Usage: .venv/bin/python benchmarks/addition_speed.py [--rounds 3] [--epochs 5]

Runs the plain script and `nnlab train configs/addition_lstm.yaml` alternately (so both see the
same machine load), drops each run's first epoch (graph tracing), and prints the medians and the
ratio nnlab / plain. nnlab's epoch time includes its checkpoint and history writing.
"""

from __future__ import annotations

import argparse
import csv
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def plain(epochs: int) -> list[float]:
    out = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "plain_addition.py"), str(epochs)],
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])["epoch_times"][1:]


def nnlab(epochs: int) -> list[float]:
    with tempfile.TemporaryDirectory() as runs_dir:
        subprocess.run([str(BIN / "nnlab"), "train", str(ROOT / "configs" / "addition_lstm.yaml"),
                        f"train.epochs={epochs}", "train.early_stopping=null", "--runs-dir", runs_dir],
                       capture_output=True, text=True, check=True)
        (history,) = Path(runs_dir).glob("*/history.csv")
        with history.open() as f:
            return [float(row["time_s"]) for row in csv.DictReader(f)][1:]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=5)
    args = parser.parse_args()
    times = {"plain": [], "nnlab": []}
    for round_ in range(args.rounds):
        for name, fn in (("plain", plain), ("nnlab", nnlab)) if round_ % 2 == 0 else (("nnlab", nnlab), ("plain", plain)):
            epoch_times = fn(args.epochs)
            times[name] += epoch_times
            print(f"round {round_ + 1} {name:<5} " + " ".join(f"{t:.2f}" for t in epoch_times), flush=True)
    medians = {name: statistics.median(values) for name, values in times.items()}
    print(f"median s/epoch: plain {medians['plain']:.3f}, nnlab {medians['nnlab']:.3f} "
          f"(n = {len(times['plain'])} epochs each)")
    print(f"ratio nnlab / plain: {medians['nnlab'] / medians['plain']:.3f}")


if __name__ == "__main__":
    main()

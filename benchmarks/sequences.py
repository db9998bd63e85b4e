"""Train sequence configs one after another and print a Markdown table of what they reached.

Usage (from the repository root; real MNIST for digitsum):
    NNLAB_DATA_DIR=../shared/datasets nice -n 10 .venv/bin/python benchmarks/sequences.py \
        configs/pulse_simplernn.yaml configs/pulse_gru.yaml configs/pulse_lstm.yaml [key=value ...]

Each config runs as `nnlab train` in a fresh process (so each has the machine to itself);
the table is read back from the run folders: parameters, data source, validation and test
scores, the best validation epoch, and the training time (sum of the epoch times).
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from nnlab import runs

MAIN = {"sequence_regression": ("nmse", "mae"), "regression": ("mae", "nmse"), "multiclass": ("accuracy", "log_loss")}


def run(config: str, overrides: list[str]) -> Path:
    out = subprocess.run([sys.executable, "-m", "nnlab.cli.main", "train", config, *overrides],
                         capture_output=True, text=True)
    match = re.search(r"run folder: (.+)", out.stdout)
    if out.returncode != 0 or not match:
        raise SystemExit(f"{config}: failed ({out.returncode}): {out.stderr.strip()}")
    return Path(match.group(1).strip())


def row(run_dir: Path) -> str:
    meta = runs.read_json(run_dir / runs.META)
    scores = runs.read_json(run_dir / runs.METRICS)
    history = runs.read_history(run_dir)
    first, second = MAIN[meta["task"]]
    best = min(history, key=lambda r: r.get(f"val_{first}", float("inf"))) if first != "accuracy" else \
        max(history, key=lambda r: r.get(f"val_{first}", 0.0))
    seconds = sum(r.get("time_s", 0.0) for r in history)
    test = scores.get("test", {})
    cells = [
        meta["name"], f"{meta['parameters']['total']:,}", meta["data"].get("source", "?"),
        f"{scores['val'][first]:.4f}", f"{scores['val'][second]:.4f}",
        f"{test[first]:.4f}" if first in test else "-", f"{test[second]:.4f}" if second in test else "-",
        f"{best.get(f'val_{first}', float('nan')):.4f} (epoch {best['epoch']})", str(len(history)),
        f"{seconds:.0f}", run_dir.name,
    ]
    return "| " + " | ".join(cells) + " |"


def main(argv: list[str]) -> None:
    configs = [a for a in argv if "=" not in a]
    overrides = [a for a in argv if "=" in a]
    print("| config | params | data | val main | val second | test main | test second | best val (epoch) | epochs | train s | run |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for config in configs:
        print(row(run(config, overrides)), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])

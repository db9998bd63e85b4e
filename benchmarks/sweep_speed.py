"""Sweep speed: one 16-trial sweep of small models with 1 and with 2 workers, interleaved, and the sweep's own
overhead per trial (process start, imports, data, bookkeeping) against the trial's training time.

    .venv/bin/python benchmarks/sweep_speed.py [--rounds 1] [--epochs 5] [--backends tensorflow,jax]

Each round runs the 1-worker sweep and the 2-worker sweep back to back (the order alternates between rounds),
so both see the same machine load, on each backend in turn; `uptime` is printed before and after. Target: 2
workers take at most 0.6 of the 1-worker wall time. The trials share one fresh NNLAB_CACHE_DIR, so on JAX
the first trial compiles and the others find its programs compiled.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]


def uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def run_sweep(folder: Path, workers: int, epochs: int, backend: str) -> dict:
    """One 16-trial grid (4 widths x 4 seeds of the digits MLP); its wall time and per-trial timings."""
    config = folder / "digits_small.yaml"
    config.write_text(yaml.safe_dump({
        "name": "bench", "seed": 0, "data": {"name": "digits"}, "model": {"name": "mlp", "hidden": [32]},
        "train": {"epochs": epochs, "batch_size": 32}, "output": {"plots": False}}))
    runs_dir = folder / f"runs-{workers}w-{time.time_ns()}"
    env = {**os.environ, "NNLAB_RUNS_DIR": str(runs_dir), "TF_CPP_MIN_LOG_LEVEL": "2",
           "NNLAB_CACHE_DIR": str(folder / "cache")}
    started = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", "nnlab.cli.main", "sweep", str(config),
                             "model.hidden=[8],[16],[32],[64]", "--repeats", "4", "--workers", str(workers),
                             "--backend", backend],
                            capture_output=True, text=True, env=env, cwd=REPO)
    wall = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(f"sweep with {workers} worker(s) failed:\n{result.stdout}\n{result.stderr}")
    trials = []
    for meta_path in runs_dir.glob("*/meta.json"):
        meta = json.loads(meta_path.read_text())
        history = (meta_path.parent / "history.csv").read_text().splitlines()
        header = history[0].split(",")
        fit = sum(float(line.split(",")[header.index("time_s")]) for line in history[1:])
        trials.append({"wall": meta["sweep"]["wall_s"], "run": meta["duration_s"], "fit": fit})
    assert len(trials) == 16, f"expected 16 trials, found {len(trials)}"
    return {"workers": workers, "backend": backend, "wall_s": wall, "trials": trials,
            "threads": json.loads((next(runs_dir.glob("*/meta.json"))).read_text())["sweep"]["threads"]}


def describe(sweep: dict) -> str:
    t = sweep["trials"]
    wall = statistics.mean(x["wall"] for x in t)
    run = statistics.mean(x["run"] for x in t)
    fit = statistics.mean(x["fit"] for x in t)
    busy = sum(x["wall"] for x in t)
    bookkeeping = (sweep["wall_s"] * sweep["workers"] - busy) / len(t)
    return (f"{sweep['backend']}, {sweep['workers']} worker(s) x {sweep['threads']} thread(s): sweep wall {sweep['wall_s']:.1f}s; per trial: "
            f"wall {wall:.2f}s = start+imports+data+build {wall - run:.2f}s + run {run:.2f}s "
            f"(fit {fit:.2f}s, evaluate+save {run - fit:.2f}s); sweep bookkeeping and idle {bookkeeping:.2f}s/trial; "
            f"overhead (trial wall - fit) {wall - fit:.2f}s = {(wall - fit) / wall:.0%} of the trial")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--backends", default="tensorflow", help="comma-separated: tensorflow,jax")
    args = parser.parse_args()
    print(f"before: {uptime()}", flush=True)
    ratios: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.rounds):
            for backend in args.backends.split(","):
                order = (1, 2) if i % 2 == 0 else (2, 1)
                results = {}
                for workers in order:
                    results[workers] = run_sweep(Path(tmp), workers, args.epochs, backend)
                    print(describe(results[workers]), f"| {uptime()}", flush=True)
                ratios.setdefault(backend, []).append(results[2]["wall_s"] / results[1]["wall_s"])
                print(f"round {i + 1}, {backend}: 2-worker / 1-worker wall time = {ratios[backend][-1]:.3f}", flush=True)
    print(f"after: {uptime()}")
    for backend, values in ratios.items():
        print(f"{backend}: ratio (2 workers / 1 worker), per round: {', '.join(f'{r:.3f}' for r in values)}; "
              "target <= 0.6")


if __name__ == "__main__":
    main()

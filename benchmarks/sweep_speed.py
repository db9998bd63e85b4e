"""Sweep speed: one 16-trial sweep of small models, trained by fresh processes (--isolate) and by warm trial
hosts with 1 and 2 workers, interleaved; per trial, the fixed cost (the trial's wall time in its worker minus
the run's own duration) against the run itself.

    .venv/bin/python benchmarks/sweep_speed.py [--rounds 1] [--epochs 5] [--backends tensorflow,jax]

Each round runs, per backend, the three sweeps back to back (the order reverses between rounds), so they see
the same machine load; `uptime` is printed after each. Targets (issue 18): median fixed cost of a trial after
each host's first <= 0.5 s; warm 1 worker <= 0.35x the isolated 1-worker wall (TensorFlow); warm 2 workers
<= 0.6x warm 1 worker. Each sweep has a fresh NNLAB_CACHE_DIR of its own, so on JAX each sweep compiles its
models once (fresh processes find the programs in that cache; warm hosts also keep them in memory).
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
SWEEPS = (("isolate", 1), ("warm", 1), ("warm", 2))


def uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def run_sweep(folder: Path, mode: str, workers: int, epochs: int, backend: str) -> dict:
    """One 16-trial grid (4 widths x 4 seeds of the digits MLP); its wall time and per-trial timings."""
    config = folder / "digits_small.yaml"
    config.write_text(yaml.safe_dump({
        "name": "bench", "seed": 0, "data": {"name": "digits"}, "model": {"name": "mlp", "hidden": [32]},
        "train": {"epochs": epochs, "batch_size": 32}, "output": {"plots": False}}))
    runs_dir = folder / f"runs-{mode}-{workers}w-{time.time_ns()}"
    env = {**os.environ, "NNLAB_RUNS_DIR": str(runs_dir), "TF_CPP_MIN_LOG_LEVEL": "2",
           "NNLAB_CACHE_DIR": str(runs_dir.with_name(runs_dir.name + "-cache"))}
    started = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", "nnlab.cli.main", "sweep", str(config),
                             "model.hidden=[8],[16],[32],[64]", "--repeats", "4", "--workers", str(workers),
                             "--backend", backend, *(["--isolate"] if mode == "isolate" else [])],
                            capture_output=True, text=True, env=env, cwd=REPO)
    wall = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(f"{mode} sweep with {workers} worker(s) failed:\n{result.stdout}\n{result.stderr}")
    trials = []
    for meta_path in runs_dir.glob("*/meta.json"):
        meta = json.loads(meta_path.read_text())
        history = (meta_path.parent / "history.csv").read_text().splitlines()
        header = history[0].split(",")
        fit = sum(float(line.split(",")[header.index("time_s")]) for line in history[1:])
        trials.append({"wall": meta["sweep"]["wall_s"], "run": meta["duration_s"], "fit": fit,
                       "host_trial": meta["sweep"]["host"]["trial"]})
    assert len(trials) == 16, f"expected 16 trials, found {len(trials)}"
    return {"mode": mode, "workers": workers, "backend": backend, "wall_s": wall, "trials": trials,
            "threads": json.loads((next(runs_dir.glob("*/meta.json"))).read_text())["sweep"]["threads"]}


def fixed_costs(sweep: dict) -> list[float]:
    """Trial wall minus run duration, for every trial but each warm host's first (its start is in there)."""
    return [t["wall"] - t["run"] for t in sweep["trials"] if sweep["mode"] == "isolate" or t["host_trial"] > 1]


def describe(sweep: dict) -> str:
    t = sweep["trials"]
    wall = statistics.mean(x["wall"] for x in t)
    run = statistics.mean(x["run"] for x in t)
    fit = statistics.mean(x["fit"] for x in t)
    busy = sum(x["wall"] for x in t)
    bookkeeping = (sweep["wall_s"] * sweep["workers"] - busy) / len(t)
    return (f"{sweep['backend']}, {sweep['mode']}, {sweep['workers']} worker(s) x {sweep['threads']} thread(s): "
            f"sweep wall {sweep['wall_s']:.1f}s; per trial: wall {wall:.2f}s, run {run:.2f}s (fit {fit:.2f}s); "
            f"fixed cost median {statistics.median(fixed_costs(sweep)):.3f}s (mean over all trials "
            f"{wall - run:.2f}s); sweep bookkeeping and idle {bookkeeping:.2f}s/trial")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--backends", default="tensorflow", help="comma-separated: tensorflow,jax")
    args = parser.parse_args()
    print(f"before: {uptime()}", flush=True)
    ratios: dict[str, list[tuple[float, float]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.rounds):
            for backend in args.backends.split(","):
                order = SWEEPS if i % 2 == 0 else tuple(reversed(SWEEPS))
                results = {}
                for mode, workers in order:
                    results[mode, workers] = run_sweep(Path(tmp), mode, workers, args.epochs, backend)
                    print(describe(results[mode, workers]), f"| {uptime()}", flush=True)
                warm, fresh, two = (results["warm", 1]["wall_s"], results["isolate", 1]["wall_s"],
                                    results["warm", 2]["wall_s"])
                ratios.setdefault(backend, []).append((warm / fresh, two / warm))
                print(f"round {i + 1}, {backend}: warm / isolated wall (1 worker) = {warm / fresh:.3f}; "
                      f"2 workers / 1 worker (warm) = {two / warm:.3f}", flush=True)
    print(f"after: {uptime()}")
    for backend, values in ratios.items():
        print(f"{backend}: per round, warm/isolated (target <= 0.35 on TensorFlow) and 2/1 workers (target <= 0.6): "
              + "; ".join(f"{a:.3f}, {b:.3f}" for a, b in values))


if __name__ == "__main__":
    main()

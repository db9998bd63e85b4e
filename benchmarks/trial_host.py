"""Per-trial fixed cost: a trial as a fresh `nnlab train` process against the same trial in a warm trial host.

    .venv/bin/python benchmarks/trial_host.py [--trials 8] [--epochs 5] [--backends tensorflow,jax]

For each backend, the same digits-MLP trials (widths 8..64 x seeds) run once as fresh processes and once in
one `sweeps.host.TrialHost`, alternating trial by trial so both see the same machine load. A trial's fixed
cost is its wall time (as the worker sees it: from sending the trial to its last message, or from starting
the process to its exit) minus the run's own `duration_s` in meta.json (data, build, training, evaluation,
save). The host's first trial is reported apart (it pays the imports); the medians are over the others.
The host's cleanup after a trial (Keras's clear_session, a garbage collection) is reported apart: it runs
after the result is sent, while a sweep worker records it.
One thread per trial, as a 2-worker sweep on 2 cores gives each. Both sides share one NNLAB_CACHE_DIR.
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


def duration(run_dir: Path) -> float:
    return json.loads((run_dir / "meta.json").read_text())["duration_s"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=8)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--backends", default="tensorflow,jax")
    args = parser.parse_args()
    sys.path.insert(0, str(REPO / "src"))
    from nnlab.sweeps.host import TrialHost

    print(f"before: {uptime()}", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        config = folder / "digits.yaml"
        config.write_text(yaml.safe_dump({
            "name": "bench", "seed": 0, "data": {"name": "digits"}, "model": {"name": "mlp", "hidden": [32]},
            "train": {"epochs": args.epochs, "batch_size": 32}, "output": {"plots": False}}))
        points = [[f"model.hidden=[{w}]", f"seed={s}"] for s in range(4) for w in (8, 16, 32, 64)][: args.trials]
        for backend in args.backends.split(","):
            env = {**os.environ, "NNLAB_CACHE_DIR": str(folder / "cache"), "NNLAB_THREADS": "1",
                   "TF_CPP_MIN_LOG_LEVEL": "2", "KERAS_BACKEND": backend}
            host = TrialHost(backend=backend, threads=1, env=env)
            started = time.perf_counter()
            host.start()
            start_s = time.perf_counter() - started
            fresh, warm, cleanup = [], [], []
            for i, overrides in enumerate(points):
                runs_dir = folder / f"runs-{backend}-fresh"
                before = set(runs_dir.glob("*")) if runs_dir.exists() else set()
                t0 = time.perf_counter()
                subprocess.run([sys.executable, "-m", "nnlab.cli.main", "train", str(config), *overrides,
                                "--runs-dir", str(runs_dir), "--backend", backend], env=env, check=True,
                               capture_output=True)
                wall = time.perf_counter() - t0
                (run_dir,) = set(runs_dir.glob("*")) - before
                fresh.append(wall - duration(run_dir))
                t0 = time.perf_counter()
                messages = list(host.train(config, overrides, runs_dir=folder / f"runs-{backend}-host",
                                           log=folder / "host.log"))
                wall = time.perf_counter() - t0
                assert messages[-1]["event"] == "finished", messages[-1]
                warm.append(wall - duration(Path(messages[-1]["run_dir"])))
                assert not host.worn  # waits for the host's cleanup after the trial, and reads its memory
                cleanup.append(host.last_cleanup_s)
                print(f"{backend} trial {i}: fixed cost fresh {fresh[-1]:.2f} s, warm host {warm[-1]:.2f} s "
                      f"+ cleanup {cleanup[-1]:.2f} s (host RSS {host.last_rss_mb:.0f} MiB)", flush=True)
            host.close()
            print(f"{backend}: host start (imports) {start_s:.2f} s; median fixed cost per trial: fresh process "
                  f"{statistics.median(fresh):.2f} s, warm host {statistics.median(warm[1:]):.3f} s after its first "
                  f"trial ({warm[0]:.2f} s for the first) + cleanup {statistics.median(cleanup):.3f} s (overlapped "
                  "with the worker's bookkeeping in a sweep; here with the next fresh-process trial)", flush=True)
    print(f"after: {uptime()}")


if __name__ == "__main__":
    main()

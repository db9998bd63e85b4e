"""Memory of warm trial hosts over a long sweep: a 200-trial digits sweep (4 widths x 50 seeds), 2 workers,
TensorFlow by default; each trial's run records its host (pid, trial number in that host, resident memory
before the trial). Checks that every (point, seed) completed exactly once and that no host's resident memory
passed the recycle limit, and plots resident memory against trial number, one line per host.

    .venv/bin/python benchmarks/host_memory.py [--repeats 50] [--epochs 2] [--backend tensorflow]
        [--plot benchmarks/host_memory.png]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=50)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--backend", default="tensorflow")
    parser.add_argument("--plot", type=Path, default=REPO / "benchmarks" / "host_memory.png")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        config = folder / "digits_small.yaml"
        config.write_text(yaml.safe_dump({
            "name": "memory", "seed": 0, "data": {"name": "digits"}, "model": {"name": "mlp", "hidden": [32]},
            "train": {"epochs": args.epochs, "batch_size": 32}}))
        runs_dir = folder / "runs"
        env = {**os.environ, "NNLAB_RUNS_DIR": str(runs_dir), "TF_CPP_MIN_LOG_LEVEL": "2",
               "NNLAB_CACHE_DIR": str(folder / "cache")}
        print(subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip(), flush=True)
        started = time.perf_counter()
        result = subprocess.run([sys.executable, "-m", "nnlab.cli.main", "sweep", str(config),
                                 "model.hidden=[8],[16],[32],[64]", "--repeats", str(args.repeats),
                                 "--workers", str(args.workers), "--backend", args.backend],
                                capture_output=True, text=True, env=env, cwd=REPO)
        wall = time.perf_counter() - started
        print(subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip(), flush=True)
        if result.returncode != 0:
            raise SystemExit(f"the sweep failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
        sweep_dir = next((runs_dir / "sweeps").iterdir())
        limits = yaml.safe_load((sweep_dir / "sweep.yaml").read_text())["trial_hosts"]
        metas = [json.loads(p.read_text()) for p in runs_dir.glob("*/meta.json")]
    planned = 4 * args.repeats
    completed = Counter((m["sweep"]["point"], m["seed"]) for m in metas if m["status"] == "completed")
    assert len(metas) == planned and len(completed) == planned and set(completed.values()) == {1}, \
        f"{len(metas)} runs, {len(completed)} distinct completed (point, seed) of {planned}"
    hosts: dict[int, list[tuple[int, float]]] = defaultdict(list)
    for m in metas:
        host = m["sweep"]["host"]
        hosts[host["pid"]].append((m["sweep"]["trial"], host["rss_mb"]))
    peak = max(rss for points in hosts.values() for _, rss in points)
    print(f"{planned} trials, each (point, seed) completed once, {args.workers} workers, {args.backend}, "
          f"sweep wall {wall:.0f}s; {len(hosts)} hosts (limits: {limits}); resident memory before a trial: "
          f"peak {peak:.0f} MiB (limit {limits['max_rss_mb']} MiB)")
    for pid, points in sorted(hosts.items(), key=lambda kv: min(t for t, _ in kv[1])):
        points.sort()
        rss = [r for _, r in points]
        print(f"  host {pid}: {len(points)} trials (trial {points[0][0]}..{points[-1][0]}), resident memory "
              f"{rss[0]:.0f} MiB before its first trial, {rss[1] if len(rss) > 1 else rss[0]:.0f} after it, "
              f"{rss[-1]:.0f} before its last, max {max(rss):.0f}")
    assert peak < limits["max_rss_mb"], "a host passed the recycle limit"
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4))
    for pid, points in sorted(hosts.items(), key=lambda kv: min(t for t, _ in kv[1])):
        ax.plot([t for t, _ in points], [r for _, r in points], marker=".", linewidth=1, label=f"host {pid}")
    ax.set_xlabel("trial number in the sweep")
    ax.set_ylabel("host resident memory before the trial (MiB)")
    ax.set_title(f"{planned}-trial digits sweep, {args.workers} workers, {args.backend}; "
                 f"replaced after {limits['max_trials']} trials or {limits['max_rss_mb']} MiB", fontsize=9)
    ax.set_ylim(bottom=0)
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    fig.savefig(args.plot, dpi=100)
    print(f"plot: {args.plot}")


if __name__ == "__main__":
    main()

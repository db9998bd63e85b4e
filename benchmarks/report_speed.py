"""Time `nnlab report <run>` against `python -c "import tensorflow"`, side by side.

The report must cost well under a TensorFlow import (issue 5 asks for less than a third): it reads the
run's files, redraws the plots that are missing or stale with matplotlib, and never imports TensorFlow.
Three commands run in turn (warm, cold, baseline) after one warm-up each, so drift on a shared machine hits
all of them: "warm" is a finished run as training left it; "cold" first deletes the run's plots/ folder
(outside the timing), so every plot is redrawn from history.csv, confusion_matrix.csv and predictions.npz.
The script prints each command's median wall time and the median of the per-triple ratios to the baseline.

    python benchmarks/report_speed.py                 # trains a small digits run into a temp folder first
    python benchmarks/report_speed.py --run latest    # or time an existing run (id, prefix, path, latest)
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def timed(command: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True, env=env, cwd=REPO)
    elapsed = time.perf_counter() - start
    if result.returncode != 0:
        sys.exit(f"{' '.join(command)} failed ({result.returncode}): {result.stderr.strip()[-500:]}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", help="run to report on (default: train configs/digits_mlp.yaml for 5 epochs)")
    parser.add_argument("--repeats", type=int, default=7, help="timed pairs (default 7)")
    args = parser.parse_args()

    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    nnlab = str(BIN / "nnlab") if (BIN / "nnlab").exists() else None
    report_cmd = [nnlab] if nnlab else [sys.executable, "-m", "nnlab.cli.main"]
    with tempfile.TemporaryDirectory() as tmp:
        run = args.run
        if run is None:
            env["NNLAB_RUNS_DIR"] = str(Path(tmp) / "runs")
            env["NNLAB_CACHE_DIR"] = str(Path(tmp) / "cache")
            trained = subprocess.run([*report_cmd, "train", "configs/digits_mlp.yaml", "train.epochs=5"],
                                     capture_output=True, text=True, env=env, cwd=REPO)
            if trained.returncode != 0:
                sys.exit(f"training the benchmark run failed: {trained.stderr.strip()[-500:]}")
            run = re.search(r"^run folder: (.+)$", trained.stdout, re.M).group(1)
        report = [*report_cmd, "report", run]
        baseline = [sys.executable, "-c", "import tensorflow"]

        run_dir = Path(run) if (Path(run) / "meta.json").is_file() else None

        def cold() -> float:
            if run_dir is not None:
                shutil.rmtree(run_dir / "plots", ignore_errors=True)
            return timed(report, env)

        timed(report, env), timed(baseline, env)  # warm-up: file caches, bytecode
        triples = [(timed(report, env), cold(), timed(baseline, env)) for _ in range(args.repeats)]

    warm_times, cold_times, tf_times = zip(*triples)
    warm_ratio = statistics.median(w / b for w, _, b in triples)
    cold_ratio = statistics.median(c / b for _, c, b in triples)
    print(f"run: {run}")
    print(f"{'command':<44}{'median s':>10}{'min s':>9}{'max s':>9}")
    rows = (("nnlab report RUN (finished run, with html)", warm_times),
            ("nnlab report RUN (plots/ deleted: redraws)" if run_dir else "nnlab report RUN (again)", cold_times),
            ('python -c "import tensorflow"', tf_times))
    for name, times in rows:
        print(f"{name:<44}{statistics.median(times):>10.2f}{min(times):>9.2f}{max(times):>9.2f}")
    for name, ratio in (("finished run", warm_ratio), ("redrawing every plot", cold_ratio)):
        verdict = "ok" if ratio < 1 / 3 else "TOO SLOW"
        print(f"ratio report / import tensorflow, {name}: {ratio:.3f} "
              f"(median of {len(triples)}; must be < 0.333: {verdict})")
    sys.exit(0 if warm_ratio < 1 / 3 else 1)


if __name__ == "__main__":
    main()

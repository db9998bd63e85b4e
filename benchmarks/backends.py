"""TensorFlow vs JAX, nnlab vs plain Keras: per-epoch and whole-process times, interleaved, one table.

Usage (what `make bench` runs; real MNIST for the MNIST-56 cases):
    NNLAB_DATA_DIR=../shared/datasets .venv/bin/python benchmarks/backends.py [--full] [--rounds 3]
        [--cases digits_mlp,pulse_gru,...] [--write benchmarks/RESULTS.md]

Each round runs every case as `plain_keras.py` (Keras's default: one step per call), as `nnlab train` (its
steps per call chosen by `train.steps_per_execution: auto`) and as `plain_keras.py` with the steps per call
that nnlab chose (`fused`), on TensorFlow and on JAX, each a fresh process, in an order that alternates
from round to round (a reversed round's fused run takes the previous round's choice); round r uses seed r
(so the pulse GRU's rounds are its seeds). Per-epoch times drop each run's first epoch
(tracing/compiling), which is reported on its own. nnlab's epoch times come from history.csv
(an epoch's time includes any checkpoint written after the previous one), whole-process times
are the wall time of the process. nnlab's runs share one fresh cache folder (NNLAB_CACHE_DIR), so
round 0 runs with JAX's compilation cache cold and later rounds warm; the JAX-vs-TF table gives
both. The Markdown table goes to stdout, and with --write it replaces the section between the
BACKENDS markers (BACKENDS_FULL with --full) in that file.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# name: (config, quick overrides, full overrides)
CASES = {
    "digits_mlp": ("configs/digits_mlp.yaml", [], []),
    "pulse_gru": ("configs/pulse_gru.yaml", ["train.epochs=8"], []),
    "addition_lstm": ("configs/addition_lstm.yaml", ["data.n=10000", "train.epochs=8", "train.early_stopping=null"],
                      ["train.early_stopping=null"]),
    "mnist56_cnn": ("configs/mnist56_cnn.yaml", ["data.augment=null", "train.epochs=6"], ["data.augment=null"]),
    "mnist56_cnn_aug": ("configs/mnist56_cnn.yaml", ["train.epochs=6"], []),
    "mnist_mlp32": ("configs/mnist_mlp.yaml", ["train.epochs=4"], []),
    "mnist_mlp256": ("configs/mnist_mlp.yaml", ["model.hidden=[256]", "train.epochs=4"], ["model.hidden=[256]"]),
}
KINDS = ("plain", "nnlab", "fused")  # fused: plain Keras with the steps per call nnlab chose (its last run of the case)
BACKENDS = ("tensorflow", "jax")


def markers(full: bool) -> tuple[str, str]:
    """The quick and the full-length tables each have their own section."""
    name = "BACKENDS_FULL" if full else "BACKENDS"
    return f"<!-- {name}:BEGIN (benchmarks/backends.py) -->", f"<!-- {name}:END -->"


def run_plain(config: str, overrides: list[str], seed: int, backend: str) -> dict:
    start = time.perf_counter()
    out = subprocess.run([sys.executable, str(REPO / "benchmarks" / "plain_keras.py"), config, str(seed), *overrides],
                         capture_output=True, text=True, cwd=REPO, env={**os.environ, "KERAS_BACKEND": backend})
    wall = time.perf_counter() - start
    if out.returncode != 0:
        raise SystemExit(f"plain {config} on {backend}: failed: {out.stderr.strip()[-2000:]}")
    result = json.loads(out.stdout.strip().splitlines()[-1])
    return {"epochs": result["epoch_times"], "process": wall, "metric": result["val"]}


def run_nnlab(config: str, overrides: list[str], seed: int, backend: str, runs_dir: str) -> dict:
    start = time.perf_counter()
    out = subprocess.run([sys.executable, "-m", "nnlab.cli.main", "train", config, *overrides, f"seed={seed}",
                          "--backend", backend, "--runs-dir", runs_dir], capture_output=True, text=True, cwd=REPO,
                         env={**os.environ, "NNLAB_CACHE_DIR": str(Path(runs_dir) / "cache")})
    wall = time.perf_counter() - start
    match = re.search(r"run folder: (.+)", out.stdout)
    if out.returncode != 0 or not match:
        raise SystemExit(f"nnlab {config} on {backend}: failed: {out.stderr.strip()[-2000:]}")
    run_dir = Path(match.group(1).strip())
    meta = json.loads((run_dir / "meta.json").read_text())
    scores = json.loads((run_dir / "metrics.json").read_text())["val"]
    with (run_dir / "history.csv").open() as f:
        rows = [line.split(",") for line in f.read().splitlines()]
    column = rows[0].index("time_s")
    metric = scores["accuracy"] if "accuracy" in scores else scores["loss"] / _variance(run_dir)
    return {"epochs": [float(r[column]) for r in rows[1:]], "process": wall, "metric": metric,
            "phases": meta.get("timings_s", {}), "steps": meta["device"].get("steps_per_execution", 1)}


def _variance(run_dir: Path) -> float:
    import numpy as np

    with np.load(run_dir / "predictions.npz") as p:
        return float(np.var(p["val_y_true"]))


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true", help="full-length training instead of the quick versions")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--cases", default=",".join(CASES))
    parser.add_argument("--write", help="Markdown file whose BACKENDS section gets the table")
    args = parser.parse_args(argv)
    cases = args.cases.split(",")
    results: dict[tuple[str, str, str], list[dict]] = {}
    load_before = os.getloadavg()
    began = time.time()
    with tempfile.TemporaryDirectory() as runs_dir:
        for r in range(args.rounds):
            for case in cases:
                config, quick, full = CASES[case]
                overrides = full if args.full else quick
                order = [(b, k) for b in BACKENDS for k in KINDS]
                order = order if r % 2 == 0 else order[::-1]
                for backend, kind in order:
                    if kind == "plain":
                        res = run_plain(config, overrides, r, backend)
                    elif kind == "fused":
                        steps = results[(case, backend, "nnlab")][-1]["steps"]
                        res = run_plain(config, [*overrides, f"train.steps_per_execution={steps}"], r, backend)
                        res["steps"] = steps
                    else:
                        res = run_nnlab(config, overrides, r, backend, runs_dir)
                    results.setdefault((case, backend, kind), []).append(res)
                    print(f"round {r} {case} {backend} {kind}: {res['process']:.1f}s "
                          f"epoch {statistics.median(res['epochs'][1:] or res['epochs']):.3f}s "
                          f"metric {res['metric']:.4f}", file=sys.stderr, flush=True)
                done = [c for c in cases if all(len(results.get((c, b, k), [])) == r + 1
                                                for b in BACKENDS for k in KINDS)]
                text = table(results, done, args, load_before, os.getloadavg(), time.time() - began, rounds=r + 1)
                if args.write:  # after every case, so a stopped benchmark still leaves what it measured
                    write(Path(args.write), text, args.full)
    print(text)


def write(path: Path, text: str, full: bool) -> None:
    begin, end = markers(full)
    old = path.read_text()
    block = f"{begin}\n{text}\n{end}"
    new = re.sub(re.escape(begin) + ".*?" + re.escape(end), lambda _: block, old, flags=re.S) \
        if begin in old else old.rstrip() + "\n\n" + block + "\n"
    path.write_text(new)


def _epochs(runs: list[dict]) -> list[float]:
    return [t for res in runs for t in (res["epochs"][1:] or res["epochs"])]


def _med(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def table(results, cases, args, load_before, load_after, seconds, rounds) -> str:
    import platform

    versions = _versions()
    lines = [
        f"Command: `{' '.join(['.venv/bin/python benchmarks/backends.py', *sys.argv[1:]])}` "
        f"({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {rounds} of {args.rounds} rounds, "
        f"{'full' if args.full else 'quick'} lengths, {seconds / 60:.0f} min; {os.cpu_count()} CPUs; "
        f"load average {load_before[0]:.1f} before, {load_after[0]:.1f} after; {versions}; Python "
        f"{platform.python_version()}).",
        "",
        "Per-epoch seconds: median (min-max) over every epoch but each run's first; `first`: median first epoch; "
        "`process`: median whole-process wall seconds; metric: median validation accuracy (normalised error "
        "MSE/variance for pulse_gru), with min-max over the rounds' seeds.",
        "",
        "| case | backend | plain s/epoch | nnlab s/epoch | nnlab/plain epoch | first epoch plain / nnlab "
        "| process plain / nnlab s | nnlab/plain process | metric plain | metric nnlab |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    fused_lines = [
        "", "Fused steps: nnlab's steps per call (`train.steps_per_execution: auto`, median of its runs' choices) "
        "against plain Keras with one step per call and with nnlab's choice (per-epoch medians as above):", "",
        "| case | backend | nnlab steps per call | plain 1 step s/epoch | plain fused s/epoch | nnlab s/epoch "
        "| plain 1 step / nnlab (x faster) | nnlab / plain fused |", "|---|---|---|---|---|---|---|---|"]
    for case in cases:
        for backend in BACKENDS:
            plain, nn = results[(case, backend, "plain")], results[(case, backend, "nnlab")]
            pe, ne = _epochs(plain), _epochs(nn)
            pm, nm = [r["metric"] for r in plain], [r["metric"] for r in nn]
            lines.append(
                f"| {case} | {backend} | {_med(pe):.3f} ({min(pe):.3f}-{max(pe):.3f}) | {_med(ne):.3f} "
                f"({min(ne):.3f}-{max(ne):.3f}) | **{_med(ne) / _med(pe):.2f}** | "
                f"{_med([r['epochs'][0] for r in plain]):.2f} / {_med([r['epochs'][0] for r in nn]):.2f} | "
                f"{_med([r['process'] for r in plain]):.1f} / {_med([r['process'] for r in nn]):.1f} | "
                f"**{_med([r['process'] for r in nn]) / _med([r['process'] for r in plain]):.2f}** | "
                f"{_med(pm):.4f} ({min(pm):.4f}-{max(pm):.4f}) | {_med(nm):.4f} ({min(nm):.4f}-{max(nm):.4f}) |")
            fe = _epochs(results[(case, backend, "fused")])
            fused_lines.append(
                f"| {case} | {backend} | {_med([r['steps'] for r in nn]):.0f} | {_med(pe):.3f} | {_med(fe):.3f} | "
                f"{_med(ne):.3f} | **{_med(pe) / _med(ne):.2f}x** | **{_med(ne) / _med(fe):.2f}** |")
    lines += fused_lines
    lines += ["", "JAX against TensorFlow (ratios of medians; above 1 means JAX is faster). Process times: round 0 "
              "ran with JAX's compilation cache empty (cold), later rounds found the programs compiled (warm):", "",
              "| case | TF plain epoch / JAX nnlab epoch | TF nnlab process / JAX nnlab process, warm (rounds 1+) "
              "| the same, cold (round 0) | JAX nnlab process warm / cold s |", "|---|---|---|---|---|"]
    for case in cases:
        tf_plain = _med(_epochs(results[(case, "tensorflow", "plain")]))
        jax_runs = results[(case, "jax", "nnlab")]
        jax_nn = _med(_epochs(jax_runs))
        tf_proc = _med([r["process"] for r in results[(case, "tensorflow", "nnlab")]])
        cold = jax_runs[0]["process"]
        warm = _med([r["process"] for r in jax_runs[1:]]) if len(jax_runs) > 1 else float("nan")
        lines.append(f"| {case} | **{tf_plain / jax_nn:.2f}x** | **{tf_proc / warm:.2f}x** | **{tf_proc / cold:.2f}x** "
                     f"| {warm:.1f} / {cold:.1f} |")
    phases = ["startup", "backend", "data", "build", "fit", "checkpoints", "evaluate", "save", "plots", "other", "total"]
    lines += ["", "Where an `nnlab train` process spends its time (median seconds per phase, from meta.json "
              "`timings_s`; startup = interpreter and imports before nnlab runs, backend = importing Keras and its "
              "backend):", "", "| case | backend | " + " | ".join(phases) + " |", "|---|---|" + "---|" * len(phases)]
    for case in cases:
        for backend in BACKENDS:
            runs = results[(case, backend, "nnlab")]
            cells = [f"{_med([r['phases'].get(p, 0.0) for r in runs]):.2f}" for p in phases]
            lines.append(f"| {case} | {backend} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _versions() -> str:
    import importlib.metadata as md

    out = []
    for name in ("keras", "tensorflow-cpu", "tensorflow", "jax", "jaxlib"):
        try:
            out.append(f"{name} {md.version(name)}")
        except md.PackageNotFoundError:
            pass
    return ", ".join(out)


if __name__ == "__main__":
    main(sys.argv[1:])

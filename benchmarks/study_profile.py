"""Where a sweep's time goes, per point and per phase, and whether two sweeps drew the same numbers.

Usage:
    python benchmarks/study_profile.py RUNS_DIR SWEEP_ID [--before RUNS_DIR SWEEP_ID]

Reads the run folders of a sweep's trials (meta.json `timings_s`, `sweep.wall_s`, history.csv) and prints
Markdown: per point, the trials, the mean and standard deviation of the sweep's metric (last epoch), the
mean seconds of each phase of a trial, and seconds per epoch of `fit`; then the phases summed over all
trials. With --before, the same for an earlier sweep of the same file, each point's mean against the
earlier one (difference in standard errors of the difference), and how many trials' histories (every
number but the epoch's wall time) are identical between the two, matched by point and seed.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import statistics
from pathlib import Path

import yaml

PHASES = ("data", "build", "fit", "evaluate", "plots", "other")


def trials(runs_dir: Path, sweep_id: str) -> list[dict]:
    """One record per completed trial of the sweep: point, seed, params, timings, history, metric."""
    out = []
    for meta_path in sorted(runs_dir.glob("*/meta.json")):
        meta = json.loads(meta_path.read_text())
        sweep = meta.get("sweep") or {}
        if sweep.get("id") != sweep_id or meta.get("status") != "completed":
            continue
        with (meta_path.parent / "history.csv").open(newline="") as f:
            history = [{k: v for k, v in row.items() if k != "time_s"} for row in csv.DictReader(f)]
        metric = (meta.get("main_metric") or {}).get("name", "val_accuracy")
        overrides = yaml.safe_load((meta_path.parent / "overrides.yaml").read_text()).get("overrides", [])
        out.append({"point": sweep["point"], "seed": meta["seed"], "timings": meta["timings_s"],
                    "wall": sweep.get("wall_s", meta["timings_s"]["total"]), "history": history,
                    "value": float(history[-1][metric]), "metric": metric, "epochs": len(history),
                    "label": _label(overrides), "steps": meta["device"].get("steps_per_execution", 1)})
    return out


def _label(overrides: list[str]) -> str:
    """The point's parameters: the trial's overrides but its name and seed."""
    return " ".join(item for item in overrides if not item.startswith(("name=", "seed=")))[:40]


def table(records: list[dict], title: str) -> list[str]:
    by_point: dict[int, list[dict]] = {}
    for r in records:
        by_point.setdefault(r["point"], []).append(r)
    lines = [f"**{title}**: {len(records)} trials; {records[0]['metric']} of the last epoch", "",
             "| point | trials | steps per call | mean | std (as the sweep's summary) | "
             + " | ".join(f"{p} s" for p in PHASES)
             + " | fit s/epoch | trial wall s |", "|---|---|---|---|---|" + "---|" * (len(PHASES) + 2)]
    for point, rs in sorted(by_point.items()):
        values = [r["value"] for r in rs]
        phases = [statistics.mean(r["timings"].get(p, 0.0) for r in rs) for p in PHASES]
        per_epoch = statistics.mean(r["timings"]["fit"] / r["epochs"] for r in rs)
        lines.append(f"| {point} {rs[0]['label']} | {len(rs)} | {statistics.median(r['steps'] for r in rs):.0f} | "
                     f"{statistics.mean(values):.4f} | {statistics.pstdev(values):.4f} | "
                     + " | ".join(f"{v:.2f}" for v in phases)
                     + f" | {per_epoch:.3f} | {statistics.mean(r['wall'] for r in rs):.2f} |")
    sums = [sum(r["timings"].get(p, 0.0) for r in records) for p in PHASES]
    lines += ["", "Summed over the trials (seconds of one worker's time): "
              + ", ".join(f"{p} {v:.0f}" for p, v in zip(PHASES, sums))
              + f"; trial walls {sum(r['wall'] for r in records):.0f}.", ""]
    return lines


def _std(values: list[float]) -> float:
    return statistics.stdev(values) if len(values) > 1 else 0.0


def compare(before: list[dict], after: list[dict]) -> list[str]:
    lines = ["| point | mean before | mean after | difference / its standard error |", "|---|---|---|---|"]
    for point in sorted({r["point"] for r in after}):
        a = [r["value"] for r in before if r["point"] == point]
        b = [r["value"] for r in after if r["point"] == point]
        se = math.sqrt(_std(a) ** 2 / len(a) + _std(b) ** 2 / len(b)) if a and b else float("nan")
        diff = statistics.mean(b) - statistics.mean(a) if a and b else float("nan")
        lines.append(f"| {point} | {statistics.mean(a):.4f} | {statistics.mean(b):.4f} | "
                     f"{diff / se if se else 0.0:+.2f} |")
    old = {(r["point"], r["seed"]): r["history"] for r in before}
    same = sum(old.get((r["point"], r["seed"])) == r["history"] for r in after)
    lines += ["", f"Histories identical (every number but epoch wall time), matched by point and seed: "
              f"{same} of {len(after)}.", ""]
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs_dir", type=Path)
    parser.add_argument("sweep_id")
    parser.add_argument("--before", nargs=2, metavar=("RUNS_DIR", "SWEEP_ID"))
    args = parser.parse_args()
    after = trials(args.runs_dir, args.sweep_id)
    lines = []
    if args.before:
        before = trials(Path(args.before[0]), args.before[1])
        lines += table(before, f"before: {args.before[1]}")
        lines += table(after, f"after: {args.sweep_id}")
        lines += compare(before, after)
    else:
        lines += table(after, args.sweep_id)
    print("\n".join(lines))


if __name__ == "__main__":
    main()

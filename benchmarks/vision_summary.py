"""Print one line per run folder: status, parameters, duration, validation (and training) scores, data source.

Usage: python benchmarks/vision_summary.py runs/<run-id> [...]   (what benchmarks/RESULTS.md quotes)
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

SCORES = ("accuracy", "sensitivity", "specificity", "roc_auc", "log_loss")


def line(run_dir: Path) -> str:
    meta = json.loads((run_dir / "meta.json").read_text())
    scores = json.loads((run_dir / "metrics.json").read_text())
    parts = [run_dir.name, meta["status"], f"params={meta['parameters']['total']:,}", f"time={meta['duration_s']:.0f}s",
             f"epochs={meta.get('epochs_done')}"]
    for split in ("val", "train"):
        parts.append(split + ": " + " ".join(f"{k}={scores[split][k]:.4f}" for k in SCORES if k in scores[split]))
    data = meta["data"]
    parts.append("data: " + json.dumps({k: data[k] for k in ("source", "path", "generator", "subset") if k in data}))
    return " | ".join(parts)


if __name__ == "__main__":
    for arg in sys.argv[1:]:
        print(line(Path(arg)))

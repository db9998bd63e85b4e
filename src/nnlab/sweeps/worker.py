"""One sweep worker process: `python -m nnlab.sweeps.worker SWEEP_DIR --storage URL` (started by `nnlab sweep`)."""

from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path


def _terminate(signum, frame):
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="nnlab-sweep-worker")
    parser.add_argument("sweep_dir", type=Path)
    parser.add_argument("--storage", required=True)
    parser.add_argument("--threads", type=int, required=True)
    parser.add_argument("--worker", required=True)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--backend", default=None)
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, _terminate)  # stop like Ctrl-C: the running trial is re-enqueued
    from nnlab.sweeps import engine

    try:
        return engine.work(args.sweep_dir, args.storage, threads=args.threads, worker=args.worker,
                           device=args.device, backend=args.backend)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())

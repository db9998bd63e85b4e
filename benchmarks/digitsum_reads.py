"""Where a digit-sum model's error comes from: its sum output against the digits its per-image head reads.

Usage (from the repository root; a run of a config with `model.frame_loss_weight`, real MNIST):
    NNLAB_DATA_DIR=../shared/datasets .venv/bin/python benchmarks/digitsum_reads.py RUN [--split val]

Prints, for the split's sequences: the per-image accuracy of the frame head, the sum output's MAE on the
sequences whose ten digits the head reads right and on the others, and the MAE of simply adding up the digits
the head reads (argmax per image). Used for issue 22's digit-sum target (benchmarks/RESULTS.md).
"""

from __future__ import annotations

import argparse

import numpy as np

from nnlab.trained import load_data, load_model, open_run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", help="a digitsum run (id, prefix, folder or latest) whose model has the per-image head")
    parser.add_argument("--split", choices=("val", "test"), default="test")
    args = parser.parse_args()
    run = open_run(args.run)  # the way nnlab evaluate opens a run: status check, its backend, nnlab's layers
    model = load_model(run, device="cpu")
    data = load_data(run.run_dir, run.config, run.meta)
    x = data.x_test if args.split == "test" else data.x_val
    out = model.predict(x, batch_size=50, verbose=0)
    if not isinstance(out, dict):
        raise SystemExit(f"{run.run_dir}: the model has no per-image head (train it with model.frame_loss_weight)")
    digits = data.frame_labels[args.split]
    read = out["frame_labels"].argmax(-1)
    truth, pred = digits.sum(1), np.asarray(out["output"]).reshape(-1)
    right = (read == digits).all(1)
    error = np.abs(pred - truth)
    print(f"{args.split}: {len(truth)} sequences of {digits.shape[1]} images")
    print(f"per-image accuracy of the frame head: {(read == digits).mean():.4f}")
    print(f"sum output MAE: {error.mean():.4f} (all digits read right, {right.mean():.1%} of sequences: "
          f"{error[right].mean():.4f}; a digit misread: {error[~right].mean():.4f})")
    print(f"MAE of the sum of the digits the head reads: {np.abs(read.sum(1) - truth).mean():.4f}")


if __name__ == "__main__":
    main()

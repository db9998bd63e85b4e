#!/usr/bin/env bash
# The vision results in RESULTS.md: each config trained once, one after another, then summarised.
# Run from the repository root: bash benchmarks/vision.sh   (about 35 minutes on 2 busy CPU cores)
set -euo pipefail
export NNLAB_DATA_DIR=${NNLAB_DATA_DIR:-../shared/datasets}
export NNLAB_RUNS_DIR=${NNLAB_RUNS_DIR:-runs/bench-vision}
for config in mnist56_cnn mnist56_cnn_small crt_cnn r3_cnn crt_cnn_seed r3_cnn_seed cifar10_cnn cifar10_cnn_bn \
        cifar10_cnn12 mnist_cnn mnist_depth_sigmoid mnist_depth_relu; do
    nice -n 10 .venv/bin/nnlab train "configs/$config.yaml" | grep -v '^epoch'
done
.venv/bin/python benchmarks/vision_summary.py "$NNLAB_RUNS_DIR"/*/

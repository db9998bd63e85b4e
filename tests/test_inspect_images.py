"""`nnlab inspect` on image runs (trained/inspect/images.py): the input, each conv or pooling layer's channels and
the first layer's kernels, drawn for a binary run trained end to end (whose results land in the run folder), a
single layer and RGB kernels of a CIFAR-10 run, and what a run without a saved model says."""

from __future__ import annotations

import csv
import json

from PIL import Image

from conftest import CONFIGS, nnlab
from nnlab import experiment, runs
from vision_data import write_cifar_batches

TINY = ["train.epochs=1", "output.plots=false"]
CIFAR_BATCHES = [*TINY, "data.download=false", "data.allow_pickle=true"]  # the pickled batches need the opt-in


def only_run(runs_dir):
    found = runs.list_runs(runs_dir)
    assert len(found) == 1
    return found[0]


def test_mnist56_run_reports_binary_results_and_inspect_draws_feature_maps(mnist_idx, runs_dir):
    result = nnlab("train", "configs/mnist56_cnn.yaml", "train.epochs=2", "output.plots=false")
    assert result.returncode == 0, result.stderr
    run_dir = only_run(runs_dir)
    scores = json.loads((run_dir / runs.METRICS).read_text())
    for split in ("train", "val"):
        assert set(scores[split]) >= {"accuracy", "sensitivity", "specificity", "roc_auc"}
        assert all(0 <= scores[split][k] <= 1 for k in ("accuracy", "sensitivity", "specificity", "roc_auc"))
    with open(run_dir / runs.CONFUSION) as f:
        assert next(csv.reader(f))[1:] == ["5", "6"]

    result = nnlab("inspect", run_dir.name, "--sample", "1")
    assert result.returncode == 0, result.stderr
    plots = run_dir / runs.PLOTS
    written = sorted(p.name for p in plots.glob("inspect_*.png"))
    assert written == ["inspect_1_conv1.png", "inspect_1_conv2.png", "inspect_1_input.png", "inspect_kernels_conv1.png"]
    assert result.stdout.split() == [str(plots / n) for n in
                                     ("inspect_1_input.png", "inspect_1_conv1.png", "inspect_1_conv2.png",
                                      "inspect_kernels_conv1.png")]
    for name in written:
        width, height = Image.open(plots / name).size
        assert width >= 200 and height >= 200, (name, width, height)
    # three channels per conv layer: a 2x2 grid, wider than the single input image
    assert Image.open(plots / "inspect_1_conv1.png").size[0] > Image.open(plots / "inspect_1_input.png").size[0]

    result = nnlab("inspect", "latest", "--sample", "0", "--after-pool")
    assert result.returncode == 0, result.stderr
    assert {p.name for p in plots.glob("inspect_0_*.png")} == {"inspect_0_input.png", "inspect_0_pool1.png",
                                                               "inspect_0_pool2.png"}

    result = nnlab("inspect", "latest", "--sample", "0", "--layer", "conv9")
    assert result.returncode == 2
    assert result.stderr.strip() == ("error: --layer: no conv or pooling layer 'conv9' in this model "
                                     "(choose from: conv1, pool1, conv2, pool2)")
    result = nnlab("inspect", "latest", "--sample", "100000")
    assert result.returncode == 2 and "--sample: 100000 is out of range" in result.stderr


def test_inspect_single_layer_and_rgb_kernels(tmp_path, runs_dir):
    from nnlab.trained.inspect import inspect_run

    write_cifar_batches(tmp_path / "data" / "cifar10", per_batch=2, test=4)
    run_dir = experiment.train(CONFIGS / "cifar10_cnn.yaml", CIFAR_BATCHES, runs_dir=runs_dir)
    paths = inspect_run(run_dir, 3, layer="conv3")
    assert [p.name for p in paths] == ["inspect_3_input.png", "inspect_3_conv3.png", "inspect_kernels_conv1.png"]
    # 64 channels in an 8x8 grid: a much larger image than the 32-filter kernel grid (6x6)
    conv3, kernels = (Image.open(p).size for p in paths[1:])
    assert conv3[0] > kernels[0] and conv3[1] > kernels[1]


def test_inspect_without_a_saved_model_says_so(mnist_idx, runs_dir):
    run_dir = experiment.train(CONFIGS / "mnist56_cnn_small.yaml", [*TINY, "output.save_model=false"],
                               runs_dir=runs_dir)
    result = nnlab("inspect", run_dir.name)
    assert result.returncode == 2
    assert result.stderr.strip() == f"error: run {run_dir.name}: no model.keras (trained with output.save_model: false)"

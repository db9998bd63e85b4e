"""Fused steps (training/fused.py): several training steps per call change no number, on this pass's backend."""

from __future__ import annotations

import csv
import io
import json

import numpy as np
import pytest
from conftest import CONFIGS, tiny_digits_config, write_config


def _numbers(run_dir) -> dict:
    with open(run_dir / "history.csv", newline="") as f:
        history = [{k: v for k, v in row.items() if k != "time_s"} for row in csv.DictReader(f)]
    with np.load(run_dir / "predictions.npz") as p:
        predictions = {k: p[k] for k in p.files}
    return {"history": history, "metrics": json.loads((run_dir / "metrics.json").read_text()),
            "predictions": predictions}


def test_a_fused_run_equals_the_one_step_run(tmp_path):
    """13 steps an epoch (12 of 16 digits and one of 8) run one per call, five per call (5, 5 and a last call of
    3, the partial batch among them) and as `auto` chooses: the same history, metrics, predictions and weights,
    with a per-step learning-rate schedule, class weights and early stopping restoring its best weights."""
    import keras

    from nnlab import experiment

    train = {"epochs": 4, "batch_size": 16, "lr_schedule": {"name": "cosine_decay", "alpha": 0.1},
             "class_weight": "balanced", "checkpoint_every": 0,
             "early_stopping": {"monitor": "val_loss", "patience": 1, "min_delta": 0.05, "restore_best_weights": True}}
    runs = {}
    for steps in (1, 5, "auto"):
        config = tiny_digits_config(**train, steps_per_execution=steps)
        config["data"]["n_train"] = 200
        path = write_config(tmp_path / f"fused_{steps}.yaml", config)
        runs[steps] = experiment.train(path, runs_dir=tmp_path / "runs", stream=io.StringIO())

    devices = {steps: json.loads((run / "meta.json").read_text())["device"] for steps, run in runs.items()}
    assert devices[1]["steps_per_execution"] == 1 and devices[5]["steps_per_execution"] == 5
    assert devices[5]["chosen_by"] == "train.steps_per_execution"
    auto = devices["auto"]
    assert auto["chosen_by"] == "auto" and auto["step_ms"] > 0 and 1 < auto["steps_per_execution"] <= 13

    one = _numbers(runs[1])
    assert len(one["history"]) >= 2
    weights = {s: keras.saving.load_model(run / "model.keras").get_weights() for s, run in runs.items()}
    for steps in (5, "auto"):
        other = _numbers(runs[steps])
        assert other["history"] == one["history"] and other["metrics"] == one["metrics"]
        assert one["predictions"].keys() == other["predictions"].keys()
        for key, value in one["predictions"].items():
            np.testing.assert_array_equal(other["predictions"][key], value)
        for a, b in zip(weights[1], weights[steps], strict=True):
            np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("value, problem", [
    ("4", "truncated BPTT trains each batch window by window in its own loop (leave it auto)"),
    ("fast", "expected auto or a whole number >= 1 (got 'fast')"),
])
def test_bad_steps_per_call_name_the_key(value, problem):
    from nnlab.config import load_config
    from nnlab.errors import ConfigError

    with pytest.raises(ConfigError) as caught:
        load_config(CONFIGS / "pulse_gru.yaml", [f"train.steps_per_execution={value}"])
    assert str(caught.value) == (f"{CONFIGS / 'pulse_gru.yaml'}: train.steps_per_execution: {problem} "
                                 f"(from override 'train.steps_per_execution={value}')")

"""The sweep driver's progress: one line per finished trial and totals whose ETA comes from measured trial
durations (not from the elapsed time, which a slow first trial or a host start would swing)."""

from __future__ import annotations

import time
from types import SimpleNamespace

from nnlab.sweeps.driver import progress_line, trial_line
from nnlab.sweeps.spec import SweepSpec

SPEC = SweepSpec.model_validate({"metric": {"name": "val_accuracy", "goal": "maximize"},
                                 "parameters": {"model.hidden": {"values": [[8], [32]]}, "train.epochs": {"value": 3}}})


def row(trial: int, status: str, value=None, duration=None, reason=None) -> dict:
    return {"trial": trial, "point": trial // 2, "seed": trial % 2, "status": status, "val_accuracy": value,
            "duration_s": duration, "reason": reason, "model.hidden": [8] if trial < 2 else [32], "train.epochs": 3}


def test_a_finished_trial_is_one_line_with_its_point_seed_metric_duration_and_status():
    assert trial_line(row(3, "completed", 0.91234, 2.46), SPEC) == \
        "trial 3 (point 1, seed 1) completed val_accuracy=0.9123 in 2.5s  model.hidden=[32]"
    assert trial_line(row(0, "failed", None, 1.0, "the trial host exited with code 3"), SPEC) == \
        "trial 0 (point 0, seed 0) failed in 1.0s: the trial host exited with code 3  model.hidden=[8]"


def test_the_eta_is_the_median_trial_duration_times_the_trials_left_per_worker():
    rows = [row(0, "completed", 0.5, 30.0), row(1, "completed", 0.6, 2.0), row(2, "completed", 0.7, 2.0),
            row(3, "running"), *[row(i, "waiting") for i in range(4, 12)]]
    study = SimpleNamespace(spec=SPEC, rows=lambda: rows)
    line = progress_line(study, time.time() - 34, workers=2)
    # 9 left x the median 2.0 s / 2 workers = 9 s; the elapsed-time rate (34 s / 3 x 9 = 102 s) would swing.
    assert line == "trials: 3 done (0 failed, 0 pruned), 1 running, 8 left, best val_accuracy 0.7000; 34s elapsed, ETA 9s"
    assert progress_line(study, time.time() - 34, workers=2, rows=rows[:1] + [row(1, "waiting")]).endswith("ETA 30s")


def test_the_eta_counts_down_while_long_trials_run():
    rows = [row(0, "completed", 0.5, 600.0), row(1, "completed", 0.6, 600.0), row(2, "running"), row(3, "running")]
    study = SimpleNamespace(spec=SPEC, rows=lambda: rows)
    assert progress_line(study, time.time() - 700, workers=2).endswith("ETA 10m00s")  # nothing known: a full median
    # 450 s and 500 s into their 600: 150 s and 100 s left, shared by the 2 workers.
    line = progress_line(study, time.time() - 1150, workers=2, running_for={(2, 0): 450.0, (3, 1): 500.0})
    assert line.endswith("ETA 2m05s")
    # a trial past the median adds nothing; the trials still waiting add a median each.
    line = progress_line(study, time.time() - 1300, workers=2, rows=rows + [row(4, "waiting")],
                         running_for={(2, 0): 700.0, (3, 1): 500.0})
    assert line.endswith("ETA 5m50s")

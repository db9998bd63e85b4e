"""nnlab/run_table.py, the data under `nnlab runs` (its printing is tested in test_runs_list.py): rows with their
folders, trials folded into their sweep and counted, a sweep's filter shared by both tables, removal refusing a
running run. Every run here is a fake run folder (tests/fake_runs.py)."""

from __future__ import annotations

import pytest

from fake_runs import make_run, make_sweep
from nnlab import run_table
from nnlab.errors import ConfigError


def test_trials_are_folded_and_counted_and_the_sweep_filter_applies_to_the_sweeps_rows(runs_dir):
    run = make_run(runs_dir, "20260101-090000-mnist_mlp-aa01", "multiclass")
    make_sweep(runs_dir, "20260102-100000-width-bb01", trials=[
        {"params": {"model.hidden": [8]}, "value": 0.7}, {"params": {"model.hidden": [16]}, "value": 0.8}])

    table = run_table.read_table(runs_dir)
    assert [r["id"] for r in table.rows] == [run.name] and table.rows[0]["folder"] == str(run)
    assert table.folded == 2 and table.sweep is None
    assert [row[0] for row in run_table.sweep_rows(table)] == ["20260102-100000-width-bb01"]

    trials = run_table.read_table(runs_dir, sweep="latest", sort="val_accuracy")
    assert len(trials.rows) == 2 and trials.folded == 0 and trials.sweep == "20260102-100000-width-bb01"
    assert [run_table.metric_value(r, "val_accuracy") for r in trials.rows] == pytest.approx([0.8, 0.7])  # best first
    assert run_table.sweep_rows(run_table.read_table(runs_dir, name="mnist*")) == []


def test_removal_refuses_a_running_run_and_deletes_nothing_then(runs_dir):
    keep = make_run(runs_dir, "20260101-090000-tiny-aa01", "multiclass")
    gone = make_run(runs_dir, "20260101-090001-tiny-aa02", "multiclass")
    rows = run_table.read_table(runs_dir).rows
    busy = [{**row, "status": "running"} if row["id"] == keep.name else row for row in rows]
    with pytest.raises(ConfigError, match=f"--rm: {keep.name} is running"):
        run_table.remove_runs(busy)
    assert keep.exists() and gone.exists()
    run_table.remove_runs([row for row in rows if row["id"] == gone.name])
    assert keep.exists() and not gone.exists()

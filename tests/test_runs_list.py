"""`nnlab runs` with sweeps: each sweep one line, its trial runs folded under it unless asked for."""

from __future__ import annotations

from typer.testing import CliRunner

from conftest import nnlab
from fake_runs import make_run, make_sweep
from nnlab import runs
from nnlab.cli.main import app
from nnlab.sweeps.aggregate import read_trials


def invoke(*args: str):
    return CliRunner().invoke(app, list(args), env={"COLUMNS": "200"})


def ids(result) -> list[str]:
    """The first column of the runs table (up to the blank line before the sweeps)."""
    table = result.stdout.split("\n\n")[0].splitlines()
    return [line.split()[0] for line in table[1:]]


def test_trials_fold_under_their_sweep_and_filters_and_limit_apply_to_both_tables(runs_dir):
    make_run(runs_dir, "20260101-090000-mnist_mlp-aa01", "multiclass")
    make_run(runs_dir, "20260103-090000-pulse_gru-aa02", "sequence_regression", status="failed")
    width = make_sweep(runs_dir, "20260102-100000-width-bb01", trials=[
        {"params": {"model.hidden": [8]}, "value": 0.7}, {"params": {"model.hidden": [16]}, "value": 0.8}])
    make_sweep(runs_dir, "20260102-110000-depth-cc01", method="random", status="interrupted",
               parameters={"train.optimizer.learning_rate": {"distribution": "log_uniform_values", "min": 1e-4,
                                                             "max": 1e-1}},
               trials=[{"params": {"train.optimizer.learning_rate": 0.001}, "value": 0.6}])
    started = make_run(runs_dir, "20260102-120000-depth-9999", "multiclass", status="running")  # not in trials.csv yet
    runs.write_json(started / runs.META, {**runs.read_json(started / runs.META), "sweep": "20260102-110000-depth-cc01"})
    width_trials = [row["run_id"] for row in read_trials(width)]

    default = invoke("runs")
    assert default.exit_code == 0, default.output
    assert ids(default) == ["20260103-090000-pulse_gru-aa02", "20260101-090000-mnist_mlp-aa01"]
    sweeps = default.stdout.split("\n\n")[1].splitlines()
    assert [line.split()[0] for line in sweeps[1:3]] == ["20260102-110000-depth-cc01", "20260102-100000-width-bb01"]
    assert sweeps[3] == "(4 trial runs folded into their sweeps: --trials lists them, --sweep ID one sweep's)"

    assert len(ids(invoke("runs", "--trials"))) == 6
    one = invoke("runs", "--sweep", "20260102-10")
    assert ids(one) == sorted(width_trials, reverse=True)
    assert [line.split()[0] for line in one.stdout.split("\n\n")[1].splitlines()[1:]] == ["20260102-100000-width-bb01"]
    assert ids(invoke("runs", "--sweep", "20260102-11")) == ["20260102-120000-depth-9999",
                                                            "20260102-110000-depth-000-0000"]

    limited = invoke("runs", "--limit", "1")
    assert ids(limited) == ["20260103-090000-pulse_gru-aa02"]
    assert len(limited.stdout.split("\n\n")[1].splitlines()) == 3  # header, one sweep, the folded note
    named = invoke("runs", "--name", "width*")
    assert named.stdout.startswith("no runs in")
    assert [line.split()[0] for line in named.stdout.split("\n\n")[1].splitlines()[1:2]] == ["20260102-100000-width-bb01"]
    failed = invoke("runs", "--status", "interrupted")
    assert "20260102-110000-depth-cc01" in failed.stdout and "20260102-100000-width-bb01" not in failed.stdout

    missing = invoke("runs", "--sweep", "nope")
    assert missing.exit_code == 2 and missing.stderr.startswith("error: --sweep: ")


def test_runs_lists_runs_newest_first(runs_dir):
    """Two finished runs (written as files, not trained): the table's header, then the newest run first."""
    oldest, newest = "20260102-030405-tiny-aaaa", "20260102-030406-tiny-bbbb"
    for run_id in (oldest, newest):
        make_run(runs_dir, run_id, "multiclass")
    result = nnlab("runs")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["id", "name", "status", "epochs", "main", "metric", "duration"]
    assert [line.split()[0] for line in lines[1:]] == [newest, oldest]
    assert all(line.split()[1:5] == ["tiny", "completed", "4", "val_accuracy"] for line in lines[1:])

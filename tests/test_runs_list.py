"""`nnlab runs` (cli/runs.py): the table newest first, a damaged meta.json listed not fatal, filters, sorting, JSON
and CSV for scripts, --rm, a closed pipe; with sweeps, each sweep one line, its trial runs folded under it unless
asked for. Every run here is a fake run folder (tests/fake_runs.py): listing needs no training."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys

from typer.testing import CliRunner

from conftest import nnlab, one_error_line
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


def test_runs_lists_the_others_when_one_meta_json_is_truncated(runs_dir):
    good = make_run(runs_dir, "20200101-000000-tiny-aaaa", "multiclass")
    bad = make_run(runs_dir, "20200101-000001-tiny-bbbb", "multiclass")
    (bad / "meta.json").write_text((bad / "meta.json").read_text()[:40])
    empty = runs_dir / "20200101-000002-tiny-cccc"  # a process stopped before it wrote meta.json
    empty.mkdir()
    result = invoke("runs")
    assert result.exit_code == 0, result.stderr
    table = result.stdout.splitlines()
    assert [line.split()[:4] for line in table[1:]] == [[empty.name, "?", "unreadable", "-"],
                                                        [bad.name, "?", "unreadable", "-"],
                                                        [good.name, "tiny", "completed", "4"]]
    assert f"{bad / 'meta.json'}: not valid JSON" in result.stderr
    assert f"{empty / 'meta.json'}: missing" in result.stderr


def test_runs_filters_sorts_limits_and_prints_json_and_csv(runs_dir):
    ids = []
    for i, (status, value) in enumerate([("completed", 0.5), ("failed", None), ("completed", 0.9)]):
        run_dir = make_run(runs_dir, f"2020010{i + 1}-000000-{'other' if i == 1 else 'tiny'}-000{i}", "multiclass",
                           metric_shift=-0.5 if value is None else 0.0)  # metrics.json's val accuracy: 0.25
        meta = runs.read_json(run_dir / "meta.json")
        meta.update(status=status, name="other" if i == 1 else "tiny",
                    main_metric={"name": "val_accuracy", "value": value} if value else None)
        runs.write_json(run_dir / "meta.json", meta)
        ids.append(run_dir.name)
    rows = json.loads(invoke("runs", "--json").stdout)
    assert [r["id"] for r in rows] == ids[::-1]  # newest first
    assert rows[0] | {"created": None, "duration_s": None} == {
        "id": ids[2], "name": "tiny", "status": "completed", "epochs": 4, "epochs_planned": 4, "metric": "val_accuracy",
        "value": 0.9, "duration_s": None, "created": None, "sweep": None}
    assert [r["id"] for r in json.loads(invoke("runs", "--json", "--status", "failed").stdout)] == [ids[1]]
    assert [r["id"] for r in json.loads(invoke("runs", "--json", "--name", "tin*").stdout)] == [ids[2], ids[0]]
    by_metric = json.loads(invoke("runs", "--json", "--sort", "val_accuracy", "--limit", "2").stdout)
    assert [r["value"] for r in by_metric] == [0.9, 0.5]
    table = list(csv.reader(io.StringIO(invoke("runs", "--csv", "--sort", "name").stdout)))
    assert table[0][:3] == ["id", "name", "status"] and [r[1] for r in table[1:]] == ["other", "tiny", "tiny"]
    assert "unknown status 'done'" in one_error_line(invoke("runs", "--status", "done"))


def test_runs_rm_asks_unless_yes_and_keeps_the_rest(runs_dir):
    keep = make_run(runs_dir, "20200101-000000-tiny-aaaa", "multiclass")
    gone = make_run(runs_dir, "20200102-000000-tiny-bbbb", "multiclass")
    meta = runs.read_json(gone / "meta.json")
    runs.write_json(gone / "meta.json", {**meta, "status": "failed"})
    assert "add --yes" in one_error_line(invoke("runs", "--status", "failed", "--rm"))
    assert gone.exists()
    result = invoke("runs", "--status", "failed", "--rm", "--yes")
    assert result.exit_code == 0 and "deleted 1 run folder(s)" in result.stdout
    assert not gone.exists() and keep.exists()


def test_runs_piped_into_head_exits_quietly(runs_dir):
    meta = json.dumps({"status": "completed", "name": "tiny", "epochs_done": 3, "duration_s": 1.0,
                       "main_metric": {"name": "val_accuracy", "value": 0.5}})
    for i in range(1500):  # more than a pipe's 64 KiB buffer, so the writer does meet the closed pipe
        folder = runs_dir / f"20200101-{i:06d}-tiny-{i % 65536:04x}"
        folder.mkdir(parents=True)
        (folder / "meta.json").write_text(meta)
    result = subprocess.run(f"{sys.executable} -m nnlab.cli.main runs | head -1", shell=True, capture_output=True,
                            text=True, env={**os.environ, "COLUMNS": "200"}, timeout=60)
    assert result.stdout.startswith("id ") and result.stderr == ""

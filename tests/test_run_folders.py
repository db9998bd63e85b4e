"""Run folders in daily use: a damaged file never takes a command down, resume checks what it continues,
`nnlab runs` filters and prints for scripts, files are readable by others, runs can be trained further.

One tiny run is trained once (in-process) and copied into each test's runs folder.
"""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import stat
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from nnlab import experiment, runs
from nnlab.cli.main import app

from conftest import tiny_digits_config, write_config


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A completed 3-epoch run, trained under umask 022."""
    root = tmp_path_factory.mktemp("trained")
    # A checkpoint every epoch, so the one before the last is kept beside it.
    config = write_config(root / "tiny.yaml", tiny_digits_config(epochs=3, checkpoint_every=0))
    previous = os.umask(0o022)
    try:
        run_dir = experiment.train(config, runs_dir=root / "runs", stream=io.StringIO())
    finally:
        os.umask(previous)
    return run_dir


def copy_run(trained, runs_dir, name=None):
    target = runs_dir / (name or trained.name)
    shutil.copytree(trained, target)
    return target


def invoke(*args):
    return CliRunner().invoke(app, list(args))


def one_error_line(result, code=2):
    assert result.exit_code == code, (result.output, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and len(lines[0]) < 400, result.stderr  # two tmp paths
    return lines[0]


def test_files_are_readable_by_group_and_world_under_umask_022(trained):
    files = [p for p in trained.rglob("*") if p.is_file() and p.name != runs.LOCK]
    assert {"model.keras", "meta.json", "history.csv", "curves.png"} <= {p.name for p in files}
    unreadable = [p.name for p in files if stat.S_IMODE(p.stat().st_mode) & 0o044 != 0o044]
    assert unreadable == []


def test_runs_lists_the_others_when_one_meta_json_is_truncated(trained, runs_dir):
    good = copy_run(trained, runs_dir, "20200101-000000-tiny-aaaa")
    bad = copy_run(trained, runs_dir, "20200101-000001-tiny-bbbb")
    (bad / "meta.json").write_text((bad / "meta.json").read_text()[:40])
    empty = runs_dir / "20200101-000002-tiny-cccc"  # a process stopped before it wrote meta.json
    empty.mkdir()
    result = invoke("runs")
    assert result.exit_code == 0, result.stderr
    table = result.stdout.splitlines()
    assert [line.split()[:4] for line in table[1:]] == [[empty.name, "?", "unreadable", "-"],
                                                        [bad.name, "?", "unreadable", "-"],
                                                        [good.name, "tiny", "completed", "3"]]
    assert f"{bad / 'meta.json'}: not valid JSON" in result.stderr
    assert f"{empty / 'meta.json'}: missing" in result.stderr


def test_report_and_compare_name_a_corrupt_history_csv(trained, runs_dir):
    a = copy_run(trained, runs_dir, "20200101-000000-tiny-aaaa")
    b = copy_run(trained, runs_dir, "20200101-000001-tiny-bbbb")
    (b / "history.csv").write_text((b / "history.csv").read_text() + "4,0.5,oops\n")
    assert f"{b / 'history.csv'}: line 5" in one_error_line(invoke("report", b.name))
    assert f"{b / 'history.csv'}" in one_error_line(invoke("compare", a.name, b.name))


def test_resume_with_a_corrupt_state_json_leaves_the_run_as_it_was(trained, runs_dir):
    run_dir = copy_run(trained, runs_dir)
    (run_dir / "checkpoint" / "state.json").write_text('{"epoch": 3, "mod')
    meta_before = (run_dir / "meta.json").read_bytes()
    line = one_error_line(invoke("train", "--resume", run_dir.name, "train.epochs=5"))
    assert f"{run_dir / 'checkpoint' / 'state.json'}: not valid JSON" in line
    assert (run_dir / "meta.json").read_bytes() == meta_before


def test_resume_refuses_a_checkpoint_ahead_of_history_csv(trained, runs_dir):
    run_dir = copy_run(trained, runs_dir)
    rows = (run_dir / "history.csv").read_text().splitlines()
    (run_dir / "history.csv").write_text("\n".join(rows[:2]) + "\n")  # epoch 1 only; the checkpoint is after 3
    meta_before = (run_dir / "meta.json").read_bytes()
    line = one_error_line(invoke("train", "--resume", run_dir.name, "train.epochs=5"))
    assert "cannot resume" in line and "history.csv lacks epochs up to 3" in line
    assert (run_dir / "meta.json").read_bytes() == meta_before


def test_train_further_falls_back_past_a_truncated_checkpoint_and_clears_stale_temporaries(trained, runs_dir):
    run_dir = copy_run(trained, runs_dir)
    state = json.loads((run_dir / "checkpoint" / "state.json").read_text())
    assert state["previous"]["epoch"] == 2 and (run_dir / "checkpoint" / state["previous"]["model"]).is_file()
    newest = run_dir / "checkpoint" / state["model"]
    newest.write_bytes(newest.read_bytes()[:500])  # a truncated newest checkpoint: fall back one epoch
    stale = [run_dir / "checkpoint" / ".epoch-0004-x1y2z3w4.keras", run_dir / ".meta-abcdefgh.json"]
    for path in stale:
        path.write_text("half written")

    result = invoke("train", "--resume", run_dir.name, "train.epochs=5")
    assert result.exit_code == 0, result.stderr
    assert result.stdout.startswith(f"run {run_dir.name}: resuming tiny after epoch 2/5")
    assert [int(r["epoch"]) for r in csv.DictReader(open(run_dir / "history.csv"))] == [1, 2, 3, 4, 5]
    assert not any(p.exists() for p in stale)
    meta = runs.read_json(run_dir / "meta.json")
    assert (meta["status"], meta["epochs_done"], meta["epochs_planned"]) == ("completed", 5, 5)
    assert meta["extended"][0] | {"at": None} == {"from": 3, "to": 5, "after_epoch": 3, "at": None}
    assert "epochs: 5" in (run_dir / "config.yaml").read_text()


def test_train_further_is_the_only_change_resume_takes(trained, runs_dir):
    run_dir = copy_run(trained, runs_dir)
    assert "the run has 3 epochs already" in one_error_line(invoke("train", "--resume", run_dir.name, "train.epochs=3"))
    assert "only train.epochs=N may change" in one_error_line(
        invoke("train", "--resume", run_dir.name, "model.hidden=[3]"))
    assert "train.epochs=13" in one_error_line(invoke("train", "--resume", run_dir.name))  # completed: says how


def test_runs_filters_sorts_limits_and_prints_json_and_csv(trained, runs_dir):
    ids = []
    for i, (status, value) in enumerate([("completed", 0.5), ("failed", None), ("completed", 0.9)]):
        run_dir = copy_run(trained, runs_dir, f"2020010{i + 1}-000000-{'other' if i == 1 else 'tiny'}-000{i}")
        meta = runs.read_json(run_dir / "meta.json")
        meta.update(status=status, name="other" if i == 1 else "tiny",
                    main_metric={"name": "val_accuracy", "value": value} if value else None)
        runs.write_json(run_dir / "meta.json", meta)
        ids.append(run_dir.name)
    rows = json.loads(invoke("runs", "--json").stdout)
    assert [r["id"] for r in rows] == ids[::-1]  # newest first
    assert rows[0] | {"created": None, "duration_s": None} == {
        "id": ids[2], "name": "tiny", "status": "completed", "epochs": 3, "epochs_planned": 3, "metric": "val_accuracy",
        "value": 0.9, "duration_s": None, "created": None, "sweep": None}
    assert [r["id"] for r in json.loads(invoke("runs", "--json", "--status", "failed").stdout)] == [ids[1]]
    assert [r["id"] for r in json.loads(invoke("runs", "--json", "--name", "tin*").stdout)] == [ids[2], ids[0]]
    by_metric = json.loads(invoke("runs", "--json", "--sort", "val_accuracy", "--limit", "2").stdout)
    assert [r["value"] for r in by_metric] == [0.9, 0.5]
    table = list(csv.reader(io.StringIO(invoke("runs", "--csv", "--sort", "name").stdout)))
    assert table[0][:3] == ["id", "name", "status"] and [r[1] for r in table[1:]] == ["other", "tiny", "tiny"]
    assert "unknown status 'done'" in one_error_line(invoke("runs", "--status", "done"))


def test_runs_rm_asks_unless_yes_and_keeps_the_rest(trained, runs_dir):
    keep = copy_run(trained, runs_dir, "20200101-000000-tiny-aaaa")
    gone = copy_run(trained, runs_dir, "20200102-000000-tiny-bbbb")
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


def test_report_on_a_read_only_run_folder_still_prints(trained, runs_dir, monkeypatch):
    run_dir = copy_run(trained, runs_dir)
    (run_dir / "plots" / "curves.png").unlink()  # the report would have to redraw it

    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr("tempfile.mkstemp", refuse)  # every write in nnlab goes through runs.atomic_path
    result = invoke("report", run_dir.name)
    assert result.exit_code == 0, result.stderr
    assert result.stderr == f"note: cannot write into {run_dir} (Permission denied); terminal report only\n"
    assert "val_accuracy" in result.stdout and not (run_dir / "report.html").exists()


def test_a_report_taken_before_more_training_is_refreshed(trained, runs_dir):
    run_dir = copy_run(trained, runs_dir)
    assert invoke("report", run_dir.name).exit_code == 0
    before = (run_dir / "report.html").read_text()
    assert invoke("train", "--resume", run_dir.name, "train.epochs=4").exit_code == 0
    after = (run_dir / "report.html").read_text()
    assert after != before and ">4<" in after


def test_compare_out_refuses_to_overwrite_a_run_file(trained, runs_dir):
    a = copy_run(trained, runs_dir, "20200101-000000-tiny-aaaa")
    b = copy_run(trained, runs_dir, "20200101-000001-tiny-bbbb")
    line = one_error_line(invoke("compare", a.name, b.name, "--out", str(a / "history.csv")))
    assert "is a file of run 20200101-000000-tiny-aaaa" in line
    assert (a / "history.csv").read_text() == (trained / "history.csv").read_text()


def test_runs_dir_order_and_a_relative_data_path_stored_resolved(tmp_path, monkeypatch, mnist_idx):
    """--runs-dir beats output.runs_dir beats $NNLAB_RUNS_DIR; data.path is stored absolute."""
    monkeypatch.chdir(tmp_path)
    config = write_config(tmp_path / "m.yaml", {
        "name": "m", "data": {"name": "mnist", "path": "data/mnist", "n_train": 40, "download": False},
        "model": {"name": "mlp", "hidden": [4]}, "train": {"epochs": 1},
        "output": {"runs_dir": "from-config", "plots": False}})
    result = invoke("train", str(config))
    assert result.exit_code == 0, result.stderr
    (run_dir,) = (tmp_path / "from-config").iterdir()  # not $NNLAB_RUNS_DIR
    assert runs.read_json(run_dir / "meta.json")["data"]["path"] == str(mnist_idx)
    assert f"path: {mnist_idx}" in (run_dir / "config.yaml").read_text()
    assert not (tmp_path / "runs").exists()


def test_a_run_stopped_before_meta_json_leaves_no_empty_folder(tmp_path, runs_dir, monkeypatch):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(runs, "new_meta", interrupted)
    with pytest.raises(KeyboardInterrupt):
        experiment.train(write_config(tmp_path / "t.yaml", tiny_digits_config(epochs=1)), runs_dir=runs_dir,
                         stream=io.StringIO())
    assert list(runs_dir.iterdir()) == []

"""`nnlab evaluate`: a trained run scored again with training's metric code, into evaluations/<stamp>/."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from conftest import copy_run, nnlab, pretend_interrupted
from nnlab import runs
from nnlab.cli.main import app
from nnlab.reports.summary import read_evaluations
from test_import_cost import probe


def invoke(*args: str):
    return CliRunner().invoke(app, list(args))


def digest(run_dir: Path) -> dict[str, str]:
    """Every file of the run folder outside evaluations/, by content."""
    return {p.relative_to(run_dir).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(run_dir.rglob("*")) if p.is_file() and runs.EVALUATIONS not in p.parts}


def test_evaluate_reproduces_the_validation_metrics_and_changes_nothing_else(trained_run, tmp_path):
    run_dir = copy_run(trained_run("mlp"), tmp_path)
    before = digest(run_dir)

    result = nnlab("evaluate", run_dir.name)  # as a user types it: by id, in a fresh process

    assert result.returncode == 0, result.stderr
    (folder,) = (run_dir / "evaluations").iterdir()
    assert re.fullmatch(r"\d{8}-\d{6}-val-[0-9a-f]{4}", folder.name)
    trained = runs.read_json(run_dir / "metrics.json")["val"]
    evaluated = runs.read_json(folder / "metrics.json")
    assert list(evaluated) == ["val"]
    assert evaluated["val"] == pytest.approx(trained, rel=1e-6)
    assert evaluated["val"]["accuracy"] == trained["accuracy"]
    expected = [f"evaluation: {folder}", "val split: 100 examples of digits (real data)"]
    expected += [f"val_{k}: {v:.6g}" + ("  (main metric)" if k == "accuracy" else "")
                 for k, v in evaluated["val"].items()]
    assert result.stdout.splitlines() == expected
    assert (folder / "confusion_matrix.csv").read_text() == (run_dir / "confusion_matrix.csv").read_text()
    for name in ("classification_report.json", "predictions.npz", "evaluation.json", "plots/confusion_matrix.png"):
        assert (folder / name).is_file(), name
    record = runs.read_json(folder / "evaluation.json")
    assert (record["split"], record["overrides"], record["model"]) == ("val", [], "model.keras")
    assert digest(run_dir) == before  # nothing the run held was changed
    assert not [p for p in (run_dir / "evaluations").rglob(".*")]  # no temporary folders left


def test_a_data_override_writes_a_second_evaluation_and_the_report_shows_both(trained_run, tmp_path):
    run_dir = copy_run(trained_run("mlp"), tmp_path)
    assert invoke("evaluate", str(run_dir)).exit_code == 0
    result = invoke("evaluate", str(run_dir), "data.n_val=40", "--split", "val")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[1] == "val split: 40 examples of digits (real data, overrides data.n_val=40)"
    first, second = (e.folder for e in read_evaluations(run_dir))  # oldest first, even within one second
    assert runs.read_json(second / "evaluation.json")["overrides"] == ["data.n_val=40"]
    assert runs.read_json(second / "evaluation.json")["data"]["sizes"] == {"train": 200, "val": 40}
    matrix = (second / "confusion_matrix.csv").read_text().splitlines()
    assert sum(int(v) for row in matrix[1:] for v in row.split(",")[1:]) == 40

    report = invoke("report", str(run_dir))

    assert report.exit_code == 0, report.output
    out = report.stdout
    for folder, overrides in ((first, "none"), (second, "data.n_val=40")):
        block = out[out.index(f"evaluation {folder.name}"):]
        assert re.search(rf"^overrides +{re.escape(overrides)} *$", block, re.M)
        accuracy = runs.read_json(folder / "metrics.json")["val"]["accuracy"]
        assert re.search(rf"^accuracy +{accuracy:.4f}$", block, re.M)
    page = (run_dir / "report.html").read_text()
    assert f'id="evaluation-{first.name}"' in page and f'id="evaluation-{second.name}"' in page
    assert "data.n_val=40" in page


def test_evaluate_on_the_training_split(trained_run, tmp_path):
    run_dir = copy_run(trained_run("mlp"), tmp_path)
    result = invoke("evaluate", str(run_dir), "--split", "train")
    assert result.exit_code == 0, result.output
    (folder,) = (run_dir / "evaluations").iterdir()
    assert runs.read_json(folder / "metrics.json")["train"] == pytest.approx(
        runs.read_json(run_dir / "metrics.json")["train"], rel=1e-6)


@pytest.mark.parametrize("args, message", [
    (["train.epochs=3"], "error: override 'train.epochs=3': nnlab evaluate takes only data.* overrides "
                         "(not data.name): the model is already trained"),
    (["data.name=mnist"], "error: override 'data.name=mnist': nnlab evaluate takes only data.* overrides "
                          "(not data.name): the model is already trained"),
    (["--split", "dev"], "error: --split: expected one of train, val, test (got 'dev')"),
    (["data.n_val=0"], "error: {config}: data.n_val: Input should be greater than or equal to 1 (got 0) "
                       "(from override 'data.n_val=0')"),
    (["--split", "test"], "error: {config}: --split test: the digits data has no test split (it has train, val)"),
], ids=["non-data key", "data.name", "bad split", "bad data value", "missing split"])
def test_bad_evaluate_input_is_one_line_and_exit_2(trained_run, tmp_path, args, message):
    run_dir = copy_run(trained_run("mlp"), tmp_path)
    result = invoke("evaluate", str(run_dir), *args)
    assert result.exit_code == 2
    assert result.stderr == message.format(config=run_dir / "config.yaml") + "\n"
    assert not (run_dir / "evaluations").exists() or not list((run_dir / "evaluations").iterdir())


def test_an_incomplete_run_is_refused_unless_allowed_then_its_checkpoint_is_used(trained_run, tmp_path):
    run_dir = copy_run(trained_run("mlp"), tmp_path)
    pretend_interrupted(run_dir)

    refused = invoke("evaluate", str(run_dir))

    assert refused.exit_code == 2
    assert refused.stderr == (f"error: run {run_dir.name} is interrupted, not completed "
                              "(--allow-incomplete uses its last checkpoint)\n")
    allowed = invoke("evaluate", str(run_dir), "--allow-incomplete")
    assert allowed.exit_code == 0, allowed.output
    assert allowed.stdout.splitlines()[0] == (f"run {run_dir.name} is interrupted: using its last checkpoint "
                                              "(epoch 2 of 2)")
    (folder,) = (run_dir / "evaluations").iterdir()
    record = runs.read_json(folder / "evaluation.json")
    assert record["model"] == "checkpoint/epoch-0002.keras" and "last checkpoint" in record["note"]
    report = invoke("report", str(run_dir), "--no-html")
    assert f"run {run_dir.name} is interrupted: using its last checkpoint" in report.stdout


def test_the_pulse_model_is_scored_on_longer_sequences_than_it_was_trained_on(trained_run, tmp_path):
    run_dir = copy_run(trained_run("pulse"), tmp_path)
    result = invoke("evaluate", str(run_dir), "data.length=80")
    assert result.exit_code == 0, result.output
    (folder,) = (run_dir / "evaluations").iterdir()
    assert runs.read_json(folder / "evaluation.json")["data"]["generator"]["length"] == 80
    scores = runs.read_json(folder / "metrics.json")["val"]
    assert set(scores) >= {"loss", "mse", "mae", "nmse"} and scores["nmse"] > 0
    import numpy as np

    with np.load(folder / "predictions.npz") as data:
        assert data["val_y_pred"].shape == (10, 80, 1)
    assert (folder / "plots" / "predictions_val.png").is_file()


def test_evaluations_made_within_one_second_are_listed_oldest_first(tmp_path):
    """Folder names stop at the second and end in random hex; the record's write time breaks the tie."""
    import os

    for name, written in (("20261126-101500-val-ffff", 1), ("20261126-101500-val-0000", 2),
                          ("20261126-101459-val-9999", 3)):
        runs.write_json(tmp_path / "evaluations" / name / "evaluation.json", {"split": "val"})
        os.utime(tmp_path / "evaluations" / name / "evaluation.json", ns=(written * 10**9, written * 10**9))
    assert [e.id for e in read_evaluations(tmp_path)] == [
        "20261126-101459-val-9999", "20261126-101500-val-ffff", "20261126-101500-val-0000"]


def test_a_split_the_run_never_had_is_refused_before_keras_is_imported(trained_run):
    run_dir = trained_run("mlp")
    code, loaded, stderr = probe("evaluate", str(run_dir), "--split", "test")
    assert loaded == ""  # what took 13 s: the model was loaded (and the data) before the split was looked for
    assert code == "2"
    assert stderr == (f"error: {run_dir / 'config.yaml'}: --split test: the digits data has no test split "
                      "(it has train, val)\n")

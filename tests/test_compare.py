"""`nnlab compare`: config differences by flattened key, metrics side by side, a self-contained compare page."""

from __future__ import annotations

import copy
import json

from typer.testing import CliRunner

from conftest import nnlab, one_error_line
from fake_runs import base_config, make_run
from test_report import assert_offline, images

from nnlab.cli.main import app
from nnlab.reports.compare import MISSING, compare_runs, comparison_file_name
from nnlab.reports.summary import flatten, read_run

A, B, C = "20260102-030401-shapes-aaaa", "20260102-030402-shapes-bbbb", "20260102-030403-shapes-cccc"


def two_runs(runs_dir, change):
    """Two multiclass runs whose configs differ only where `change` edits the second."""
    first = base_config("multiclass", "shapes")
    second = copy.deepcopy(first)
    change(second)
    make_run(runs_dir, A, "multiclass", config=first)
    make_run(runs_dir, B, "multiclass", config=second, metric_shift=0.05)


def lines(text: str) -> str:
    """The output without the padding rich leaves at line ends."""
    return "\n".join(line.rstrip() for line in text.splitlines()) + "\n"


def test_compare_two_runs_differing_in_one_key(runs_dir):
    two_runs(runs_dir, lambda c: c["train"]["optimizer"].update(learning_rate=0.01))

    result = nnlab("compare", "20260102-030401", "20260102-030402")

    assert result.returncode == 0, result.stderr
    page = runs_dir / f"compare-{A}_{B}.html"
    assert lines(result.stdout) == f"""\
runs
    id                            name     status      duration
───────────────────────────────────────────────────────────────
A   {A}   shapes   completed   12.5s
B   {B}   shapes   completed   12.5s

config differences (1 of 27 keys differ)
key                             A       B
────────────────────────────────────────────
train.optimizer.learning_rate   0.001   0.01

final metrics
split   metric          A        B
──────────────────────────────────
train   loss       0.5700   0.6200
train   accuracy   0.8000   0.8500
train   log_loss   0.5700   0.6200
val     loss       0.5200   0.5700
val     accuracy   0.7500   0.8000
val     log_loss   0.5200   0.5700

comparison page: {page}
"""
    html = page.read_text()
    assert_offline(html)
    assert set(images(html)) == {"overlaid learning curves"}
    assert "1 of 27 config keys differ (highlighted)." in html
    assert '<tr class="diff"><td>train.optimizer.learning_rate</td><td>0.001</td><td>0.01</td></tr>' in html
    assert html.count('<tr class="diff">') == 2  # once in the differences, once among all keys


def test_compare_identical_configs_says_none_differ(runs_dir, tmp_path):
    two_runs(runs_dir, lambda c: None)
    result = nnlab("compare", A, B, "--out", str(tmp_path / "same.html"))
    assert result.returncode == 0, result.stderr
    assert "config differences: none (all 27 keys are equal)" in result.stdout
    assert (tmp_path / "same.html").is_file()
    assert not list(runs_dir.glob("compare-*.html"))


def test_compare_three_runs_with_a_key_only_one_has(runs_dir):
    two_runs(runs_dir, lambda c: c["model"].update(hidden=[32, 16]))
    third = base_config("multiclass", "shapes")
    third["train"]["early_stopping"] = {"monitor": "val_loss", "patience": 3}
    make_run(runs_dir, C, "multiclass", config=third)

    result = nnlab("compare", A, B, C)

    assert result.returncode == 0, result.stderr
    out = lines(result.stdout)
    assert "config differences (4 of 29 keys differ)" in out
    assert """\
key                             A          B          C
──────────────────────────────────────────────────────────────
model.hidden                    [16]       [32, 16]   [16]
train.early_stopping            null       null       (absent)
train.early_stopping.monitor    (absent)   (absent)   val_loss
train.early_stopping.patience   (absent)   (absent)   3
""" in out
    assert (runs_dir / f"compare-{A}_{B}_{C}.html").is_file()


def test_compare_needs_two_distinct_runs(runs_dir):
    two_runs(runs_dir, lambda c: None)
    result = nnlab("compare", A)
    assert (result.returncode, result.stderr) == (2, "error: nnlab compare: give at least two runs (got 1)\n")
    result = nnlab("compare", A, "20260102-030401")
    assert result.returncode == 2
    assert result.stderr == f"error: nnlab compare: '{A}' and '20260102-030401' are the same run ({A})\n"
    result = nnlab("compare", A, "nosuchrun")
    assert (result.returncode, result.stderr) == (2, f"error: no run 'nosuchrun' in {runs_dir}\n")


def test_compare_names_a_corrupt_history_csv(runs_dir):
    a, b = make_run(runs_dir, A, "multiclass"), make_run(runs_dir, B, "multiclass")
    (b / "history.csv").write_text((b / "history.csv").read_text() + "5,0.5,oops\n")
    assert f"{b / 'history.csv'}" in one_error_line(CliRunner().invoke(app, ["compare", a.name, b.name]))


def test_compare_out_refuses_to_overwrite_a_run_file(runs_dir):
    a, b = make_run(runs_dir, A, "multiclass"), make_run(runs_dir, B, "multiclass")
    history = (a / "history.csv").read_text()
    line = one_error_line(CliRunner().invoke(app, ["compare", a.name, b.name, "--out", str(a / "history.csv")]))
    assert f"is a file of run {A}" in line
    assert (a / "history.csv").read_text() == history


def test_flatten_and_differences_are_pure(runs_dir):
    nested = {"a": {"b": 1, "c": {"d": [1, 2]}}, "e": {}, "f": None}
    assert flatten(nested) == {"a.b": 1, "a.c.d": [1, 2], "e": {}, "f": None}
    two_runs(runs_dir, lambda c: c["train"].update(batch_size=64, epochs=4.0))
    comparison = compare_runs([read_run(runs_dir / A), read_run(runs_dir / B)])
    assert comparison.differing == ["train.epochs", "train.batch_size"]  # 4 and 4.0 are different YAML values
    assert comparison.values("train.batch_size") == [32, 64]
    assert comparison.values("no.such.key") == [MISSING, MISSING]
    assert comparison.labels == ["A", "B"]
    rows = comparison.metric_rows()
    assert rows[0] == ("train", "loss", [0.57, 0.62])
    assert [r[:2] for r in rows][-1] == ("val", "log_loss")


def test_comparison_file_name_stays_short():
    assert comparison_file_name([A, B]) == f"compare-{A}_{B}.html"
    name = comparison_file_name([A] * 9)
    assert name.startswith(f"compare-{A}_and_8_more-") and len(name) < 80


def _set_device(run_dir, **device):
    meta = json.loads((run_dir / "meta.json").read_text())
    meta["device"].update(device)
    (run_dir / "meta.json").write_text(json.dumps(meta))


def test_compare_same_config_and_seed_different_numbers_points_at_the_differing_entry(runs_dir):
    two_runs(runs_dir, lambda c: None)  # one config and seed; B's numbers differ
    _set_device(runs_dir / A, threads=1, deterministic=True, cpus=1)
    _set_device(runs_dir / B, threads=2, deterministic=True, cpus=1)

    result = nnlab("compare", A, B)

    assert result.returncode == 0, result.stderr
    out = lines(result.stdout)
    assert """\
environment differences (1)
entry (meta.json)   A   B
─────────────────────────
device.threads      1   2

same config and seed, different numbers: they ran with different device.threads
""" in out
    html = (runs_dir / f"compare-{A}_{B}.html").read_text()
    assert "Environment differences" in html and '<tr class="diff"><td>device.threads</td><td>1</td><td>2</td></tr>' in html


def test_compare_says_when_nothing_recorded_explains_different_numbers(runs_dir, tmp_path):
    two_runs(runs_dir, lambda c: None)
    result = nnlab("compare", A, B, "--out", str(tmp_path / "same.html"))
    assert "environment differences" not in result.stdout
    assert ("same config, seed and recorded environment, different numbers: something not recorded differs (ops "
            "that are not deterministic: set train.deterministic: true; or the data files changed)") in result.stdout
    # Equal numbers, or different configs: nothing to explain.
    comparison = compare_runs([read_run(runs_dir / A), read_run(runs_dir / A)])
    assert comparison.reproducibility_note() is None
    make_run(runs_dir, C, "multiclass", config={**base_config("multiclass", "shapes"), "seed": 1}, metric_shift=0.1)
    assert compare_runs([read_run(runs_dir / A), read_run(runs_dir / C)]).reproducibility_note() is None

"""`nnlab report`: terminal summary and self-contained report.html for every task kind, lookup, no TensorFlow."""

from __future__ import annotations

import base64
import io
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import matplotlib.image
import numpy as np
import pytest
from typer.testing import CliRunner

from conftest import nnlab, one_error_line, tiny_digits_config, write_config
from fake_runs import CLASS_NAMES, TASKS, make_run, write_png
from nnlab.cli.main import app

IMG = re.compile(r'<img alt="([^"]*)" src="data:image/png;base64,([A-Za-z0-9+/=]+)">')
CHROMIUM = Path("/usr/bin/chromium")


def run_id(task: str, i: int = 0) -> str:
    return f"20260102-03040{i}-{task.replace('_', '')}-ab{i}{i}"


def images(page: str) -> dict[str, np.ndarray]:
    """Every <img> of the page, decoded: alt text -> pixel array (fails if one does not decode)."""
    found = IMG.findall(page)
    assert page.count("<img") == len(found), "an <img> without an inline PNG data URI"
    return {alt: matplotlib.image.imread(io.BytesIO(base64.b64decode(data)), format="png") for alt, data in found}


def assert_offline(page: str) -> None:
    """Nothing on the page points at the network: only data: images, in-page links, and a CSP that forbids the rest."""
    assert "default-src 'none'; img-src data:; style-src 'unsafe-inline'" in page
    for attribute, value in re.findall(r'\b(src|href|action|poster)\s*=\s*"([^"]*)"', page):
        assert value.startswith(("data:image/png;base64,", "#")), (attribute, value[:80])
    assert not re.search(r"url\(|@import|<script|<link|<iframe", page, re.I)


# ---------------------------------------------------------------------------------------------
# Every task kind, from run folders written by hand in the real formats.
@pytest.mark.parametrize("task", TASKS)
def test_report_every_task_kind(task, runs_dir):
    run_dir = make_run(runs_dir, run_id(task), task)
    write_png(run_dir / "plots" / "weights_histogram.png")  # an inspection plot another tool left behind
    write_png(run_dir / "plots" / "layers" / "activations.png", seed=1)
    stale = write_png(run_dir / "plots" / "curves.png", seed=2)  # older than history.csv: must be redrawn
    os.utime(stale, (1_000_000, 1_000_000))
    stale_bytes = stale.read_bytes()

    result = nnlab("report", run_id(task))

    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert f"run {run_id(task)}  (" in out and task in out
    assert "completed in 12.5s" in out
    assert "fake_" + task + ", generated data: train 64 / val 16" in out
    assert "1,234 (1,200 trainable)" in out
    assert "4 of 4, best epoch 3 (val_loss 0.3667," in out
    assert "train.optimizer   adam(learning_rate=0.001)" in out
    metrics = json.loads((run_dir / "metrics.json").read_text())
    for name, value in metrics["val"].items():  # every final metric, train and val side by side
        assert re.search(rf"^{name} +{metrics['train'][name]:.4f} +{value:.4f}$", out, re.M), name
    if task in CLASS_NAMES:
        names = CLASS_NAMES[task]
        assert re.search(r"^true \\ pred +" + " +".join(names) + "$", out, re.M)
        assert re.search(rf"^{names[0]} +\d+", out, re.M)
    else:
        assert "confusion matrix" not in out
    if task == "seq2seq":
        assert "ok  ' 12+345' -> '357 '  (true '357 ')" in out
        assert "XX  '  9+99 ' -> '107 '  (true '108 ')" in out
    else:
        assert "examples" not in out

    page_path = run_dir / "report.html"
    assert f"report: {page_path}" in out
    page = page_path.read_text()
    assert_offline(page)
    decoded = images(page)
    assert all(image.ndim == 3 and image.shape[0] > 50 and image.shape[1] > 50 for image in decoded.values())
    expected = {"learning curves", "weights histogram", "activations"}
    expected |= {"confusion matrix (counts)", "confusion matrix (normalised)"} if task in CLASS_NAMES else set()
    expected |= {"predictions (validation)"} if task in ("binary", "regression", "sequence_regression") else set()
    expected |= {"roc curve (validation)"} if task == "binary" else set()  # binary runs report a ROC AUC
    assert set(decoded) == expected
    # Inspection plots are embedded byte for byte; the standard curves.png is not embedded twice.
    for png in ("weights_histogram.png", "layers/activations.png"):
        assert base64.b64encode((run_dir / "plots" / png).read_bytes()).decode() in page
    assert base64.b64encode(stale_bytes).decode() not in page
    assert base64.b64encode((run_dir / "plots" / "curves.png").read_bytes()).decode() in page  # the redrawn one
    standard = {"curves.png"}
    standard |= {"confusion_matrix.png", "confusion_matrix_normalized.png"} if task in CLASS_NAMES else set()
    standard |= {"predictions_val.png"} if task in ("binary", "regression", "sequence_regression") else set()
    standard |= {"roc_val.png"} if task == "binary" else set()
    assert {p.name for p in (run_dir / "plots").glob("*.png")} == standard | {"weights_histogram.png"}
    for heading in ("Overview", "Final metrics", "Learning curves", "Inspection plots", "Model", "Configuration"):
        assert f"<h2>{heading}</h2>" in page
    assert "<th>Param #</th>" in page and "<td>dense (Dense)</td>" in page  # the model summary as a table
    assert ("<h2>Per-class scores (validation)</h2>" in page) == (task in CLASS_NAMES)
    assert ("<h2>Decoded examples (validation)</h2>" in page) == (task == "seq2seq")
    if task == "seq2seq":  # from examples.json's records: one right, one wrong (fake_runs.py)
        assert "<p>1 of 2 shown examples are entirely right.</p>" in page
        assert '<tr class="wrong"><td>wrong</td><td>&#x27;  9+99 &#x27;</td>' in page
    assert "hidden: [16]" in page or "- 16" in page  # the full resolved config


def test_report_reuses_fresh_plots_and_redraws_missing_ones(runs_dir):
    """A finished run's plots are embedded as they are; deleted ones are redrawn from the data files."""
    run_dir = make_run(runs_dir, run_id("binary"), "binary")
    assert nnlab("report", "latest").returncode == 0
    drawn = {p.name: p.read_bytes() for p in (run_dir / "plots").glob("*.png")}
    assert set(drawn) == {"curves.png", "confusion_matrix.png", "confusion_matrix_normalized.png",
                          "predictions_val.png", "roc_val.png"}
    fresh = write_png(run_dir / "plots" / "curves.png", seed=3)  # newer than history.csv: kept as it is
    (run_dir / "plots" / "predictions_val.png").unlink()

    assert nnlab("report", "latest", "--html").returncode == 0

    page = (run_dir / "report.html").read_text()
    assert base64.b64encode(fresh.read_bytes()).decode() in page
    assert (run_dir / "plots" / "predictions_val.png").is_file()
    assert set(images(page)) == {"learning curves", "confusion matrix (counts)", "confusion matrix (normalised)",
                                 "predictions (validation)", "roc curve (validation)"}


def test_report_of_a_failed_run_says_why(runs_dir):
    run_dir = make_run(runs_dir, run_id("multiclass"), "multiclass", status="failed")
    (run_dir / "metrics.json").unlink()
    result = nnlab("report", "latest", "--no-html")
    assert result.returncode == 0, result.stderr
    assert "failed after 12.5s: the loss became NaN or infinite in epoch 3" in result.stdout
    assert "no final metrics (metrics.json is missing)" in result.stdout
    assert not (run_dir / "report.html").exists()


# ---------------------------------------------------------------------------------------------
# Lookup: id, prefix, path, latest; clear errors.
def test_report_finds_runs_by_id_prefix_path_and_latest(runs_dir, tmp_path):
    make_run(runs_dir, run_id("binary", 1), "binary")
    make_run(runs_dir, run_id("regression", 2), "regression")
    copied = shutil.copytree(runs_dir / run_id("binary", 1), tmp_path / "elsewhere" / "copied-run")
    for ref, expected in ((run_id("binary", 1), run_id("binary", 1)), ("20260102-030402", run_id("regression", 2)),
                          ("latest", run_id("regression", 2)), (str(copied), "copied-run")):
        result = nnlab("report", ref, "--no-html")
        assert result.returncode == 0, (ref, result.stderr)
        assert result.stdout.startswith(f"run {expected}  ("), ref


def test_report_ambiguous_prefix_lists_the_candidates(runs_dir):
    make_run(runs_dir, run_id("binary", 1), "binary")
    make_run(runs_dir, run_id("regression", 2), "regression")
    result = nnlab("report", "2026")
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr == (f"error: run prefix '2026' is ambiguous in {runs_dir}: "
                             f"{run_id('regression', 2)}, {run_id('binary', 1)}\n")


def test_report_unknown_run_is_one_error_line(runs_dir):
    make_run(runs_dir, run_id("binary", 1), "binary")
    result = nnlab("report", "nosuchrun")
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr == f"error: no run 'nosuchrun' in {runs_dir}\n"


def test_report_with_no_runs_is_one_error_line(runs_dir):
    result = nnlab("report", "latest")
    assert (result.returncode, result.stderr) == (2, f"error: no runs in {runs_dir}\n")


def invoke(*args: str):
    return CliRunner().invoke(app, list(args))


def test_report_names_a_corrupt_history_csv(runs_dir):
    run_dir = make_run(runs_dir, run_id("multiclass"), "multiclass")
    (run_dir / "history.csv").write_text((run_dir / "history.csv").read_text() + "5,0.5,oops\n")
    assert f"{run_dir / 'history.csv'}: line 6" in one_error_line(invoke("report", run_dir.name))


def test_report_on_a_read_only_run_folder_still_prints(runs_dir, monkeypatch):
    run_dir = make_run(runs_dir, run_id("multiclass"), "multiclass")  # no plots yet: the report would draw them

    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr("tempfile.mkstemp", refuse)  # every write in nnlab goes through runs.atomic_path
    result = invoke("report", run_dir.name)
    assert result.exit_code == 0, result.stderr
    assert result.stderr == f"note: cannot write into {run_dir} (Permission denied); terminal report only\n"
    assert "val_accuracy" in result.stdout and not (run_dir / "report.html").exists()


# ---------------------------------------------------------------------------------------------
# Import cost: report and compare never load TensorFlow or Keras.
@pytest.mark.parametrize(("case", "draws"), [("report", True), ("report-again", False), ("report-no-html", False),
                                             ("compare", True)])
def test_report_and_compare_never_import_tensorflow(case, draws, runs_dir):
    """Drawing needs matplotlib; nothing needs TensorFlow. A second report finds fresh plots and draws nothing."""
    make_run(runs_dir, run_id("multiclass", 1), "multiclass")
    make_run(runs_dir, run_id("seq2seq", 2), "seq2seq")
    args = {"report": ["report", run_id("multiclass", 1)], "report-again": ["report", run_id("multiclass", 1)],
            "report-no-html": ["report", run_id("multiclass", 1), "--no-html"],
            "compare": ["compare", run_id("multiclass", 1), run_id("seq2seq", 2)]}[case]
    if case == "report-again":
        assert nnlab("report", run_id("multiclass", 1)).returncode == 0
    code = (
        "import sys\n"
        "from nnlab.cli.main import app\n"
        f"sys.argv = ['nnlab', *{args!r}]\n"
        "try:\n    app()\nexcept SystemExit as exc:\n    assert not exc.code, exc.code\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras', 'tensorboard'))\n"
        "print('HEAVY', heavy, 'matplotlib' in sys.modules)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert f"HEAVY [] {draws}" in result.stdout
    assert "Traceback" not in result.stderr


def test_help_lists_report_and_compare():
    result = nnlab("--help")
    assert result.returncode == 0
    assert "report" in result.stdout and "compare" in result.stdout


# ---------------------------------------------------------------------------------------------
# Real runs: one tiny `nnlab train` with TensorBoard logs and one without (they differ in that key only).
@pytest.fixture(scope="module")
def real_runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("real")
    env = {"NNLAB_RUNS_DIR": str(root / "runs"), "NNLAB_CACHE_DIR": str(root / "cache"),
           "NNLAB_DATA_DIR": str(root / "data"), "KERAS_HOME": str(root / "keras"), "TF_CPP_MIN_LOG_LEVEL": "2"}
    config = write_config(root / "tiny.yaml", tiny_digits_config())
    folders = []
    for overrides in (["train.tensorboard=true"], []):
        result = nnlab("train", str(config), *overrides, env=env)
        assert result.returncode == 0, result.stderr
        folders.append(Path(re.search(r"^run folder: (.+)$", result.stdout, re.M).group(1)))
    return env, folders


def test_real_run_report_and_tensorboard_logs(real_runs):
    env, (with_tensorboard, _) = real_runs
    assert list((with_tensorboard / "tensorboard" / "train").glob("events.out.tfevents.*"))
    assert list((with_tensorboard / "tensorboard" / "validation").glob("events.out.tfevents.*"))

    result = nnlab("report", with_tensorboard.name, env=env)

    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "completed in" in out and "digits, real data: train 200 / val 100" in out
    assert "2 of 2, best epoch" in out
    assert re.search(r"^accuracy +\d\.\d{4} +\d\.\d{4}$", out, re.M)
    assert re.search(r"^true \\ pred +0 +1 +2 +3 +4 +5 +6 +7 +8 +9$", out, re.M)
    assert f"tensorboard --logdir {with_tensorboard / 'tensorboard'}" in out
    assert re.search(r"^train\.tensorboard +true *$", out, re.M)  # switches that are on are config essentials
    page = (with_tensorboard / "report.html").read_text()
    assert_offline(page)
    assert {"learning curves", "confusion matrix (counts)", "confusion matrix (normalised)"} <= set(images(page))
    assert "<th>Param #</th>" in page  # summary.txt keeps the whole Keras layer table


def test_real_runs_compare_shows_the_one_differing_key(real_runs, tmp_path):
    env, (a, b) = real_runs
    page = tmp_path / "cmp.html"
    result = nnlab("compare", a.name, b.name, "--out", str(page), env=env)
    assert result.returncode == 0, result.stderr
    assert "config differences (1 of " in result.stdout
    assert re.search(r"^train\.tensorboard +true +false$", result.stdout, re.M)
    assert_offline(page.read_text())
    assert set(images(page.read_text())) == {"overlaid learning curves"}


def test_report_html_renders_in_headless_chromium_without_network(real_runs, tmp_path):
    """Chromium (Debian's package, installed by `make install`) renders the page; the net log shows no request."""
    assert CHROMIUM.is_file(), f"{CHROMIUM} is missing: run `make install` (it installs Debian's chromium)"
    env, (run_dir, _) = real_runs
    assert nnlab("report", str(run_dir), env=env).returncode == 0

    # Control: a page that does load something over the network is caught by the net-log check below.
    control = tmp_path / "control.html"
    control.write_text('<!DOCTYPE html><html><body><h1>control</h1><img src="http://127.0.0.1:9/x.png"></body></html>')
    _, control_requests = _chromium(control, tmp_path / "control")
    assert control_requests == ["http://127.0.0.1:9/x.png"]

    screenshot, requests = _chromium(run_dir / "report.html", tmp_path / "report")
    assert requests == []
    pixels = matplotlib.image.imread(screenshot)[..., :3]
    assert pixels.shape[:2] == (1400, 1000)
    ink = (pixels.min(axis=-1) < 0.9).mean()  # share of pixels that are not (nearly) white
    assert 0.02 < ink < 0.9, ink
    assert len(np.unique((pixels * 255).astype(np.uint8).reshape(-1, 3), axis=0)) > 50  # text, tables and plots

    # Printed (as PDF): a real PDF of several pages, since the report is longer than one sheet.
    pdf = tmp_path / "report.pdf"
    result = subprocess.run([str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu",
                             "--disable-background-networking", "--disable-component-update", "--no-first-run",
                             "--disable-sync",
                             f"--user-data-dir={tmp_path / 'pdf-profile'}", "--no-pdf-header-footer",
                             f"--print-to-pdf={pdf}", (run_dir / "report.html").resolve().as_uri()],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and pdf.is_file(), result.stderr[-2000:]
    assert pdf.read_bytes().startswith(b"%PDF") and len(re.findall(rb"/Type\s*/Page\b", pdf.read_bytes())) >= 2


def _chromium(page: Path | str, folder: Path, *options: str) -> tuple[Path, list[str]]:
    """Screenshot `page` (a file, or a URL) in headless Chromium; return the PNG and the URLs a file page itself
    requested. `options`: more Chromium switches (--virtual-time-budget=MS lets a script-drawn page finish)."""
    folder.mkdir()
    screenshot, net_log = folder / "shot.png", folder / "net.json"
    result = subprocess.run(
        [str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--no-first-run", "--disable-sync", f"--user-data-dir={folder / 'profile'}",
         f"--screenshot={screenshot}", "--window-size=1000,1400", "--hide-scrollbars", f"--log-net-log={net_log}",
         *options, page if isinstance(page, str) else page.resolve().as_uri()],
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0 and screenshot.is_file(), result.stderr[-2000:]
    log = json.loads(net_log.read_text())
    start_job = log["constants"]["logEventTypes"]["URL_REQUEST_START_JOB"]
    # Chromium's own background requests carry no file:// isolation key; the page's requests do.
    requested = [e["params"]["url"] for e in log["events"]
                 if e["type"] == start_job and str(e.get("params", {}).get("network_isolation_key", "")).startswith("file://")
                 and not e["params"]["url"].startswith(("file:", "data:"))]
    return screenshot, requested

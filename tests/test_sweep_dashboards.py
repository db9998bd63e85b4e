"""One real tiny sweep, watched as a user would: optuna-dashboard started with the command `nnlab sweep` prints,
read through its HTTP API and screenshotted in headless Chromium while the sweep runs; TensorBoard HParams
records read back; sweep.yaml and the report say what ran (a command-line word beats the file's constant);
and no TensorFlow C++ log line on the way."""

from __future__ import annotations

import fcntl
import importlib.util
import json
import os
import re
import shlex
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

import matplotlib.image
import numpy as np
import pytest
import yaml

from conftest import NNLAB, nnlab, tiny_digits_config, wait_for, write_config
from nnlab import runs
from nnlab.sweeps import aggregate
from test_report import CHROMIUM, _chromium

# What TensorFlow's C++ logging prints (absl's preamble, then glog-style lines such as `I0000 00:00:17.. port.cc`).
CPP_LOG = re.compile(r"^(WARNING: All log messages before absl::InitializeLog|[IWEF]\d{4} \d\d:\d\d:\d\d\.\d+ )", re.M)
DASHBOARD = Path(sys.executable).parent / "optuna-dashboard"  # the console script of the extra, beside this python


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str):
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.loads(response.read())


@pytest.fixture(scope="module")
def live_sweep(tmp_path_factory):
    """The watched sweep's observations, made once per test session (xdist workers share them under a lock)."""
    shared = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        shared = shared.parent  # the session's folder, above each worker's own
    results = shared / "live_sweep.json"
    with (shared / "live_sweep.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not results.is_file():
            results.write_text(json.dumps(_watch_live_sweep(shared / "live_sweep"), default=str))
    seen = json.loads(results.read_text())
    return {**seen, **{key: Path(seen[key]) for key in ("root", "sweep_dir", "screenshot")}}


def _watch_live_sweep(root: Path) -> dict:
    """`nnlab sweep sweep.yaml train.epochs=2` over a file that says `train.epochs: {value: 10}` (2 points), with
    TF_CPP_MIN_LOG_LEVEL unset; optuna-dashboard opened on it with the printed command as soon as it is printed,
    read through its API and screenshotted while the sweep runs, read again when it has ended."""
    assert importlib.util.find_spec("optuna_dashboard") and DASHBOARD.is_file(), \
        "optuna-dashboard is missing: run `make install` (the test extra installs nnlab[dashboard])"
    assert CHROMIUM.is_file(), f"{CHROMIUM} is missing: run `make install` (it installs Debian's chromium)"
    root.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    env.update({"NNLAB_RUNS_DIR": str(root / "runs"), "NNLAB_CACHE_DIR": str(root / "cache"),
                "NNLAB_DATA_DIR": str(root / "data"), "KERAS_HOME": str(root / "keras"), "PYTHONUNBUFFERED": "1"})
    write_config(root / "tiny.yaml", tiny_digits_config(epochs=3))
    (root / "sweep.yaml").write_text(yaml.safe_dump({
        "base": "tiny.yaml", "method": "grid", "metric": {"name": "val_accuracy", "goal": "maximize"},
        "parameters": {"model.hidden": {"values": [[4], [8]]}, "train.epochs": {"value": 10}}}))
    out, err = root / "sweep.out", root / "sweep.err"
    with out.open("w") as stdout, err.open("w") as stderr:
        sweep = subprocess.Popen([*NNLAB, "sweep", "sweep.yaml", "train.epochs=2"], cwd=root, env=env,
                                 stdout=stdout, stderr=stderr)
    dashboard = None
    try:
        wait_for(lambda: "live view: " in out.read_text() or sweep.poll() is not None, 120, "the sweep to start")
        line = re.search(r"^live view: (.+?)  \(then open", out.read_text(), re.M)
        assert line, f"no optuna-dashboard command in the sweep's output:\n{out.read_text()}\n{err.read_text()}"
        command = shlex.split(line.group(1))
        port = _free_port()
        with (root / "dashboard.log").open("w") as log:
            dashboard = subprocess.Popen([str(DASHBOARD), *command[1:], "--host", "127.0.0.1", "--port", str(port)],
                                         cwd=root, stdout=log, stderr=subprocess.STDOUT)
        base = f"http://127.0.0.1:{port}"

        def studies():
            try:
                return _get(f"{base}/api/studies")["study_summaries"]
            except OSError:
                return None

        (study,) = wait_for(studies, 60, "optuna-dashboard to answer")
        live = _get(f"{base}/api/studies/{study['study_id']}")
        running_then = sweep.poll() is None
        page = f"{base}/dashboard/studies/{study['study_id']}"
        screenshot, _ = _chromium(page, root / "chromium", "--virtual-time-budget=15000")
        sweep.wait(timeout=300)
        final = _get(f"{base}/api/studies/{study['study_id']}")
        return {"root": root, "command": command, "study": study, "live": live, "running_then": running_then,
                "final": final, "screenshot": screenshot, "returncode": sweep.returncode, "stdout": out.read_text(),
                "stderr": err.read_text(), "sweep_dir": aggregate.list_sweeps(root / "runs")[0]}
    finally:
        for process in (sweep, dashboard):
            if process is not None and process.poll() is None:
                process.kill()
                process.wait()


def test_optuna_dashboard_opens_the_sweep_with_the_printed_command_live(live_sweep):
    assert live_sweep["returncode"] == 0, live_sweep["stderr"]
    sweep_dir = live_sweep["sweep_dir"]
    # The one command, from where the user stands (the sweep ran in root): the sweep's own journal file.
    assert live_sweep["command"] == ["optuna-dashboard", f"runs/sweeps/{sweep_dir.name}/{aggregate.JOURNAL}"]
    assert live_sweep["study"]["study_name"] == sweep_dir.name
    # Live: the dashboard answered while the sweep was still training, before every trial had finished.
    assert live_sweep["running_then"]
    assert [t["state"] for t in live_sweep["live"]["trials"]].count("Complete") < 2
    # Then the study's trials as the sweep recorded them: two complete trials with the metric of trials.csv.
    final = live_sweep["final"]["trials"]
    assert [t["state"] for t in final] == ["Complete", "Complete"]
    rows = aggregate.read_trials(sweep_dir)
    assert sorted(t["values"][0] for t in final) == pytest.approx(sorted(r["val_accuracy"] for r in rows), abs=1e-6)
    # The page (a script-drawn app) is drawn, not blank: text, trial table and plots in several colours.
    pixels = matplotlib.image.imread(live_sweep["screenshot"])[..., :3]
    ink = (pixels.min(axis=-1) < 0.9).mean()
    assert 0.01 < ink < 0.95, ink
    assert len(np.unique((pixels * 255).astype(np.uint8).reshape(-1, 3), axis=0)) > 30
    bar = pixels[5:50, 100:]  # optuna-dashboard's blue app bar (the study's name on it): its page, not an error page
    assert ((bar[..., 2] > 0.8) & (bar[..., 0] < 0.3)).mean() > 0.5


def test_a_sweep_that_downloads_its_data_prints_no_tensorflow_cpp_lines(tmp_path):
    """The sweep's own process loads the base's data to check the metric; a download imports Keras (TensorFlow):
    quietly, as `nnlab train` does. Offline here (a proxy that refuses), so only the import and the try happen."""
    write_config(tmp_path / "mnist.yaml", {"name": "m", "data": {"name": "mnist"}, "model": {"name": "mlp"}})
    sweep = tmp_path / "bayes.yaml"
    sweep.write_text(yaml.safe_dump({"base": "mnist.yaml", "method": "bayes", "run_cap": 2, "parameters": {
        "train.optimizer.learning_rate": {"min": 1.0e-3, "max": 1.0e-1, "distribution": "log_uniform_values"}}}))
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    env.update({"https_proxy": "http://127.0.0.1:9", "HTTPS_PROXY": "http://127.0.0.1:9", "no_proxy": ""})
    result = subprocess.run([*NNLAB, "sweep", str(sweep), "--dry-run"], capture_output=True, text=True, env=env,
                            timeout=300)
    assert result.returncode == 0, result.stderr
    assert "Downloading data from" in result.stdout + result.stderr  # Keras was imported and tried
    assert not CPP_LOG.search(result.stderr + result.stdout), result.stderr


def test_the_sweep_records_what_ran_and_prints_no_tensorflow_cpp_lines(live_sweep):
    assert live_sweep["returncode"] == 0, live_sweep["stderr"]
    sweep_dir = live_sweep["sweep_dir"]
    recorded = yaml.safe_load((sweep_dir / aggregate.SWEEP).read_text())
    assert recorded["parameters"]["train.epochs"] == {"value": 2}  # not the file's 10
    assert recorded["overrides"] == ["train.epochs=2"]
    assert yaml.safe_load((sweep_dir / aggregate.BASE).read_text())["train"]["epochs"] == 2
    for row in aggregate.read_trials(sweep_dir):
        run_dir = live_sweep["root"] / "runs" / row["run_id"]
        assert yaml.safe_load((run_dir / runs.CONFIG).read_text())["train"]["epochs"] == 2
        assert len(runs.read_history(run_dir)) == 2
    result = nnlab("report", sweep_dir.name, env={"NNLAB_RUNS_DIR": str(live_sweep["root"] / "runs")})
    assert result.returncode == 0, result.stderr
    page = (sweep_dir / aggregate.REPORT).read_text()
    assert "<th>every trial</th><td>train.epochs=2</td>" in page and "epochs=10" not in page
    assert not CPP_LOG.search(live_sweep["stderr"] + live_sweep["stdout"]), live_sweep["stderr"]


# Read back as TensorBoard does (its event accumulator and hparams plugin data), in a process of its own that
# uses tensorboard's TensorFlow stub (the `notf` switch): importing TensorFlow would cost seconds.
_READ_BACK = """
import json, sys, types
from pathlib import Path

sys.modules["tensorboard.compat.notf"] = types.ModuleType("tensorboard.compat.notf")
from tensorboard.backend.event_processing import event_accumulator
from tensorboard.plugins.hparams import api_pb2, metadata


def read(logdir):
    accumulator = event_accumulator.EventAccumulator(str(logdir))
    accumulator.Reload()
    return accumulator


def plugin_data(accumulator, tag):
    return accumulator.SummaryMetadata(tag).plugin_data.content


folder = Path(sys.argv[1])
experiment = metadata.parse_experiment_plugin_data(plugin_data(read(folder), metadata.EXPERIMENT_TAG))
out = {"hparams": [h.name for h in experiment.hparam_infos], "metrics": [m.name.tag for m in experiment.metric_infos],
       "sessions": {}, "tensorflow": "tensorflow" in sys.modules}
for logdir in sorted(p for p in folder.iterdir() if p.is_dir()):
    accumulator = read(logdir)
    start = metadata.parse_session_start_info_plugin_data(plugin_data(accumulator, metadata.SESSION_START_INFO_TAG))
    end = metadata.parse_session_end_info_plugin_data(plugin_data(accumulator, metadata.SESSION_END_INFO_TAG))
    out["sessions"][logdir.name] = {
        "hparams": {k: getattr(v, v.WhichOneof("kind")) for k, v in start.hparams.items()},
        "status": api_pb2.Status.Name(end.status),
        "scalars": {tag: [e.value for e in accumulator.Scalars(tag)] for tag in accumulator.Tags()["scalars"]}}
print(json.dumps(out))
"""


def test_tensorboard_hparams_records_hold_each_trial_s_values_and_metric(live_sweep):
    sweep_dir = live_sweep["sweep_dir"]
    assert f"TensorBoard HParams: tensorboard --logdir runs/sweeps/{sweep_dir.name}\n" in live_sweep["stdout"]
    result = subprocess.run([sys.executable, "-c", _READ_BACK, str(sweep_dir / "tensorboard")], capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    seen = json.loads(result.stdout)
    assert seen["hparams"] == ["model.hidden", "seed"] and seen["metrics"] == ["val_accuracy"]
    rows = aggregate.read_trials(sweep_dir)
    assert list(seen["sessions"]) == [f"trial-{r['trial']:03d}-seed{r['seed']}" for r in rows]
    for row, session in zip(rows, seen["sessions"].values()):
        assert session["hparams"] == {"model.hidden": json.dumps(row["model.hidden"]), "seed": row["seed"]}
        assert session["status"] == "STATUS_SUCCESS"
        assert session["scalars"]["val_accuracy"] == [pytest.approx(row["val_accuracy"], abs=1e-6)]
    assert not seen["tensorflow"]


@pytest.mark.parametrize("url, shown", [
    ("postgresql://bob:s3:cret@db:5432/nnlab", "postgresql://bob@db:5432/nnlab"),
    ("postgresql://bob:p@ss@db/nnlab?password=p@ss&connect_timeout=10", "postgresql://bob@db/nnlab?connect_timeout=10"),
    ("postgresql://bob@db/nnlab?PASSWORD=x", "postgresql://bob@db/nnlab"),
    ("postgresql://bob@db/nnlab", "postgresql://bob@db/nnlab"),
])
def test_the_dashboard_command_of_a_database_sweep_carries_no_password(url, shown, tmp_path):
    from nnlab.sweeps.dashboards import optuna_dashboard_command, optuna_dashboard_hint

    assert optuna_dashboard_command(tmp_path, url) == f"optuna-dashboard {shlex.quote(shown)}"  # ? is a glob
    hint = optuna_dashboard_hint(tmp_path, url)
    assert ("PGPASSWORD or ~/.pgpass" in hint) == (shown != url)
    assert not re.search(r"s3|p@ss|=x\b", hint)


def test_without_the_tensorboard_package_no_records_and_a_note(tmp_path, monkeypatch):
    from nnlab.sweeps import dashboards

    found = importlib.util.find_spec
    monkeypatch.setattr(dashboards.importlib.util, "find_spec", lambda name: None if name == "tensorboard" else found(name))
    (tmp_path / aggregate.SWEEP).write_text("metric: {name: val_loss}\nparameters: {}\n")
    assert dashboards.write_hparams(tmp_path) is None and not (tmp_path / dashboards.TENSORBOARD).exists()
    assert dashboards.write_hparams_line(tmp_path) == ("note: no TensorBoard HParams records: the tensorboard package "
                                                       "is missing (pip install tensorboard)")

"""Sweep files: expansion, comma-list grids, validation before anything starts (exit 2, one line, no folder),
--dry-run and --params-only."""

from __future__ import annotations

import csv
import time

import pytest
import yaml

from conftest import CONFIGS, nnlab, tiny_digits_config, write_config
from nnlab.errors import ConfigError
from nnlab.sweeps import aggregate
from nnlab.sweeps.spec import load_sweep


@pytest.fixture
def base(tmp_path):
    return write_config(tmp_path / "tiny.yaml", tiny_digits_config())


def write_sweep(tmp_path, **spec):
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump({"base": "tiny.yaml", **spec}, sort_keys=False))
    return path


def test_grid_expands_every_point_times_every_seed_in_order(tmp_path, base):
    path = write_sweep(tmp_path, method="grid", repeats=3, parameters={
        "model.hidden": {"values": [[4], [8]]}, "train.optimizer.learning_rate": {"values": [0.1, 0.01]},
        "train.epochs": {"value": 1}})
    assert load_sweep(path, ["train.epochs=3"]).base["train"]["epochs"] == 3  # the command line beats the file
    sweep = load_sweep(path)
    trials = sweep.trials()
    assert len(trials) == 12 and [t.seed for t in trials[:3]] == [0, 1, 2]
    assert trials[0].params == {"model.hidden": [4], "train.optimizer.learning_rate": 0.1}
    assert trials[-1].params == {"model.hidden": [8], "train.optimizer.learning_rate": 0.01}
    assert sweep.base["train"]["epochs"] == 1 and sweep.swept == ["model.hidden", "train.optimizer.learning_rate"]
    config = sweep.trial_config(trials[-1].params, 2, "x")
    assert config["model"]["hidden"] == [8] and config["train"]["optimizer"]["learning_rate"] == 0.01
    assert config["seed"] == 2


def test_comma_lists_on_an_experiment_file_make_a_grid(base):
    sweep = load_sweep(base, ["model.hidden=[8],[32],[128]", "train.optimizer.learning_rate=0.1,0.01",
                              "train.epochs=1"], repeats=3)
    assert len(sweep.points) == 6 and len(sweep.trials()) == 18
    assert sweep.points[0] == {"model.hidden": [8], "train.optimizer.learning_rate": 0.1}
    assert sweep.base["train"]["epochs"] == 1  # a plain word overrides the base


def test_random_points_are_drawn_from_their_distributions_reproducibly(tmp_path, base):
    path = write_sweep(tmp_path, method="random", run_cap=20, parameters={
        "train.optimizer.learning_rate": {"min": 1.0e-4, "max": 1.0e-1, "distribution": "log_uniform_values"},
        "train.batch_size": {"min": 8, "max": 64}})
    points = load_sweep(path).points
    assert points == load_sweep(path).points and len(points) == 20
    assert all(1e-4 <= p["train.optimizer.learning_rate"] <= 0.1 for p in points)
    assert all(isinstance(p["train.batch_size"], int) and 8 <= p["train.batch_size"] <= 64 for p in points)
    assert min(p["train.optimizer.learning_rate"] for p in points) < 3e-3  # log-spaced, not uniform


@pytest.mark.parametrize("spec, words, expected", [
    ({"parameters": {"model.hiden": {"values": [[4]]}}}, [], "parameters.model.hiden"),
    ({"parameters": {"model.hidden": {"values": []}}}, [], "parameters.model.hidden.values"),
    ({"method": "random", "run_cap": 3, "parameters": {"train.optimizer.learning_rate": {"min": 0.1, "max": 0.01}}},
     [], "min 0.1 is greater than max 0.01"),
    ({"parameters": {"model.hidden": {"values": [[8], [0]]}}}, [], "parameters.model.hidden = [0]"),
    ({"method": "anneal", "parameters": {"model.hidden": {"values": [[4]]}}}, [], "unknown method 'anneal'"),
    ({"method": "random", "run_cap": 2, "parameters": {
        "train.optimizer.learning_rate": {"min": -9, "max": -2, "distribution": "log_uniform"}}}, [],
     "log_uniform_values"),
    ({"parameters": {"model.hidden": {"values": [[4]]}}}, ["train.epochs=0,1"], "parameters.train.epochs = 0"),
    ({"parameters": {"model.activation": {"values": ["relu", "relux"]}}}, [], "parameters.model.activation = \"relux\""),
    ({"parameters": {"train.batch_size": {"min": 1, "max": 10 ** 9}}}, [], "a grid of 1,000,000,000 points"),
    ({"parameters": {"train.optimizer.learning_rate": {"min": 0.0, "max": 0.1, "distribution": "q_uniform",
                                                       "q": 1.0e-12}}}, [], "a grid of 100,000,000,001 points"),
    ({"method": "random", "run_cap": 5000, "repeats": 10, "parameters": {"model.hidden": {"values": [[4]]}}}, [],
     "run_cap 5,000 x repeats 10 is more than 10,000 trials"),
    ({"method": "random", "run_cap": 2, "parameters": {"train.optimizer.learning_rate": {"min": float("nan"),
                                                                                          "max": 0.1}}}, [],
     "parameters.train.optimizer.learning_rate: min must be a finite number (got nan)"),
    ({"method": "random", "run_cap": 2, "parameters": {"train.optimizer.learning_rate": {"min": 0.0,
                                                                                          "max": float("inf")}}}, [],
     "max must be a finite number (got inf)"),
    ({"metric": {"name": "val_acuracy"}, "parameters": {"model.hidden": {"values": [[4]]}}}, [],
     "metric.name: 'val_acuracy' is not a metric this experiment reports"),
], ids=["unknown-path", "empty-values", "min-above-max", "rejected-value", "unknown-method", "log-uniform",
        "bad-comma-value", "unknown-keras-name", "huge-grid", "tiny-q", "run-cap-x-repeats", "nan-bound", "inf-bound",
        "metric-typo"])
def test_bad_sweep_files_exit_2_with_one_line_and_no_sweep_folder(tmp_path, base, runs_dir, spec, words, expected):
    path = write_sweep(tmp_path, **spec)
    result = nnlab("sweep", str(path), *words)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {path}") and expected in lines[0], result.stderr
    assert "Traceback" not in result.stderr and not (runs_dir / "sweeps").exists()


def test_an_unknown_backend_is_refused_before_any_sweep_folder(base, runs_dir):
    result = nnlab("sweep", str(base), "model.hidden=[4],[8]", "--backend", "torch")
    assert (result.returncode, result.stderr) == (2, "error: --backend: expected one of tensorflow, jax (got 'torch')\n")
    assert not (runs_dir / "sweeps").exists()


def test_an_error_in_the_base_names_the_base_file(tmp_path, base):
    write_config(base, {**tiny_digits_config(), "train": {"epochs": "many"}})
    with pytest.raises(ConfigError, match=r"tiny.yaml: train.epochs"):
        load_sweep(write_sweep(tmp_path, parameters={"model.hidden": {"values": [[4]]}}))


def test_dry_run_lists_every_trial_with_its_parameter_count(base, runs_dir):
    result = nnlab("sweep", str(base), "model.hidden=[4],[16]", "--repeats", "2", "max_params=1000", "--dry-run")
    assert result.returncode == 0, result.stderr
    lines = [line for line in result.stdout.splitlines() if line.startswith("trial")]
    assert len(lines) == 4
    assert "seed   1" in lines[1] and "310" in lines[1] and lines[1].endswith("model.hidden=[4]")
    assert "1,210" in lines[3] and "model.hidden=[16]" in lines[3]  # 64*16+16 + 16*10+10
    assert lines[3].endswith("(over max_params 1,000: pruned)")
    assert result.stdout.endswith("4 trials (2 points x 2 seed(s)); nothing trained (--dry-run)\n")
    assert not runs_dir.exists()


def test_the_command_line_beats_the_file_s_constants_in_what_the_sweep_records(tmp_path, base, runs_dir):
    path = write_sweep(tmp_path, parameters={"model.hidden": {"values": [[4], [8]]}, "train.epochs": {"value": 10}})
    sweep = load_sweep(path, ["train.epochs=2", "train.batch_size=16"])
    assert sweep.base["train"]["epochs"] == 2
    assert sweep.to_dict()["parameters"]["train.epochs"] == {"value": 2}  # sweep.yaml: what ran, not the file's 10
    assert sweep.to_dict()["overrides"] == ["train.epochs=2", "train.batch_size=16"]
    assert sweep.fixed() == {"train.epochs": 2, "train.batch_size": 16}
    whole = load_sweep(path, ["train={epochs: 3, batch_size: 8}"])  # a word on the section that holds the constant
    assert whole.base["train"]["epochs"] == 3 and whole.spec.parameters["train.epochs"].value == 3
    narrowed = load_sweep(path, ["model.hidden=[32]"])  # a plain word on a swept path: that one value
    assert narrowed.swept == [] and len(narrowed.trials()) == 1 and narrowed.base["model"]["hidden"] == [32]

    result = nnlab("sweep", str(path), "train.epochs=2", "--dry-run")
    assert result.returncode == 0, result.stderr
    assert "every trial: train.epochs=2\n" in result.stdout and "epochs=10" not in result.stdout
    assert "2 trials (2 points x 1 seed(s))" in result.stdout


def test_params_only_records_parameter_counts_and_plots_them(base, runs_dir):
    result = nnlab("sweep", str(base), "model.hidden=[4],[16],[64]", "--params-only")
    assert result.returncode == 0, result.stderr
    (sweep_dir,) = aggregate.list_sweeps(runs_dir)
    with (sweep_dir / aggregate.TRIALS).open() as f:
        rows = list(csv.DictReader(f))
    assert [r["parameters"] for r in rows] == ["310", "1210", "4810"]
    assert (sweep_dir / "plots" / "parameters_vs_model_hidden.png").stat().st_size > 1000
    assert f"sweep id: {sweep_dir.name}" in result.stdout
    assert not [p for p in runs_dir.iterdir() if p.name != "sweeps"]  # nothing trained


def test_every_sweep_config_validates():
    folder = CONFIGS / "sweeps"
    files = sorted(folder.glob("*.yaml"))
    assert len(files) >= 7
    for path in files:
        sweep = load_sweep(path)
        assert sweep.points or sweep.spec.method == "bayes", path


CLAIMER = """
import sys, time
from pathlib import Path
from nnlab.sweeps import study
sweep = study.load("journal", Path(sys.argv[1]))
while True:
    claim = sweep.claim()
    if claim is None:
        break
    print(claim.index, flush=True)
    time.sleep(0.05)  # a trial takes a while: the processes interleave
    sweep.finish(claim, "completed", 1.0)
"""


HOLD_LEASE = """
import sys
from pathlib import Path
from nnlab.sweeps import study
study.hold_lease(Path(sys.argv[1]), sys.argv[2])
"""


def make_study(tmp_path, base, words):
    from nnlab.sweeps import study

    return study.create(load_sweep(base, words), tmp_path / "runs", "journal", ["test"])


def test_four_processes_claim_every_enqueued_trial_exactly_once(tmp_path, base):
    import subprocess
    import sys

    sweep_dir = make_study(tmp_path, base, ["train.batch_size=" + ",".join(str(n) for n in range(1, 41))])
    procs = [subprocess.Popen([sys.executable, "-c", CLAIMER, str(sweep_dir)], stdout=subprocess.PIPE, text=True)
             for _ in range(4)]
    outputs = [p.communicate(timeout=120)[0].split() for p in procs]
    claimed = [int(line) for out in outputs for line in out]
    assert sorted(claimed) == list(range(40))  # none twice, none skipped
    assert sum(bool(out) for out in outputs) >= 2  # they did share the work


def test_a_trial_left_running_by_a_dead_worker_is_enqueued_again_once(tmp_path, base):
    import subprocess
    import sys

    from nnlab.sweeps import study as studies

    sweep_dir = make_study(tmp_path, base, ["model.hidden=[4],[8]"])
    study = studies.load("journal", sweep_dir)
    claim = study.claim()
    dead = subprocess.Popen([sys.executable, "-c", HOLD_LEASE, str(sweep_dir), "w-dead"])  # takes its lease, dies
    dead.wait()
    study.set_attrs(claim, worker={"id": "w-dead"}, heartbeat=time.time())  # a fresh heartbeat, yet gone
    other = studies.load("journal", sweep_dir)  # a second process's view
    assert study.requeue_stale() + other.requeue_stale() == 1
    latest = studies.latest_attempts(study.trials())
    assert [(t.user_attrs["index"], t.user_attrs["attempt"], t.state.name) for t in latest] == [
        (0, 2, "WAITING"), (1, 1, "WAITING")]
    assert study.claim().attrs["retry_of"] == claim.number  # retries are claimed first


def test_a_storage_password_is_never_written_and_resume_asks_for_it(tmp_path):
    from nnlab.sweeps.aggregate import masked_url

    assert masked_url("postgresql://bob:s3:cret@127.0.0.1:5432/db") == "postgresql://bob:***@127.0.0.1:5432/db"
    assert masked_url("postgresql://bob@host/db") == "postgresql://bob@host/db"
    sweep_dir = tmp_path / "sweeps" / "20260101-000000-x-0001"
    sweep_dir.mkdir(parents=True)
    (sweep_dir / "sweep.yaml").write_text("storage: postgresql://bob:***@127.0.0.1/db\n")
    result = nnlab("sweep", "--resume", str(sweep_dir))
    assert result.returncode == 2
    assert result.stderr == (f"error: --resume {sweep_dir}: the study's password is not stored; give --storage URL "
                             "again (or keep it in PGPASSWORD or ~/.pgpass)\n")


@pytest.mark.parametrize("edit, expected", [
    (("base.yaml", "train:\n  epochs: 2\n", "train:\n  epochs: 9\n"), "base.yaml: train.epochs differ"),
    (("sweep.yaml", "name: val_loss", "name: val_accuracy"), "sweep.yaml: metric differ"),
    (("sweep.yaml", "name: tiny\n", "name: ../../evil\n"), "sweep.yaml: name differ"),
], ids=["base", "metric", "name"])
def test_a_sweep_folder_edited_before_resume_is_refused_in_one_line(base, runs_dir, edit, expected):
    """The study is the source of truth: files edited between a kill and --resume are refused, not mixed in."""
    created = nnlab("sweep", str(base), "model.hidden=[4],[8]", "--workers", "0")
    assert created.returncode == 0, created.stderr
    (sweep_dir,) = aggregate.list_sweeps(runs_dir)
    name, old, new = edit
    text = (sweep_dir / name).read_text()
    assert old in text, text
    (sweep_dir / name).write_text(text.replace(old, new))
    result = nnlab("sweep", "--resume", sweep_dir.name)
    assert result.returncode == 2, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {sweep_dir}/") and expected in lines[0], lines
    assert not [p for p in runs_dir.iterdir() if p.name != "sweeps"]  # nothing trained


def test_an_experiment_file_with_repeats_alone_is_trained_with_that_many_seeds(base):
    """`nnlab sweep recipe.yaml --repeats 5 seed=100`: the recipe itself with seeds 100..104 (a re-run study)."""
    sweep = load_sweep(base, ["seed=100"], repeats=5, metric="val_accuracy")  # --metric: the goal from the name
    assert sweep.swept == [] and len(sweep.points) == 1
    assert [t.seed for t in sweep.trials()] == [100, 101, 102, 103, 104]
    assert (sweep.spec.metric.name, sweep.spec.metric.goal) == ("val_accuracy", "maximize")
    with pytest.raises(ConfigError, match=r"tiny.yaml: an experiment file, and no word sweeps anything: .* --repeats N"):
        load_sweep(base, ["seed=100"])

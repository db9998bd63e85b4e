"""A sweep whose study lives in PostgreSQL: two `nnlab sweep --join` processes (as if on two machines, each
with its own runs folder) share it, and every trial runs exactly once. The fixture installs Debian's
PostgreSQL server when it is missing and starts a throwaway cluster on loopback."""

from __future__ import annotations

import csv
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from conftest import NNLAB, REPO, nnlab, tiny_digits_config, wait_for, write_config
from nnlab import runs
from nnlab.sweeps import aggregate


def _initdb() -> Path | None:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    return found[-1] if found else None


def _install_postgresql() -> None:
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update"], check=True, capture_output=True, env=env)
    subprocess.run(["apt-get", "install", "-y", "--no-install-recommends", "postgresql"], check=True,
                   capture_output=True, env=env)


class Server:
    """The throwaway cluster: its URL, and stop/start for a database that blinks."""

    def __init__(self, url: str, pg_ctl: list[str]):
        self.url, self._pg_ctl = url, pg_ctl

    def stop(self) -> None:
        subprocess.run([*self._pg_ctl, "-m", "immediate", "-w", "stop"], check=True, capture_output=True)

    def start(self) -> None:
        running = subprocess.run([*self._pg_ctl[:-4], "status"], capture_output=True).returncode == 0  # pg_ctl -D DIR
        if not running:
            subprocess.run([*self._pg_ctl, "-w", "start"], check=True, capture_output=True)


@pytest.fixture(scope="module")
def postgres():
    if _initdb() is None:
        if os.geteuid() != 0 or shutil.which("apt-get") is None:
            pytest.skip("PostgreSQL is not installed and this user cannot apt-get install it")
        _install_postgresql()
    bin_dir = _initdb().parent
    as_owner = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    folder = Path(tempfile.mkdtemp(prefix="nnlab-pg-", dir="/tmp"))
    folder.chmod(0o755)
    if os.geteuid() == 0:
        shutil.chown(folder, "postgres", "postgres")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    user = "postgres" if os.geteuid() == 0 else os.environ.get("USER", "postgres")
    subprocess.run([*as_owner, str(bin_dir / "initdb"), "-D", str(folder / "data"), "-A", "trust", "--no-sync",
                    "-U", user], check=True, capture_output=True)
    options = f"-k {folder} -p {port} -c listen_addresses=127.0.0.1 -c fsync=off"
    subprocess.run([*as_owner, str(bin_dir / "pg_ctl"), "-D", str(folder / "data"), "-w", "-l", str(folder / "log"),
                    "-o", options, "start"], check=True, capture_output=True)
    try:
        subprocess.run([str(bin_dir / "psql"), "-h", "127.0.0.1", "-p", str(port), "-U", user, "-d", "postgres",
                        "-c", "CREATE DATABASE nnlab"], check=True, capture_output=True)
        yield Server(f"postgresql://{user}@127.0.0.1:{port}/nnlab",
                     [*as_owner, str(bin_dir / "pg_ctl"), "-D", str(folder / "data"), "-l", str(folder / "log"),
                      "-o", options])
    finally:
        subprocess.run([*as_owner, str(bin_dir / "pg_ctl"), "-D", str(folder / "data"), "-m", "fast", "-w", "stop"],
                       capture_output=True)
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def postgres_url(postgres):
    return postgres.url


def test_two_join_workers_share_one_postgres_study_and_run_each_trial_once(tmp_path, postgres_url):
    base = write_config(tmp_path / "tiny.yaml", tiny_digits_config(epochs=1))
    created = nnlab("sweep", str(base), "model.hidden=[4],[8]", "--storage", postgres_url, "--workers", "0")
    assert created.returncode == 0, created.stderr
    sweep_id = next(line.split(": ", 1)[1] for line in created.stdout.splitlines() if line.startswith("sweep id: "))
    machines = [tmp_path / "machine-a", tmp_path / "machine-b"]
    joins = [subprocess.Popen([*NNLAB, "sweep", "--join", sweep_id, "--storage", postgres_url],
                              env={**os.environ, "NNLAB_RUNS_DIR": str(folder / "runs")}, cwd=REPO,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for folder in machines]
    outputs = [join.communicate(timeout=400) for join in joins]
    assert [join.returncode for join in joins] == [0, 0], outputs
    run_ids = {}
    for folder in machines:
        for run_dir in runs.list_runs(folder / "runs"):
            meta = runs.read_json(run_dir / runs.META)
            assert meta["status"] == "completed" and meta["sweep"]["id"] == sweep_id
            run_ids[run_dir.name] = meta["sweep"]["trial"]
    assert sorted(run_ids.values()) == [0, 1]  # each trial once, none twice, none skipped
    assert all(list(runs.list_runs(folder / "runs")) for folder in machines), "both workers trained"
    with (machines[0] / "runs" / aggregate.SWEEPS / sweep_id / aggregate.TRIALS).open() as f:
        rows = list(csv.DictReader(f))
    assert [r["status"] for r in rows] == ["completed"] * 2 and {r["run_id"] for r in rows} == set(run_ids)
    import optuna

    study = optuna.load_study(study_name=sweep_id, storage=postgres_url)
    assert [t.state.name for t in study.trials] == ["COMPLETE"] * 2


def training_runs(runs_dir: Path) -> list[Path]:
    return [p for p in runs.list_runs(runs_dir) if runs.read_history(p) and runs.run_is_owned(p)]


def test_a_database_that_blinks_is_waited_for_and_a_long_outage_stops_the_sweep_resumable(tmp_path, postgres):
    """PostgreSQL stopped for 4 s while a trial trains: the sweep rides it out. Stopped for good later: after
    NNLAB_SWEEP_STORAGE_WAIT_S the sweep stops as interrupted (exit 130); once the server is back, --resume
    finishes it, every trial completed once."""
    base = write_config(tmp_path / "tiny.yaml", tiny_digits_config(epochs=12, batch_size=8))
    runs_dir = tmp_path / "runs"
    env = {**os.environ, "NNLAB_SWEEP_STORAGE_WAIT_S": "12", "NNLAB_RUNS_DIR": str(runs_dir)}
    parent = subprocess.Popen([*NNLAB, "sweep", str(base), "model.hidden=[4],[5],[6]", "--storage", postgres.url],
                              env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        first = wait_for(lambda: training_runs(runs_dir), 120, "the first trial to train")[0]
        postgres.stop()
        time.sleep(4)
        postgres.start()
        wait_for(lambda: [p for p in training_runs(runs_dir) if p != first], 120, "the second trial to train")
        postgres.stop()
        output = parent.communicate(timeout=120)[0]
    finally:
        if parent.poll() is None:
            parent.kill()
        postgres.start()
    assert parent.returncode == 130, output
    assert "does not answer" in output and "error: the study storage" in output and "Traceback" not in output
    (sweep_dir,) = aggregate.list_sweeps(runs_dir)
    assert aggregate.read_state(sweep_dir)["status"] == "interrupted"
    assert runs.read_json(first / runs.META)["status"] == "completed"  # it trained on through the blink
    resumed = nnlab("sweep", "--resume", sweep_dir.name, "--storage", postgres.url, env=env)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    metas = [runs.read_json(p / runs.META) for p in runs.list_runs(runs_dir)]
    completed = sorted(m["sweep"]["trial"] for m in metas if m["status"] == "completed")
    assert completed == [0, 1, 2]


def test_a_password_reaches_no_file_and_no_worker_command_line(tmp_path, postgres):
    """The server trusts loopback, so any password works; the one here holds an @ and goes in the user
    info and the query string."""
    secret = "s3cr@t-Pw9"
    host = postgres.url.split("@", 1)[1]
    user = postgres.url.split("://", 1)[1].split("@", 1)[0]
    url = f"postgresql://{user}:{secret}@{host}?password={secret}&connect_timeout=10"
    base = write_config(tmp_path / "tiny.yaml", tiny_digits_config(epochs=8, batch_size=8))
    runs_dir = tmp_path / "runs"
    parent = subprocess.Popen([*NNLAB, "sweep", str(base), "model.hidden=[4],[5]", "--storage", url],
                              env={**os.environ, "NNLAB_RUNS_DIR": str(runs_dir)}, cwd=REPO,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        wait_for(lambda: training_runs(runs_dir), 120, "a trial to train")
        listing = subprocess.run(["ps", "auxww"], capture_output=True, text=True).stdout
        output = parent.communicate(timeout=200)[0]
    finally:
        if parent.poll() is None:
            parent.kill()
    assert parent.returncode == 0, output
    workers = [line for line in listing.splitlines() if "nnlab.sweeps.worker" in line or " train " in line]
    assert workers and not [line for line in workers if "s3cr" in line or "Pw9" in line], workers
    leaks = subprocess.run(["grep", "-rlE", "s3cr|Pw9", str(runs_dir)], capture_output=True, text=True).stdout
    assert leaks == "" and "s3cr" not in output and "Pw9" not in output
    assert f"live view: optuna-dashboard 'postgresql://{user}@{host}?connect_timeout=10'" in output  # no password
    assert "the password from PGPASSWORD or ~/.pgpass" in output

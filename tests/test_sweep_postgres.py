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
from pathlib import Path

import pytest

from conftest import NNLAB, REPO, nnlab, tiny_digits_config, write_config
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


@pytest.fixture(scope="module")
def postgres_url():
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
        yield f"postgresql://{user}@127.0.0.1:{port}/nnlab"
    finally:
        subprocess.run([*as_owner, str(bin_dir / "pg_ctl"), "-D", str(folder / "data"), "-m", "fast", "-w", "stop"],
                       capture_output=True)
        shutil.rmtree(folder, ignore_errors=True)


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

"""Run folders: collision-free ids, atomic writes, lookup by id, prefix, path and `latest`."""

import os
import subprocess
import sys

import pytest

from nnlab import runs
from nnlab.errors import RunBusyError, RunNotFoundError


def test_run_ids_never_collide_within_one_second(tmp_path):
    made = {runs.create_run_dir(tmp_path, "x") for _ in range(50)}
    assert len(made) == 50 and all(p.is_dir() for p in made)


def test_atomic_write_leaves_the_old_file_when_writing_fails(tmp_path):
    target = tmp_path / "metrics.json"
    runs.write_json(target, {"a": 1})
    with pytest.raises(RuntimeError):
        with runs.atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("killed")
    assert runs.read_json(target) == {"a": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.json"]


def test_an_atomic_folder_replaces_the_old_one_whole_or_not_at_all(tmp_path):
    target = tmp_path / "tensorboard"
    (target / "trial-000").mkdir(parents=True)
    (target / "trial-000" / "old").write_text("old")
    with pytest.raises(RuntimeError):
        with runs.atomic_folder(target) as work:
            (work / "half").write_text("half")
            raise RuntimeError("killed")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tensorboard"]  # the old one, no temporary left
    assert (target / "trial-000" / "old").read_text() == "old"
    with runs.atomic_folder(target) as work:
        (work / "new").write_text("new")
        # Another process swapped its own folder in while this one was building: the later swap wins whole.
        with runs.atomic_folder(target) as other:
            (other / "other").write_text("other")
    assert [p.name for p in tmp_path.iterdir()] == ["tensorboard"]
    assert [p.name for p in target.iterdir()] == ["new"]


def _run(tmp_path, name):
    run_dir = tmp_path / name
    run_dir.mkdir()
    runs.write_json(run_dir / runs.META, {"status": "completed"})
    return run_dir


def test_find_run_by_id_prefix_path_and_latest(tmp_path):
    older = _run(tmp_path, "20260101-000000-a-0001")
    newer = _run(tmp_path, "20260102-000000-b-0002")
    assert runs.find_run("20260101", tmp_path) == older
    assert runs.find_run("latest", tmp_path) == newer
    assert runs.find_run(str(older), tmp_path / "elsewhere") == older
    assert runs.find_run(newer.name, tmp_path) == newer
    with pytest.raises(RunNotFoundError, match="ambiguous.*20260102-000000-b-0002, 20260101-000000-a-0001"):
        runs.find_run("2026", tmp_path)
    with pytest.raises(RunNotFoundError, match="no run 'zz'"):
        runs.find_run("zz", tmp_path)


def test_a_running_run_whose_process_died_reads_interrupted():
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    meta = runs.new_meta("x", 0, ["nnlab"], {})
    assert runs.effective_status(meta) == "running"  # this process is alive
    meta["pid"] = int(dead.stdout)
    assert runs.effective_status(meta) == "interrupted"
    assert runs.effective_status({**meta, "pid": os.getpid(), "status": "completed"}) == "completed"


def test_the_lock_not_the_recorded_pid_or_host_says_who_owns_a_run(tmp_path):
    run_dir = runs.create_run_dir(tmp_path, "x")
    foreign = {**runs.new_meta("x", 0, ["nnlab"], {}), "host": "another-machine", "pid": 1}
    assert runs.effective_status(foreign, run_dir) == "running"  # no lock file yet: the record is all there is
    with runs.claimed(run_dir):
        assert runs.run_is_owned(run_dir) is True
        assert runs.effective_status({**foreign, "pid": 999999999, "host": "x"}, run_dir) == "running"
        with pytest.raises(RunBusyError, match=rf"run {run_dir.name} is in use by pid {os.getpid()} on "):
            with runs.claimed(run_dir):
                pass
    assert runs.run_is_owned(run_dir) is False
    assert runs.effective_status(foreign, run_dir) == "interrupted"  # another host, pid 1 alive: still dead here
    assert runs.effective_status({**foreign, "status": "completed"}, run_dir) == "completed"


def test_a_lock_is_released_when_its_process_is_killed(tmp_path):
    run_dir = runs.create_run_dir(tmp_path, "x")
    holder = subprocess.Popen([sys.executable, "-c", f"""
import sys, time
from nnlab import runs
with runs.claimed({str(run_dir)!r}):
    print("held", flush=True)
    time.sleep(60)
"""], stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline() == "held\n"
    assert runs.run_is_owned(run_dir) is True
    holder.kill()
    holder.wait()
    assert runs.run_is_owned(run_dir) is False
    with runs.claimed(run_dir):
        assert runs.run_is_owned(run_dir) is True

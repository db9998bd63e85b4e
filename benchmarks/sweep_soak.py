"""Sweep soak test (issue 17): many tiny trials through the faults of real machines, then exactly-once checked.

    .venv/bin/python benchmarks/sweep_soak.py [--points 50] [--repeats 4] [--outage 30] [--stop 120]

What it does (as root, on Linux, with Debian's PostgreSQL installed; not part of `make test`):
- starts a throwaway PostgreSQL cluster on loopback and creates a sweep of points x repeats tiny trials
  (digits MLP, 1 epoch) in it with `--workers 0`;
- joins it from two PID namespaces (`unshare --pid`) that share this machine's hostname and one runs folder
  (two containers with a shared volume): 2 workers in one, 1 in the other;
- along the way stops PostgreSQL twice for `--outage` seconds and SIGSTOPs one worker for `--stop` seconds
  (longer than the 60 s grace period);
- then checks: both joins exit 0, every (point, seed) has exactly one completed run folder, no run folder
  was trained twice, every planned trial's latest attempt is COMPLETE in the study. Prints a report; the
  exit code is 0 only when every check holds.
"""

from __future__ import annotations

import argparse
import collections
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
NNLAB = [sys.executable, "-m", "nnlab.cli.main"]


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


class Postgres:
    """A throwaway cluster (see SWEEPS.md): initdb, pg_ctl start/stop as the postgres user."""

    def __init__(self):
        bins = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
        if not bins:
            sys.exit("PostgreSQL is not installed: apt-get install -y postgresql")
        self.bin = bins[-1].parent
        self.folder = Path(tempfile.mkdtemp(prefix="nnlab-soak-pg-", dir="/tmp"))
        self.folder.chmod(0o755)
        shutil.chown(self.folder, "postgres", "postgres")
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.owner = ["runuser", "-u", "postgres", "--"]
        subprocess.run([*self.owner, str(self.bin / "initdb"), "-D", str(self.folder / "data"), "-A", "trust",
                        "--no-sync"], check=True, capture_output=True)
        self.start()
        subprocess.run([str(self.bin / "psql"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "-d",
                        "postgres", "-c", "CREATE DATABASE nnlab"], check=True, capture_output=True)
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/nnlab"

    def pg_ctl(self, *args: str) -> None:
        options = f"-k {self.folder} -p {self.port} -c listen_addresses=127.0.0.1 -c fsync=off"
        subprocess.run([*self.owner, str(self.bin / "pg_ctl"), "-D", str(self.folder / "data"), "-l",
                        str(self.folder / "log"), "-o", options, "-w", *args], check=True, capture_output=True)

    def start(self) -> None:
        self.pg_ctl("start")

    def stop(self) -> None:
        self.pg_ctl("-m", "immediate", "stop")

    def remove(self) -> None:
        subprocess.run([*self.owner, str(self.bin / "pg_ctl"), "-D", str(self.folder / "data"), "-m", "fast", "-w",
                        "stop"], capture_output=True)
        shutil.rmtree(self.folder, ignore_errors=True)


def workers_running() -> list[int]:
    out = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if b"nnlab.sweeps.worker" in cmdline.read_bytes():
                out.append(int(cmdline.parent.name))
        except OSError:
            continue
    return sorted(out)


def faults(pg: Postgres, args, done: threading.Event, events: list[str]) -> None:
    """The fault schedule, run beside the sweep: outage, a stopped worker, a second outage."""
    def wait(seconds: float) -> bool:
        return not done.wait(seconds)

    if not wait(args.first_fault):
        return
    log(f"fault: PostgreSQL stopped for {args.outage}s")
    pg.stop()
    events.append(f"PostgreSQL stopped at {time.strftime('%H:%M:%S')} for {args.outage}s")
    time.sleep(args.outage)
    pg.start()
    log("PostgreSQL started again")
    if not wait(20):
        return
    victims = workers_running()
    if victims:
        victim = victims[0]
        log(f"fault: worker pid {victim} SIGSTOPped for {args.stop}s")
        events.append(f"worker pid {victim} SIGSTOPped at {time.strftime('%H:%M:%S')} for {args.stop}s")
        os.kill(victim, signal.SIGSTOP)
        try:
            time.sleep(args.stop / 2)
            log(f"fault: PostgreSQL stopped for {args.outage}s (the worker still stopped)")
            pg.stop()
            events.append(f"PostgreSQL stopped at {time.strftime('%H:%M:%S')} for {args.outage}s")
            time.sleep(args.outage)
            pg.start()
            log("PostgreSQL started again")
            time.sleep(max(0.0, args.stop / 2 - args.outage))
        finally:
            os.kill(victim, signal.SIGCONT)
            log(f"worker pid {victim} continued")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=4)
    parser.add_argument("--outage", type=float, default=30.0, help="seconds PostgreSQL is down, twice")
    parser.add_argument("--stop", type=float, default=120.0, help="seconds one worker is SIGSTOPped")
    parser.add_argument("--first-fault", type=float, default=40.0, help="seconds after the joins start")
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("run as root: unshare --pid and the PostgreSQL cluster need it")
    started = time.time()
    root = Path(tempfile.mkdtemp(prefix="nnlab-soak-"))
    runs_dir = root / "runs"
    env = {**os.environ, "NNLAB_RUNS_DIR": str(runs_dir), "NNLAB_CACHE_DIR": str(root / "cache"),
           "NNLAB_DATA_DIR": str(root / "data"), "TF_CPP_MIN_LOG_LEVEL": "2", "NNLAB_SWEEP_STORAGE_WAIT_S": "300",
           "PYTHONPATH": str(REPO / "src") + os.pathsep + os.environ.get("PYTHONPATH", "")}
    config = {"name": "soak", "seed": 0, "data": {"name": "digits", "n_train": 200, "n_val": 100},
              "model": {"name": "mlp", "hidden": [8]}, "train": {"epochs": 1, "batch_size": 32},
              "output": {"plots": False}}
    (root / "soak.yaml").write_text(yaml.safe_dump(config))
    pg = Postgres()
    env["NNLAB_SWEEP_STORAGE"] = pg.url  # never on a command line
    events: list[str] = []
    done = threading.Event()
    try:
        hidden = ",".join(f"[{4 + i}]" for i in range(args.points))
        created = subprocess.run([*NNLAB, "sweep", str(root / "soak.yaml"), f"model.hidden={hidden}", "--repeats",
                                  str(args.repeats), "--workers", "0"], env=env, cwd=REPO, capture_output=True,
                                 text=True)
        if created.returncode:
            sys.exit(created.stdout + created.stderr)
        sweep_id = next(line.split(": ", 1)[1] for line in created.stdout.splitlines() if line.startswith("sweep id"))
        trials = args.points * args.repeats
        log(f"sweep {sweep_id}: {trials} trials in PostgreSQL; joining from two PID namespaces (2 + 1 workers)")
        joins = []
        for pad, workers in (("", 2), ("/bin/true; /bin/true; /bin/true; ", 1)):
            out = (root / f"join-{workers}.log").open("w")
            joins.append((subprocess.Popen(["unshare", "--pid", "--fork", "--mount-proc", "--kill-child", "sh", "-c",
                                            pad + 'exec "$@"', "sh", *NNLAB, "sweep", "--join", sweep_id,
                                            "--workers", str(workers)], env=env, cwd=REPO, stdout=out,
                                           stderr=subprocess.STDOUT), out))
        chaos = threading.Thread(target=faults, args=(pg, args, done, events), daemon=True)
        chaos.start()
        codes = [p.wait() for p, _ in joins]
        done.set()
        chaos.join()
        for _, out in joins:
            out.close()
        wall = time.time() - started
        log(f"joins exited {codes} after {wall / 60:.1f} min")
        return report(runs_dir, sweep_id, pg.url, trials, codes, events, wall, args, root)
    finally:
        done.set()
        pg.remove()


def report(runs_dir: Path, sweep_id: str, url: str, trials: int, codes: list[int], events: list[str], wall: float,
           args, root: Path) -> int:
    sys.path.insert(0, str(REPO / "src"))
    import optuna

    from nnlab import runs
    from nnlab.sweeps import study as studies

    metas = {p.name: runs.read_json(p / runs.META) for p in runs.list_runs(runs_dir)}
    statuses = collections.Counter(m["status"] for m in metas.values())
    completed = collections.Counter((m["sweep"]["point"], m["seed"]) for m in metas.values()
                                    if m["status"] == "completed" and m.get("sweep", {}).get("id") == sweep_id)
    twice = {k: n for k, n in completed.items() if n > 1}
    untagged = [k for k, m in metas.items() if m["status"] == "completed" and "sweep" not in m]
    adopted = sum(bool(m.get("sweep", {}).get("adopted")) for m in metas.values())
    storage = optuna.storages.RDBStorage(url)
    study = optuna.load_study(study_name=sweep_id, storage=storage)
    latest = studies.latest_attempts(study.get_trials(deepcopy=False))
    attempts = collections.Counter(t.user_attrs.get("attempt", 1) for t in latest)
    checks = {
        "both joins exit 0": codes == [0, 0],
        f"{trials} (point, seed) completed": len(completed) == trials,
        "none completed twice": not twice,
        "no completed run outside the sweep's records": not untagged,
        "every latest attempt COMPLETE": len(latest) == trials and all(t.state.name == "COMPLETE" for t in latest),
    }
    lines = [f"sweep_soak: {trials} trials ({args.points} points x {args.repeats} seeds), 3 workers in two PID "
             f"namespaces sharing hostname {socket.gethostname()!r} and one runs folder; wall {wall / 60:.1f} min",
             *(f"  fault: {e}" for e in events),
             f"  run folders: {len(metas)} ({', '.join(f'{n} {s}' for s, n in sorted(statuses.items()))}); "
             f"adopted after a lost lease: {adopted}",
             f"  latest attempt numbers: {dict(sorted(attempts.items()))}",
             *(f"  {'ok  ' if ok else 'FAIL'} {name}" for name, ok in checks.items())]
    if twice:
        lines.append(f"  completed twice: {sorted(twice)[:10]}")
    print("\n".join(lines))
    print(f"(folders kept in {root})")
    return 0 if all(checks.values()) else 1


if __name__ == "__main__":
    sys.exit(main())

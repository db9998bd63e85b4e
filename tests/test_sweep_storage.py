"""The study's storage against damage: a journal whose last record was torn, garbage in its middle; every
form of password libpq accepts masked."""

from __future__ import annotations

import csv

import pytest

from conftest import nnlab, tiny_digits_config, write_config
from nnlab.sweeps import aggregate
from nnlab.sweeps import study as studies
from nnlab.sweeps.spec import load_sweep

TORN = b'{"op_code":8,"worker_id":"w","trial_id":1,"user_attr":{"heartbeat":1796'


@pytest.fixture
def sweep_dir(tmp_path, runs_dir):
    """A two-trial sweep whose trial 0 completed (told in-process: no training), trial 1 still waiting."""
    base = write_config(tmp_path / "tiny.yaml", tiny_digits_config(epochs=1))
    sweep_dir = studies.create(load_sweep(base, ["model.hidden=[4],[8]"]), runs_dir, "journal", ["test"])
    study = studies.load("journal", sweep_dir)
    study.finish(study.claim(), "completed", 0.5)
    return sweep_dir


def test_a_torn_last_journal_record_is_dropped_kept_aside_and_the_sweep_resumes(sweep_dir):
    journal = sweep_dir / aggregate.JOURNAL
    with journal.open("ab") as f:
        f.write(TORN)  # power lost in the middle of an append
    result = nnlab("sweep", "--resume", sweep_dir.name)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"note: {journal}: its last record was cut short" in result.stderr
    (copy,) = sweep_dir.glob(aggregate.JOURNAL + ".torn-*")
    assert copy.read_bytes() == TORN
    with (sweep_dir / aggregate.TRIALS).open() as f:
        assert [r["status"] for r in csv.DictReader(f)] == ["completed", "completed"]
    again = nnlab("sweep", "--resume", sweep_dir.name)  # the journal reads cleanly from now on
    assert again.returncode == 0 and "cut short" not in again.stderr


def test_garbage_in_the_middle_of_the_journal_is_one_line_and_exit_2(sweep_dir):
    journal = sweep_dir / aggregate.JOURNAL
    lines = journal.read_bytes().split(b"\n")
    journal.write_bytes(b"\n".join([lines[0], b"\x00\x00garbage", *lines[1:]]))
    result = nnlab("sweep", "--resume", sweep_dir.name)
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stderr.startswith(f"error: {journal}: line 2 of ") and "restore the file from a backup" in \
        result.stderr and result.stderr.count("\n") == 1, result.stderr


@pytest.mark.parametrize("url, shown", [
    ("postgresql://bob:s3:cret@127.0.0.1:5432/db", "postgresql://bob:***@127.0.0.1:5432/db"),
    ("postgresql://bob@host/db", "postgresql://bob@host/db"),
    ("postgresql://bob:p@ss@w/rd@host/db?sslmode=require", "postgresql://bob:***@host/db?sslmode=require"),
    ("postgresql://bob@host/db?password=hunter2&sslmode=require",
     "postgresql://bob@host/db?password=***&sslmode=require"),
    ("postgresql://bob:a@b@host/db?sslmode=x&password=a@b", "postgresql://bob:***@host/db?sslmode=x&password=***"),
    ("host=db user=bob password='two words' dbname=x", "host=db user=bob password=*** dbname=x"),
], ids=["user-info", "none", "at-sign", "query", "both", "keywords"])
def test_every_libpq_password_form_is_masked(url, shown):
    assert aggregate.masked_url(url) == shown


def test_a_password_with_an_at_sign_means_what_the_user_wrote():
    assert studies._quoted_password("postgresql://bob:p@ss@host:5/db?x=1") == "postgresql://bob:p%40ss@host:5/db?x=1"

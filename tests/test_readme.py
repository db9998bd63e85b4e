"""The README is what a new user follows: its commands must work from wherever the repository was cloned."""

from __future__ import annotations

import re

from conftest import REPO

README = (REPO / "README.md").read_text()


def test_every_data_folder_setting_works_from_any_clone():
    """A relative NNLAB_DATA_DIR (../shared/datasets) names a folder beside one particular checkout only."""
    settings = re.findall(r"NNLAB_DATA_DIR=(\S+)", README)
    assert settings, "the README shows how to point nnlab at the data folder"
    for value in settings:
        assert value.strip("\"'").startswith(("/", "~", "$HOME")), value


def test_shell_completion_is_documented():
    assert "nnlab --install-completion" in README and "--show-completion" in README


def test_make_bench_finds_the_data_folder_from_any_clone(tmp_path, monkeypatch):
    """make bench takes NNLAB_DATA_DIR (made absolute), not a folder beside one checkout; `~` in it is the home."""
    from nnlab.datasets.base import data_places

    makefile = (REPO / "Makefile").read_text()
    assert "../shared" not in makefile and "$(abspath $(NNLAB_DATA_DIR))" in makefile
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("NNLAB_DATA_DIR", "~/course/datasets")
    assert data_places("mnist", None)[0] == tmp_path / "course" / "datasets" / "mnist"


def test_the_database_password_paragraph_says_one_thing():
    """Never written: no sentence may say the password is stored (the code masks it everywhere, see
    test_sweep_postgres), and no example puts one on a command line."""
    assert "password is never written" in README
    assert not re.search(r"password[^.]*(is|gets) (written|stored|kept) (in|to) ", README, re.I)
    assert not re.search(r"postgresql://\w+:\w+@", README)

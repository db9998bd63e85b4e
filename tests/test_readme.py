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

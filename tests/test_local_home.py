"""The local home is private: created 0700, narrowed to that if others could read it."""

from __future__ import annotations

import stat
from dataclasses import replace

import pytest

from dlptui.errors import InvalidInput
from dlptui.platform import Platform


def mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_new_home_is_readable_by_its_owner_alone(config, tmp_path):
    home = tmp_path / "fresh" / "dlptui"
    platform = Platform(replace(config, home=home))
    try:
        platform.data.create_repo("r")
        platform.data.put_files("r", "master", {"/secret.txt": b"x"})
    finally:
        platform.close()
    assert mode(home) == 0o700


def test_an_open_home_is_narrowed(config, tmp_path):
    home = tmp_path / "open"
    home.mkdir(mode=0o755)
    home.chmod(0o755)
    platform = Platform(replace(config, home=home))
    try:
        platform.data.list_repos()
    finally:
        platform.close()
    assert mode(home) == 0o700


def test_a_home_that_is_a_file_is_one_sentence(config, tmp_path):
    home = tmp_path / "a-file"
    home.write_text("not a folder")
    platform = Platform(replace(config, home=home))
    with pytest.raises(InvalidInput, match="is not a folder|cannot be made"):
        platform.data.list_repos()
    assert platform.health("data").reachable is False

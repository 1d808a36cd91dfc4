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


def _foreign_home(tmp_path):
    """A folder that belongs to another user: made and handed over when the tests run as root, else `/` (root's)."""
    import os
    from pathlib import Path

    if os.geteuid() != 0:
        return Path("/")
    home = tmp_path / "theirs"
    home.mkdir(mode=0o700)
    os.chown(home, 65534, 65534)
    return home


def test_a_home_of_another_user_is_refused_in_one_sentence(config, tmp_path):
    home = _foreign_home(tmp_path)
    before = sorted(p.name for p in home.iterdir())
    platform = Platform(replace(config, home=home))
    with pytest.raises(InvalidInput) as refused:
        platform.data.list_repos()
    sentence = str(refused.value)
    assert sentence.startswith(f"The dlptui home {home} belongs to another user") and "chown" in sentence
    assert sentence.count(".") >= 1 and "\n" not in sentence
    assert sorted(p.name for p in home.iterdir()) == before  # nothing made in it
    assert platform.health("data").reachable is False


@pytest.mark.parametrize("open_mode", [0o770, 0o707, 0o777, 0o720])
def test_a_home_others_can_write_to_is_refused_and_left_alone(config, tmp_path, open_mode):
    home = tmp_path / "shared"
    home.mkdir()
    home.chmod(open_mode)
    platform = Platform(replace(config, home=home))
    with pytest.raises(InvalidInput, match=r"can be written by other users .*run `chmod 700 .*shared`"):
        platform.data.list_repos()
    assert list(home.iterdir()) == [] and mode(home) == open_mode


def test_the_cli_refuses_an_open_home_with_one_line(home, capsys):
    from tests.helpers import run

    home.chmod(0o777)
    try:
        code, out, err = run(capsys, "data", "repos")
    finally:
        home.chmod(0o700)
    assert code == InvalidInput.exit_code and out == ""
    assert err.startswith("dlptui: The dlptui home") and "chmod 700" in err and err.count("\n") == 1


def test_a_new_home_is_private_whatever_the_umask(config, tmp_path):
    import os

    home = tmp_path / "loose" / "dlptui"
    old = os.umask(0)
    try:
        platform = Platform(replace(config, home=home))
        try:
            platform.data.create_repo("r")
        finally:
            platform.close()
    finally:
        os.umask(old)
    assert mode(home) == 0o700

"""Shared fixtures. Each part's fixtures live in tests/fixtures/<part>.py and load as plugins here.

Every test runs with its own DLPTUI_HOME and XDG dirs in a temp folder, so nothing touches
the user's real state; `config` and `platform` give the local profile over that folder.
"""

from __future__ import annotations

import pkgutil
from pathlib import Path

import pytest

import tests.fixtures

pytest.register_assert_rewrite("tests.helpers")  # its asserts report like a test's
pytest_plugins = [f"tests.fixtures.{m.name}" for m in pkgutil.iter_modules(tests.fixtures.__path__)]


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh DLPTUI_HOME (and config dir) for one test."""
    root = tmp_path / "dlptui-home"
    root.mkdir()
    monkeypatch.setenv("DLPTUI_HOME", str(root))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.delenv("DLPTUI_PROFILE", raising=False)
    monkeypatch.delenv("DLPTUI_CONFIG", raising=False)
    return root


@pytest.fixture
def config(home: Path):
    from dlptui.config import load_config

    return load_config()


@pytest.fixture
def platform(config):
    from dlptui.platform import Platform

    p = Platform(config)
    yield p
    p.close()

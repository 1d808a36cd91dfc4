"""Shared fixtures. Each part's fixtures live in tests/fixtures/<part>.py and load as plugins here.

Every test runs with its own DLPTUI_HOME and XDG dirs in a temp folder, so nothing touches
the user's real state; `config` and `platform` give the local profile over that folder.
"""

from __future__ import annotations

import os
import pkgutil
from pathlib import Path

import pytest

import tests.fixtures

# a deploy would start computing the version's drift reference in a background process that outlives the test;
# the tests of that turn it on themselves (tests/test_drift_cli.py)
os.environ.setdefault("DLPTUI_DRIFT_REFERENCE_ON_DEPLOY", "0")
pytest.register_assert_rewrite("tests.helpers")  # its asserts report like a test's
pytest_plugins = [f"tests.fixtures.{m.name}" for m in pkgutil.iter_modules(tests.fixtures.__path__)]


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh DLPTUI_HOME (and config dir) for one test."""
    root = tmp_path / "dlptui-home"
    root.mkdir()
    root.chmod(0o700)  # a home others could write to is refused, whatever the umask
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


# Fixtures that train or serve for real: a test that uses one is `slow`, whether it says so or not.
REAL_WORK_FIXTURES = {"trained_home", "trained_platform", "tiny_checkpoints", "serving_platform", "served"}


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--order",
        choices=("file", "reverse", "random"),
        default="file",
        help="run the tests in file order, reversed, or shuffled (--order-seed): every order must pass",
    )
    parser.addoption("--order-seed", type=int, default=None, help="the seed of --order random (default: printed)")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if REAL_WORK_FIXTURES & set(getattr(item, "fixturenames", ())) and "slow" not in item.keywords:
            item.add_marker(pytest.mark.slow)
    order = config.getoption("--order")
    if order == "reverse":
        items.reverse()
    elif order == "random":
        import random

        seed = config.getoption("--order-seed")
        if seed is None:
            seed = random.SystemRandom().randrange(1 << 30)
        config._dlptui_order_seed = seed
        random.Random(seed).shuffle(items)


def pytest_report_header(config: pytest.Config) -> str | None:
    order = config.getoption("--order")
    if order == "random":
        return f"test order: random, --order-seed {getattr(config, '_dlptui_order_seed', '?')}"
    return f"test order: {order}" if order != "file" else None

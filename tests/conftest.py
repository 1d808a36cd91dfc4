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


# Fixtures that train or serve for real: a test that uses one is `slow`, whether it says so or not. One taken
# through `request.getfixturevalue` is not in a test's fixture names: a test that is not marked slow and takes one
# fails at once, saying so (`pytest_fixture_setup`), and one that trained or served in its home without the mark
# fails after it ran (`_no_real_work_unless_slow`), so `-m "not slow"` cannot quietly train or serve.
REAL_WORK_FIXTURES = {"trained_home", "trained_platform", "tiny_checkpoints", "serving_platform", "served"}
_running: list[pytest.Item] = []  # the test being run


def _not_slow(item: pytest.Item) -> str:
    return f"{item.nodeid} is not marked slow"


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    _running[:] = [item]


class _RealWorkGuard:
    """Registered as a plugin of its own: a conftest's hooks reach only the fixtures of nodes below it, and a
    session-scoped fixture's setup goes through the session's."""

    @pytest.hookimpl(tryfirst=True)
    def pytest_fixture_setup(self, fixturedef, request) -> None:
        if fixturedef.argname in REAL_WORK_FIXTURES and _running and _running[0].get_closest_marker("slow") is None:
            pytest.fail(f"{_not_slow(_running[0])} but takes {fixturedef.argname}, which trains or serves; "
                        "mark it @pytest.mark.slow.", pytrace=False)


def pytest_configure(config: pytest.Config) -> None:
    if not config.pluginmanager.has_plugin("dlptui-real-work-guard"):
        config.pluginmanager.register(_RealWorkGuard(), "dlptui-real-work-guard")


@pytest.fixture(autouse=True)
def _no_real_work_unless_slow(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch):
    """A test that is not marked slow starts no local experiment and no model server or Envoy (the platform's
    calls that start them are recorded), and no trial or model server ran in its home (a CLI run as a process)."""
    if request.node.get_closest_marker("slow") is not None:
        yield
        return
    from dlptui.platform.local import processes, training

    started: list[str] = []
    spawn, start_runner = processes.spawn, training.LocalTraining._spawn

    def spawning(argv, *args, **kwargs):
        if kwargs.get("part") == "serving":
            started.append(f"a serving process ({Path(str(argv[0])).name} {Path(str(argv[1])).name if len(argv) > 1 else ''})")
        return spawn(argv, *args, **kwargs)

    def starting(self, row, *args, **kwargs):
        started.append(f"the runner of local experiment {row.id}")
        return start_runner(self, row, *args, **kwargs)

    monkeypatch.setattr(processes, "spawn", spawning)
    monkeypatch.setattr(training.LocalTraining, "_spawn", starting)
    yield
    home = request.node.funcargs.get("home") if hasattr(request.node, "funcargs") else None
    if isinstance(home, Path):
        started += [str(p.relative_to(home)) for p in
                    sorted([*home.glob("training/logs/trial-*.log"), *home.glob("serving/*/logs/*.log")])]
    if started:
        pytest.fail(f"{_not_slow(request.node)} but trains or serves ({'; '.join(started)}); "
                    "mark it @pytest.mark.slow.", pytrace=False)


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

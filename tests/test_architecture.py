"""The arrows of DESIGN.md hold: import-linter's contracts in pyproject.toml, checked on every test run."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_import_linter_contracts_are_kept():
    lint = shutil.which("lint-imports", path=str(Path(sys.executable).parent)) or shutil.which("lint-imports")
    assert lint, "import-linter is not installed: install dlptui[test]"
    result = subprocess.run([lint, "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "0 broken" in result.stdout


def test_an_upward_import_breaks_a_contract(tmp_path):
    """The contracts bite: a copy of the package whose platform imports the console fails them."""
    import os

    lint = shutil.which("lint-imports", path=str(Path(sys.executable).parent)) or shutil.which("lint-imports")
    shutil.copytree(ROOT / "dlptui", tmp_path / "dlptui", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    model = tmp_path / "dlptui" / "platform" / "model.py"
    model.write_text(model.read_text() + "\nimport dlptui.tui.app  # planted: an upward import\n")
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    result = subprocess.run([lint, "--no-cache"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode != 0
    assert "dlptui.platform.model -> dlptui.tui.app" in result.stdout


def test_the_statistics_importing_the_platform_breaks_a_contract(tmp_path):
    """dlptui.analysis stays pure: a copy whose verdicts import the configuration fails the contracts."""
    import os

    lint = shutil.which("lint-imports", path=str(Path(sys.executable).parent)) or shutil.which("lint-imports")
    shutil.copytree(ROOT / "dlptui", tmp_path / "dlptui", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    verdicts = tmp_path / "dlptui" / "analysis" / "verdicts.py"
    verdicts.write_text(verdicts.read_text() + "\nimport dlptui.config  # planted: the statistics reading a profile\n")
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    result = subprocess.run([lint, "--no-cache"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode != 0
    assert "the statistics are pure" in result.stdout and "dlptui.analysis.verdicts -> dlptui.config" in result.stdout


def test_the_render_layer_importing_a_widget_or_a_backend_breaks_a_contract(tmp_path):
    """dlptui.render turns the platform's model into words for both faces: a copy whose data renderer imports Textual
    (or the local store) fails the contracts."""
    import os

    lint = shutil.which("lint-imports", path=str(Path(sys.executable).parent)) or shutil.which("lint-imports")
    shutil.copytree(ROOT / "dlptui", tmp_path / "dlptui", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    data = tmp_path / "dlptui" / "render" / "data.py"
    data.write_text(data.read_text() + "\nimport textual.widgets  # planted\nimport dlptui.platform.local.datastore  # planted\n")
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    result = subprocess.run([lint, "--no-cache"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode != 0
    assert "dlptui.render.data -> textual" in result.stdout  # external packages are reported by their top name
    assert "dlptui.render.data -> dlptui.platform.local.datastore" in result.stdout

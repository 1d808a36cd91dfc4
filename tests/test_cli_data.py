"""`dlptui data ...` end to end: listings as JSON, put/ls/get, imports, delete's confirmation, errors as exit codes."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from dlptui.actions.datasets import generate_sample
from dlptui.errors import InvalidInput, NotAvailable, NotFound
from tests.helpers import no_repr, run, run_json


def test_put_ls_commits_get_round_trip(home, capsys, tmp_path):
    src = tmp_path / "notes"
    src.mkdir()
    (src / "a.txt").write_text("alpha\n")
    (src / "b.txt").write_text("beta\n")
    assert run_json(capsys, "data", "create", "docs")["name"] == "docs"
    commit = run_json(capsys, "data", "put", "docs", str(src), "--to", "/text", "-m", "first put")
    assert (commit["files"], commit["message"], commit["branch"]) == (2, "first put", "master")

    assert [r["name"] for r in run_json(capsys, "data", "repos")] == ["docs"]
    assert run_json(capsys, "data", "ls", "docs") == [{"path": "/text", "type": "dir", "size_bytes": 11, "hash": None}]
    files = run_json(capsys, "data", "ls", f"docs@{commit['id'][:8]}", "/text")  # the folder's contents, as pachctl put file -r
    assert [f["path"] for f in files] == ["/text/a.txt", "/text/b.txt"]
    assert [c["id"] for c in run_json(capsys, "data", "commits", "docs")] == [commit["id"]]

    code, out, _ = run(capsys, "data", "get", "docs@master:/text/b.txt")
    assert (code, out) == (0, "beta\n")
    target = tmp_path / "copy.txt"
    assert run(capsys, "data", "get", "docs:/text/a.txt", "-o", str(target))[0] == 0
    assert target.read_text() == "alpha\n"

    code, out, _ = run(capsys, "data", "ls", "docs")  # the table for people
    assert code == 0 and "/text/" in out

    again = run_json(capsys, "data", "put", "docs", str(src))  # without --to: as cp -r, the folder keeps its name
    assert {f["path"] for f in run_json(capsys, "data", "ls", f"docs@{again['id']}", "/notes")} == {"/notes/a.txt", "/notes/b.txt"}


def test_what_people_read_is_words_and_files_come_in_natural_order(home, capsys, tmp_path):
    """The human output of a put and a listing: a describe block (local ISO times, '-' for what is missing, no
    Python repr), file names in the order a person counts (cat.2 before cat.10), IEC sizes; --json stays data."""
    src = tmp_path / "cats"
    src.mkdir()
    for n in (10, 2, 114, 1, 11):
        (src / f"cat.{n}.jpg").write_bytes(b"x" * (n * 100))
    code, out, _ = run(capsys, "data", "create", "pets")
    assert code == 0 and "repo: pets" in no_repr(out) and "last change: -" in out
    code, out, _ = run(capsys, "data", "put", "pets", str(src), "--to", "/train", "-m", "five cats")
    assert code == 0 and "message: five cats" in no_repr(out) and "files: 5" in out and "parent: -" in out
    assert re.search(r"created: \d{4}-\d\d-\d\d \d\d:\d\d:\d\d\n", out)
    code, out, _ = run(capsys, "data", "ls", "pets", "/train")
    listed = [line.split()[0] for line in out.splitlines()[1:]]
    assert listed == [f"/train/cat.{n}.jpg" for n in (1, 2, 10, 11, 114)]
    assert "11.1 KiB" in out  # cat.114.jpg: 11400 bytes
    as_data = [f["path"] for f in run_json(capsys, "data", "ls", "pets", "/train")]
    assert sorted(as_data) == sorted(listed)
    code, out, _ = run(capsys, "data", "commits", "pets")
    assert code == 0 and "five cats" in no_repr(out)


def test_sample_and_import_kaggle_from_a_zip(home, capsys, tmp_path):
    result = run_json(capsys, "data", "sample", "--count", "20", "--repo", "demo")
    assert result["counts"] == {"train": {"cat": 8, "dog": 8}, "eval": {"cat": 2, "dog": 2}}
    assert result["ref"]["repo"] == "demo" and not result["tarball"]

    images = generate_sample(tmp_path / "imgs", count=10, size=32)
    archive = tmp_path / "train.zip"
    with zipfile.ZipFile(archive, "w") as z:
        for p in sorted(images.iterdir()):
            z.write(p, f"train/{p.name}")
        z.writestr("train/thumbs.db", "junk")
    code, out, err = run(capsys, "data", "import-kaggle", str(archive), "--eval-fraction", "0.4", "--seed", "3", "--tar")
    assert code == 0, err
    assert "train: 3 cats, 3 dogs" in out and "eval: 2 cats, 2 dogs" in out and "skipped 1" in out
    assert [f["path"] for f in run_json(capsys, "data", "ls", "dogs-and-cats")] == ["/data.tar.gz"]


def test_delete_asks_and_refuses_without_a_terminal(home, capsys, monkeypatch):
    run(capsys, "data", "create", "doomed")
    monkeypatch.setattr(sys, "stdin", open(os.devnull))
    code, _, err = run(capsys, "data", "delete", "doomed")
    assert code == InvalidInput.exit_code and "--yes" in err and err.count("\n") == 1
    assert [r["name"] for r in run_json(capsys, "data", "repos")] == ["doomed"]

    class Tty:
        def isatty(self):
            return True

    monkeypatch.setattr(sys, "stdin", Tty())
    monkeypatch.setattr("builtins.input", lambda prompt: "n")
    assert run(capsys, "data", "delete", "doomed")[0] == 1
    monkeypatch.setattr("builtins.input", lambda prompt: "y")
    assert run(capsys, "data", "delete", "doomed")[0] == 0
    assert run_json(capsys, "data", "repos") == []


def test_read_only_refuses_changes(home, capsys):
    code, _, err = run(capsys, "--read-only", "data", "create", "x")
    assert code == NotAvailable.exit_code and "read-only" in err


@pytest.mark.parametrize(
    "argv, exit_code, words",
    [
        (["data", "put", "r", "PLACEHOLDER", "--to", "/a/../b"], InvalidInput.exit_code, "'..'"),
        (["data", "get", "r:/x/../../etc/passwd"], InvalidInput.exit_code, "'..'"),
        (["data", "get", "r@master"], InvalidInput.exit_code, "REPO[@REF]:PATH"),
        (["data", "ls", "ghost"], NotFound.exit_code, "no repo 'ghost'"),
        (["data", "get", "r:/missing.txt"], NotFound.exit_code, "no file /missing.txt"),
        (["data", "put", "r", "/no/such/file"], NotFound.exit_code, "/no/such/file"),
        (["data", "import-kaggle", "/no/such/train.zip"], NotFound.exit_code, "train.zip"),
        (["data", "create", "bad/name"], InvalidInput.exit_code, "not a valid repo name"),
    ],
)
def test_mistakes_end_in_one_sentence_and_an_exit_code(home, capsys, tmp_path, argv, exit_code, words):
    run(capsys, "data", "create", "r")
    run(capsys, "data", "put", "r", str(Path(__file__)))
    (tmp_path / "f.txt").write_text("x")
    argv = [str(tmp_path / "f.txt") if a == "PLACEHOLDER" else a for a in argv]
    code, out, err = run(capsys, *argv)
    assert code == exit_code
    assert words in err and err.startswith("dlptui: ") and err.count("\n") == 1 and "Traceback" not in err


def test_the_installed_command_prints_no_traceback(home, tmp_path):
    """The real entry point, in its own process, on a missing repo and a bad path."""
    exe = Path(sys.executable).with_name("dlptui")
    env = {**os.environ, "DLPTUI_HOME": str(home)}
    missing = subprocess.run([exe, "data", "commits", "nowhere"], capture_output=True, text=True, env=env, timeout=60)
    assert missing.returncode == NotFound.exit_code
    assert missing.stderr.strip() == "dlptui: There is no repo 'nowhere'; create it with `dlptui data create nowhere`."
    bad = subprocess.run([exe, "data", "get", "a:/b\x01c"], capture_output=True, text=True, env=env, timeout=60)
    assert bad.returncode == InvalidInput.exit_code and "control character" in bad.stderr and "Traceback" not in bad.stderr


def _commits(capsys, repo: str, branch: str | None = None) -> list[dict]:
    return run_json(capsys, "data", "commits", f"{repo}@{branch}" if branch else repo)


def test_every_import_route_makes_one_commit_holding_the_whole_split(home, capsys, tmp_path):
    """An empty commit in between (the old split removed, the new one not yet there) would start a retrain on no data."""
    images = generate_sample(tmp_path / "imgs", count=12, size=32)
    for _ in range(2):  # --tar, into a new repo and again
        code, _, err = run(capsys, "data", "import-kaggle", str(images), "--repo", "packed", "--tar")
        assert code == 0, err
    packed = _commits(capsys, "packed")
    assert [c["files"] for c in packed] == [1, 1]  # one commit per import, each with data.tar.gz
    # files into a repo that an earlier direct (--tar) import made: the tarball goes in the same commit
    code, _, err = run(capsys, "data", "import-kaggle", str(images), "--repo", "packed")
    assert code == 0, err
    after = _commits(capsys, "packed")
    assert [c["files"] for c in after] == [12, 1, 1]
    paths = {f["path"] for f in run_json(capsys, "data", "ls", "packed", "-r")}
    assert len(paths) == 12 and all(p.startswith(("/train/", "/eval/")) for p in paths)
    # and back to one data.tar.gz, again in one commit
    assert run(capsys, "data", "import-kaggle", str(images), "--repo", "packed", "--tar")[0] == 0
    assert [c["files"] for c in _commits(capsys, "packed")] == [1, 12, 1, 1]


def test_an_import_into_another_branch_makes_one_commit_each_time(platform, tmp_path):
    from dlptui.actions.datasets import import_kaggle

    images = generate_sample(tmp_path / "imgs", count=10, size=32)
    platform.data.create_repo("pets")
    for seed in (1, 2):
        import_kaggle(platform.data, images, repo="pets", branch="dev", seed=seed, pipelines=platform.pipelines)
    dev = platform.data.list_commits("pets", "dev")
    assert [c.files for c in dev] == [10, 10]
    assert platform.data.list_branches("pets") == ["dev"]


def _corrupt(platform_data, digest: str) -> None:
    """Flip the last byte of a stored blob in place, loose or packed (what a failing disk does)."""
    blobs = platform_data.blobs
    if blobs.path(digest).exists():
        where, offset, size = blobs.path(digest), 0, blobs.path(digest).stat().st_size
    else:
        where, offset, size = blobs.index.place(digest)
    with open(where, "r+b") as f:
        f.seek(offset + size - 1)
        last = f.read(1)
        f.seek(offset + size - 1)
        f.write(bytes([last[0] ^ 0x01]))  # still text, so a wrong read shows as words on stdout


@pytest.mark.parametrize("size, whole_bytes", [(3000, None), (3_000_000, 1 << 20)], ids=["read whole", "checked first"])
def test_data_get_to_a_pipe_writes_no_byte_of_a_corrupt_file(home, capsys, tmp_path, monkeypatch, size, whole_bytes):
    """The last byte of the stored copy is wrong: nothing reaches stdout (a pipe cannot take bytes back), one
    sentence on stderr, exit 1. A large file (over WHOLE_BYTES, here lowered) goes through the two-pass path."""
    import hashlib

    from dlptui.cli import data as data_cli
    from dlptui.config import load_config
    from dlptui.platform import Platform

    if whole_bytes is not None:
        monkeypatch.setattr(data_cli, "WHOLE_BYTES", whole_bytes)
    content = os.urandom(size // 2).hex().encode()  # text: what stdout receives is read back as text here
    (tmp_path / "photo.bin").write_bytes(content)
    run_json(capsys, "data", "create", "r")
    assert run(capsys, "data", "put", "r", str(tmp_path / "photo.bin"))[0] == 0
    code, out, _ = run(capsys, "data", "get", "r:/photo.bin")
    assert code == 0 and len(out) > 0  # whole and good: printed
    platform = Platform(load_config())
    try:
        _corrupt(platform.data, hashlib.sha256(content).hexdigest())
    finally:
        platform.close()
    code, out, err = run(capsys, "data", "get", "r:/photo.bin")
    assert (code, out) == (1, "")
    assert err == "dlptui: The stored content of r@master:/photo.bin is corrupt (its hash does not match); put the file again.\n"
    target = tmp_path / "copy.bin"
    code, _, err = run(capsys, "data", "get", "r:/photo.bin", "-o", str(target))
    assert code == 1 and "is corrupt" in err and not target.exists() and list(tmp_path.glob(".copy.bin.*")) == []

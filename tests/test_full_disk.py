"""A full disk: one sentence naming the folder, exit 1, and nothing half-written left, for a put and for a read.

The disk is a real one that fills: a 32 MiB tmpfs mounted as DLPTUI_HOME in a private mount namespace
(`unshare -m`, or `unshare -rm` for a user who is not root), so the mount exists only for the commands
of the test and goes with them. Every dlptui command runs as its own process, as a user runs it. A
file-size limit (RLIMIT_FSIZE, what a quota looks like to a writer: EFBIG) is checked the same way
without a mount.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

DRIVER = textwrap.dedent('''
    import json, os, subprocess, sys
    home, sources = sys.argv[1], sys.argv[2]
    env = {**os.environ, "DLPTUI_HOME": home, "XDG_CONFIG_HOME": sources + "/config"}
    steps = {}

    def dl(name, *argv):
        done = subprocess.run([sys.executable, "-m", "dlptui", *argv], env=env, capture_output=True, text=True)
        steps[name] = {"code": done.returncode, "out": done.stdout, "err": done.stderr}

    def free():
        s = os.statvfs(home)
        return s.f_bavail * s.f_frsize

    fillers = []

    def fill(leave):
        path = home + f"/.filler-{len(fillers)}"
        fillers.append(path)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT)
        try:
            while free() > leave:
                os.write(fd, b"\\0" * min(1 << 20, max(4096, free() - leave)))
        except OSError:
            pass
        finally:
            os.close(fd)

    def tmp_files():
        return sorted(os.listdir(home + "/data/blobs/tmp"))

    dl("create", "data", "create", "r")
    dl("first put", "data", "put", "r", sources + "/small.txt")
    fill(3 << 20)
    dl("large put", "data", "put", "r", sources + "/large.bin")  # 10 MB: streamed to a temp file of its own
    steps["tmp after large"] = tmp_files()
    for f in fillers:
        os.unlink(f)
    fillers.clear()
    fill(300 << 10)
    dl("small put", "data", "put", "r", sources + "/photo.bin")  # 600 KB: into a temp pack
    steps["tmp after small"] = tmp_files()
    fill(0)
    dl("read while full", "data", "ls", "r")
    for f in fillers:
        os.unlink(f)
    dl("read after", "data", "ls", "r", "--json")
    dl("commits after", "data", "commits", "r", "--json")
    dl("put after", "data", "put", "r", sources + "/photo.bin", "--json")
    steps["tmp at the end"] = tmp_files()
    print(json.dumps(steps))
''')


def _namespace() -> list[str]:
    if shutil.which("unshare") is None:
        pytest.fail("this test needs unshare (util-linux) to mount a small disk in a private mount namespace")
    return ["unshare", "-m"] if os.geteuid() == 0 else ["unshare", "-rm"]


def test_a_full_disk_is_one_sentence_for_a_put_and_a_read_and_leaves_nothing_half_written(tmp_path):
    sources = tmp_path / "sources"
    sources.mkdir()
    (sources / "small.txt").write_text("x")
    (sources / "photo.bin").write_bytes(os.urandom(600_000))
    (sources / "large.bin").write_bytes(os.urandom(10_000_000))
    (tmp_path / "driver.py").write_text(DRIVER)
    home = tmp_path / "home"
    home.mkdir(mode=0o700)
    script = (f"mount -t tmpfs -o size=32m,mode=700 tmpfs {home} || exit 97; "
              f"exec {sys.executable} {tmp_path / 'driver.py'} {home} {sources}")
    done = subprocess.run([*_namespace(), "sh", "-c", script], capture_output=True, text=True, timeout=600,
                          cwd=Path(__file__).resolve().parents[1])
    assert done.returncode != 97, f"no small disk could be mounted in a private namespace: {done.stderr}"
    assert done.returncode == 0, done.stderr
    steps = json.loads(done.stdout)
    assert steps["first put"]["code"] == 0, steps["first put"]["err"]
    for name in ("large put", "small put"):
        assert steps[name]["code"] == 1 and steps[name]["out"] == ""
        assert steps[name]["err"] == (f"dlptui: The disk holding {home}/data is full; free some space there and try again "
                                      "(nothing was half-written).\n"), steps[name]["err"]
    assert steps["tmp after large"] == [] and steps["tmp after small"] == []
    read = steps["read while full"]
    assert read["code"] == 1 and read["err"].startswith(f"dlptui: The disk holding {home}/data") and read["err"].count("\n") == 1
    assert "Traceback" not in read["err"]
    assert [f["path"] for f in json.loads(steps["read after"]["out"])] == ["/small.txt"]
    assert len(json.loads(steps["commits after"]["out"])) == 1  # neither failed put committed anything
    assert steps["put after"]["code"] == 0 and json.loads(steps["put after"]["out"])["files"] == 2
    assert steps["tmp at the end"] == []


def test_a_file_size_limit_met_by_a_put_is_the_same_sentence(home, tmp_path):
    """RLIMIT_FSIZE (a quota's EFBIG) in the child: the put of a file over it fails in one sentence, and the next
    command (without the limit) finds the temp folder empty and the repo as it was."""
    env = {**os.environ, "DLPTUI_HOME": str(home)}
    exe = [sys.executable, "-m", "dlptui"]
    source = tmp_path / "big.bin"
    source.write_bytes(os.urandom(12_000_000))
    assert subprocess.run([*exe, "data", "create", "r"], env=env, capture_output=True, timeout=120).returncode == 0

    def limited() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit is EFBIG, not a killed process
        resource.setrlimit(resource.RLIMIT_FSIZE, (4 << 20, 4 << 20))

    done = subprocess.run([*exe, "data", "put", "r", str(source)], env=env, capture_output=True, text=True, timeout=120,
                          preexec_fn=limited)
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr == (f"dlptui: The disk holding {home}/data is full; free some space there and try again "
                           "(nothing was half-written).\n")
    assert os.listdir(home / "data" / "blobs" / "tmp") == []
    after = subprocess.run([*exe, "data", "commits", "r", "--json"], env=env, capture_output=True, text=True, timeout=120)
    assert after.returncode == 0 and json.loads(after.stdout) == []

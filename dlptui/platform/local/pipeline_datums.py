"""The small parts of running a datum: its globs, its `/pfs` paths, the check that its code left its inputs
alone, killing its process group, removing its folders, and durations written as Pachyderm writes them."""

from __future__ import annotations

import fnmatch
import os
import re
import shutil
import signal
import subprocess
import threading
import time
from pathlib import Path

PFS = re.compile(r"(?<![\w./-])/pfs(?=/|$|[\s'\";:])")


def duration(seconds: float) -> str:
    """Seconds as Pachyderm writes a duration: 90 -> "1m30s", 2 -> "2s", 0.25 -> "250ms"."""
    if seconds < 1:
        return f"{seconds * 1000:g}ms"
    whole = int(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    secs += seconds - whole
    text = (f"{hours}h" if hours else "") + (f"{minutes}m" if minutes else "")
    return text + (f"{secs:g}s" if secs or not text else "")


def kill_group(child: subprocess.Popen) -> None:
    """SIGKILL a datum's code and every process of its group (it leads one: start_new_session)."""
    if child.returncode is not None:
        return  # reaped: its pid may be another process's now
    try:
        os.killpg(child.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        try:
            child.kill()
        except OSError:
            pass


def rewrite(text: str, pfs: Path) -> str:
    """`/pfs/...` at the start of a word becomes `<pfs>/...` (the datum's own folder)."""
    return PFS.sub(lambda m: str(pfs), text)


def glob_datums(files: list, glob: str) -> dict[str, list]:
    """Pachyderm's glob over a commit's files: each match (a file or a folder) -> the files it holds, by path."""
    pattern = glob.strip("/")
    groups: dict[str, list] = {}
    if not pattern:
        return {"/": list(files)} if files else {}
    if "**" in pattern:
        rx = re.compile("^/" + ".*".join(fnmatch.translate(p)[4:-3] for p in pattern.split("**")) + "$")
        for f in files:
            if rx.match(f.path):
                groups.setdefault(f.path, []).append(f)
        return groups
    parts = pattern.split("/")
    for f in files:
        segments = f.path.strip("/").split("/")
        if len(segments) >= len(parts) and all(fnmatch.fnmatchcase(s, p) for s, p in zip(segments, parts)):
            groups.setdefault("/" + "/".join(segments[: len(parts)]), []).append(f)
    return groups


def remove_later(folder: Path) -> None:
    """Move `folder` aside at once and remove it in the background (what is left when the runner exits goes
    when the next runner starts: `HomeRunner.loop`)."""
    trash = folder.with_name(f".trash-{folder.name}-{time.monotonic_ns()}")
    try:
        os.rename(folder, trash)
    except FileNotFoundError:
        return
    remove_in_background(trash)


def remove_in_background(trash: Path) -> None:
    """Remove `trash` (a folder nothing uses any more) at the lowest CPU priority: by `nice rm -rf`, a process
    of its own, so thousands of datum folders never hold the runner's interpreter while the next job's datums
    start (a thread's rmtree did, and took a fifth off the datum rate); a thread where there is no `rm`."""
    rm, nice = shutil.which("rm"), shutil.which("nice")
    if rm is None:
        threading.Thread(target=shutil.rmtree, args=(trash, True), name="remove-work", daemon=True).start()
        return
    # no platform mark in its environment: it is not a datum, and nothing needs to find or end it
    child = subprocess.Popen([*([nice, "-n", "19"] if nice else []), rm, "-rf", "--", str(trash)],
                             env={"PATH": os.environ.get("PATH", os.defpath)},
                             stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    threading.Thread(target=child.wait, name="remove-work", daemon=True).start()  # reaped when it ends


def snapshot(pfs: Path, skip: Path) -> set:
    seen = set()
    for dirpath, dirnames, filenames in os.walk(pfs):
        if Path(dirpath) == skip.parent and skip.name in dirnames:
            dirnames.remove(skip.name)
        for n in dirnames + filenames:
            p = Path(dirpath) / n
            st = p.lstat()
            seen.add((str(p), st.st_size, st.st_mtime_ns, st.st_mode))
    return seen

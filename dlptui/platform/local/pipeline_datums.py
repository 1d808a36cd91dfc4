"""The small parts of running a datum: its globs, its `/pfs` paths, the check that its code left its inputs
alone, killing its process group, removing its folders, durations written as Pachyderm writes them, and what a
datum said of itself (its log's `summary: ` line) made into its job's summary."""

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


SUMMARY = "summary: "  # a datum log's line that says what the datum did: the job's summary takes it
SUMMARY_TAIL = 65536  # the bytes at the end of a datum's log where its summary is looked for


def summary_line(log: Path) -> str:
    """The last `summary: ` line of a datum's log (its end only), without the prefix; "" when there is none."""
    try:
        with open(log, "rb") as f:
            f.seek(max(0, f.seek(0, os.SEEK_END) - SUMMARY_TAIL))
            lines = f.read().decode("utf-8", errors="replace").splitlines()
    except OSError:
        return ""
    found = next((line for line in reversed(lines) if line.startswith(SUMMARY)), "")
    return found[len(SUMMARY):].strip()[:500]


def job_summary(datums) -> str:
    """What a successful job did, in one or two sentences: no datum at all, the datums skipped (the same input as an
    earlier job's: nothing ran for them), and what its datums' code said (their `summary: ` lines)."""
    if not datums:
        return "The glob matched no file: 0 datums, an empty output commit."
    skipped = [d for d in datums if d["state"] == "skipped"]
    said = [d["reason"] for d in datums if d["state"] == "success" and d["reason"]]
    parts = []
    if skipped and len(skipped) == len(datums):
        what = "its datum was" if len(datums) == 1 else f"all {len(datums)} datums were"
        parts.append(f"Nothing ran: {what} skipped, the input files being the same as in an earlier job that processed "
                     "them (its output is reused).")
    elif skipped:
        parts.append(f"{len(skipped)} of {len(datums)} datums were skipped (the same input files as in an earlier job).")
    if said:
        more = f" (and {len(said) - 1} more datum summaries: see the job's logs)" if len(said) > 1 else ""
        text = said[0].rstrip(".")
        parts.append(f"{text[:1].upper()}{text[1:]}{more}.")
    return " ".join(parts)

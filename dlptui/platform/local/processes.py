"""Child processes that outlive the console: start them detached, find them again, stop their whole tree.

A process is recorded as its pid *and* its start time, so a pid that the system reused for
another program is never taken for ours (and never signalled). Each child leads its own
session and process group, so stopping it reaches every process it forked.
"""

from __future__ import annotations

import os
import socket
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import psutil


@dataclass(frozen=True)
class ProcessRecord:
    pid: int
    started: float  # psutil's create_time of the process

    def to_json(self) -> dict:
        return {"pid": self.pid, "started": self.started}

    @classmethod
    def from_json(cls, data: Mapping) -> ProcessRecord:
        return cls(int(data["pid"]), float(data["started"]))


def spawn(argv: Sequence[str], log: Path, cwd: Path | None = None, env: Mapping[str, str] | None = None) -> ProcessRecord:
    """Start `argv` in its own session, stdout and stderr appended to `log`; do not wait for it."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out:
        child = subprocess.Popen(
            list(argv),
            cwd=cwd,
            env=dict(env) if env is not None else None,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            close_fds=True,
        )
    child.returncode = 0  # the console never waits for it; keep Popen's finaliser from tracking it
    return ProcessRecord(child.pid, psutil.Process(child.pid).create_time())


def _process(record: ProcessRecord) -> psutil.Process | None:
    """The live process the record names, or None (gone, a zombie, or a reused pid)."""
    try:
        proc = psutil.Process(record.pid)
        if abs(proc.create_time() - record.started) > 0.05:
            return None
        if proc.status() == psutil.STATUS_ZOMBIE:
            _reap(record.pid)
            return None
        return proc
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return None


def _reap(pid: int) -> None:
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def alive(record: ProcessRecord) -> bool:
    return _process(record) is not None


def members(record: ProcessRecord) -> list[psutil.Process]:
    """The processes of the record's process group (its session: start_new_session) started after it.

    The leader may be gone while its children live on (killed from outside): they still count.
    """
    members = []
    for proc in psutil.process_iter(["create_time"]):
        try:
            if os.getpgid(proc.pid) == record.pid and proc.info["create_time"] >= record.started - 0.05:
                members.append(proc)
        except (ProcessLookupError, PermissionError, psutil.Error):
            continue
    return members


def stop_tree(record: ProcessRecord, timeout: float = 10.0) -> None:
    """SIGTERM the process, its group and every descendant; SIGKILL what is left after `timeout`."""
    family = {p.pid: p for p in members(record)}
    leader = _process(record)
    if leader is not None:
        family[leader.pid] = leader
        try:
            family.update({p.pid: p for p in leader.children(recursive=True)})
        except psutil.NoSuchProcess:
            pass
    if not family:
        return
    for p in family.values():
        try:
            p.terminate()
        except psutil.NoSuchProcess:
            pass
    _, left = psutil.wait_procs(list(family.values()), timeout=timeout)
    for p in left:
        try:
            p.kill()
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(left, timeout=5)
    _reap(record.pid)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_free(port: int) -> bool:
    """Whether a server can listen on the port now. The probe binds as the gateway does
    (SO_REUSEADDR), so connections of a stopped server left in TIME_WAIT do not count."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


def tail(path: Path, lines: int = 20, chunk: int = 65536) -> list[str]:
    """The last `lines` lines of a log file (an empty list if there is none)."""
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - chunk))
            data = f.read()
    except FileNotFoundError:
        return []
    text = data.decode("utf-8", errors="replace").splitlines()
    return text[-lines:] if lines > 0 else []

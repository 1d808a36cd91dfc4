"""Child processes that outlive the console: start them detached, find them again, stop their whole tree.

A process is recorded as its pid *and* its start time, so a pid that the system reused for
another program is never taken for ours (and never signalled). Each child leads its own
session and process group, so stopping it reaches every process it forked. Each also carries
a token of its own in its environment (DLPTUI_PROCESS), which its descendants inherit: after
the leader died and its pid went to another program, only processes with the token count as
its group, so `undeploy` never signals an unrelated process group. A process this user may not
inspect is never ours. Each also carries the home it belongs to (HOME_VAR, the home's real path):
the host view of one home lists that home's processes only, not those of another home on the same
machine (another user's console, a test, a benchmark).

Children get an allow-listed environment (`child_env`): the console's secrets (DET_PASS,
PACHD_TOKEN, cloud keys...) and settings that change a server's behaviour (SELDON_DEBUG and
FLASK_* make the model server bind 0.0.0.0) never reach a child that does not need them.
"""

from __future__ import annotations

import collections
import os
import secrets
import socket
import subprocess
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import psutil


TOKEN_VAR = "DLPTUI_PROCESS"
PART_VAR = "DLPTUI_PART"  # which part of the platform a child serves: what the Cluster screen shows it as
HOME_VAR = "DLPTUI_PROCESS_HOME"  # the home a child belongs to (home_mark): the Cluster screen shows that home's only
# what a child of dlptui may see of the console's environment; everything else stays behind
PASSED = ("PATH", "HOME", "USER", "LOGNAME", "LANG", "LANGUAGE", "TZ", "TMPDIR", "TERM", "PYTHONPATH",
          "XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_CACHE_HOME", "XDG_STATE_HOME", "XDG_RUNTIME_DIR",
          "DLPTUI_HOME", "DLPTUI_TRIAL_DIR", "DLPTUI_SERVING_DIR", "DLPTUI_INFRA_DIR",
          "CUDA_VISIBLE_DEVICES", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS",
          "OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "TORCH_HOME", "SSL_CERT_FILE", "SSL_CERT_DIR")
PASSED_PREFIXES = ("LC_",)


def child_env(extra: Mapping[str, str] | None = None, environ: Mapping[str, str] = os.environ) -> dict[str, str]:
    """The environment of a child: the allow-listed variables of this one, then `extra`."""
    env = {k: v for k, v in environ.items() if k in PASSED or k.startswith(PASSED_PREFIXES)}
    env.update(extra or {})
    return env


@dataclass(frozen=True)
class ProcessRecord:
    pid: int
    started: float  # psutil's create_time of the process
    token: str | None = None  # in the environment of it and its descendants (None: recorded by an older dlptui)

    def to_json(self) -> dict:
        data = {"pid": self.pid, "started": self.started}
        if self.token:
            data["token"] = self.token
        return data

    @classmethod
    def from_json(cls, data: Mapping) -> ProcessRecord:
        return cls(int(data["pid"]), float(data["started"]), data.get("token"))


def home_mark(home: str | os.PathLike) -> str:
    """The value of HOME_VAR for a home: its real path (a link or a relative path names the same home)."""
    return os.path.realpath(os.fspath(home))


def spawn(argv: Sequence[str], log: Path, cwd: Path | None = None, env: Mapping[str, str] | None = None,
          part: str = "platform", *, home: str | os.PathLike) -> ProcessRecord:
    """Start `argv` in its own session, stdout and stderr appended to `log`; do not wait for it.

    `env`: the child's whole environment (see `child_env`); by default the allow-listed one.
    `part` marks it and its descendants as serving, training, pipelines... for the host view, `home`
    as the home's (HOME_VAR)."""
    log.parent.mkdir(parents=True, exist_ok=True)
    token = secrets.token_hex(12)
    environment = {**(dict(env) if env is not None else child_env()), TOKEN_VAR: token, PART_VAR: part,
                   HOME_VAR: home_mark(home)}
    with open(log, "ab") as out:
        child = subprocess.Popen(
            list(argv),
            cwd=cwd,
            env=environment,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            close_fds=True,
        )
    child.returncode = 0  # the console never waits for it; keep Popen's finaliser from tracking it
    return ProcessRecord(child.pid, psutil.Process(child.pid).create_time(), token)


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
    """The processes of the record's process group (its session: start_new_session) that carry its
    token (a record without one: that were started after it).

    The leader may be gone while its children live on (killed from outside): they still count;
    a group that took the leader's pid after it died does not.
    """
    members = []
    for proc in psutil.process_iter(["create_time"]):
        try:
            if os.getpgid(proc.pid) != record.pid or proc.info["create_time"] < record.started - 0.05:
                continue
            if record.token is not None and proc.environ().get(TOKEN_VAR) != record.token:
                continue
            members.append(proc)
        except (ProcessLookupError, PermissionError, psutil.Error):  # gone, or not ours to inspect (AccessDenied)
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


def write_json(path: Path, data: Mapping) -> None:
    """A record whole or absent, and on disk when it returns: the file and its folder are synced."""
    import json

    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w") as f:
        f.write(json.dumps(data, indent=2))
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    folder = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(folder)
    finally:
        os.close(folder)


def read_record(path: Path) -> ProcessRecord | None:
    """The record a runner wrote of itself (None before the first, or one nobody can read)."""
    import json

    try:
        return ProcessRecord.from_json(json.loads(Path(path).read_text()))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def lock_held(path: Path) -> bool:
    """Whether a process holds the flock of `path` (a look takes it for an instant when none does, and lets go)."""
    import fcntl

    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return False
    except BlockingIOError:
        return True
    finally:
        os.close(fd)


def starting(path: Path, within_s: float) -> bool:
    """Whether the process `path` records (a runner just started) is alive and began less than `within_s` ago: it
    may still be on its way to its lock (imports take a moment)."""
    import time

    record = read_record(path)
    return record is not None and time.time() - record.started < within_s and alive(record)


def marks(proc: psutil.Process, home: str | os.PathLike) -> str | None:
    """The part a process of `home`'s serves (from the environment its spawn gave it), None for any other: one
    that dlptui did not start, or started for another home (or before processes carried their home)."""
    try:
        env = proc.environ()
    except (psutil.Error, OSError):  # gone, or not ours to inspect
        return None
    if not env.get(TOKEN_VAR) or env.get(HOME_VAR) != home_mark(home):
        return None
    return env.get(PART_VAR, "platform")


_HANDED_OUT: collections.deque[int] = collections.deque(maxlen=1024)  # the ports free_port gave lately, newest last
_HANDED_OUT_LOCK = threading.Lock()


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now, and that this process has not handed out
    lately: a model server binds its ports seconds after it is given them (its imports first), and the
    kernel may offer a port again until then, so a deployment's Envoy could have taken its model server's."""
    with _HANDED_OUT_LOCK:
        for _ in range(64):
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
                s.bind(("127.0.0.1", 0))
                port = s.getsockname()[1]
            if port not in _HANDED_OUT:
                break
        _HANDED_OUT.append(port)
        return port


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


# --- children that cannot run away (the pipeline runner's datums) ------------------------------------------

PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
_PRCTL: list = []  # libc's prctl, looked up once in the parent (a forked child only calls it)


def _prctl():
    if not _PRCTL:
        import ctypes

        function = ctypes.CDLL(None, use_errno=True).prctl
        function.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
        function.restype = ctypes.c_int
        _PRCTL.append(function)
    return _PRCTL[0]


def dying_with_parent(signum: int = 9):
    """A `preexec_fn` for Popen: the child gets `signum` (SIGKILL) when the thread that starts it dies, however
    it dies (Linux's parent-death signal, prctl(PR_SET_PDEATHSIG)); a child whose parent died before that was
    set kills itself. None where there is no prctl (not Linux): the caller's other guards remain.

    The signal reaches the child only, not what it starts: pair it with a process group of its own and
    `guard` (or `end(marked(...))`) for the rest. It is cleared in the child's own children (fork)."""
    import sys

    if not sys.platform.startswith("linux"):
        return None
    try:
        prctl = _prctl()
    except (OSError, AttributeError):
        return None
    parent = os.getpid()

    def preexec() -> None:
        prctl(PR_SET_PDEATHSIG, signum, 0, 0, 0)
        if os.getppid() != parent:  # the parent died before the line above: no signal will come
            os.kill(os.getpid(), signum)

    return preexec


_SETPRIV: list = []


def parent_death_prefix(signame: str = "KILL") -> list[str]:
    """`setpriv --pdeathsig KILL --`, where util-linux's setpriv has that option (looked up once): the same
    parent-death signal as `dying_with_parent`, set by setpriv before it execs the command, which keeps Popen's
    fast spawn (a `preexec_fn` makes every spawn fork and run Python in the child: about 4 times slower here).
    [] where there is none; use `dying_with_parent` then."""
    if not _SETPRIV:
        import shutil
        import sys

        found = shutil.which("setpriv") if sys.platform.startswith("linux") else None
        if found:
            try:
                usage = subprocess.run([found, "--help"], capture_output=True, text=True, timeout=10).stdout
            except (OSError, subprocess.SubprocessError):
                usage = ""
            found = found if "--pdeathsig" in usage else None
        _SETPRIV.append(found)
    return [_SETPRIV[0], "--pdeathsig", signame, "--"] if _SETPRIV[0] else []


def marked(env: Mapping[str, str | None], exclude_token: str | None = None) -> list[psutil.Process]:
    """The live processes (not zombies) of this user whose environment holds each of `env` (a value of None:
    set, to anything), other than this one and those carrying `exclude_token` (TOKEN_VAR)."""
    found = []
    me = os.getpid()
    for proc in psutil.process_iter():
        if proc.pid == me:
            continue
        try:
            environment = proc.environ()
        except (psutil.Error, OSError):  # gone, a zombie, or not ours to inspect
            continue
        if exclude_token is not None and environment.get(TOKEN_VAR) == exclude_token:
            continue
        if all((key in environment) if value is None else environment.get(key) == value for key, value in env.items()):
            found.append(proc)
    return found


def _gone(proc: psutil.Process) -> bool:
    try:
        return proc.status() == psutil.STATUS_ZOMBIE
    except psutil.Error:
        return True


def end(procs: Sequence[psutil.Process], timeout: float = 10.0) -> list[psutil.Process]:
    """SIGKILL each process and, where it leads one, its process group (what it started, even with another
    environment); wait until they are gone (a zombie counts as gone). The processes still there after `timeout`."""
    import signal
    import time

    for proc in procs:
        try:
            if os.getpgid(proc.pid) == proc.pid:
                os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            proc.kill()
        except psutil.Error:
            pass
    deadline = time.monotonic() + timeout
    left = [p for p in procs if not _gone(p)]
    while left and time.monotonic() < deadline:
        time.sleep(0.02)
        left = [p for p in left if not _gone(p)]
    return left


# The guard: a process of a few MB that reads a pipe whose only writer is the process it guards. When that
# process dies, however (kill -9 too), the pipe ends, and the guard SIGKILLs every process marked with each of its
# arguments (VAR=value, or VAR= for any value), the process group of each that leads one first; then it exits.
# Standard library only, run with -I -S, so it starts in milliseconds and imports nothing of dlptui.
_GUARD = r"""
import os, signal, sys, time
want = [a.encode() for a in sys.argv[1:]]
try:
    while os.read(0, 65536):
        pass
except OSError:
    pass
me = os.getpid()
def ours(pid):
    try:
        with open("/proc/%d/environ" % pid, "rb") as f:
            env = f.read().split(b"\0")
    except OSError:
        return False
    return all(any(e == w or (w.endswith(b"=") and e.startswith(w)) for e in env) for w in want)
for _ in range(10):
    found = [int(n) for n in os.listdir("/proc") if n.isdigit() and int(n) != me and ours(int(n))]
    if not found:
        break
    for pid in found:
        try:
            if os.getpgid(pid) == pid:
                os.killpg(pid, signal.SIGKILL)
        except OSError:
            pass
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
    time.sleep(0.1)
"""


def guard(marks: Mapping[str, str | None], env: Mapping[str, str] | None = None) -> subprocess.Popen | None:
    """Start a guard of this process (see _GUARD) that ends every process marked with all of `marks` once this
    process is gone; None where there is no /proc. `env`: the guard's own environment (it must not carry the
    marks' last one itself). This process keeps the pipe's writing end open (never inherited) for as long as it lives."""
    import sys

    if not os.path.isdir("/proc"):
        return None
    argv = [sys.executable, "-I", "-S", "-c", _GUARD] + [f"{k}={'' if v is None else v}" for k, v in marks.items()]
    reading, writing = os.pipe()  # both ends non-inheritable: no child of this process keeps the pipe open
    try:
        child = subprocess.Popen(argv, stdin=reading, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                 env=dict(env or {}), start_new_session=True, close_fds=True)
    except OSError:
        os.close(writing)
        return None
    finally:
        os.close(reading)
    child._guard_pipe = writing  # closed when this process exits (or by `release_guard`)
    return child


def release_guard(child: subprocess.Popen | None) -> None:
    """Let the guard go now (it ends what it guards, then exits)."""
    if child is None:
        return
    writing = getattr(child, "_guard_pipe", None)
    if writing is not None:
        try:
            os.close(writing)
        except OSError:
            pass
        child._guard_pipe = None
    try:
        child.wait(timeout=10)
    except subprocess.TimeoutExpired:
        pass

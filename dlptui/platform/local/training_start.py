"""Starting an experiment's runner: its environment, its start lock, its coalesce key's turn, and whether it is alive.

Who is starting an experiment's runner: an flock on `<training>/starts/<id>.lock`.

The starter takes it before the experiment is queued (inside the insert's transaction, or before
a resume moves it out of paused or error) and hands it to the runner it spawns (an inherited
descriptor, named in FD_VAR). The runner records its own pid and start time first thing, then lets
go; the starter lets go once it has recorded the pid too. So a queued experiment without a pid is
being started exactly while its lock is held: one whose lock is free was abandoned (its starter
died, and its runner died or never came, before a pid was recorded), and can be marked error and
resumed. Lock files are never removed: a removed one could be locked twice.

How many experiments train at once, platform-wide: slots, flocks on `<training>/slots/<n>.lock` for n
below the cap (the config's max_concurrent_experiments, handed to the runner in CAP_VAR). The starter
takes a free slot when one is free and no older experiment waits, hands it to the runner it spawns
(SLOT_VAR, like the start lock) and records the experiment running; otherwise the experiment stays
queued and its runner, once recorded, waits for a slot before it trains. A slot is held for as long
as its runner lives: the kernel lets go of it when the runner ends, however it ends (kill -9 too), so
there is no count to repair. Waiting runners take free slots oldest experiment first.

An experiment with a coalesce key (`data.coalesce` in its config: a retrain pipeline's name) trains only in its
key's turn: an flock on `<training>/coalesce/<key>.lock` that its runner takes before it trains and holds until it
exits (completed, paused, killed, or kill -9: the kernel lets go), so at most one experiment of a key trains at a
time. Until it has the turn it is queued, with its runner's pid recorded; a newer experiment of the key supersedes
it then (`LocalTraining._supersede`).
"""

from __future__ import annotations

import fcntl
import os
import secrets
from pathlib import Path
from typing import Any

from dlptui.platform.local import processes

FD_VAR = "DLPTUI_START_LOCK_FD"
CAP_VAR = "DLPTUI_MAX_CONCURRENT_EXPERIMENTS"
SLOT_VAR = "DLPTUI_SLOT_FD"


def check_key(key: str) -> str:
    """A coalesce key names a lock file: the NAME rule (a pipeline's name)."""
    from dlptui.errors import InvalidInput
    from dlptui.platform.rules import NAME

    if not isinstance(key, str) or not NAME.match(key):
        raise InvalidInput(f"The coalesce key {key!r} is not valid; use letters, digits, '-' and '_' (a pipeline's name).")
    return key


def key_of(config: dict | None) -> str | None:
    """An experiment's coalesce key (None: it trains as soon as it starts)."""
    return ((config or {}).get("data") or {}).get("coalesce") or None


class Stopped(Exception):
    """A SIGTERM (pause, kill, supersede) came while a runner waited for its key's turn."""


def take_turn(root: Path, key: str, on_wait=None, stopped=None) -> int | None:
    """Wait for the key's turn and hold it (the descriptor, kept open until the process exits); None when a
    SIGTERM came first (the wait is interrupted: a pause or a supersede must not wait for another's training)."""
    import signal

    folder = root / "coalesce"
    folder.mkdir(exist_ok=True)
    fd = os.open(folder / f"{check_key(key)}.lock", os.O_RDWR | os.O_CREAT, 0o644)

    def stop(signum, frame):
        raise Stopped()

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        if stopped is not None and stopped():  # a SIGTERM that came before this handler
            raise Stopped()
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if on_wait is not None:
                on_wait()
            fcntl.flock(fd, fcntl.LOCK_EX)
        return fd
    except Stopped:
        os.close(fd)
        return None
    finally:
        signal.signal(signal.SIGTERM, previous)


def runner_env(home: Path, root: Path, config: dict | None, lock: int | None, cap: int = 1,
               slot: int | None = None) -> dict[str, str]:
    """The allow-listed environment (processes.child_env): no secret of the console reaches the
    trial, but for the Pachyderm token of a config that reads its data from Pachyderm."""
    data = (config or {}).get("data") or {}
    passed = ("PACHD_ADDRESS", "PACHD_TOKEN") if data.get("store") == "pachyderm" else ()
    return processes.child_env({
        **{k: os.environ[k] for k in passed if k in os.environ},
        "DLPTUI_HOME": str(home),
        "XDG_DATA_HOME": str(root),
        "PYTHONUNBUFFERED": "1",
        processes.TOKEN_VAR: secrets.token_hex(12),  # marks the runner and its trials as the platform's
        processes.PART_VAR: "training",
        processes.HOME_VAR: processes.home_mark(home),  # the runner's trials inherit it
        CAP_VAR: str(max(1, int(cap))),
        **({FD_VAR: str(lock)} if lock is not None else {}),
        **({SLOT_VAR: str(slot)} if slot is not None else {}),
    })


def passed_fds(env: dict[str, str]) -> tuple[int, ...]:
    """The descriptors a runner inherits: its start lock and its slot, where the environment names them."""
    return tuple(int(env[var]) for var in (FD_VAR, SLOT_VAR) if var in env)


def started(pid: int) -> float | None:
    """The process's start time, recorded with its pid: a reused pid is not taken for it."""
    import psutil

    try:
        return psutil.Process(pid).create_time()
    except psutil.Error:
        return None


def alive(pid: int | None, pid_started: float | None) -> bool:
    """Whether `pid` is still the process recorded (not a reused pid, not a zombie)."""
    if not pid:
        return False
    import psutil

    try:
        process = psutil.Process(pid)
        if pid_started and abs(process.create_time() - pid_started) > 1.0:
            return False
        return process.status() != psutil.STATUS_ZOMBIE  # exited, not yet reaped by its parent
    except psutil.Error:
        return False


def take(root: Path, experiment_id: int, wait: bool = False) -> int | None:
    """The lock's descriptor, held; None when another starter holds it (and `wait` is false)."""
    folder = root / "starts"
    folder.mkdir(exist_ok=True)
    fd = os.open(folder / f"{experiment_id}.lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


def release(fd: int | None) -> None:
    if fd is not None:
        try:
            os.close(fd)
        except OSError:
            pass


def inherited(var: str = FD_VAR) -> int | None:
    """In a runner: the descriptor its starter passed on in `var` (the start lock, or SLOT_VAR its slot), taken
    out of the environment, so no grandchild sees it."""
    value = os.environ.pop(var, None)
    try:
        return int(value) if value else None
    except ValueError:
        return None


def cap_of(env=os.environ) -> int:
    """In a runner: the cap its starter handed on (1 when it is missing or not a number)."""
    value = str(env.get(CAP_VAR) or "").strip()
    return max(1, int(value)) if value.isdigit() else 1


def others_wait(rows: list, experiment_id: int) -> bool:
    """Whether an older experiment than `experiment_id` waits for a slot (`rows`: the queued ones). One of a
    coalesce key does not count: it may be waiting for its key's turn, and takes a slot only after that."""
    return any(r.id < experiment_id and waiting(r.state, r.pid) and alive(r.pid, r.pid_started) and not key_of(r.config)
               for r in rows)


def take_slot(root: Path, cap: int) -> int | None:
    """The descriptor of a free slot, now held (until it is closed or this process ends); None when all `cap` are held."""
    folder = root / "slots"
    folder.mkdir(exist_ok=True)
    for n in range(max(1, cap)):
        fd = os.open(folder / f"{n}.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            continue
        return fd
    return None


def waiting(state: Any, pid: int | None) -> bool:
    """Queued with its runner recorded: the runner waits for a slot (one being started has no pid yet)."""
    return getattr(state, "value", state) == "queued" and bool(pid)


def queued(cap: int) -> str:
    """What a queued experiment waits for, in one sentence."""
    return (f"Queued: at most {cap} local experiment{'s' if cap != 1 else ''} train at once (max_concurrent_experiments, "
            f"{CAP_VAR}); it starts when one ends, and can be killed or paused meanwhile.")

"""Sleep until something changes: the pipeline runner's wait between two looks, at no cost while nothing happens.

`Waker(folders).wait(timeout)` returns when a file directly in one of `folders` is written, made, moved or
removed (a commit writes the data store's SQLite log, `data/meta.db-wal`; a pipeline created, stopped or a job
restarted writes `pipelines/meta.db-wal`), when `poke()` is called (from another thread), or after `timeout`.

On Linux it blocks in poll(2) on an inotify descriptor (libc's inotify calls through ctypes: no library is
needed, and the process takes no CPU while it waits). Where inotify is missing or out of watches it compares
the folders' entries (name, size, mtime) once a second instead: a few stat calls, measured near zero.

A write is seen before it can be read: SQLite writes a commit's frames to its log (the event), syncs them, and
only then publishes the commit to readers. So after each change the waker wakes again a few times (AFTER_S:
50 ms to 4 s later) whatever happens, and a look that came too early is made again; then it sleeps until the
next change.
"""

from __future__ import annotations

import os
import select
from pathlib import Path

IN_MODIFY, IN_ATTRIB, IN_MOVED_FROM, IN_MOVED_TO = 0x2, 0x4, 0x40, 0x80
IN_CREATE, IN_DELETE, IN_DELETE_SELF, IN_MOVE_SELF = 0x100, 0x200, 0x400, 0x800
MASK = IN_MODIFY | IN_MOVED_FROM | IN_MOVED_TO | IN_CREATE | IN_DELETE | IN_DELETE_SELF | IN_MOVE_SELF
FALLBACK_S = 1.0  # how often the folders are compared where there is no inotify
AFTER_S = (0.05, 0.25, 1.0, 4.0)  # the looks again after a change (delays from the change, growing)


def _inotify(folders: list[Path]) -> int | None:
    """An inotify descriptor watching `folders` (non-blocking, closed on exec), or None."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        fd = libc.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC)
    except (OSError, AttributeError):
        return None
    if fd < 0:
        return None
    for folder in folders:
        if libc.inotify_add_watch(fd, os.fsencode(folder), MASK) < 0:
            os.close(fd)
            return None
    return fd


class Waker:
    def __init__(self, folders: list[Path]) -> None:
        self.folders = [Path(f) for f in folders]
        self.inotify = _inotify(self.folders)
        self._read, self._write = os.pipe()
        os.set_blocking(self._read, False)
        os.set_blocking(self._write, False)
        self._poll = select.poll()
        self._poll.register(self._read, select.POLLIN)
        if self.inotify is not None:
            self._poll.register(self.inotify, select.POLLIN)
        self._seen = self._signature()
        self._after: list[float] = []  # the monotonic times of the looks again still due

    @property
    def watching(self) -> bool:
        """Whether changes wake it at once (inotify), not at the next comparison."""
        return self.inotify is not None

    def poke(self) -> None:
        try:
            os.write(self._write, b".")
        except (BlockingIOError, OSError):  # full: a wake is pending already; closed: nobody waits
            pass

    def wait(self, timeout: float) -> bool:
        """Block until a change, a poke, a look again after a change, or `timeout` seconds; True unless the
        timeout passed with nothing."""
        import time

        end = time.monotonic() + timeout
        while True:
            now = time.monotonic()
            self._after = [t for t in self._after if t > now - 0.001]
            due = min([end, *self._after])
            step = max(0.0, due - now)
            if self.inotify is None:
                step = min(step, FALLBACK_S)
            events = self._poll.poll(int(step * 1000))
            now = time.monotonic()
            if events:
                self._drain()
                self._after = [now + d for d in AFTER_S]
                return True
            if self.inotify is None:
                seen = self._signature()
                if seen != self._seen:
                    self._seen = seen
                    self._after = [now + d for d in AFTER_S]
                    return True
            if self._after and min(self._after) <= now + 0.001:
                self._after.remove(min(self._after))
                return True
            if now >= end:
                return False

    def _drain(self) -> None:
        for fd in (self._read, self.inotify):
            if fd is None:
                continue
            try:
                while os.read(fd, 65536):
                    pass
            except (BlockingIOError, OSError):
                pass

    def _signature(self) -> tuple:
        found = []
        for folder in self.folders:
            try:
                with os.scandir(folder) as entries:
                    for e in entries:
                        try:
                            st = e.stat(follow_symlinks=False)
                        except OSError:
                            continue
                        found.append((str(folder), e.name, st.st_size, st.st_mtime_ns))
            except OSError:
                found.append((str(folder), None))
        return tuple(sorted(found, key=repr))

    def close(self) -> None:
        for fd in (self._read, self._write, self.inotify):
            if fd is not None:
                try:
                    os.close(fd)
                except OSError:
                    pass
        self.inotify = None


"""HTTP/1.1 over a Unix socket in the home's private folders: how dlptui talks to its own servers.

Every local server but a deployment's front door (Envoy's endpoint on 127.0.0.1) listens on a
Unix socket inside its deployment's folder, in the 0700 home: the model servers, Envoy's admin
interface. No other user and no web page can reach them, and no port can be taken first by
someone else. dlptui checks, too, that the server which answers is the one it started: the peer
of the connection (SO_PEERCRED, the process that listens) must belong to the process group it
recorded, and run as this user.

A socket's path may be longer than the kernel takes (107 bytes) when the home is deep: the
connection then goes through the folder's descriptor (`/proc/self/fd/N/name`), which is short.
"""

from __future__ import annotations

import http.client
import json
import os
import socket
import struct
from dataclasses import dataclass
from pathlib import Path

SUN_PATH_MAX = 107  # sizeof(sockaddr_un.sun_path) - 1 on Linux


class NotOurs(ConnectionError):
    """The socket answered, but not from the process dlptui started there."""


@dataclass(frozen=True)
class Reply:
    status_code: int
    content: bytes

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", errors="replace")

    def json(self):
        return json.loads(self.content)


def _connect(sock: socket.socket, path: Path) -> None:
    name = str(path)
    if len(name.encode()) <= SUN_PATH_MAX:
        sock.connect(name)
        return
    folder = os.open(path.parent, os.O_PATH | os.O_DIRECTORY)
    try:
        sock.connect(f"/proc/self/fd/{folder}/{path.name}")
    finally:
        os.close(folder)


def peer(sock: socket.socket) -> tuple[int, int]:
    """(pid, uid) of the process at the other end of a connected Unix socket."""
    pid, uid, _gid = struct.unpack("3i", sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i")))
    return pid, uid


def connect(path: Path, timeout: float, group: int | None = None) -> socket.socket:
    """A connected socket to the server listening on `path`; with `group`, only if that server runs as
    this user in process group `group` (NotOurs otherwise). OSError when nothing listens there."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.settimeout(timeout)
        _connect(sock, Path(path))
        if group is not None:
            pid, uid = peer(sock)
            try:
                same = uid == os.geteuid() and os.getpgid(pid) == group
            except ProcessLookupError:
                same = False
            if not same:
                raise NotOurs(f"{path} is answered by pid {pid}, which dlptui did not start there")
        return sock
    except BaseException:
        sock.close()
        raise


class _Connection(http.client.HTTPConnection):
    def __init__(self, path: Path, timeout: float, group: int | None) -> None:
        super().__init__("localhost", timeout=timeout)
        self._path, self._group = path, group

    def connect(self) -> None:
        self.sock = connect(self._path, self.timeout, self._group)


def request(path: Path, method: str, target: str, body: bytes | None = None, headers: dict | None = None,
            timeout: float = 2.0, group: int | None = None) -> Reply:
    """One request on a fresh connection; OSError (NotOurs among them) or http.client.HTTPException when it fails."""
    connection = _Connection(Path(path), timeout, group)
    try:
        connection.request(method, target, body=body, headers=headers or {})
        response = connection.getresponse()
        return Reply(response.status, response.read())
    finally:
        connection.close()


def get(path: Path, target: str, timeout: float = 2.0, group: int | None = None) -> Reply:
    return request(path, "GET", target, timeout=timeout, group=group)


ERRORS = (OSError, http.client.HTTPException)  # what a request to a private socket may raise

"""The file-system calls that make a write durable, for the blob store and its packs."""

from __future__ import annotations

import ctypes
import os
from pathlib import Path

def syncfs(folder: Path) -> bool:
    """Flush the filesystem holding `folder` in one call; False where the OS lacks syncfs."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        fn = libc.syncfs
    except (OSError, AttributeError):
        return False
    fd = os.open(folder, os.O_RDONLY)
    try:
        return fn(fd) == 0
    finally:
        os.close(fd)


def fsync_dir(folder: str) -> None:
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def remove(path: Path) -> int:
    try:
        path.unlink()
        return 1
    except FileNotFoundError:
        return 0

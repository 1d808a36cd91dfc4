"""The local profile: the whole platform on one machine, one module per port, state under `config.home`.

The home holds data, checkpoints and logs that may be private: it is created readable by its
owner alone (0700), and an existing one that others could read is narrowed to that.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from dlptui.errors import InvalidInput


def private_home(home: Path) -> Path:
    """`home`, made (with its parents) if missing, readable and writable by this user alone."""
    try:
        home.mkdir(mode=0o700, parents=True, exist_ok=True)
        info = home.stat()
        if info.st_uid == os.getuid() and stat.S_IMODE(info.st_mode) & 0o077:
            home.chmod(stat.S_IMODE(info.st_mode) & 0o700)
    except OSError as e:
        raise InvalidInput(f"The dlptui home {home} cannot be made ({e.strerror}); set DLPTUI_HOME to a folder you can write.") from None
    if not home.is_dir():
        raise InvalidInput(f"The dlptui home {home} is not a folder; set DLPTUI_HOME to a folder.")
    return home

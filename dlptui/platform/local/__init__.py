"""The local profile: the whole platform on one machine, one module per port, state under `config.home`.

The home holds data, checkpoints and logs that may be private, and code that runs (the trial's
copy, pipeline specs, model servers' records): it is created readable by its owner alone (0700),
and an existing one that others could only read is narrowed to that. One that belongs to another
user, or that another user could write to (group or others write bits), is refused in one sentence
saying what to do: whoever can write there could plant what dlptui then runs or serves.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from dlptui.errors import InvalidInput


def private_home(home: Path) -> Path:
    """`home`, made (with its parents) if missing, readable and writable by this user alone."""
    try:
        made = not home.exists()
        home.mkdir(mode=0o700, parents=True, exist_ok=True)
        if made:
            home.chmod(0o700)  # whatever the umask
        info = home.stat()
    except OSError as e:
        raise InvalidInput(f"The dlptui home {home} cannot be made ({e.strerror}); set DLPTUI_HOME to a folder you can write.") from None
    if not home.is_dir():
        raise InvalidInput(f"The dlptui home {home} is not a folder; set DLPTUI_HOME to a folder.")
    mode = stat.S_IMODE(info.st_mode)
    if info.st_uid != os.geteuid():
        raise InvalidInput(
            f"The dlptui home {home} belongs to another user (uid {info.st_uid}); set DLPTUI_HOME to a folder of your own, "
            f"or have it handed to you (`chown -R {os.geteuid()} {home}`) and run `chmod 700 {home}`."
        )
    if mode & 0o022:
        raise InvalidInput(
            f"The dlptui home {home} can be written by other users (mode {mode:o}); run `chmod 700 {home}` "
            "or set DLPTUI_HOME to a folder of your own."
        )
    if mode & 0o077:
        try:
            home.chmod(mode & 0o700)
        except OSError as e:
            raise InvalidInput(f"The dlptui home {home} cannot be made private ({e.strerror}); run `chmod 700 {home}`.") from None
    return home

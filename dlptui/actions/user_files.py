"""A file a person named on this machine (a policy, a pipeline spec, a labels file, an image), read whole with one
sentence for each way it cannot be:

    read_user_file("gate.toml", "policy file", give="give --gate a .toml or .yaml policy file")

    There is no policy file gate.toml; check the path.        NotFound (exit 3), or `missing` where a caller says so
    gate.toml is a folder; give --gate a .toml or .yaml ...    InvalidInput (exit 2)
    The policy file gate.toml cannot be read (Permission denied).                      InvalidInput (exit 2)

The path is named as the person gave it; `~` is expanded. `text=True` returns str (UTF-8: other bytes read as
"cannot be read (not UTF-8 text)"), `text=False` the bytes.
"""

from __future__ import annotations

from pathlib import Path

from dlptui.errors import InvalidInput, NotFound, PlatformError


def read_user_file(path: str | Path, what: str, *, give: str, missing_fix: str = "check the path",
                   missing: type[PlatformError] = NotFound, text: bool = True) -> str | bytes:
    """The file's content; `what` names its kind in the sentences ("spec file"), `give` says what to give instead
    of a folder, `missing_fix` what to do when there is no such file."""
    file = Path(path).expanduser()
    try:
        return file.read_text(encoding="utf-8") if text else file.read_bytes()
    except FileNotFoundError:
        raise missing(f"There is no {what} {path}; {missing_fix}.") from None
    except IsADirectoryError:
        raise InvalidInput(f"{path} is a folder; {give}.") from None
    except OSError as e:
        raise InvalidInput(f"The {what} {path} cannot be read ({e.strerror or e}).") from None
    except UnicodeDecodeError:
        raise InvalidInput(f"The {what} {path} cannot be read (not UTF-8 text).") from None

"""The references a user types, parsed in one place: `repo@ref`, `repo@ref:/path`, `model@version`.

Each parser returns plain values or raises InvalidInput with one sentence that shows the form.
"""

from __future__ import annotations

from dlptui.actions.defaults import DATA_BRANCH
from dlptui.errors import InvalidInput
from dlptui.platform.model import DataRef


def data_ref(text: str, default: str = DATA_BRANCH) -> tuple[str, str]:
    """"repo@ref" -> (repo, ref); "repo" -> (repo, default)."""
    repo, at, ref = text.partition("@")
    if not repo or (at and not ref):
        raise InvalidInput(f"{text!r} is not REPO or REPO@BRANCH_OR_COMMIT.")
    return repo, ref or default


def file_ref(text: str) -> tuple[str, str, str]:
    """"repo@ref:/path" -> (repo, ref, path)."""
    head, colon, path = text.partition(":")
    if not colon or not path:
        raise InvalidInput(f"{text!r} is not REPO[@REF]:PATH, for example dogs-and-cats@master:/train/cat.1.jpg.")
    return (*data_ref(head), path)


def training_data(text: str | None) -> DataRef | None:
    """`--data REPO@REF` of an experiment; None keeps the config's own data."""
    if text is None:
        return None
    repo, at, ref = text.partition("@")
    if not at or not repo or not ref:
        raise InvalidInput(f"--data {text!r} is not REPO@BRANCH_OR_COMMIT; give e.g. dogs-and-cats@master.")
    return DataRef(repo=repo, commit=ref)


def model_ref(text: str, default: str = "latest") -> tuple[str, str]:
    """"model@version|alias" -> (model, ref); "model" -> (model, default)."""
    model, _, ref = text.partition("@")
    if not model or text.endswith("@"):
        raise InvalidInput(f"{text!r} is not MODEL[@VERSION|@ALIAS]; write e.g. dogcat-model@production.")
    return model, ref or default

"""The checks every port's errors pass, whatever the profile."""

from __future__ import annotations

import pytest

from dlptui.errors import PlatformError

LEAKS = ("Traceback", "grpc", "StatusCode", "_InactiveRpcError", "ApiException", "HTTPConnectionPool", "urllib3")


def one_sentence(error: BaseException | pytest.ExceptionInfo, *names: str) -> str:
    """`error` is a PlatformError whose message is one line for a person: no newline, no traceback or
    client-library noise, ending in a full stop, and naming each of `names` (the thing asked for)."""
    if isinstance(error, pytest.ExceptionInfo):
        error = error.value
    assert isinstance(error, PlatformError), f"{type(error).__name__}: {error}"
    text = str(error)
    assert text and "\n" not in text, repr(text)
    assert text.endswith("."), repr(text)
    assert not any(leak in text for leak in LEAKS), repr(text)
    assert error.__cause__ is None and (error.__context__ is None or error.__suppress_context__), (
        f"{text!r} carries the library's exception with it"
    )
    for name in names:
        assert str(name) in text, f"{text!r} does not name {name!r}"
    return text

"""The audit history's "who" is the OS account of the process, not $USER, which anyone sets."""

from __future__ import annotations

import os
import pwd

from dlptui.platform.local.registry import current_user


def test_who_is_the_os_account_whatever_user_says(monkeypatch):
    monkeypatch.setenv("USER", "somebody-else")
    monkeypatch.setenv("LOGNAME", "somebody-else")
    assert current_user() == pwd.getpwuid(os.getuid()).pw_name != "somebody-else"


def test_an_account_without_a_name_is_its_uid(monkeypatch):
    def missing(uid):
        raise KeyError(uid)

    monkeypatch.setattr(pwd, "getpwuid", missing)
    assert current_user() == f"uid {os.getuid()}"

from pathlib import Path

import pytest

from dlptui.config import load_config
from dlptui.platform import Platform
from dlptui.errors import InvalidInput


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(text)
    return path


def test_default_profile_is_local_with_home_from_env(tmp_path):
    cfg = load_config(env={"DLPTUI_HOME": str(tmp_path / "h"), "XDG_CONFIG_HOME": str(tmp_path)})
    assert (cfg.profile, cfg.kind) == ("local", "local")
    assert cfg.home == tmp_path / "h"
    assert cfg.read_only is False


def test_env_wins_over_file(tmp_path):
    path = write(
        tmp_path,
        '[profiles.cluster]\ndet_master = "http://file:8080"\npachd_address = "grpc://file:30650"\n',
    )
    cfg = load_config(profile="cluster", path=path, env={"DET_MASTER": "http://env:8080"})
    assert cfg.kind == "cluster"
    assert cfg.cluster.det_master == "http://env:8080"
    assert cfg.cluster.pachd_address == "grpc://file:30650"


def test_keymap_and_read_only_from_file(tmp_path):
    path = write(tmp_path, 'read_only = true\n[keymap]\n"app.quit" = "ctrl+q"\n')
    cfg = load_config(path=path, env={})
    assert cfg.read_only is True
    assert cfg.keymap == {"app.quit": "ctrl+q"}


def test_secret_in_file_is_refused(tmp_path):
    path = write(tmp_path, '[profiles.cluster]\npassword = "hunter2"\n')
    with pytest.raises(InvalidInput, match="environment"):
        load_config(profile="cluster", path=path, env={})


def test_unknown_profile_and_bad_toml_are_one_sentence(tmp_path):
    with pytest.raises(InvalidInput, match="no profile named 'nope'"):
        load_config(profile="nope", path=tmp_path / "missing.toml", env={})
    with pytest.raises(InvalidInput, match="not valid TOML"):
        load_config(path=write(tmp_path, "profile = ["), env={})


def test_status_never_raises_and_names_every_part(config):
    services = Platform(config).status()
    from dlptui.platform import PARTS

    assert [s.part for s in services] == list(PARTS)
    assert {"cluster", "data", "training", "registry", "serving"} <= set(PARTS)
    assert all(s.detail or s.reachable for s in services)


@pytest.mark.parametrize(
    "text",
    [
        'token = "s3cr3t"\n',  # at the top
        '[profiles.other]\nkind = "cluster"\ndet_pass = "s3cr3t"\n',  # a profile that is not the active one
        '[profiles.cluster.extra]\npachd_token = "s3cr3t"\n',  # a table inside a profile
    ],
)
def test_a_secret_anywhere_in_the_file_is_refused(tmp_path, text):
    with pytest.raises(InvalidInput, match="holds a secret") as refused:
        load_config(path=write(tmp_path, text), env={})
    assert "s3cr3t" not in str(refused.value)  # the sentence names the key, never the value


@pytest.mark.parametrize(
    "setting, words",
    [
        ('timeout_s = "x"', "timeout_s takes a number of seconds above 0, not 'x'"),
        ("timeout_s = -1", "timeout_s takes a number of seconds above 0, not -1"),
        ('platform_namespaces = "seldon"', "platform_namespaces takes a list of names"),
        ("namespace = 3", "namespace takes a string, not 3"),
        ('allow_insecure_http = "yes"', "allow_insecure_http takes true or false"),
    ],
)
def test_a_setting_of_the_wrong_type_is_one_sentence(tmp_path, setting, words):
    path = write(tmp_path, f"[profiles.cluster]\n{setting}\n")
    with pytest.raises(InvalidInput) as wrong:
        load_config(profile="cluster", path=path, env={})
    assert words in str(wrong.value) and "\n" not in str(wrong.value)


def test_top_level_types_are_checked(tmp_path):
    with pytest.raises(InvalidInput, match="read_only .* must be true or false"):
        load_config(path=write(tmp_path, 'read_only = "no"\n'), env={})
    with pytest.raises(InvalidInput, match=r"\[keymap\]"):
        load_config(path=write(tmp_path, '[keymap]\n"app.quit" = 3\n'), env={})


def test_platform_namespaces_and_insecure_http_read_as_their_types(tmp_path):
    path = write(tmp_path, '[profiles.cluster]\nplatform_namespaces = ["a", "b"]\nallow_insecure_http = true\ntimeout_s = 2\n')
    cfg = load_config(profile="cluster", path=path, env={})
    assert cfg.cluster.platform_namespaces == ("a", "b") and cfg.cluster.allow_insecure_http is True
    assert cfg.timeout_s == 2.0


def test_the_serving_pods_credentials_secret_is_gone_and_says_so(tmp_path):
    """The serving pods hold no Determined credential any more: a profile naming the Secret they used to read is told
    what replaced it; storage_secret (read-only storage keys) reads as a name."""
    old = write(tmp_path, '[profiles.cluster]\nkind = "cluster"\ncredentials_secret = "dlptui-credentials"\n')
    with pytest.raises(InvalidInput) as caught:
        load_config(profile="cluster", path=old, env={})
    assert str(caught.value) == (
        "Profile 'cluster' sets credentials_secret, which dlptui no longer uses: the serving pods read checkpoints from "
        "storage and hold no Determined credential; remove it (storage_secret names a Secret of read-only storage "
        "credentials, where the pods have no workload identity)."
    )
    new = write(tmp_path, '[profiles.cluster]\nkind = "cluster"\nstorage_secret = "dlptui-storage-reader"\n')
    assert load_config(profile="cluster", path=new, env={}).cluster.storage_secret == "dlptui-storage-reader"
    assert load_config(profile="cluster", path=write(tmp_path, '[profiles.cluster]\nkind = "cluster"\n'), env={}).cluster.storage_secret is None


def test_max_concurrent_experiments_from_the_cores_the_file_and_the_environment(tmp_path, monkeypatch):
    from dlptui import config as config_module

    assert [config_module.default_max_concurrent(n) for n in (1, 2, 3, 4, 16)] == [1, 1, 1, 2, 8]
    monkeypatch.setattr(config_module.os, "cpu_count", lambda: 6)
    assert load_config(path=tmp_path / "none.toml", env={}).max_concurrent_experiments == 3
    path = write(tmp_path, "max_concurrent_experiments = 2\n")
    assert load_config(path=path, env={}).max_concurrent_experiments == 2
    assert load_config(path=path, env={"DLPTUI_MAX_CONCURRENT_EXPERIMENTS": "4"}).max_concurrent_experiments == 4
    with pytest.raises(InvalidInput) as caught:
        load_config(path=path, env={"DLPTUI_MAX_CONCURRENT_EXPERIMENTS": "two"})
    assert str(caught.value) == "DLPTUI_MAX_CONCURRENT_EXPERIMENTS takes a whole number of experiments, 1 or more, not 'two'."
    with pytest.raises(InvalidInput) as caught:
        load_config(path=write(tmp_path, "max_concurrent_experiments = 0\n"), env={})
    assert str(caught.value) == f"max_concurrent_experiments in {path} takes a whole number of experiments, 1 or more, not 0."

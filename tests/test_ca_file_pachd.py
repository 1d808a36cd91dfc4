"""pachd over TLS (`grpcs://`) with a real handshake: the pachd stand-in serves TLS with a certificate for 127.0.0.1
that a private CA made here signed, and the cluster profile trusts that CA only through `ca_file` (env
DLPTUI_CA_FILE), beside certifi's roots; an untrusted certificate is one sentence naming the setting."""

from __future__ import annotations

import pytest

from dlptui.config import load_config
from dlptui.errors import Unreachable
from dlptui.platform import Platform
from tests.contract.checks import one_sentence
from tests.standins.pachd import PachdStandin
from tests.test_ca_file import CA

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(scope="module")
def private_ca() -> CA:
    return CA("dlptui test private CA for pachd")


@pytest.fixture(scope="module")
def tls_pachd(private_ca, tmp_path_factory):
    server = PachdStandin(tls=private_ca.server_files(tmp_path_factory.mktemp("pachd-tls"))).start()
    yield server
    server.stop()


def platform(home, monkeypatch, address: str, ca_file=None, setting: str = "env") -> Platform:
    monkeypatch.delenv("PACHD_TOKEN", raising=False)
    monkeypatch.delenv("DLPTUI_CA_FILE", raising=False)
    monkeypatch.setenv("PACHD_ADDRESS", address)
    if ca_file is not None and setting == "env":
        monkeypatch.setenv("DLPTUI_CA_FILE", str(ca_file))
    path = home / "config.toml"
    profile = '[profiles.cluster]\nkind = "cluster"\n'
    if ca_file is not None and setting == "file":
        profile += f'ca_file = "{ca_file}"\n'
    path.write_text(profile)
    return Platform(load_config(profile="cluster", path=path))


@pytest.mark.parametrize("setting", ["env", "file"])
def test_grpcs_with_the_ca_file_completes_the_handshake_and_works(home, monkeypatch, tls_pachd, private_ca, tmp_path, setting):
    assert tls_pachd.address.startswith("grpcs://127.0.0.1:")
    p = platform(home, monkeypatch, tls_pachd.address, private_ca.write(tmp_path / "ca.pem"), setting)
    try:
        service = p.data.health()
        assert service.reachable and service.version == "2.12.2-standin", service.detail
        assert "dogs-and-cats" in [r.name for r in p.data.list_repos()]
        made = p.data.create_repo(f"over-tls-{setting}")
        assert p.data.put_files(made.name, "master", {"/a.txt": b"sealed"}).files == 1
        assert p.data.get_file(made.name, "master", "/a.txt") == b"sealed"
        assert p.pipelines.health().reachable
    finally:
        p.close()


def test_grpcs_without_the_ca_file_is_refused_in_the_handshake_with_one_sentence(home, monkeypatch, tls_pachd):
    p = platform(home, monkeypatch, tls_pachd.address)
    try:
        with pytest.raises(Unreachable) as e:
            p.data.list_repos()
        service = p.data.health()
    finally:
        p.close()
    address = tls_pachd.address.removeprefix("grpcs://")
    assert str(e.value) == (
        f"pachd at {address} presented a TLS certificate that is not trusted here (unable to get local issuer "
        "certificate); if a private CA signed it, set ca_file (or DLPTUI_CA_FILE) in the cluster profile to that "
        "CA's PEM file."
    )
    one_sentence(e.value, "ca_file")
    assert not service.reachable and service.detail == str(e.value)


def test_another_cas_file_does_not_make_the_certificate_trusted(home, monkeypatch, tls_pachd, tmp_path):
    p = platform(home, monkeypatch, tls_pachd.address, CA("a CA that signed nothing here").write(tmp_path / "other.pem"))
    try:
        with pytest.raises(Unreachable) as e:
            p.data.list_repos()
    finally:
        p.close()
    assert "presented a TLS certificate that is not trusted here" in one_sentence(e.value)


def test_plain_grpc_to_a_tls_pachd_is_unreachable_not_a_traceback(home, monkeypatch, tls_pachd, private_ca, tmp_path):
    plain = tls_pachd.address.replace("grpcs://", "grpc://")
    p = platform(home, monkeypatch, plain, private_ca.write(tmp_path / "ca.pem"))
    try:
        with pytest.raises(Unreachable) as e:
            p.data.list_repos()
    finally:
        p.close()
    one_sentence(e.value, plain.removeprefix("grpc://"))

"""The cluster profile's `ca_file` (env DLPTUI_CA_FILE): a private CA trusted beyond the system roots by the
Seldon gateway client (a real HTTPS server on 127.0.0.1 whose certificate that CA signed), the Determined
SDK's Cert and python-pachyderm's root certificates; a missing or useless file is one sentence."""

from __future__ import annotations

import datetime
import ipaddress
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from dlptui.config import load_config
from dlptui.errors import InvalidInput, NotFound, Unreachable
from dlptui.platform.cluster.ca_file import read_ca_file
from tests.fixtures.serving import image_bytes
from tests.standins.gateway import GatewayStandin

TOKEN = "5e" * 20
JPEG = image_bytes()  # what the model behind the gateway reads; other bytes it refuses (400)


# --- a private CA and a server certificate for 127.0.0.1 -------------------------------------------


class CA:
    """A CA (its certificate as PEM in `pem`), able to sign a server certificate for 127.0.0.1."""

    def __init__(self, name: str) -> None:
        self.key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        now = datetime.datetime.now(datetime.timezone.utc)
        self.cert = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(subject)
            .public_key(self.key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True, content_commitment=False,
                                         key_encipherment=False, data_encipherment=False, key_agreement=False,
                                         encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(self.key.public_key()), critical=False)
            .sign(self.key, hashes.SHA256())
        )
        self.pem = self.cert.public_bytes(serialization.Encoding.PEM).decode("ascii")

    def write(self, path: Path) -> Path:
        path.write_text(self.pem)
        return path

    def server_files(self, folder: Path) -> tuple[Path, Path]:
        """(certificate, key) files of a server on 127.0.0.1, signed by this CA."""
        key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.timezone.utc)
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
            .issuer_name(self.cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=30))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()), critical=False)
            .sign(self.key, hashes.SHA256())
        )
        folder.mkdir(parents=True, exist_ok=True)
        cert_file, key_file = folder / "tls.crt", folder / "tls.key"
        cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                               serialization.NoEncryption()))
        return cert_file, key_file


@pytest.fixture(scope="module")
def private_ca() -> CA:
    return CA("dlptui test private CA")


@pytest.fixture
def ca_file(private_ca, tmp_path) -> Path:
    return private_ca.write(tmp_path / "cluster-ca.pem")


@pytest.fixture
def gateway(private_ca, tmp_path):
    """The Seldon gateway over HTTPS on 127.0.0.1, its certificate signed by the private CA."""
    g = GatewayStandin(TOKEN, tls=private_ca.server_files(tmp_path / "gateway")).start()
    yield g
    g.stop()


def cluster(tmp_path: Path, text: str = "", env: dict | None = None):
    path = tmp_path / "config.toml"
    path.write_text(f'[profiles.cluster]\nkind = "cluster"\n{text}')
    return load_config(profile="cluster", path=path, env={"DLPTUI_HOME": str(tmp_path / "home"), **(env or {})})


# --- the setting -----------------------------------------------------------------------------------


def test_ca_file_is_a_profile_setting_and_the_environment_wins(tmp_path):
    assert cluster(tmp_path).cluster.ca_file is None
    assert cluster(tmp_path, 'ca_file = "~/ca/file.pem"\n').cluster.ca_file == "~/ca/file.pem"
    env = {"DLPTUI_CA_FILE": "/etc/dlptui/env-ca.pem"}
    assert cluster(tmp_path, 'ca_file = "~/ca/file.pem"\n', env).cluster.ca_file == "/etc/dlptui/env-ca.pem"
    assert cluster(tmp_path, "", env).cluster.ca_file == "/etc/dlptui/env-ca.pem"
    with pytest.raises(InvalidInput) as wrong:
        cluster(tmp_path, "ca_file = 3\n")
    assert str(wrong.value) == "Profile 'cluster': ca_file takes a string, not 3."


def test_a_missing_ca_file_is_one_sentence_and_a_part_reports_it(tmp_path, monkeypatch):
    missing = tmp_path / "nowhere" / "ca.pem"
    config = cluster(tmp_path, "", {"DLPTUI_CA_FILE": str(missing), "PACHD_ADDRESS": "grpcs://127.0.0.1:1"})
    with pytest.raises(NotFound) as caught:
        read_ca_file(config.cluster.ca_file)
    sentence = (f"The CA file {missing} named by ca_file (or DLPTUI_CA_FILE) of the cluster profile does not exist; "
                "point it at the PEM file of the CA that signed the cluster's certificates, or unset it.")
    assert str(caught.value) == sentence
    from dlptui.platform.cluster.pachyderm_connection import Pachd

    monkeypatch.delenv("PACHD_TOKEN", raising=False)
    service = Pachd(config).health()  # the part's state carries the sentence; nothing raises
    assert (service.reachable, service.detail) == (False, sentence)


def test_a_file_without_a_pem_certificate_is_one_sentence(tmp_path, private_ca):
    key = private_ca.key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption())
    der = private_ca.cert.public_bytes(serialization.Encoding.DER)
    broken = "-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydGlmaWNhdGU=\n-----END CERTIFICATE-----\n"
    for name, content in [("key.pem", key), ("ca.der", der), ("broken.pem", broken.encode()), ("empty.pem", b"")]:
        path = tmp_path / name
        path.write_bytes(content)
        with pytest.raises(InvalidInput) as caught:
            read_ca_file(str(path))
        assert str(caught.value) == (
            f"The CA file {path} named by ca_file (or DLPTUI_CA_FILE) of the cluster profile holds no readable PEM certificate; "
            "it takes the CA's certificate as text between -----BEGIN CERTIFICATE----- and -----END CERTIFICATE-----."
        )
    with pytest.raises(InvalidInput, match=r"cannot be read \(Is a directory\); make it a readable PEM file\.$"):
        read_ca_file(str(tmp_path))


def test_a_bundle_keeps_its_certificates_and_drops_the_rest(tmp_path, private_ca):
    other = CA("another CA")
    path = tmp_path / "bundle.pem"
    path.write_text(f"# the cluster's CA, Zürich\n{private_ca.pem}subject=CN = another CA\n{other.pem}", encoding="utf-8")
    assert read_ca_file(str(path)) == private_ca.pem + other.pem
    assert read_ca_file(None) is None and read_ca_file("") is None


# --- the Seldon gateway client: real HTTPS ------------------------------------------------------------


def serving(config):
    from dlptui.platform.cluster.seldon_serving import SeldonServing

    return SeldonServing(config)


def test_the_gateway_client_trusts_the_private_ca_only_with_ca_file(tmp_path, ca_file, gateway, monkeypatch):
    monkeypatch.setenv("DLPTUI_SERVING_TOKEN", TOKEN)  # the token from the environment: no Kubernetes Secret read
    plain = serving(cluster(tmp_path, "", {"DLPTUI_ISTIO_INGRESS": gateway.url}))
    try:
        with pytest.raises(Unreachable) as caught:
            plain.client.predict(gateway.endpoint, JPEG, "a.jpg")
    finally:
        plain.close()
    assert str(caught.value) == (
        f"The prediction endpoint {gateway.endpoint} presented a TLS certificate that is not trusted here "
        "(unable to get local issuer certificate); if a private CA signed it, set ca_file (or DLPTUI_CA_FILE) "
        "in the cluster profile to that CA's PEM file."
    )
    assert gateway.seen == []  # refused in the handshake: the token never left this machine

    trusting = serving(cluster(tmp_path, "", {"DLPTUI_ISTIO_INGRESS": gateway.url, "DLPTUI_CA_FILE": str(ca_file)}))
    try:
        prediction = trusting.client.predict(gateway.endpoint, JPEG, "a.jpg")
    finally:
        trusting.close()
    assert (prediction.label, prediction.version, prediction.error) == ("cat", 1, None)
    assert gateway.seen == [TOKEN]


def test_with_ca_file_the_system_roots_are_still_trusted(tmp_path, ca_file, gateway, monkeypatch):
    """A second server whose CA is in the system roots (OpenSSL's default file, SSL_CERT_FILE) is trusted beside ca_file's."""
    system_ca = CA("a CA among the system roots")
    public = GatewayStandin(TOKEN, tls=system_ca.server_files(tmp_path / "public")).start()
    try:
        monkeypatch.setenv("SSL_CERT_FILE", str(system_ca.write(tmp_path / "system-roots.pem")))
        monkeypatch.setenv("DLPTUI_SERVING_TOKEN", TOKEN)
        part = serving(cluster(tmp_path, f'ca_file = "{ca_file}"\n'))
        try:
            assert part.client.predict(public.endpoint, JPEG).label == "cat"
            assert part.client.predict(gateway.endpoint, JPEG).label == "cat"
        finally:
            part.close()
        assert (public.seen, gateway.seen) == ([TOKEN], [TOKEN])
    finally:
        public.stop()


# --- Determined and pachd: what reaches the SDK ----------------------------------------------------


@pytest.fixture
def det_certs(monkeypatch) -> list[dict]:
    """The keyword arguments of every certs.Cert the code builds (the real one is built); default_load may not run."""
    from determined.common.api import certs

    real, calls = certs.Cert, []

    def recording(*args, **kwargs):
        calls.append(kwargs)
        return real(*args, **kwargs)

    def no_default(*args, **kwargs):
        raise AssertionError("with ca_file set, the SDK's default_load is not used")

    monkeypatch.setattr(certs, "Cert", recording)
    monkeypatch.setattr(certs, "default_load", no_default)
    for var in ("DET_MASTER_CERT_NAME", "DET_PASS"):
        monkeypatch.delenv(var, raising=False)
    return calls


def test_the_determined_probe_and_login_trust_the_ca_file(tmp_path, ca_file, private_ca, det_certs, monkeypatch):
    import requests
    from determined.common import api

    from dlptui.platform.cluster.determined_connection import Master

    asked = []

    class Unauth:
        def __init__(self, master, cert, max_retries=None):
            asked.append(cert)

        def get(self, *args, **kwargs):
            raise requests.exceptions.ConnectionError("no master here")

    monkeypatch.setattr(api, "UnauthSession", Unauth)
    monkeypatch.setenv("DET_TOKEN", "a-token")  # login takes the token: no request
    master = Master(cluster(tmp_path, f'det_master = "https://det.example:8443"\nca_file = "{ca_file}"\n'))
    with pytest.raises(Unreachable):
        master.probe()
    session = master.session()
    assert [c["cert_pem"] for c in det_certs] == [private_ca.pem, private_ca.pem]
    for cert in (asked[0], session.cert):
        assert Path(cert.bundle).read_text().endswith(private_ca.pem)  # certifi's roots, then the private CA


def test_the_determined_cert_name_still_applies_with_ca_file(tmp_path, ca_file, det_certs, monkeypatch):
    from dlptui.platform.cluster.determined_connection import Master

    monkeypatch.setenv("DET_TOKEN", "a-token")
    monkeypatch.setenv("DET_MASTER_CERT_NAME", "determined-master")
    master = Master(cluster(tmp_path, f'det_master = "https://10.0.0.5:8443"\nca_file = "{ca_file}"\n'))
    assert master.session().cert.name == "determined-master"


def test_a_bad_ca_file_is_the_determined_parts_sentence(tmp_path, monkeypatch):
    from dlptui.platform.cluster.determined_connection import Master

    (tmp_path / "not-a-ca.pem").write_text("hello\n")
    master = Master(cluster(tmp_path, f'det_master = "https://det.example:8443"\nca_file = "{tmp_path / "not-a-ca.pem"}"\n'))
    service = master.health("training")
    assert not service.reachable and service.detail.startswith(f"The CA file {tmp_path / 'not-a-ca.pem'} named by ca_file")


def test_pachd_over_tls_gets_the_ca_file_beside_certifis_roots(tmp_path, ca_file, private_ca, monkeypatch):
    import certifi
    import python_pachyderm

    from dlptui.platform.cluster.pachyderm_connection import Pachd

    monkeypatch.delenv("PACHD_TOKEN", raising=False)
    real = python_pachyderm.Client.new_from_pachd_address
    passed = []

    def recording(address, **kwargs):
        passed.append(kwargs)
        return real(address, **kwargs)  # the real client: it checks the PEM header and opens no connection yet

    monkeypatch.setattr(python_pachyderm.Client, "new_from_pachd_address", recording)
    client = Pachd(cluster(tmp_path, f'pachd_address = "grpcs://127.0.0.1:30650"\nca_file = "{ca_file}"\n'))._new_client()
    expected = private_ca.pem.encode() + b"\n" + Path(certifi.where()).read_bytes()
    assert passed[0]["root_certs"] == expected and client.root_certs == expected


def test_pachd_over_plain_grpc_stays_plain_with_ca_file(tmp_path, ca_file, monkeypatch):
    from dlptui.platform.cluster.pachyderm_connection import Pachd

    monkeypatch.delenv("PACHD_TOKEN", raising=False)
    client = Pachd(cluster(tmp_path, f'pachd_address = "grpc://127.0.0.1:30650"\nca_file = "{ca_file}"\n'))._new_client()
    assert client.root_certs is None  # root certificates would have turned grpc:// into TLS

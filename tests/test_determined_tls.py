"""The Determined parts over https:// with a real TLS handshake: the master stand-in serves HTTPS with a
certificate for 127.0.0.1 signed by a private CA made here; `ca_file` (DLPTUI_CA_FILE) is what makes it trusted."""

from __future__ import annotations

import pytest

from dlptui.config import load_config
from dlptui.errors import Unreachable
from dlptui.platform.cluster.determined_training import DeterminedRegistry, DeterminedTraining
from tests.contract.checks import one_sentence
from tests.helpers import run_cluster_status
from tests.standins.det_master import DetMasterStandin
from tests.standins.det_master_state import PASSWORD, USER
from tests.test_ca_file import CA

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(scope="module")
def private_ca() -> CA:
    return CA("dlptui test CA of the Determined master")


@pytest.fixture
def https_master(private_ca, tmp_path):
    server = DetMasterStandin(tls=private_ca.server_files(tmp_path / "master-tls")).start()
    yield server
    server.stop()


@pytest.fixture
def env(home, monkeypatch, https_master):
    monkeypatch.setenv("DET_MASTER", https_master.url)
    monkeypatch.setenv("DET_USER", USER)
    monkeypatch.setenv("DET_PASS", PASSWORD)
    for var in ("DET_TOKEN", "DLPTUI_CA_FILE", "DET_MASTER_CERT_FILE", "DET_MASTER_CERT_NAME", "SSL_CERT_FILE"):
        monkeypatch.delenv(var, raising=False)
    return monkeypatch


def test_an_untrusted_master_is_one_sentence_and_no_password_is_sent(env, https_master):
    assert https_master.url.startswith("https://127.0.0.1:")
    training = DeterminedTraining(load_config(profile="cluster"))
    with pytest.raises(Unreachable) as refused:
        training.list_experiments()
    assert one_sentence(refused) == (
        f"The Determined master at {https_master.url} presented a TLS certificate that is not trusted here "
        "(unable to get local issuer certificate); if a private CA signed it, set ca_file (or DLPTUI_CA_FILE) "
        "in the cluster profile to that CA's PEM file."
    )
    assert https_master.state.requests == []  # refused in the handshake: nothing, no login, reached the master
    service = training.health()
    assert not service.reachable and "not trusted here" in service.detail


def test_the_ca_file_from_the_environment_makes_the_handshake_succeed(env, https_master, private_ca, tmp_path):
    env.setenv("DLPTUI_CA_FILE", str(private_ca.write(tmp_path / "ca.pem")))
    config = load_config(profile="cluster")
    assert [e.id for e in DeterminedTraining(config).list_experiments()] == ["1"]
    assert DeterminedRegistry(config).get_model("dogcat-model").versions == 1
    service = DeterminedTraining(config).health()
    assert (service.reachable, service.version, service.endpoint) == (True, "0.38.1-standin", https_master.url)
    assert ("POST", "/api/v1/auth/login") in [(m, p) for m, p, _ in https_master.state.requests]


def test_the_ca_file_of_the_profile_and_another_cas_certificate(env, https_master, private_ca, tmp_path):
    profile = tmp_path / "config.toml"
    profile.write_text(f'[profiles.cluster]\nkind = "cluster"\nca_file = "{private_ca.write(tmp_path / "ca.pem")}"\n')
    env.setenv("DLPTUI_CONFIG", str(profile))
    assert [e.id for e in DeterminedTraining(load_config(profile="cluster")).list_experiments()] == ["1"]
    env.setenv("DLPTUI_CA_FILE", str(CA("some other CA").write(tmp_path / "other.pem")))  # the environment wins
    with pytest.raises(Unreachable, match="presented a TLS certificate that is not trusted here"):
        DeterminedTraining(load_config(profile="cluster")).list_experiments()


def test_dlptui_status_over_https_as_a_user_runs_it(home, https_master, private_ca, tmp_path):
    ca = str(private_ca.write(tmp_path / "ca.pem"))
    code, parts, stderr = run_cluster_status(home, DET_MASTER=https_master.url, DET_PASS=PASSWORD, DLPTUI_CA_FILE=ca)
    assert parts["training"]["reachable"] and parts["registry"]["reachable"], parts
    assert parts["training"]["version"] == "0.38.1-standin" and "Traceback" not in stderr
    code, parts, stderr = run_cluster_status(home, DET_MASTER=https_master.url, DET_PASS=PASSWORD)
    assert code == 5 and "not trusted here" in parts["training"]["detail"] and "Traceback" not in stderr

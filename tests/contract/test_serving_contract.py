"""ports.Serving, once for both profiles, for what needs no model server: the local deployments folder
and SeldonDeployments on the real kube-apiserver. (Deployments that serve are tested per profile in
test_serving.py and test_seldon.py.)"""

from __future__ import annotations

import pytest

from dlptui.errors import InvalidInput, NotFound
from dlptui.platform.model import ModelVersion, Service
from tests.contract.checks import one_sentence

pytestmark = pytest.mark.timeout(60)


def version(n: int = 1) -> ModelVersion:
    return ModelVersion(model="dogcat-model", version=n, checkpoint_uuid=f"ckpt-{n}", created=0.0,
                        checkpoint_location="/nowhere/checkpoint")


def test_an_unknown_deployment_is_not_found_everywhere(serving, fresh_name):
    ghost = fresh_name("ghost")
    for call in (
        lambda: serving.get_deployment(ghost),
        lambda: serving.logs(ghost),
        lambda: serving.predict(ghost, b"\xff\xd8 not much of a jpeg"),
        lambda: serving.update(ghost, version(2)),
        lambda: serving.set_canary(ghost, version(2), 20),
        lambda: serving.set_canary(ghost, None, 0),
        lambda: serving.undeploy(ghost),
    ):
        with pytest.raises(NotFound) as info:
            call()
        one_sentence(info, ghost)
    assert ghost not in [d.name for d in serving.list_deployments()]


def test_list_deployments_is_sorted_by_name(serving):
    names = [d.name for d in serving.list_deployments()]
    assert names == sorted(names)


@pytest.mark.parametrize("bad", ["bad name!", "", "-dash-first", "x" * 64, "Dogcat_Deploy", "dot.ted"])
def test_a_deployment_name_outside_the_kubernetes_rule_is_invalid_and_deploys_nothing(serving, bad):
    with pytest.raises(InvalidInput) as info:
        serving.deploy(bad, version())
    one_sentence(info)
    assert bad not in [d.name for d in serving.list_deployments()]


@pytest.mark.parametrize("traffic", [0, 100, 150, -5, True, 12.5])
def test_a_canary_takes_between_one_and_99_percent_checked_before_anything_else(serving, fresh_name, traffic):
    with pytest.raises(InvalidInput) as info:
        serving.set_canary(fresh_name("ghost"), version(2), traffic)
    one_sentence(info, str(traffic))


def test_health_is_a_reachable_service_of_the_serving_part(serving):
    service = serving.health()
    assert isinstance(service, Service)
    assert (service.part, service.reachable) == ("serving", True), service.detail

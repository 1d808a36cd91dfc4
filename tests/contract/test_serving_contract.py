"""ports.Serving, once for both profiles: the local deployments (their real model servers behind Envoy, so those
tests are slow locally) and SeldonDeployments on the real kube-apiserver, predictions through the Istio gateway
stand-in (tests/standins/gateway.py), whose model checks a request as the project's model server does."""

from __future__ import annotations

import pytest

from dlptui.errors import Conflict, InvalidInput, NotAvailable, NotFound, Unreachable
from dlptui.platform.model import CheckpointStorage, Deployment, DeploymentState, ModelVersion, Service
from tests.contract.checks import one_sentence
from tests.fixtures.serving import image_bytes

NOT_AN_IMAGE = b"these are notes, not an image"
# the model server's refusal (serving/image_request.py speaks of the request's binData) as the adapters say it: of the file
REFUSED = "notes.txt is not an image the model reads (JPEG or PNG); give a photo as a .jpg or .png file."

# a safety net against a hang, not a measure of speed: locally a test starts up to four model servers one after
# another (20 s on an idle two-core machine), and one start may take the 240 s of backends.START_TIMEOUT_S
pytestmark = pytest.mark.timeout(600)


def version(n: int = 1) -> ModelVersion:
    return ModelVersion(model="dogcat-model", version=n, checkpoint_uuid=f"ckpt-{n}", created=0.0,
                        checkpoint_location="/nowhere/checkpoint",
                        checkpoint_storage=CheckpointStorage("gcs", f"ckpt-{n}", bucket="dlp-checkpoints"))


@pytest.fixture
def versions(profile, request) -> list[ModelVersion]:
    """Two versions to serve: locally the tiny model's checkpoints (a real model server starts), on the
    cluster any (the SeldonDeployment object is all the API server holds)."""
    if profile == "cluster":
        return [version(1), version(2)]
    from tests.fixtures.serving import version_of

    return [version_of(folder, n) for n, folder in enumerate(request.getfixturevalue("tiny_checkpoints"), start=1)]


def test_deploy_list_update_canary_undeploy_round_trip(serving, versions, fresh_name):
    name, before = fresh_name("deploy"), fresh_name("aaa")  # `before` sorts first
    v1, v2 = versions
    created = serving.deploy(name, v1)
    try:
        assert isinstance(created, Deployment)
        assert (created.name, created.model, created.version, created.canary_version) == (name, "dogcat-model", 1, None)
        assert created.state in (DeploymentState.STARTING, DeploymentState.AVAILABLE)
        serving.deploy(before, v2)
        try:
            mine = [d.name for d in serving.list_deployments() if d.name in (name, before)]
            assert mine == [before, name]  # by name, not in the order deployed
        finally:
            serving.undeploy(before)
        assert name in [d.name for d in serving.list_deployments()]
        assert (serving.get_deployment(name).name, serving.get_deployment(name).version) == (name, 1)

        with pytest.raises(Conflict) as info:
            serving.deploy(name, v2)
        one_sentence(info, name)
        assert serving.get_deployment(name).version == 1

        with pytest.raises(InvalidInput) as info:  # a canary of the version it serves
            serving.set_canary(name, v1, 20)
        one_sentence(info, name)

        canary = serving.set_canary(name, v2, 20)
        assert (canary.version, canary.canary_version, canary.canary_traffic) == (1, 2, 20)
        removed = serving.set_canary(name, None, 0)
        assert (removed.version, removed.canary_version, removed.canary_traffic) == (1, None, 0)
        again = serving.set_canary(name, None, 0)  # removing no canary changes nothing
        assert (again.version, again.canary_version) == (1, None)

        updated = serving.update(name, v2)
        assert (updated.name, updated.version, updated.canary_version) == (name, 2, None)
        assert serving.get_deployment(name).version == 2
    finally:
        serving.undeploy(name)
    assert name not in [d.name for d in serving.list_deployments()]
    with pytest.raises(NotFound) as info:
        serving.get_deployment(name)
    one_sentence(info, name)
    with pytest.raises(NotFound) as info:
        serving.undeploy(name)
    one_sentence(info, name)


def test_shadow_promote_rollback_and_history(serving, versions, fresh_name):
    name = fresh_name("roll")
    v1, v2 = versions
    serving.deploy(name, v1)
    try:
        with pytest.raises(InvalidInput) as info:  # nothing served before
            serving.rollback(name)
        one_sentence(info, name)
        with pytest.raises(InvalidInput) as info:  # a shadow of the version it serves
            serving.set_shadow(name, v1)
        one_sentence(info, name)

        shadowed = serving.set_shadow(name, v2)
        assert (shadowed.version, shadowed.shadow_version, shadowed.canary_version) == (1, 2, None)
        figures = serving.versions(name)
        assert [(f.role, f.version, f.traffic) for f in figures] == [("primary", 1, 100), ("shadow", 2, 100)]
        with pytest.raises(InvalidInput) as info:  # a version holds one role: the shadow cannot be the canary too
            serving.set_canary(name, v2, 25)
        one_sentence(info, name)
        assert "one role" in str(info.value)
        assert serving.set_shadow(name, None).shadow_version is None

        serving.set_canary(name, v2, 25)
        assert [(f.role, f.version, f.traffic) for f in serving.versions(name)] == [("primary", 1, 75), ("canary", 2, 25)]
        with pytest.raises(InvalidInput) as info:  # nor the canary the shadow
            serving.set_shadow(name, v2)
        one_sentence(info, name)
        promoted = serving.update(name, v2)  # all traffic to the canary's version: a promotion
        assert (promoted.version, promoted.canary_version, promoted.shadow_version) == (2, None, None)
        assert [(f.role, f.version) for f in serving.versions(name)] == [("primary", 2)]

        back = serving.rollback(name)  # the whole routing that served before the promotion: v1 with its canary
        assert (back.version, back.canary_version, back.canary_traffic, back.shadow_version) == (1, 2, 25, None)
        assert [(f.role, f.version, f.traffic) for f in serving.versions(name)] == [("primary", 1, 75), ("canary", 2, 25)]
        history = serving.history(name)
        assert [(h.change, h.from_version, h.to_version, h.canary, h.shadow) for h in history] == [
            ("deployed", None, 1, None, None), ("shadow", 1, 1, None, 2), ("shadow removed", 1, 1, None, None),
            ("canary", 1, 1, 2, None), ("promoted", 1, 2, None, None), ("rolled back", 2, 1, 2, None)]
        assert history[-1].share == 25
        assert all(h.by and h.time > 0 and h.model == "dogcat-model" for h in history)
        import os
        import pwd

        assert {h.by for h in history} == {pwd.getpwuid(os.getuid()).pw_name}  # the OS account, not $USER
    finally:
        serving.undeploy(name)
    for call in (serving.rollback, serving.history, serving.versions):
        with pytest.raises(NotFound):
            call(name)


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


def test_a_deployment_remembers_the_alias_it_was_deployed_by(serving, versions, fresh_name):
    name = fresh_name("alias")
    v1, v2 = versions
    assert serving.deploy(name, v1, "production").alias == "production"
    try:
        assert serving.get_deployment(name).alias == "production"
        assert serving.update(name, v2).alias == "production"  # kept: the alias may name another version now
        assert serving.update(name, v1, "staging").alias == "staging"
        assert [d.alias for d in serving.list_deployments() if d.name == name] == ["staging"]
    finally:
        serving.undeploy(name)


def test_a_bad_image_is_a_prediction_carrying_the_models_sentence(serving, versions, fresh_name, serving_ready):
    name = fresh_name("bad")
    serving.deploy(name, versions[0])
    try:
        serving_ready(name)
        good = serving.predict(name, image_bytes(), "red.jpg")
        assert (good.image, good.error, good.version) == ("red.jpg", None, 1)
        assert set(good.probabilities) == {"cat", "dog"} and good.label in ("cat", "dog")
        bad = serving.predict(name, NOT_AN_IMAGE, "notes.txt")  # never raised: the prediction says what was wrong
        assert (bad.image, bad.label, bad.probabilities, bad.error) == ("notes.txt", None, {}, REFUSED)
        again = serving.predict(name, image_bytes(color=(20, 200, 20)), "green.jpg")  # it serves on
        assert again.error is None and again.label in ("cat", "dog")
    finally:
        serving.undeploy(name)


def test_a_deployment_that_is_not_serving_is_unreachable_naming_it(serving, versions, fresh_name, serving_ready,
                                                                    take_down):
    name = fresh_name("dead")
    serving.deploy(name, versions[0])
    try:
        serving_ready(name)
        assert serving.predict(name, image_bytes()).error is None
        take_down(name)  # locally its model server is killed; on the cluster its pods are gone
        with pytest.raises(Unreachable) as info:
            serving.predict(name, image_bytes())
        one_sentence(info, repr(name))
        assert name in [d.name for d in serving.list_deployments()]  # still there: to undeploy or deploy again
    finally:
        serving.undeploy(name)
    with pytest.raises(NotFound) as info:
        serving.predict(name, image_bytes())
    one_sentence(info, name)


def test_predictions_are_the_logged_requests_or_one_sentence_where_the_profile_keeps_none(
        serving, versions, fresh_name, serving_ready, profile):
    """Locally the model servers log every request (oldest first, `since` and `limit` apply); on the cluster Seldon's
    request logger sends them to `request_logger_url`, which dlptui does not read back: NotAvailable, saying so."""
    import time

    name, ghost = fresh_name("logged"), fresh_name("ghost")
    serving.deploy(name, versions[0])
    try:
        serving_ready(name)
        good = serving.predict(name, image_bytes(), "red.jpg")
        bad = serving.predict(name, NOT_AN_IMAGE, "notes.txt")
        assert bad.error == REFUSED
        if profile == "local":
            deadline = time.monotonic() + 30
            while len(logged := serving.predictions(name)) < 2:
                assert time.monotonic() < deadline, f"the prediction log holds {logged}"
                time.sleep(0.1)
            first, second = logged
            assert [(p.deployment, p.model, p.version, p.role) for p in logged] == [(name, "dogcat-model", 1, "primary")] * 2
            assert (first.status, first.label, first.probabilities) == (200, good.label, pytest.approx(good.probabilities))
            assert (second.status, second.label, second.probabilities) == (400, None, {})
            assert first.id < second.id and first.time <= second.time and first.input_bytes > second.input_bytes > 0
            assert serving.predictions(name, limit=1) == [second]
            assert serving.predictions(name, since=first.time) == [second]
        else:
            with pytest.raises(NotAvailable) as info:
                serving.predictions(name)
            one_sentence(info, "request_logger_url")
    finally:
        serving.undeploy(name)
    with pytest.raises(NotFound) as info:
        serving.predictions(ghost)
    one_sentence(info, ghost)


def test_feedback_is_recorded_against_the_prediction_or_one_sentence_where_the_profile_keeps_no_log(
        serving, versions, fresh_name, serving_ready, profile, gateway):
    """Locally the feedback goes through the deployment's Envoy to its model server, which records it in the
    prediction log (bad ids and labels refused first, nothing recorded); on the cluster it goes through the Istio
    gateway to Seldon's feedback endpoint, whose model server keeps no log: NotAvailable, saying so."""
    from dlptui.platform.model import Feedback

    name, ghost = fresh_name("truth"), fresh_name("ghost")
    with pytest.raises(NotFound) as info:
        serving.feedback(ghost, [Feedback("1", label="cat")])
    one_sentence(info, ghost)
    serving.deploy(name, versions[0])
    try:
        serving_ready(name)
        prediction = serving.predict(name, image_bytes(), "red.jpg")
        assert prediction.error is None and prediction.id, prediction
        with pytest.raises(InvalidInput) as info:
            serving.feedback(name, [Feedback(prediction.id)])
        one_sentence(info, "neither a label nor a reward")
        if profile == "local":
            with pytest.raises(InvalidInput) as info:
                serving.feedback(name, [Feedback(prediction.id, label="cat"), Feedback(prediction.id, label="horse")])
            one_sentence(info, "'horse'")
            with pytest.raises(NotFound) as info:
                serving.feedback(name, [Feedback("424242", label="cat")])
            one_sentence(info, "'424242'")
            assert [p.truth for p in serving.predictions(name)] == [None]  # nothing recorded half
            [recorded] = serving.feedback(name, [Feedback(prediction.id, label="dog", reward=1.0)])
            assert (str(recorded.id), recorded.truth, recorded.reward) == (prediction.id, "dog", 1.0)
            assert [(p.truth, p.reward) for p in serving.predictions(name)] == [("dog", 1.0)]
        else:
            with pytest.raises(NotAvailable) as info:
                serving.feedback(name, [Feedback(prediction.id, label="dog", reward=1.0)])
            one_sentence(info, "keeps no prediction log", name)
            [(path, message)] = gateway.feedback  # Seldon's feedback message reached the model through the gateway
            assert path.endswith(f"/{name}/api/v1.0/feedback")
            assert message["request"]["meta"]["puid"] == prediction.id
            assert (message["truth"], message["reward"]) == ({"jsonData": {"label": "dog"}}, 1.0)
    finally:
        serving.undeploy(name)


def test_comparisons_count_a_canary_since_it_started_or_say_why_not(serving, versions, fresh_name, serving_ready, profile):
    """What a canary's verdicts are judged on: locally both versions' numbers from the prediction log since the canary's
    history entry; on the cluster (no prometheus_url here) NotAvailable, naming it."""
    name = fresh_name("judged")
    serving.deploy(name, versions[0])
    try:
        serving_ready(name)
        assert serving.comparisons(name) == []  # neither canary nor shadow
        serving.set_canary(name, versions[1], 30)
        if profile == "local":
            [comparison] = serving.comparisons(name)
            [entry] = [h for h in serving.history(name) if h.change == "canary"]
            assert (comparison.kind, comparison.since, comparison.share) == ("canary", entry.time, 30)
            assert (comparison.primary.version, comparison.other.version, comparison.other.role) == (1, 2, "canary")
        else:
            with pytest.raises(NotAvailable) as info:
                serving.comparisons(name)
            one_sentence(info, "prometheus_url")
    finally:
        serving.undeploy(name)

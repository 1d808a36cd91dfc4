"""What the cluster profile does with ground truth and verdicts: SeldonServing's `feedback` and `comparisons`.

Feedback goes as Seldon's feedback message through the Istio gateway to the deployment's feedback endpoint
(Seldon's executor passes it to the model server, which keeps no prediction log on the cluster and answers 501:
one sentence). A canary's numbers since it started come from Seldon's executor metrics in Prometheus
(`prometheus_url`, seldon_metrics.arm); a shadow's agreement is not in those metrics (its comparison says so).
A mixin of SeldonServing: it uses its `get_deployment`, `history`, `client`, `config` and `namespace`.
"""

from __future__ import annotations

from dlptui.errors import NotAvailable, Unreachable
from dlptui.platform import deployment_policy as policy
from dlptui.platform import rules
from dlptui.platform.cluster.seldon_template import CANARY, MAIN
from dlptui.platform.cluster.seldon_token import TOKEN_ENV, check_gateway_transport, token_place
from dlptui.platform.model import ArmFigures, Comparison, Feedback, LoggedPrediction


class FeedbackAndVerdicts:
    def feedback(self, name: str, items: list[Feedback]) -> list[LoggedPrediction]:
        """Seldon's feedback for each item, through the Istio gateway to the deployment's feedback endpoint (the
        executor passes it to the model server). The cluster's model servers keep no prediction log, so they
        answer that they cannot record it (501): NotAvailable, in one sentence, at the first item. Where a model
        server did record it, nothing can be read back here: []."""
        deployment = self.get_deployment(name)
        for item in items:
            rules.check_feedback(name, item.prediction, item.label, item.reward)
        if not self.config.cluster.istio_ingress:
            raise NotAvailable("Feedback on the cluster goes through the Istio gateway; set istio_ingress in the cluster "
                               "profile (or DLPTUI_ISTIO_INGRESS) to its address.")
        check_gateway_transport(deployment.endpoint or self.config.cluster.istio_ingress)  # before the token is read
        from dlptui.platform.seldon_protocol import NotServing, Refused, feedback_body

        url = (deployment.endpoint or "").rsplit("/predictions", 1)[0] + "/feedback"
        for item in items:
            try:
                self.client.feedback(url, feedback_body(item.prediction, item.label, item.reward),
                                     f"Feedback for {name}#{item.prediction}")
            except NotServing as e:
                raise Unreachable(f"Deployment {name!r} is not serving: the Istio gateway answered {e.answer}; see its pods "
                                  f"with `dlptui deployment describe {name}`.") from None
            except Refused as e:
                self._drop_client()
                place = token_place(self.namespace, self.config.cluster.serving_token_secret)
                raise Refused(f"The Istio gateway refused the feedback ({e.status}): the serving token is missing or wrong; "
                              f"check {TOKEN_ENV} or the Secret {place}.", e.status) from None
            except NotAvailable:
                raise NotAvailable(f"The cluster keeps no prediction log to record feedback in: the model server of {name} "
                                   "answered that it keeps none, so labels are not kept and accuracy is not judged there.") from None
        return []

    def comparisons(self, name: str) -> list[Comparison]:
        """The canary's numbers beside the primary's since it started (the history annotation's entry), from Seldon's
        executor metrics in Prometheus (`prometheus_url`; without it, one sentence): requests, errors and latency
        histograms, no feedback. A shadow's answers are not paired with the primary's there: its comparison carries
        that sentence in `note`."""
        current = self.get_deployment(name)
        if current.canary_version is None and current.shadow_version is None:
            return []
        url = self.config.cluster.prometheus_url
        if not url:
            raise NotAvailable(
                f"The verdicts of {name}'s {'canary' if current.canary_version is not None else 'shadow'} are judged on "
                "Seldon's metrics in Prometheus, which the cluster profile does not name: set prometheus_url (or "
                "DLPTUI_PROMETHEUS_URL).")
        from dlptui.platform.cluster import seldon_metrics

        history = self.history(name)
        out = []
        if current.canary_version is not None:
            since = policy.started(history, "canary", current.canary_version, current.version) or 0.0
            arms = [seldon_metrics.arm(url, self.namespace, name, predictor, role, version, since, self.config.timeout_s)
                    for predictor, role, version in ((MAIN, "primary", current.version), (CANARY, "canary", current.canary_version))]
            out.append(Comparison("canary", since, *arms, share=current.canary_traffic))
        if current.shadow_version is not None:
            since = policy.started(history, "shadow", current.shadow_version, current.version) or 0.0
            out.append(Comparison("shadow", since, ArmFigures(current.version, "primary", 0, 0),
                                  ArmFigures(current.shadow_version, "shadow", 0, 0),
                                  note=f"The agreement of {name}'s shadow is not known on the cluster: Seldon's metrics do "
                                       "not pair its answers with the primary's."))
        return out

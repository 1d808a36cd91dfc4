"""Replay: a deployment's kept inputs sent to another version, offline, and what it would have answered.

    report = replay(platform, "dogcat-deploy", "dogcat-model@3", since=time.time() - 3600)
    report.lines()      # how many replayed, agreement with what was logged (with its interval), accuracy of both
    report.to_json()

The other version runs here, in this process (`dlptui.platform.local.checkpoint_model`, as explanations do): the
registry names its checkpoint folder, which must be on this machine; no model server is started and nothing is
sent to the deployment. The inputs are the images the deployment kept (`dlptui deployment keep-inputs`), one per
answered prediction (an image answered twice counts twice, computed once). Agreement is the share of those
predictions where the replayed version gives the label that was logged; where feedback told the truth, the accuracy
of the logged answers and of the replayed ones on the same inputs. Each rate comes with its interval, the exact
confidence sequence `dlptui.analysis.shadow_agreement` gives (valid however often one looks).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from dlptui import text
from dlptui.actions import refs
from dlptui.actions.explain import local_checkpoint
from dlptui.actions.kept_inputs import TURN_ON
from dlptui.analysis import Agreement, Counts, shadow_agreement
from dlptui.errors import InvalidInput, NotFound
from dlptui.platform.model import LoggedPrediction, ModelVersion

LIST_DIFFERENT = 50  # the ids a report names where the versions differ (the JSON names them all)


@dataclass(frozen=True)
class Replayed:
    prediction: LoggedPrediction  # as logged: the version that answered, its label, the truth where known
    label: str  # what the replayed version says
    probabilities: dict[str, float]


@dataclass(frozen=True)
class ReplayReport:
    deployment: str
    to: ModelVersion
    since: float | None
    replayed: tuple[Replayed, ...]
    agreement: Agreement  # of the replayed labels with the logged ones
    logged_accuracy: Agreement | None = None  # right answers among those with a truth: as logged ...
    replayed_accuracy: Agreement | None = None  # ... and as replayed
    different: tuple[int, ...] = field(default=())  # ids of the predictions where the labels differ

    @property
    def judged(self) -> int:
        return self.logged_accuracy.paired if self.logged_accuracy else 0

    def logged_versions(self) -> str:
        versions = sorted({r.prediction.version for r in self.replayed})
        return ", ".join(text.model_ref(self.replayed[0].prediction.model, v) for v in versions)

    def lines(self) -> list[str]:
        to = text.model_ref(self.to.model, self.to.version)
        window = f" since {text.timestamp(self.since)}" if self.since else ""
        out = [f"Replayed {text.plural(len(self.replayed), 'kept input')} of {self.deployment}{window} on {to} "
               f"(answered by {self.logged_versions()})."]
        a = self.agreement
        out.append(f"Agreement with the logged answers: {text.percent(a.rate)} ({a.agreed} of {a.paired}; "
                   f"{_level(a)} interval {text.percent(a.low)} to {text.percent(a.high)}).")
        if self.logged_accuracy and self.replayed_accuracy:
            out.append(f"Accuracy on the {text.plural(self.judged, 'input')} with feedback: as logged "
                       f"{_rate(self.logged_accuracy)}, replayed on {to} {_rate(self.replayed_accuracy)}.")
        else:
            out.append(f"No replayed input has feedback, so accuracy cannot be compared "
                       f"(`dlptui feedback {self.deployment}#ID --label LABEL` tells the truth).")
        if self.different:
            shown = ", ".join(f"#{i}" for i in self.different[:LIST_DIFFERENT])
            more = f" and {len(self.different) - LIST_DIFFERENT} more (--json lists all)" if len(self.different) > LIST_DIFFERENT else ""
            out.append(f"They differ on {text.plural(len(self.different), 'prediction')}: {shown}{more}.")
        else:
            out.append("They differ on no prediction.")
        return out

    def to_json(self) -> dict:
        def rate(a: Agreement | None) -> dict | None:
            return None if a is None else {"right": a.agreed, "of": a.paired, "rate": a.rate, "low": a.low, "high": a.high}

        return {
            "deployment": self.deployment, "to": {"model": self.to.model, "version": self.to.version},
            "since": self.since, "replayed": len(self.replayed),
            "agreement": {"agreed": self.agreement.agreed, "of": self.agreement.paired, "rate": self.agreement.rate,
                          "low": self.agreement.low, "high": self.agreement.high, "alpha": self.agreement.alpha},
            "accuracy": {"judged": self.judged, "logged": rate(self.logged_accuracy), "replayed": rate(self.replayed_accuracy)},
            "different": list(self.different),
            "predictions": [{"id": r.prediction.id, "version": r.prediction.version, "logged": r.prediction.label,
                             "replayed": r.label, "truth": r.prediction.truth} for r in self.replayed],
        }


def _level(a: Agreement) -> str:
    return f"{100 * (1 - a.alpha):.0f}%"


def _rate(a: Agreement) -> str:
    return f"{text.percent(a.rate)} ({a.agreed} right; {_level(a)} interval {text.percent(a.low)} to {text.percent(a.high)})"


def replay(platform, deployment: str, to: str, since: float | None = None, alpha: float = 0.05) -> ReplayReport:
    """Send the kept inputs of `deployment` (after `since`) to `to` (MODEL@VERSION or MODEL@ALIAS) here, offline."""
    platform.serving.get_deployment(deployment)  # an unknown deployment first
    model, ref = refs.model_ref(to, default="")
    if not ref:
        raise InvalidInput(f"--to {to!r} names no version; write MODEL@VERSION, e.g. {model}@2.")
    version = platform.registry.get_version(model, ref)
    kept = platform.serving.kept_predictions(deployment, since)
    if not kept:
        settings = platform.serving.kept_inputs(deployment)
        if not settings.on:
            raise NotFound(f"Deployment {deployment!r} keeps no inputs to replay; turn keeping on with "
                           f"`dlptui deployment keep-inputs {deployment} {TURN_ON}`, then replay what it answers from then on.")
        window = f" since {text.timestamp(since)}" if since else ""
        raise NotFound(f"Deployment {deployment!r} holds no kept input of an answered prediction{window}; "
                       "send it predictions, or replay over a longer --since.")
    folder = local_checkpoint(platform, version, "replay inputs on it")
    images: dict[str, bytes] = {}
    for logged in kept:
        if logged.image_sha256 not in images:
            images[logged.image_sha256] = platform.serving.kept_input(deployment, logged.id)
    from dlptui.platform.local import checkpoint_model

    order = list(images)
    answers = dict(zip(order, checkpoint_model.classify(
        folder, [(images[sha], f"the kept image {sha[:12]}") for sha in order], str(version))))
    replayed = tuple(Replayed(p, max(answers[p.image_sha256], key=answers[p.image_sha256].get), answers[p.image_sha256])
                     for p in kept)
    agreed = sum(r.label == r.prediction.label for r in replayed)
    judged = [r for r in replayed if r.prediction.truth is not None]
    logged_acc = replayed_acc = None
    if judged:
        logged_acc = shadow_agreement(Counts(sum(r.prediction.label == r.prediction.truth for r in judged), len(judged)), alpha)
        replayed_acc = shadow_agreement(Counts(sum(r.label == r.prediction.truth for r in judged), len(judged)), alpha)
    return ReplayReport(
        deployment, version, since, replayed, shadow_agreement(Counts(agreed, len(replayed)), alpha),
        logged_acc, replayed_acc, tuple(r.prediction.id for r in replayed if r.label != r.prediction.label))

"""Models, their versions and promotions as table rows and describe blocks; two versions compared."""

from __future__ import annotations

from dataclasses import dataclass

from dlptui import text
from dlptui.platform.metrics import accuracy, loss
from dlptui.platform.model import Model, ModelVersion, Promotion
from dlptui.render import Block, Column, describer, joined
from dlptui.render.training import metrics

MODEL_COLUMNS = [
    Column("name", "MODEL", lambda m: m.name),
    Column("versions", "VERSIONS", lambda m: m.versions),
    Column("staging", "STAGING", lambda m: text.version_tag(m.aliases.get("staging"))),
    Column("production", "PRODUCTION", lambda m: text.version_tag(m.aliases.get("production"))),
    Column("created", "CREATED", lambda m: text.timestamp(m.created)),
    Column("description", "DESCRIPTION", lambda m: m.description),
]

VERSION_COLUMNS = [
    Column("version", "VERSION", lambda v: text.version_tag(v.version)),
    Column("aliases", "ALIASES", lambda v: joined(v.aliases)),
    Column("accuracy", "ACCURACY", lambda v: text.metric("accuracy", accuracy(v.metrics))),
    Column("loss", "VAL LOSS", lambda v: text.metric("validation_loss", loss(v.metrics))),
    Column("checkpoint", "CHECKPOINT", lambda v: text.uuid(v.checkpoint_uuid)),
    Column("experiment", "EXPERIMENT", lambda v: v.experiment_id),
    Column("data", "DATA COMMIT", lambda v: text.data_ref(v.data_repo, v.data_commit)),
    Column("created", "CREATED", lambda v: text.timestamp(v.created)),
]

PROMOTION_COLUMNS = [
    Column("time", "TIME", lambda p: text.timestamp(p.time)),
    Column("alias", "ALIAS", lambda p: p.alias),
    Column("from", "FROM", lambda p: text.version_tag(p.from_version)),
    Column("to", "TO", lambda p: text.version_tag(p.to_version)),
    Column("who", "WHO", lambda p: p.who),
]


def version_choice(v: ModelVersion) -> str:
    """A version as one choice in a list: "v3  accuracy 97.3%  1a2b3c4d"."""
    return f"{text.version_tag(v.version)}  accuracy {text.metric('accuracy', accuracy(v.metrics))}  {text.uuid(v.checkpoint_uuid)}"


@describer(ModelVersion)
def describe_version(v: ModelVersion) -> Block:
    block = [
        ("version", text.model_ref(v.model, v.version)),
        ("aliases", joined(v.aliases)),
        ("metrics", metrics(v.metrics)),
        ("checkpoint", v.checkpoint_uuid),
        ("experiment", v.experiment_id or text.MISSING),
        ("data", text.data_ref(v.data_repo, v.data_commit)),
        ("registered", text.timestamp(v.created)),
        ("location", v.checkpoint_location or (v.checkpoint_storage.url if v.checkpoint_storage else text.MISSING)),
    ]
    if v.notes:
        block.append(("notes", v.notes))
    return block


@describer(Model)
def describe_model(m: Model) -> Block:
    return [("model", m.name), ("description", m.description or text.MISSING), ("versions", str(m.versions)),
            ("aliases", joined(f"{a} {text.version_tag(n)}" for a, n in sorted(m.aliases.items()))),
            ("created", text.timestamp(m.created))]


@describer(Promotion)
def describe_promotion(p: Promotion) -> Block:
    return [("model", p.model), ("alias", p.alias), ("from", text.version_tag(p.from_version)),
            ("to", text.version_tag(p.to_version)), ("by", p.who), ("time", text.timestamp(p.time))]


# --- two versions side by side -------------------------------------------------------------------


@dataclass(frozen=True)
class Compared:
    """One row of two versions compared: the older's value, the newer's, and the change (newer minus older)."""

    name: str
    old: str
    new: str
    change: str
    better: bool | None = None  # the newer is better (True), worse (False), or neither / not a metric (None)


def compare_versions(a: ModelVersion, b: ModelVersion) -> tuple[ModelVersion, ModelVersion, list[Compared], list[Compared]]:
    """(older, newer, a row per metric either has, a row per fact: checkpoint, experiment, data commit, aliases).
    The change is new minus old, in the metric's own unit, with the better direction named."""
    old, new = (a, b) if a.version <= b.version else (b, a)
    rows = []
    for name in sorted(set(old.metrics) | set(new.metrics)):
        va, vb = old.metrics.get(name), new.metrics.get(name)
        change, better = text.change(name, va, vb)
        rows.append(Compared(name, text.metric(name, va), text.metric(name, vb), change, better))
    facts = []
    for label, va, vb, short in (
        ("checkpoint", old.checkpoint_uuid, new.checkpoint_uuid, text.uuid),
        ("experiment", old.experiment_id, new.experiment_id, lambda v: v or text.MISSING),
        ("data commit", old.data_commit, new.data_commit, text.commit_id),
    ):
        facts.append(Compared(label, short(va), short(vb), "same" if va == vb else "differs"))
    facts.append(Compared("aliases", joined(old.aliases), joined(new.aliases), ""))
    return old, new, rows, facts

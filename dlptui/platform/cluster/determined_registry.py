"""The registry part of the cluster profile: Determined's model registry.

Determined has models and numbered versions (each a checkpoint) but no aliases. The aliases
(`staging`, `production`) and the audit history of their moves are kept in the model's own
metadata, under the key `dlptui`:

    {"dlptui": {"aliases": {"production": 2},
                "history": [{"alias": "production", "from_version": null, "to_version": 2,
                             "who": "determined", "time": 1764383000.0}]}}

so one version holds an alias at a time, per model, and the history is oldest first, as
ports.Registry says, and any Determined client sees the same state. The master replaces the
metadata whole on each write, so `promote` compares and retries: two consoles promoting at
once both keep their move, or one of them gets a Conflict sentence.
"""

from __future__ import annotations

import random
import time
from typing import TYPE_CHECKING, Any

from dlptui.platform.cluster.determined_connection import (
    Master,
    checkpoint_storage,
    deleted,
    experiment_checkpoints,
    experiment_number,
    seconds,
    to_checkpoint,
)
from dlptui.errors import Conflict, InvalidInput, NotFound
from dlptui.platform.metrics import best_by_searcher
from dlptui.platform.rules import check_model_name
from dlptui.platform.model import ALIASES, Checkpoint, Model, ModelVersion, Promotion, Service

if TYPE_CHECKING:
    from dlptui.config import Config

META_KEY = "dlptui"
PROMOTE_ATTEMPTS = 5  # a promotion re-applied on a fresh read this many times at most
PROMOTE_BACKOFF_S = 0.05


def _registry_state(metadata: dict | None) -> tuple[dict[str, int], list[dict]]:
    state = (metadata or {}).get(META_KEY) or {}
    return dict(state.get("aliases") or {}), list(state.get("history") or [])


class DeterminedRegistry:
    """ports.Registry on a Determined master's model registry."""

    def __init__(self, config: Config, platform: Any = None) -> None:
        self.config = config
        self.master = Master(config)

    def health(self) -> Service:
        return self.master.health("registry")

    # --- reading --------------------------------------------------------------------

    def _v1model(self, name: str) -> Any:
        from determined.common.api import bindings

        with self.master.errors(f"model {name!r}"):
            found = bindings.get_GetModel(self.master.session(), modelName=name).model
        if found.name != name:  # the master reads an identifier of digits only as a model id (ModelFromIdentifier)
            raise NotFound(f"There is no model {name!r} on the Determined master at {self.master.url}.")
        return found

    @staticmethod
    def _model(m: Any) -> Model:
        aliases, _ = _registry_state(m.metadata)
        return Model(
            name=m.name,
            created=seconds(m.creationTime) or 0.0,
            description=m.description or "",
            versions=m.numVersions,
            aliases=aliases,
        )

    @staticmethod
    def _version(v: Any, aliases: dict[str, int]) -> ModelVersion:
        ckpt = to_checkpoint(v.checkpoint)
        data = (v.checkpoint.training.experimentConfig or {}).get("data") or {}
        return ModelVersion(
            model=v.model.name,
            version=v.version,
            checkpoint_uuid=ckpt.uuid,
            created=seconds(v.creationTime) or 0.0,
            experiment_id=ckpt.experiment_id or None,
            data_repo=data.get("repo"),
            data_commit=data.get("commit"),
            metrics=ckpt.metrics,
            aliases=tuple(sorted(a for a, n in aliases.items() if n == v.version)),
            checkpoint_location=ckpt.location,
            notes=v.notes or "",
            checkpoint_storage=checkpoint_storage(v.checkpoint.training.experimentConfig or {}, ckpt.uuid),
        )

    def list_models(self) -> list[Model]:
        from determined.common import api
        from determined.common.api import bindings

        with self.master.errors("the model list"):
            session = self.master.session()
            pages = api.read_paginated(lambda offset: bindings.get_GetModels(session, offset=offset))
            return sorted((self._model(m) for r in pages for m in r.models), key=lambda m: m.name)

    def get_model(self, name: str) -> Model:
        return self._model(self._v1model(name))

    def list_versions(self, model: str) -> list[ModelVersion]:
        from determined.common import api
        from determined.common.api import bindings

        aliases, _ = _registry_state(self._v1model(model).metadata)
        with self.master.errors(f"model {model!r}"):
            session = self.master.session()

            def page(offset: int):
                return bindings.get_GetModelVersions(session, modelName=model, offset=offset)

            found = [v for r in api.read_paginated(page) for v in r.modelVersions]
        return sorted((self._version(v, aliases) for v in found), key=lambda v: v.version)

    def get_version(self, model: str, ref: str | int) -> ModelVersion:
        from determined.common.api import bindings

        m = self._v1model(model)
        aliases, _ = _registry_state(m.metadata)
        text = str(ref).strip()
        if text.isdigit():
            number = int(text)
        elif text == "latest":
            if not m.numVersions:
                raise NotFound(f"Model {model!r} has no versions yet; register a checkpoint first.")
            number = max(v.version for v in self.list_versions(model))
        elif text in aliases:
            number = aliases[text]
        elif text in ALIASES:
            raise NotFound(f"No version of model {model!r} is {text} yet; promote one first.")
        else:
            raise InvalidInput(f"{text!r} is not a version of {model!r}; give a number, 'latest', 'staging' or 'production'.")
        with self.master.errors(f"version {number} of model {model!r}"):
            v = bindings.get_GetModelVersion(self.master.session(), modelName=model, modelVersionNum=number).modelVersion
        return self._version(v, aliases)

    def history(self, model: str) -> list[Promotion]:
        _, history = _registry_state(self._v1model(model).metadata)
        return [
            Promotion(model, h["alias"], h.get("from_version"), int(h["to_version"]), h.get("who", ""), float(h["time"]))
            for h in history
        ]

    # --- changing ------------------------------------------------------------------

    def _best(self, experiment_id: str, checkpoints: list[Checkpoint]) -> Checkpoint:
        """By the platform's rule (metrics.best_by_searcher), on the experiment's config."""
        from determined.common.api import bindings

        with self.master.errors(f"experiment {experiment_id}"):
            exp = bindings.get_GetExperiment(self.master.session(), experimentId=int(experiment_id)).experiment
        return best_by_searcher(exp.config or {}, checkpoints)

    def register(
        self, model: str, experiment_id: str, checkpoint_uuid: str | None = None, notes: str = "",
        trial_id: str | None = None,
    ) -> ModelVersion:
        from determined.common.api import bindings, errors

        check_model_name(model)
        number = experiment_number(experiment_id)
        with self.master.errors(f"experiment {experiment_id}"):
            session = self.master.session()
            bindings.get_GetExperiment(session, experimentId=number)
            checkpoints = experiment_checkpoints(session, number)
        if checkpoint_uuid:
            chosen = next((c for c in checkpoints if c.uuid == checkpoint_uuid), None)
            if chosen is None:
                with self.master.errors(f"checkpoint {checkpoint_uuid!r}"):
                    found = bindings.get_GetCheckpoint(session, checkpointUuid=checkpoint_uuid).checkpoint
                other = to_checkpoint(found)
                if other.experiment_id == str(number):  # this experiment's, but not completed: the GC deleted it
                    raise NotFound(deleted(checkpoint_uuid, found))
                raise InvalidInput(
                    f"Checkpoint {checkpoint_uuid} belongs to experiment {other.experiment_id}, not {number}; "
                    "give one of this experiment's checkpoints."
                )
        elif trial_id is not None:
            mine = [c for c in checkpoints if c.trial_id == str(trial_id).strip()]
            if not mine:
                with self.master.errors(f"trial {trial_id}"):  # NotFound for an unknown trial
                    owner = bindings.get_GetTrial(self.master.session(), trialId=int(str(trial_id).strip())).trial.experimentId
                if owner != number:
                    raise InvalidInput(f"Trial {trial_id} belongs to experiment {owner}, not {number}; give one of its trials.")
                raise Conflict(f"Trial {trial_id} of experiment {number} has no checkpoint yet; wait until it has saved one.")
            chosen = self._best(str(number), mine)
        elif not checkpoints:
            raise Conflict(f"Experiment {number} has no checkpoint yet; wait until it has saved one.")
        else:
            chosen = self._best(str(number), checkpoints)
        client = self.master.client()
        with self.master.errors(f"model {model!r}"):
            try:
                registered = client.get_model(model)
            except errors.NotFoundException:
                registered = client.create_model(model, description=f"registered by dlptui from experiment {number}")
            twin = next((v for v in self.list_versions(model) if v.checkpoint_uuid == chosen.uuid), None)
            if twin is not None:
                raise Conflict(f"Checkpoint {chosen.uuid} is already version {twin.version} of {model!r}.")
            version = registered.register_version(chosen.uuid)
            if notes:
                version.set_notes(notes)
        return self.get_version(model, version.model_version)

    def promote(self, model: str, version: int, alias: str, who: str | None = None) -> Promotion:
        """Move `alias` to `version`, compare-and-retry: Determined's PatchModel replaces the metadata whole and
        takes no precondition, so each attempt re-reads the model, applies the move to what it read, writes,
        and reads back: if another console's write replaced it (the entry is gone), it starts again on that
        state, PROMOTE_ATTEMPTS times at most, then one Conflict sentence. What no client-side check can see is
        a write that lands after the read-back and was computed before this one; the window is one round trip."""
        if alias not in ALIASES:
            raise InvalidInput(f"{alias!r} is not an alias; use one of {', '.join(ALIASES)}.")
        target = self.get_version(model, int(version))
        who = who or self.master.user
        for attempt in range(PROMOTE_ATTEMPTS):
            if attempt:
                time.sleep(random.uniform(0.0, PROMOTE_BACKOFF_S * 2**attempt))  # consoles retrying in step would collide again
            with self.master.errors(f"model {model!r}"):
                registered = self.master.client().get_model(model)  # re-read: the state this attempt applies to
                aliases, history = _registry_state(registered.metadata)
                promotion = Promotion(model, alias, aliases.get(alias), target.version, who, time.time())
                entry = {"alias": alias, "from_version": promotion.from_version, "to_version": promotion.to_version,
                         "who": promotion.who, "time": promotion.time}
                aliases[alias] = target.version
                registered.add_metadata({META_KEY: {"aliases": aliases, "history": [*history, entry]}})
                _, written = _registry_state(self._v1model(model).metadata)  # verify: did the write hold?
            if entry in written:
                return promotion
        raise Conflict(
            f"Version {target.version} of {model!r} could not be promoted to {alias}: other consoles changed the "
            f"model's aliases during each of {PROMOTE_ATTEMPTS} attempts; look at its history and try again."
        )

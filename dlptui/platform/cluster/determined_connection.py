"""The connection to a Determined master, shared by the training and registry parts of the cluster profile.

The master comes from DET_MASTER (the config's `det_master`); the user from DET_USER (default
`determined`); the secret from DET_TOKEN, else DET_PASS, else the token that `det user login`
cached; with none of them it says so in one sentence instead of trying an empty password
(DET_PASS set to the empty string asks for that, as for Determined's default `determined` user).
Credentials never go over plain http:// to a master that is not on this machine (a port-forward
to localhost is): use https://, or set `allow_insecure_http = true` in the profile to accept
that risk. Over https:// the profile's `ca_file` is trusted beside certifi's roots; without it the
SDK's choice stands (DET_MASTER_CERT_FILE, or the cert `det` stored). Every request carries a
connect timeout (`timeout_s`) and a read timeout, which the SDK leaves unset, so a dead or hung
master is one Unreachable sentence in seconds; a certificate that is not trusted is its own sentence.
A master's sessions expire (7 days on 0.38.1): with DET_PASS the session is renewed and the request sent
again; a token (DET_TOKEN, or `det user login`'s) that the master no longer accepts is one sentence.
The master's error body carries a gRPC code: FailedPrecondition (its state machine forbids the change
now) is a Conflict. `determined` is imported only on first use.
"""

from __future__ import annotations

import contextlib
import os
import posixpath
import threading
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from dlptui.errors import Conflict, InvalidInput, NotAvailable, NotFound, PlatformError, Unreachable
from dlptui.platform.model import Checkpoint, CheckpointStorage, Service

if TYPE_CHECKING:
    from dlptui.config import Config

READ_TIMEOUT_S = 60.0
GRPC_FAILED_PRECONDITION = 9  # the gRPC code in the master's error body (grpcutil/errors.go)


def seconds(stamp: str | None) -> float | None:
    if not stamp:
        return None
    from determined.common import util

    return util.parse_protobuf_timestamp(stamp).timestamp()


def numbers(metrics: dict | None) -> dict[str, float]:
    return {k: float(v) for k, v in (metrics or {}).items() if isinstance(v, (int, float)) and not isinstance(v, bool)}


def experiment_number(experiment_id: str | int) -> int:
    try:
        return int(experiment_id)
    except (TypeError, ValueError):
        raise NotFound(f"There is no experiment {experiment_id!r}; experiment ids are numbers.") from None


class Master:
    """One logged-in SDK session with a Determined master, and the translation of its errors."""

    def __init__(self, config: Config) -> None:
        # Imported when a part is built (one at a time), never first in parallel health checks,
        # where first imports of determined, grpc and kubernetes have deadlocked CPython 3.11.
        import determined.common.api.authentication  # noqa: F401
        import determined.experimental.client  # noqa: F401

        self.config = config
        self.url = config.cluster.det_master or ""
        self.user = config.cluster.det_user or os.environ.get("DET_USER") or "determined"
        self._session: Any = None
        self._lock = threading.Lock()

    def _canonical(self) -> str:
        if not self.url:
            raise Unreachable("No Determined master is set; set DET_MASTER (http://host:8080) or det_master in the cluster profile.")
        from determined.common import api

        return api.canonicalize_master_url(self.url)

    def unreachable(self) -> Unreachable:
        return Unreachable(f"The Determined master at {self.url} does not answer; check DET_MASTER and that the master is up, then retry.")

    def probe(self) -> str:
        """The master's version, asked without logging in and within `timeout_s`."""
        from determined.common.api import bindings

        master = self._canonical()
        with self.errors("the master's TLS certificate"):  # a bad ca_file is its own sentence, not "does not answer"
            cert = self._cert(master)
        try:
            r = _unauth_session(master, cert).get("api/v1/master", timeout=self.config.timeout_s)
            return bindings.v1GetMasterResponse.from_json(r.json()).version
        except Exception as e:
            error = self.translate(e, "master info")
            if isinstance(error, Unreachable):
                raise error from None
            raise Unreachable(f"{self.url} does not answer as a Determined master; check DET_MASTER.") from None

    def _cert(self, master: str) -> Any:
        """The certificates to trust for the master: with `ca_file` set, its PEM beside certifi's roots (the SDK's
        Cert adds them), keeping DET_MASTER_CERT_NAME; else the SDK's own choice (DET_MASTER_CERT_FILE, or the
        cert that `det` stored for this master)."""
        from determined.common.api import certs

        from dlptui.platform.cluster.ca_file import read_ca_file

        pem = read_ca_file(self.config.cluster.ca_file)
        if pem is None:
            return certs.default_load(master)
        cert = certs.Cert(cert_pem=pem, name=os.environ.get("DET_MASTER_CERT_NAME") or None)
        cert.dlptui_ca_file = True  # its bundle stands against REQUESTS_CA_BUNDLE (_keep_bundle)
        return cert

    def _check_transport(self, master: str) -> None:
        from urllib.parse import urlsplit

        parts = urlsplit(master)
        loopback = (parts.hostname or "") in ("localhost", "::1") or (parts.hostname or "").startswith("127.")
        if parts.scheme == "http" and not loopback and not self.config.cluster.allow_insecure_http:
            raise NotAvailable(
                f"The Determined master at {self.url} speaks plain HTTP from another machine, so its password or token "
                "would cross the network in clear; use https:// (the chart's tlsSecret) or `kubectl port-forward` to "
                "localhost, or set allow_insecure_http = true in the cluster profile."
            )

    def _login(self) -> Any:
        import urllib3
        from determined.common import api
        from determined.common.api import authentication

        master = self._canonical()
        self._check_transport(master)
        with self.errors("the master's TLS certificate"):
            cert = self._cert(master)
        token = os.environ.get("DET_TOKEN")
        if not token and os.environ.get("DET_PASS") is None:
            token = authentication.TokenStore(master).get_token(self.user)  # from `det user login`
        if not token and os.environ.get("DET_PASS") is None:
            raise NotAvailable(
                f"There are no credentials for user {self.user!r} of the Determined master at {self.url}; set DET_PASS "
                f"(or DET_TOKEN), or log in once with `det -m {self.url} user login {self.user}`."
            )
        password = os.environ.get("DET_PASS")

        def login() -> str:  # authentication.login, on a session that keeps the ca_file's bundle
            from determined.common.api import bindings

            body = bindings.v1LoginRequest(username=self.user, password=api.salt_and_hash(password or ""), isHashed=True)
            with self.errors(f"user {self.user!r}"):
                return bindings.post_Login(session=_unauth_session(master, cert), body=body).token

        relogin = login if password is not None else None  # with a password, an expired session is renewed
        if not token:
            self.probe()  # login itself has no timeout: first make sure the master answers
            token = login()
        retry = urllib3.util.retry.Retry(total=2, connect=0, backoff_factor=0.2, status_forcelist=[502, 503, 504])
        return _bounded_session(master, self.user, token, cert, retry, self.config.timeout_s, relogin)

    def session(self) -> Any:
        with self._lock:
            if self._session is None:
                self._session = self._login()
            return self._session

    def client(self) -> Any:
        from determined.experimental import client

        return client.Determined._from_session(self.session())

    def translate(self, e: BaseException, what: str) -> PlatformError:
        import requests
        from determined.common.api import errors

        if isinstance(e, PlatformError):
            return e
        if isinstance(e, requests.exceptions.SSLError):  # before ConnectionError, which it is too
            return Unreachable(
                f"The Determined master at {self.url} presented a TLS certificate that is not trusted here "
                f"({_ssl_reason(e)}); if a private CA signed it, set ca_file (or DLPTUI_CA_FILE) in the cluster profile "
                "to that CA's PEM file."
            )
        if isinstance(e, (errors.MasterNotFoundException, requests.exceptions.ConnectionError, requests.exceptions.Timeout)):
            return self.unreachable()
        if isinstance(e, errors.NotFoundException):
            return NotFound(f"There is no {what} on the Determined master at {self.url}.")
        if isinstance(e, errors.UnauthenticatedException) and getattr(e, "expired", False):
            self._session = None
            return PlatformError(
                f"The Determined master at {self.url} does not accept the token of user {self.user!r} (expired or revoked); "
                f"log in again with `det -m {self.url} user login {self.user}`, or set DET_PASS."
            )
        if isinstance(e, (errors.UnauthenticatedException, errors.ForbiddenException)):
            self._session = None  # a stale token: log in again next time
            return PlatformError(
                f"The Determined master at {self.url} refused user {self.user!r}; set DET_USER and DET_PASS (or DET_TOKEN)."
            )
        message = str(getattr(e, "message", "") or e).strip().rstrip(".") or type(e).__name__
        message = "; ".join(dict.fromkeys(line.strip() for line in message.splitlines() if line.strip()))
        if "timed out" in message.lower():
            return self.unreachable()
        code = (getattr(e, "response_error", None) or {}).get("code")
        if code == GRPC_FAILED_PRECONDITION:  # the master's state machine forbids it now
            return Conflict(f"The Determined master refused {what}: {message}.")
        if getattr(e, "status_code", None) == 409:
            return Conflict(f"The {what} already exists on the Determined master; choose another name.")
        if getattr(e, "status_code", None) == 400:
            return InvalidInput(f"The Determined master refused {what}: {message}.")
        return PlatformError(f"The Determined master at {self.url} failed on {what}: {message}.")

    @contextlib.contextmanager
    def errors(self, what: str) -> Iterator[None]:
        try:
            yield
        except Exception as e:
            raise self.translate(e, what) from None

    def health(self, part: str) -> Service:
        try:
            version = self.probe()
            self.session()
            return Service(part, "Determined master", True, detail=f"{self.url} as {self.user}", version=version, endpoint=self.url)
        except PlatformError as e:
            return Service(part, "Determined master", False, detail=str(e), endpoint=self.url or None)


def _ssl_reason(e: BaseException) -> str:
    """OpenSSL's reason inside requests' SSLError ("certificate verify failed: <reason>")."""
    text = str(e)
    found = text.split("certificate verify failed:", 1)
    return found[1].split("(_ssl.c")[0].strip(" )'\"") if len(found) == 2 else "the handshake failed"


def _keep_bundle(http: Any, cert: Any) -> Any:
    """`http` (a requests.Session) verifying with the bundle that `ca_file` made, whatever the environment says:
    requests lets REQUESTS_CA_BUNDLE or CURL_CA_BUNDLE replace a session's `verify` on every request, which
    silently dropped the private CA wherever those are set. Without ca_file the SDK's choice stands."""
    bundle = getattr(cert, "bundle", None)
    if isinstance(bundle, str) and getattr(cert, "dlptui_ca_file", False):
        merge = http.merge_environment_settings

        def merged(url, proxies, stream, verify, client_cert):  # noqa: ANN001
            settings = merge(url, proxies, stream, verify, client_cert)
            if verify is None or verify is True:
                settings["verify"] = bundle
            return settings

        http.merge_environment_settings = merged
    return http


def _unauth_session(master: str, cert: Any) -> Any:
    from determined.common import api

    class KeptBundleSession(api.UnauthSession):
        def _make_http_session(self):  # noqa: ANN202
            return _keep_bundle(super()._make_http_session(), self.cert)

    return KeptBundleSession(master, cert, max_retries=0)


def _bounded_session(master: str, user: str, token: str, cert: Any, retry: Any, connect_s: float,
                     relogin: Callable[[], str] | None = None) -> Any:
    """The SDK's Session, with a (connect, read) timeout on every request (the SDK sets none). A session the
    master no longer accepts (sessions expire) is renewed once with `relogin` (a password login), and the
    request sent again; without it, the error says the token expired."""
    from determined.common import api
    from determined.common.api import errors

    class BoundedSession(api.Session):
        def _make_http_session(self):  # noqa: ANN202
            return _keep_bundle(super()._make_http_session(), self.cert)

        def _do_request(self, method, path, params, json, data, headers, timeout, stream):  # noqa: ANN001
            timeout = timeout or (connect_s, READ_TIMEOUT_S)
            try:
                return super()._do_request(method, path, params, json, data, headers, timeout, stream)
            except errors.UnauthenticatedException as e:
                if relogin is None:
                    e.expired = True  # the token was accepted once: it expired or was revoked
                    raise
            self.token = relogin()
            self._http_session = None
            return super()._do_request(method, path, params, json, data, headers, timeout, stream)

    return BoundedSession(master, user, token, cert, max_retries=retry)


def checkpoint_storage(config: dict, uuid: str) -> CheckpointStorage | None:
    """Where the experiment's checkpoint storage keeps checkpoint `uuid` (config: the experiment's config, as the
    master returns it, with its defaults filled in), or None for a storage a serving pod cannot read itself
    (azure, directory, none). No credential of the config (access_key, secret_key) is kept."""
    storage = (config or {}).get("checkpoint_storage") or {}
    kind = storage.get("type")
    prefix = "/".join(p for p in str(storage.get("prefix") or "").split("/") if p)
    if kind in ("gcs", "s3") and storage.get("bucket"):
        return CheckpointStorage(kind, uuid, bucket=str(storage["bucket"]), prefix=prefix,
                                 endpoint_url=str(storage.get("endpoint_url") or "") if kind == "s3" else "")
    if kind == "shared_fs" and str(storage.get("host_path") or "").startswith("/"):
        host = posixpath.normpath(str(storage["host_path"]))
        below = posixpath.normpath(posixpath.join(host, str(storage.get("storage_path") or "")))
        if below != host and not below.startswith(host.rstrip("/") + "/"):
            return None  # Determined refuses a storage_path outside host_path too
        relative = posixpath.relpath(below, host)
        return CheckpointStorage(kind, uuid, host_path=host, storage_path="" if relative == "." else relative)
    return None


def checkpoint_location(config: dict, uuid: str) -> str:
    """Where the experiment's checkpoint storage keeps the checkpoint."""
    found = checkpoint_storage(config, uuid)
    if found is not None:
        return found.url
    storage = (config or {}).get("checkpoint_storage") or {}
    prefix = "/".join(p for p in (storage.get("prefix") or "").split("/") if p)
    if storage.get("type") == "azure":
        return f"azure://{storage.get('container') or ''}/" + "/".join(p for p in (prefix, uuid) if p)
    return f"determined://checkpoints/{uuid}"


def to_checkpoint(ckpt: Any) -> Checkpoint:
    """A model.Checkpoint from a bindings v1Checkpoint."""
    training = ckpt.training
    return Checkpoint(
        uuid=ckpt.uuid,
        experiment_id=str(training.experimentId or ""),
        trial_id=str(training.trialId or ""),
        batch=int((ckpt.metadata or {}).get("steps_completed") or 0),
        created=seconds(ckpt.reportTime) or 0.0,
        location=checkpoint_location(training.experimentConfig or {}, ckpt.uuid),
        metrics=numbers(training.validationMetrics.avgMetrics if training.validationMetrics else {}),
    )


def deleted(uuid: str, ckpt: Any) -> str:
    """The sentence for a checkpoint that is not COMPLETED (the GC deleted it, or it is still being written)."""
    state = str(ckpt.state.value).removeprefix("STATE_").lower()
    if state in ("deleted", "partially_deleted"):
        why = ("was deleted by the Determined master's checkpoint garbage collection, which keeps each trial's best "
               "and latest checkpoints once the experiment ends")
    else:
        why = f"is {state} on the Determined master, not completed"
    return f"Checkpoint {uuid} of experiment {ckpt.training.experimentId} {why}; choose one that `dlptui experiment describe` lists."


def experiment_checkpoints(session: Any, experiment_id: int) -> list[Checkpoint]:
    """Every completed checkpoint of the experiment, oldest batch first."""
    from determined.common import api
    from determined.common.api import bindings

    def page(offset: int):
        return bindings.get_GetExperimentCheckpoints(session, id=experiment_id, offset=offset)

    found = [c for r in api.read_paginated(page) for c in r.checkpoints]
    done = [to_checkpoint(c) for c in found if c.state == bindings.checkpointv1State.COMPLETED]
    return sorted(done, key=lambda c: (c.batch, c.created))

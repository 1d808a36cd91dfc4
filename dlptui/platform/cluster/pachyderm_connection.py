"""The connection to pachd for the data part of the cluster profile: one python-pachyderm client,
its health ping bounded by `timeout_s`, and the translation of gRPC errors into one sentence.

pachd is found from PACHD_ADDRESS (`grpc://host:30650`, via the config's `pachd_address`) or
else from the active context of pachctl's config ($PACH_CONFIG or ~/.pachyderm/config.json).
A token comes from PACHD_TOKEN, never from dlptui's config. Over TLS (grpcs://) the profile's `ca_file`
is trusted beside certifi's roots; a pachctl context trusts its own `server_cas` instead (python-pachyderm's
`new_from_config` takes no root certificates, so `ca_file` does not apply to it).
"""

from __future__ import annotations

import contextlib
import os
import re
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dlptui.errors import Conflict, InvalidInput, NotFound, PlatformError, Unreachable
from dlptui.platform.model import Service

if TYPE_CHECKING:
    from dlptui.config import Config


def _rpc_error(e: BaseException):
    """The grpc error behind an exception of python-pachyderm (it wraps some in ConnectionError)."""
    import grpc

    while e is not None:
        if isinstance(e, grpc.RpcError) and hasattr(e, "code"):
            return e
        e = e.__cause__ or e.__context__
    return None


def refused_output_branch(e: BaseException) -> bool:
    """Whether pachd refused a commit because its branch is a pipeline's output (which only the pipeline's jobs write)."""
    rpc = _rpc_error(e)
    return rpc is not None and OUTPUT_BRANCH in (rpc.details() or "")


def _untrusted(error: BaseException | None) -> str | None:
    """Why the TLS handshake refused pachd's certificate (OpenSSL's words), when that is why a call failed."""
    rpc = _rpc_error(error) if error is not None else None
    found = re.search(r"CERTIFICATE_VERIFY_FAILED: ([^:]+)", (rpc.details() or "") if rpc is not None else "")
    return found.group(1).strip() if found else None


def input_leaves(message: Any) -> list[Any]:
    """The pfs inputs of a pipeline's input tree (cross, union, join and group too)."""
    if message.HasField("pfs"):
        return [message.pfs]
    return [leaf for kind in ("cross", "union", "join", "group") for part in getattr(message, kind) for leaf in input_leaves(part)]


def pipeline_users(client: Any) -> list[tuple[str, list[str]]]:
    """(pipeline, the repos it reads) of every pipeline on pachd: who holds a repo (data_rules.check_repo_unused)."""
    return [(p.pipeline.name, [leaf.repo for leaf in input_leaves(p.details.input)]) for p in client.list_pipeline(details=True)]


# What pachd answers when a pipeline holds a repo (2.12's and 2.7's words), and when a commit is started on a
# pipeline's output branch; none has a gRPC code of its own.
REPO_HELD = ("associated with a pipeline", "in the direct provenance of", "as subvenance")
OUTPUT_BRANCH = "cannot start a commit on an output branch"


class Pachd:
    """One python-pachyderm client for the profile, built on first use and checked once."""

    def __init__(self, config: Config) -> None:
        # Imported when the part is built (the Platform builds parts one at a time), not in a
        # health check beside the others: parallel first imports of grpc, determined and
        # kubernetes have deadlocked CPython 3.11's import system.
        import python_pachyderm  # noqa: F401

        self.config = config
        self._client: Any = None
        self._lock = threading.Lock()

    def _new_client(self) -> Any:
        import python_pachyderm

        token = os.environ.get("PACHD_TOKEN") or None
        address = self.config.cluster.pachd_address
        if address:
            root_certs = self._root_certs(address)
            try:
                return python_pachyderm.Client.new_from_pachd_address(address, auth_token=token, root_certs=root_certs)
            except ValueError:
                raise InvalidInput(f"The pachd address {address!r} is not valid; use grpc://host:30650.") from None
        pach_config = Path(os.environ.get("PACH_CONFIG") or Path.home() / ".pachyderm" / "config.json")
        if not pach_config.is_file():
            raise Unreachable(
                "No pachd address is set; set PACHD_ADDRESS (grpc://host:30650) or pachd_address "
                "in the cluster profile, or select a pachctl context."
            )
        try:
            with pach_config.open() as f:
                client = python_pachyderm.Client.new_from_config(f)
        except Exception as e:
            raise InvalidInput(f"The pachctl config {pach_config} cannot be used ({e}); fix it or set PACHD_ADDRESS.") from None
        if token:
            client.auth_token = token
        return client

    def _root_certs(self, address: str) -> bytes | None:
        """For a TLS address (grpcs://, https://) with `ca_file` set: the private CA's certificates and certifi's
        roots (python-pachyderm's default, which gRPC would otherwise drop), as PEM bytes; else None (the SDK's
        default). Never for grpc://, which root certificates would turn into TLS."""
        from dlptui.platform.cluster.ca_file import read_ca_file

        scheme = address.split("://", 1)[0].lower() if "://" in address else "grpc"
        pem = read_ca_file(self.config.cluster.ca_file) if scheme in ("grpcs", "https") else None
        if pem is None:
            return None
        import certifi

        return pem.encode("ascii") + b"\n" + Path(certifi.where()).read_bytes()

    def ping(self, client: Any) -> str | None:
        """pachd's version if it answers within the configured timeout; raises Unreachable otherwise.

        python-pachyderm sets no deadline, so the calls run in a daemon thread that is left
        behind (never joined, not even at exit) when pachd hangs."""
        answer: dict[str, Any] = {}

        def ask() -> None:
            try:
                client.health_check()
                answer["version"] = client.get_remote_version()
            except Exception as e:  # a refused connection, or something that is not pachd
                answer["error"] = e

        asking = threading.Thread(target=ask, name="pachd-health", daemon=True)
        asking.start()
        asking.join(self.config.timeout_s)
        if "version" not in answer:
            untrusted = _untrusted(answer.get("error"))
            if untrusted:
                raise Unreachable(
                    f"pachd at {client.address} presented a TLS certificate that is not trusted here ({untrusted}); "
                    "if a private CA signed it, set ca_file (or DLPTUI_CA_FILE) in the cluster profile to that CA's PEM file."
                )
            raise self.unreachable(client.address)
        v = answer["version"]
        return f"{v.major}.{v.minor}.{v.micro}{v.additional}"

    def client(self) -> Any:
        with self._lock:
            if self._client is None:
                client = self._new_client()
                self.ping(client)
                self._client = client
            return self._client

    @staticmethod
    def unreachable(address: str) -> Unreachable:
        return Unreachable(
            f"pachd at {address} does not answer; check PACHD_ADDRESS (or run `pachctl port-forward`) and retry."
        )

    def translate(self, e: BaseException, what: str, address: str) -> PlatformError:
        import grpc

        if isinstance(e, PlatformError):
            return e
        rpc = _rpc_error(e)
        if rpc is None:
            if isinstance(e, ConnectionError):
                return self.unreachable(address)
            return PlatformError(f"pachd at {address} failed on {what}: {e}.")
        code, lines = rpc.code(), (rpc.details() or "").splitlines()
        details = lines[0] if lines else ""
        if code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
            return self.unreachable(address)
        if code == grpc.StatusCode.NOT_FOUND or "not found" in details:
            return NotFound(f"There is no {what} on pachd at {address}.")
        if code == grpc.StatusCode.ALREADY_EXISTS or "already exists" in details:
            return Conflict(f"The {what} already exists on pachd at {address}; choose another name.")
        if code in (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED):
            return PlatformError(f"pachd at {address} refused access to {what} ({details}); set PACHD_TOKEN.")
        if code == grpc.StatusCode.INVALID_ARGUMENT:
            return InvalidInput(f"pachd refused {what}: {details}.")
        if code == grpc.StatusCode.FAILED_PRECONDITION:
            return Conflict(f"pachd cannot do that to {what} now: {details}.")
        if any(words in details for words in REPO_HELD):
            return Conflict(f"pachd will not delete {what}: a pipeline reads or writes it; delete the pipeline first.")
        if OUTPUT_BRANCH in details:
            return Conflict(f"pachd will not start a commit in {what}: the branch is a pipeline's output, which only the "
                            "pipeline's jobs write; put the files into the pipeline's input repo instead.")
        return PlatformError(f"pachd at {address} failed on {what}: {details or code.name}.")

    @contextlib.contextmanager
    def call(self, what: str) -> Iterator[Any]:
        """The client, with any failure inside turned into one PlatformError sentence about `what`."""
        client = self.client()
        try:
            yield client
        except Exception as e:
            raise self.translate(e, what, client.address) from None

    def health(self) -> Service:
        address = self.config.cluster.pachd_address
        try:
            with self._lock:
                client = self._client or self._new_client()
            version = self.ping(client)
            self._client = client
            return Service("data", "pachd", True, detail=client.address, version=version, endpoint=client.address)
        except PlatformError as e:
            return Service("data", "pachd", False, detail=str(e), endpoint=address)

    def close(self) -> None:
        self._client = None

"""A stand-in for pachd: its PFS and PPS gRPC APIs over an in-memory state, for tests only.

It serves the `pfs_v2.API` and `pps_v2.API` servicers generated in python-pachyderm's own package
(pachd_pfs.py, pachd_pps.py), the standard gRPC health service and pachd's version service, so
`python_pachyderm.Client` talks to it exactly as to a real pachd 2.x. What it does is written from
pachd's source, following 2.12 (the `2.12.x` branch; its last release is 2.12.2) where 2.7.8 agrees
and naming the difference where it does not; each servicer's docstring lists what it follows. What it
still does otherwise is listed in docs/contract.md ("The pachd stand-in's known differences").

Plain gRPC by default; with `tls=(certificate file, key file)` it serves TLS instead (`grpcs://`),
as pachd does with `pachd.tls.enabled`, so a client's CA trust is checked by a real handshake.

    server = PachdStandin().start()
    client = python_pachyderm.Client.new_from_pachd_address(server.address)
    ...
    server.stop()
"""

from __future__ import annotations

from concurrent import futures
from pathlib import Path

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from python_pachyderm.proto.v2.pfs import pfs_pb2_grpc
from python_pachyderm.proto.v2.pps import pps_pb2_grpc
from python_pachyderm.proto.v2.version.versionpb import version_pb2, version_pb2_grpc

from tests.standins.pachd_pfs import PfsStandinServicer

VERSION = (2, 12, 2)  # the release whose behaviour the stand-in follows


class VersionStandinServicer(version_pb2_grpc.APIServicer):
    def GetVersion(self, request, context):
        major, minor, micro = VERSION
        return version_pb2.Version(major=major, minor=minor, micro=micro, additional="-standin")


class PachdStandin:
    """The stand-in server on 127.0.0.1 with a free port; over TLS with `tls=(cert_file, key_file)`."""

    def __init__(self, tls: tuple[Path, Path] | None = None) -> None:
        from tests.standins.pachd_pps import PpsStandinServicer

        self.pfs = PfsStandinServicer()
        self.pps = PpsStandinServicer(self.pfs)
        self.pfs.pps = self.pps
        self.tls = tls
        self._server: grpc.Server | None = None
        self.port = 0

    @property
    def address(self) -> str:
        return f"{'grpcs' if self.tls else 'grpc'}://127.0.0.1:{self.port}"

    def reset(self) -> None:
        self.pps.reset()
        self.pfs.reset()

    def start(self) -> PachdStandin:
        server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
        pfs_pb2_grpc.add_APIServicer_to_server(self.pfs, server)
        pps_pb2_grpc.add_APIServicer_to_server(self.pps, server)
        version_pb2_grpc.add_APIServicer_to_server(VersionStandinServicer(), server)
        checker = health.HealthServicer()
        checker.set("", health_pb2.HealthCheckResponse.SERVING)
        health_pb2_grpc.add_HealthServicer_to_server(checker, server)
        if self.tls:
            cert, key = (Path(p).read_bytes() for p in self.tls)
            credentials = grpc.ssl_server_credentials([(key, cert)])
            self.port = server.add_secure_port("127.0.0.1:0", credentials)
        else:
            self.port = server.add_insecure_port("127.0.0.1:0")
        server.start()
        self._server = server
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop(grace=None).wait()
            self._server = None
        self.pps.close()

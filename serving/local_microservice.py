"""`seldon-core-microservice`, listening on 127.0.0.1 only: how the local profile runs it.

Seldon's wrapper binds its REST and metrics servers to 0.0.0.0, which is right in a pod and
wrong on a workstation. This runs the very same `seldon_core.microservice.main()` with the
same arguments, after one change: gunicorn's bind address becomes 127.0.0.1 (the port is
kept). Run it with `--grpc-workers 0` (the local gateway speaks REST); on the cluster the
image runs plain `seldon-core-microservice`.
"""

from __future__ import annotations

import sys

from seldon_core import gunicorn_utils, microservice

_load_config = gunicorn_utils.StandaloneApplication.load_config


def _loopback_load_config(self) -> None:
    _load_config(self)
    ports = [address.rsplit(":", 1)[1] for address in self.cfg.bind]
    self.cfg.set("bind", [f"127.0.0.1:{port}" for port in ports])


def main() -> None:
    if "--grpc-workers" not in sys.argv:
        sys.argv += ["--grpc-workers", "0"]
    gunicorn_utils.StandaloneApplication.load_config = _loopback_load_config
    microservice.main()


if __name__ == "__main__":
    main()

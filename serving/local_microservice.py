"""`seldon-core-microservice` on private Unix sockets: how the local profile runs it.

Seldon's wrapper binds its REST and metrics servers to 0.0.0.0, which is right in a pod and
wrong on a workstation. This runs the very same `seldon_core.microservice.main()` with the
same arguments, after one change: gunicorn binds each server to a Unix socket, given as

    --http-socket PATH      the REST server (predictions, health, metadata)
    --metrics-socket PATH   the metrics server

(taken off the command line before Seldon reads it; its `--http-port` and `--metrics-port`
are then never bound). dlptui puts them in the deployment's folder inside the 0700 home, so
no other user and no web page can reach a model server, and Envoy is the only way in. The
sockets are made 0600. Settings that would make the wrapper run Flask's own server on 0.0.0.0
(SELDON_DEBUG, FLASK_DEBUG) are dropped, and gRPC stays off (`--grpc-workers 0`). On the
cluster the image runs plain `seldon-core-microservice`.
"""

from __future__ import annotations

import os
import sys

SOCKET_OPTIONS = ("--http-socket", "--metrics-socket")


def take_sockets(argv: list[str]) -> tuple[list[str], dict[str, str]]:
    """argv without the socket options, and their values by option."""
    rest, sockets = [], {}
    args = iter(argv)
    for arg in args:
        name, _, value = arg.partition("=")
        if name in SOCKET_OPTIONS:
            sockets[name] = value or next(args, "")
        else:
            rest.append(arg)
    return rest, sockets


def main() -> None:
    argv, sockets = take_sockets(sys.argv[1:])
    missing = [name for name in SOCKET_OPTIONS if not sockets.get(name)]
    if missing:
        sys.exit(f"local_microservice: give {' and '.join(missing)} (the model server listens on Unix sockets only).")
    for name in ("SELDON_DEBUG", "FLASK_DEBUG", "FLASK_ENV"):
        os.environ.pop(name, None)
    if "--grpc-workers" not in argv:
        argv += ["--grpc-workers", "0"]
    sys.argv = [sys.argv[0], *argv]

    from seldon_core import gunicorn_utils, microservice

    load_config = gunicorn_utils.StandaloneApplication.load_config

    def private_load_config(self) -> None:
        load_config(self)
        # the REST server is Seldon's UserModelApplication; the metrics server a plain StandaloneApplication
        rest = isinstance(self, gunicorn_utils.UserModelApplication)
        self.cfg.set("bind", ["unix:" + sockets["--http-socket" if rest else "--metrics-socket"]])
        self.cfg.set("umask", 0o177)

    gunicorn_utils.StandaloneApplication.load_config = private_load_config
    microservice.main()


if __name__ == "__main__":
    main()

"""Run the app on bjoern, one single-threaded process, with the graceful
drain of app/drain.py (bjoern has none of its own that suits a worker behind
nginx)."""

import logging
import os
import socket

import bjoern

from .classifier import ModelError
from .config import Settings
from .drain import Lifecycle
from .wsgi import get_app

log = logging.getLogger("worker")


def main() -> None:
    logging.basicConfig(level=logging.INFO, format=f"%(asctime)s worker[{os.getpid()}] %(message)s")
    settings = Settings.from_env()
    lifecycle = Lifecycle(settings.shutdown_timeout, settings.drain_quiet)
    try:
        app = get_app(settings, lifecycle)
    except ModelError as exc:
        log.error("cannot start: %s", exc)
        raise SystemExit(2) from None
    host = settings.host
    if host.startswith("unix:") and host.endswith("/"):
        # A directory shared with nginx (compose): one socket per container, named by its hostname.
        host = f"{host}{socket.gethostname()}.sock"
    where = host if host.startswith("unix:") else f"{host}:{settings.port}"
    if host.startswith("unix:") and os.path.exists(host[5:]):
        os.unlink(host[5:])  # a stale socket from a worker that was killed
    try:
        sock = bjoern.listen(app, host, settings.port)
    except OSError as exc:
        log.error("cannot listen on %s: %s", where, exc.strerror)
        raise SystemExit(2) from None
    socket_path = host[5:] if host.startswith("unix:") else None
    if socket_path:
        # nginx connects as another user in the socket's group (compose: group_add).
        os.chmod(socket_path, 0o660)
    lifecycle.install(sock.fileno(), socket_path)
    log.info("serving %s on %s", settings.model_path.name, where)
    bjoern.run()


if __name__ == "__main__":
    main()

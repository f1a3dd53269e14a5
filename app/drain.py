"""The worker's graceful drain: signals, the listening socket, when to exit.

bjoern has no shutdown of its own that suits a worker behind nginx: SIGTERM
kills it at once (requests in flight are lost) and SIGINT stops accepting but
then waits forever for the idle keep-alive connections nginx holds open.
So the worker handles SIGTERM/SIGINT itself:

1. stop accepting: the listening socket is closed (replaced by /dev/null on
   the same descriptor, so bjoern's event loop keeps a valid fd and simply
   never sees it readable again); connect() to it is now refused, and nginx
   moves to another worker;
2. answer every request that still arrives on an open connection, adding
   `Connection: close` so nginx drops that connection instead of reusing it,
   and report 503 on /readyz;
3. exit once no request has been in flight for DRAIN_QUIET seconds (counted
   from the end of the last one), or after SHUTDOWN_TIMEOUT seconds at the
   latest, and never while a request is being answered.

Python signal handlers run between bytecodes, so the drain's timer can fire
in the middle of a request's Python code; it then sees the request in flight
and leaves it alone until a later tick.
"""

import contextlib
import logging
import os
import signal
import sys
import time

log = logging.getLogger("worker")


class Lifecycle:
    """The worker's drain, and the bookkeeping it needs from every request.

    The app's one WSGI wrapper (app/wsgi.py) keeps `in_flight` and
    `last_request` here, adds `Connection: close` while `draining`, and
    calls `take_sigint` before the first request while `sigint_pending`;
    /readyz and /metrics read `draining`. Until `install`, it takes no
    signal and never drains: `no_drain()`."""

    def __init__(self, shutdown_timeout: float, drain_quiet: float):
        self.shutdown_timeout = shutdown_timeout
        self.drain_quiet = drain_quiet
        self.draining = False
        self.deadline = None
        self.listen_fd = None
        self.socket_path = None
        self.sigint_pending = False  # SIGINT to take back from bjoern (install)
        self.in_flight = 0  # requests being answered
        self.last_request = time.monotonic()  # when the last one ended

    def install(self, listen_fd: int, socket_path: str | None = None) -> None:
        """Take SIGTERM now and SIGINT once bjoern's loop runs; the quiet
        period is counted from now until a request has ended.

        bjoern's C code takes SIGINT for itself when its loop starts (its own
        handler stops accepting and also stops the timer that lets Python
        handlers run), so SIGINT is taken back from inside the loop, by a
        one-shot alarm whose handler runs on bjoern's first signal check.
        """
        self.listen_fd = listen_fd
        self.socket_path = socket_path
        self.last_request = time.monotonic()
        self.sigint_pending = True
        signal.signal(signal.SIGTERM, self.begin_drain)
        signal.signal(signal.SIGALRM, lambda signum, frame: self.take_sigint())
        signal.setitimer(signal.ITIMER_REAL, 0.01)

    def take_sigint(self) -> None:
        # Also done before the first request is answered, so a worker that has
        # answered its readiness probe is sure to drain on SIGINT.
        signal.signal(signal.SIGINT, self.begin_drain)
        self.sigint_pending = False

    def begin_drain(self, signum, frame):
        if self.draining:
            return
        self.draining = True
        self.deadline = time.monotonic() + self.shutdown_timeout
        log.info("signal %s: draining (at most %.1fs)", signal.Signals(signum).name, self.shutdown_timeout)
        devnull = os.open(os.devnull, os.O_RDONLY)
        os.dup2(devnull, self.listen_fd)
        os.close(devnull)
        if self.socket_path:
            # nginx's entrypoint lists the sockets in their directory: gone, it drops this worker.
            with contextlib.suppress(OSError):
                os.unlink(self.socket_path)
        signal.signal(signal.SIGALRM, self._tick)
        signal.siginterrupt(signal.SIGALRM, False)
        signal.setitimer(signal.ITIMER_REAL, 0.05, 0.05)

    def _tick(self, signum, frame):
        if self.in_flight:
            return  # this tick interrupted a request: never cut one short
        now = time.monotonic()
        if now - self.last_request >= self.drain_quiet:
            self._exit(f"drained: no request for {self.drain_quiet}s")
        elif now >= self.deadline:
            self._exit(f"shutdown timeout of {self.shutdown_timeout}s reached")

    def _exit(self, why: str):
        log.info("exiting, %s", why)
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        # bjoern's loop cannot be left from Python; no request is in flight (_tick).
        os._exit(0)


def no_drain() -> Lifecycle:
    """The lifecycle of an app served without the drain (tests; gunicorn and
    granian in the load test): never installed, so it takes no signal and
    never drains, while the wrapper keeps its books as in a worker."""
    return Lifecycle(shutdown_timeout=0.0, drain_quiet=0.0)

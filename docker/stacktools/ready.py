"""Wait until a server answers: the one poll loop of everything that starts a server
(`make up`, docker/stacktools/localstack.py, loadtest/floors.py, the tests);
and `stop`, the end of a server process started for a measurement.

    python3 -m stacktools.ready URL [URL ...] [--timeout S]   # 0 once each URL answers GET with 200

Standard library only: `make up` runs it with the system python3.
"""

import argparse
import subprocess
import sys
import time
import urllib.error
import urllib.request

# Readiness is asked of this machine's own servers: never through an http_proxy.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class NotReady(Exception):
    """What was waited for did not come in time, or the process that was to provide it died."""


def answers(url: str, timeout: float = 2.0) -> str | None:
    """None when GET `url` answers 200, else why not."""
    try:
        with _OPENER.open(url, timeout=timeout) as response:
            return None if response.status == 200 else f"HTTP {response.status}"
    except urllib.error.HTTPError as exc:
        return f"HTTP {exc.code}"
    except (urllib.error.URLError, OSError) as exc:
        return str(getattr(exc, "reason", exc))


def _check_alive(process, what: str) -> None:
    """NotReady when `process` (a subprocess.Popen, or None) has exited, with its output if piped."""
    if process is None or process.poll() is None:
        return
    output = process.stdout.read() if process.stdout is not None else ""
    if isinstance(output, bytes):
        output = output.decode(errors="replace")
    tail = "\n".join(output.splitlines()[-20:])
    raise NotReady(f"{what}: its process exited with code {process.returncode} before it was ready"
                   + (f"; its output ends:\n{tail}" if tail else ""))


def wait_for(predicate, timeout: float, what: str, process=None, interval: float = 0.1):
    """Poll `predicate()` until it returns something true, and return that: for what is
    not a server's answer (a file, a log line, a container). `what` completes "waiting for ...".

    NotReady after `timeout` seconds, or as soon as `process` has exited."""
    deadline = time.monotonic() + timeout
    while not (result := predicate()):
        _check_alive(process, what)
        if time.monotonic() >= deadline:
            raise NotReady(f"gave up waiting for {what} after {timeout:g} s")
        time.sleep(interval)
    return result


def wait_until_ready(target, timeout: float = 60.0, process=None, interval: float = 0.1,
                     what: str | None = None) -> None:
    """Until `target` is ready: a URL, or a list of URLs, each answering GET with 200;
    or a callable returning None when ready and otherwise why not.

    NotReady (saying what it last heard) after `timeout` seconds, or as soon as
    `process` (a subprocess.Popen) has exited, with the end of its output if piped."""
    if callable(target):
        check = target
        what = what or getattr(target, "__name__", "the check")
    else:
        urls = [target] if isinstance(target, str) else list(target)

        def check():
            return next((f"{url}: {why}" for url in urls if (why := answers(url)) is not None), None)

        what = what or ", ".join(urls)
    deadline = time.monotonic() + timeout
    while (why := check()) is not None:
        _check_alive(process, what)
        if time.monotonic() >= deadline:
            raise NotReady(f"{what} not ready after {timeout:g} s: {why}")
        time.sleep(interval)


def stop(process: subprocess.Popen, timeout: float = 15.0) -> None:
    """SIGTERM `process` and wait for it to end (a drain, callgrind writing its
    file); SIGKILL if it has not after `timeout` seconds."""
    if process.poll() is None:
        process.terminate()
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python3 -m stacktools.ready", description=__doc__.split("\n")[0])
    parser.add_argument("urls", nargs="+", metavar="URL")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds (default 60)")
    args = parser.parse_args(argv)
    try:
        wait_until_ready(args.urls, args.timeout, interval=0.5)
    except NotReady as exc:
        print(exc, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Traffic helpers shared by the end-to-end tests (local stack and compose stack)."""

import json
import subprocess
import threading
import time

import requests
from requests.adapters import HTTPAdapter
from urllib3.exceptions import ProtocolError
from urllib3.util.retry import Retry

BASE = "http://127.0.0.1:9000"


def readme_curl(text: str) -> tuple[str, str]:
    """The README's curl example with `text`: the label and the probability to 6 digits (the CLI's)."""
    out = subprocess.run(["curl", "-s", "-X", "POST", f"{BASE}/inferreview", "-d", f"text={text}"],
                         capture_output=True, text=True, timeout=10, check=True).stdout
    ((label, p),) = json.loads(out).items()
    return label, f"{p:.6g}"


def spread_over(read_counts, requests_sent: int = 400) -> list[int]:
    """Send requests through nginx; return how many each worker served.

    `read_counts()` gives every worker's predictions served (Stack.predictions)."""
    before = read_counts()
    session = requests.Session()
    for _ in range(requests_sent):
        assert session.post(f"{BASE}/inferreview", data={"text": "it was ok"}).status_code == 200
    return [after - b for after, b in zip(read_counts(), before, strict=True)]


class _RetryClosedConnection(Retry):
    """Retry a connection closed before the response; never a timeout (a hang must fail)."""

    def _is_read_error(self, err: Exception) -> bool:
        return isinstance(err, ProtocolError)


def keep_alive_client() -> requests.Session:
    """A session that behaves like a browser on a reused keep-alive connection.

    When the set of workers changes, nginx reloads; like any nginx reload that
    closes idle client keep-alive connections, and a request sent on one at
    that instant meets a closed socket before any response byte. HTTP clients
    retry exactly that case (RFC 9112 section 9.3.1); requests does not by
    default, so this session retries once. A request that got a response, of
    any status, is never retried, so every 5xx still counts as a failure."""
    session = requests.Session()
    retry = _RetryClosedConnection(total=1, connect=1, read=1, status=0, other=0, allowed_methods=None,
                  raise_on_status=False, respect_retry_after_header=False)
    session.mount("http://", HTTPAdapter(max_retries=retry))
    return session


def under_load(action, seconds_after: float, threads: int = 4) -> list:
    """Run `action` while `threads` clients send requests non-stop; every one must succeed."""
    results = [outcome for _, _, outcome in recorded_load(action, seconds_after, threads)]
    failures = [r for r in results if r != 200]
    assert len(results) > 200, f"only {len(results)} requests were sent"
    assert failures == [], f"{len(failures)} of {len(results)} failed: {failures[:5]}"
    return results


def recorded_load(action, seconds_after: float, threads: int = 4) -> list[tuple[float, float, object]]:
    """Like under_load, but every request is recorded and nothing is asserted:
    (start, seconds taken, status code or the exception's repr), times from
    when `action` began."""
    stop, records = threading.Event(), []
    t0 = [time.monotonic() + 3600.0]

    def client():
        session = keep_alive_client()
        while not stop.is_set():
            start = time.monotonic()
            try:
                outcome = session.post(f"{BASE}/inferreview", data={"text": "I love this product."},
                                       timeout=10).status_code
            except requests.RequestException as exc:
                outcome = repr(exc)
                session = keep_alive_client()
            records.append((start, time.monotonic() - start, outcome))
            time.sleep(0.002)

    clients = [threading.Thread(target=client) for _ in range(threads)]
    for c in clients:
        c.start()
    try:
        time.sleep(1.0)
        t0[0] = time.monotonic()
        action()
        time.sleep(seconds_after)
    finally:
        stop.set()
        for c in clients:
            c.join()
    return [(start - t0[0], took, outcome) for start, took, outcome in records]

"""Fault tests on the local stack (real nginx, real bjoern workers under
supervisord), each bounded in time, traffic to 127.0.0.1 only. Each prints
what it measured (requests lost, recovery); run with -s to see it."""

import collections
import contextlib
import http.client
import json
import os
import signal
import socket
import threading
import time

import pytest
import requests

from ..rawhttp import read_until_closed
from .stacks import ESTABLISHED, tcp_sockets
from .traffic import BASE, recorded_load

pytestmark = pytest.mark.usefixtures("local_stack")


def report(name, records):
    failed = [r for r in records if r[2] != 200]
    slowest = max(records, key=lambda r: r[1])
    print(f"\n{name}: {len(records)} requests, {len(failed)} failed, slowest {slowest[1]:.2f} s "
          f"(sent at {slowest[0]:+.2f} s)")
    return failed, slowest


def test_a_stopped_worker_is_timed_out_and_routed_around(local_stack):
    """SIGSTOP one worker for 8 s: its connections accept but never answer.
    nginx gives up on it after proxy_read_timeout (3 s), retries the request
    on the other worker and leaves the stopped one out (fail_timeout)."""
    name, victim = next(iter(local_stack.pids().items()))

    def stall():
        os.kill(victim, signal.SIGSTOP)
        time.sleep(8)

    try:
        records = recorded_load(stall, seconds_after=0.5)
    finally:
        os.kill(victim, signal.SIGCONT)
    failed, slowest = report("worker SIGSTOPped 8 s", records)
    assert failed == []
    assert slowest[1] < 4.5  # 3 s proxy_read_timeout, then the retry: recovery within 5 s
    # recovered: everything sent from 3.5 s after the stop on answered fast
    # (nginx tries the stopped worker again 5 s after it failed: at ~8 s)
    late = [took for start, took, _ in records if 3.5 < start < 7.5]
    assert late and max(late) < 1.0, max(late)
    assert local_stack.pid(name) == victim  # it was stopped, not replaced


def established(ports) -> int:
    """TCP connections the processes listening on `ports` hold open."""
    return sum(1 for _, port, state in tcp_sockets() if port in ports and state == ESTABLISHED)


def test_slow_clients_do_not_hold_the_workers(local_stack):
    """300 connections trickle a request header a byte at a time (slowloris) and
    60 send whole headers, then trickle their bodies, for longer than the 5 s
    of normal traffic that four clients send meanwhile. nginx holds them all:
    the normal requests are answered promptly, the workers hold no more
    connections than the four clients can open (a slow body passed through
    would hold one each) and serve exactly the normal requests; each slow body
    reaches a worker only once it is complete, and is answered then.

    The bound on the workers' connections is what the configuration allows:
    those open before, plus, for each nginx process (each keeps its own idle
    keep-alive connections to the workers), one per client request it can
    have in flight at once, at most the four clients'. The slow bodies
    outnumber that bound on any machine, so one connection each would show."""
    slow_headers, fast_clients = 300, 4
    body = b"text=" + b"slow+" * 8 + b"end"
    head = (b"POST /inferreview HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\n"
            b"Content-Length: %d\r\nConnection: close\r\n\r\n" % len(body))
    ports = [local_stack.port(w) for w in local_stack.workers()]
    held_before = established(ports)
    bound = held_before + local_stack.nginx_processes() * fast_clients
    slow_bodies = max(60, bound + 30)
    served_before = sum(local_stack.predictions())
    headers, bodies, sent, held = [], [], 1, []
    stop = threading.Event()
    try:
        for _ in range(slow_headers):
            headers.append(socket.create_connection(("127.0.0.1", 9000), timeout=10))
            headers[-1].sendall(b"POST /inferreview HTTP/1.1\r\nHost: x\r\n")
        for i in range(slow_bodies):  # 20 an address: nginx admits 64 requests in flight per address
            bodies.append(socket.create_connection(("127.0.0.1", 9000), timeout=10,
                                                   source_address=(f"127.0.0.{3 + i // 20}", 0)))
            bodies[-1].sendall(head + body[:sent])

        def trickle():
            nonlocal sent
            while not stop.wait(0.5):
                for s in headers:
                    with contextlib.suppress(OSError):  # nginx may give up on a header after client_header_timeout
                        s.sendall(b"X")
                if sent < len(body) - 1:  # the last byte waits for the end of the test
                    for s in bodies:
                        s.sendall(body[sent:sent + 1])
                    sent += 1

        def sample():
            for _ in range(16):
                held.append(established(ports))
                time.sleep(0.25)

        t = threading.Thread(target=trickle)
        t.start()
        try:
            records = recorded_load(sample, seconds_after=0.5, threads=fast_clients)
        finally:
            stop.set()
            t.join()
        served_meanwhile = sum(local_stack.predictions()) - served_before
        for s in bodies:
            s.sendall(body[sent:])
        answers = [read_until_closed(s) for s in bodies]
    finally:
        for s in headers + bodies:
            s.close()
    failed, slowest = report(f"{slow_headers} slow headers, {slow_bodies} slow bodies", records)
    print(f"worker connections: {held_before} before, at most {max(held)} meanwhile (bound {bound}); "
          f"slow bodies trickled for {sent * 0.5:.1f} s")
    assert failed == [] and len(records) > 200
    assert slowest[1] < 1.0  # answered promptly, not queued behind the slow clients
    assert max(held) <= bound, (held_before, bound, held)
    assert served_meanwhile == len(records)  # the workers served the normal requests, nothing else
    assert all(a.startswith(b"HTTP/1.1 200 ") and b'star"' in a for a in answers), answers[:3]
    assert sum(local_stack.predictions()) - served_before == len(records) + slow_bodies


def test_nginx_restart_recovers_within_5_seconds(local_stack):
    """nginx itself restarted under load: with one nginx there is no healthy
    proxy while it restarts, so requests sent then fail (connection refused);
    the measure is how long until requests succeed again."""
    records = recorded_load(lambda: local_stack.supervisorctl("restart", "nginx"), seconds_after=3)
    report("nginx restarted", records)
    after = sorted(r for r in records if r[0] > 0)
    last_failure = max((start for start, _, outcome in after if outcome != 200), default=0.0)
    print(f"nginx restarted: last failed request sent at {last_failure:.2f} s")
    assert last_failure < 5.0
    assert all(outcome == 200 for start, _, outcome in after if start > last_failure)
    assert requests.get(f"{BASE}/readyz", timeout=5).status_code == 200


def test_one_clients_heavy_batches_do_not_take_the_service_from_others(local_stack):
    """A client on 127.0.0.2 keeps 40 connections busy with legal but heavy
    /v1/predict batches (52 texts of 20 000 dots, ~1 MB, each dot a token) for
    15 s, re-sending at once whatever it is told; a client on 127.0.0.1 sends
    single reviews one after the other. nginx admits one batch per client
    address and sends the others' requests to a worker not computing it: the
    normal client is served, quickly; the flooder hears 429 with Retry-After."""
    batch = json.dumps({"texts": ["." * 20000] * 52}).encode()
    assert len(batch) < 1 << 20
    stop = threading.Event()
    flood, refusals, normal = collections.Counter(), {}, []
    pids = local_stack.pids()

    def flooder():
        conn = None
        while not stop.is_set():
            try:
                if conn is None:
                    conn = http.client.HTTPConnection("127.0.0.1", 9000, timeout=30,
                                                      source_address=("127.0.0.2", 0))
                conn.request("POST", "/v1/predict", batch, {"Content-Type": "application/json"})
                r = conn.getresponse()
                body = r.read()
                flood[r.status] += 1
                if r.status != 200:
                    refusals[r.status] = (r.getheader("Content-Type"), r.getheader("Retry-After"), body)
            except (OSError, http.client.HTTPException) as exc:
                flood[type(exc).__name__] += 1
                conn = None

    threads = [threading.Thread(target=flooder) for _ in range(40)]
    for t in threads:
        t.start()
    try:
        time.sleep(1.0)  # the flood is on
        conn = http.client.HTTPConnection("127.0.0.1", 9000, timeout=30)
        end = time.monotonic() + 15
        while time.monotonic() < end:
            start = time.monotonic()
            try:
                conn.request("POST", "/inferreview", "text=I+love+this+product.",
                             {"Content-Type": "application/x-www-form-urlencoded"})
                r = conn.getresponse()
                r.read()
                outcome = r.status
            except (OSError, http.client.HTTPException) as exc:
                outcome = type(exc).__name__
                conn = http.client.HTTPConnection("127.0.0.1", 9000, timeout=30)
            normal.append((outcome, time.monotonic() - start))
    finally:
        stop.set()
        for t in threads:
            t.join()
    served = sum(1 for outcome, _ in normal if outcome == 200)
    slowest = max(took for _, took in normal)
    print(f"\nflood of batches from 127.0.0.2 (40 connections, 15 s): normal client {served} of {len(normal)} "
          f"answered 200, slowest {slowest:.2f} s; flooder {dict(flood)}")
    assert len(normal) >= 20
    assert served >= 0.95 * len(normal), collections.Counter(outcome for outcome, _ in normal)
    assert slowest <= 3.0
    assert flood[200] > 0 and flood[429] > 10 * flood[200], flood  # served at its bound, the rest refused
    content_type, retry_after, body = refusals[429]
    assert (content_type, retry_after) == ("application/json", "1")
    assert json.loads(body)["title"] == "429 Too Many Requests"
    assert local_stack.pids() == pids  # no worker died or was restarted

"""Fault tests on the local stack (real nginx, real bjoern workers under
supervisord), each bounded in time, traffic to 127.0.0.1 only. Each prints
what it measured (requests lost, recovery); run with -s to see it."""

import os
import signal
import socket
import threading
import time

import pytest
import requests

from .test_local_stack import stack, supervisorctl, worker_pids  # noqa: F401 - the fixture
from .traffic import BASE, recorded_load, under_load


def report(name, records):
    failed = [r for r in records if r[2] != 200]
    slowest = max(records, key=lambda r: r[1])
    print(f"\n{name}: {len(records)} requests, {len(failed)} failed, slowest {slowest[1]:.2f} s "
          f"(sent at {slowest[0]:+.2f} s)")
    return failed, slowest


def test_a_stopped_worker_is_timed_out_and_routed_around():
    """SIGSTOP one worker for 8 s: its connections accept but never answer.
    nginx gives up on it after proxy_read_timeout (3 s), retries the request
    on the other worker and leaves the stopped one out (fail_timeout)."""
    name, victim = next(iter(worker_pids().items()))

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
    assert worker_pids()[name] == victim  # it was stopped, not replaced


def test_slow_clients_do_not_hold_the_workers():
    """300 connections trickle a request header a byte at a time (slowloris)
    while normal clients send requests: nginx holds the slow ones, the
    single-threaded workers never see them, no normal request fails."""
    slow = []
    stop = threading.Event()

    def trickle():
        for _ in range(300):
            s = socket.create_connection(("127.0.0.1", 9000), timeout=5)
            s.sendall(b"POST /inferreview HTTP/1.1\r\nHost: x\r\n")
            slow.append(s)
        while not stop.wait(0.5):
            for s in slow:
                try:
                    s.sendall(b"X")
                except OSError:
                    pass

    t = threading.Thread(target=trickle)
    t.start()
    try:
        records = under_load(lambda: time.sleep(4), seconds_after=0.5)
    finally:
        stop.set()
        t.join()
        for s in slow:
            s.close()
    print(f"\nslowloris, 300 connections: {len(records)} normal requests, 0 failed")
    assert len(slow) == 300


def test_nginx_restart_recovers_within_5_seconds():
    """nginx itself restarted under load: with one nginx there is no healthy
    proxy while it restarts, so requests sent then fail (connection refused);
    the measure is how long until requests succeed again."""
    records = recorded_load(lambda: supervisorctl("restart", "nginx"), seconds_after=3)
    failed, _ = report("nginx restarted", records)
    after = sorted(r for r in records if r[0] > 0)
    last_failure = max((start for start, _, outcome in after if outcome != 200), default=0.0)
    print(f"nginx restarted: last failed request sent at {last_failure:.2f} s")
    assert last_failure < 5.0
    assert all(outcome == 200 for start, _, outcome in after if start > last_failure)
    assert requests.get(f"{BASE}/readyz", timeout=5).status_code == 200

"""The event SSE resumes exactly, like `ghost events --from`: clients that disconnect after any
number of events and reconnect with Last-Event-ID see every seq once, in order, while other
processes keep appending. One real `ghost serve` for every example."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from web_support import Server, sse, start_server

WRITER = """
import sys, time
from events.store import Store
from events.types import Event
store = Store.open(sys.argv[1], create=True)
count, batch = int(sys.argv[2]), int(sys.argv[3])
fields = {"signal": "SIGTERM", "timeout": 1.0, "force": False}
for first in range(0, count, batch):
    store.append([Event("stop_requested", "feed-%d" % i, fields, time.time_ns(), 1)
                  for i in range(first, min(count, first + batch))])
store.close()
"""


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[Server, str]]:
    with tempfile.TemporaryDirectory(prefix="ghost-web-resume-") as base:
        env = {**os.environ, "GHOST_DATA_DIR": os.path.join(base, "data")}
        server = start_server(env)
        try:
            yield server, os.path.join(base, "data", "store")
        finally:
            server.stop()


def last_seq(server: Server) -> int:
    return int(server.http().get("/api/events?limit=0").json()["last"])


def consume(server: Server, after: int, take: int, until: int) -> list[int]:
    """A client that reads `take` events after `after` (or up to `until`), then hangs up."""
    seen: list[int] = []
    headers = {**server.auth, "Last-Event-ID": str(after)}
    with httpx.Client(base_url=server.url, headers=headers, timeout=30) as http, \
            http.stream("GET", "/api/events/stream") as response:
        assert response.status_code == 200
        for message in sse(response.iter_lines()):
            seen.append(int(message.id or 0))
            if len(seen) >= take or seen[-1] >= until:
                break
    return seen


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                HealthCheck.function_scoped_fixture])
@given(takes=st.lists(st.integers(1, 40), min_size=1, max_size=6),
       writers=st.integers(1, 2), batch=st.sampled_from([1, 3, 17]))
def test_reconnecting_anywhere_yields_every_seq_once_in_order(served, takes, writers, batch):
    server, store = served
    before = last_seq(server)
    count = 40
    expected_last = before + writers * count
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, store, str(count), str(batch)])
             for _ in range(writers)]
    seen: list[int] = []
    deadline = time.monotonic() + 90
    try:
        turn = 0
        while not seen or seen[-1] < expected_last:
            assert time.monotonic() < deadline, f"the client never caught up: {seen[-5:]}"
            take = takes[turn % len(takes)]
            turn += 1
            seen += consume(server, seen[-1] if seen else before, take, expected_last)
    finally:
        for proc in procs:
            proc.wait(60)
    assert [p.returncode for p in procs] == [0] * writers
    assert seen == list(range(before + 1, expected_last + 1))

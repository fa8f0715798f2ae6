"""The event feed resumes exactly: consumers that stop anywhere and resume with --from see every
seq once, in order, while other processes keep appending."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ghost.actions import audit

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
def data_dir() -> Iterator[str]:
    """One store for every example: each one appends more and resumes from where it was."""
    saved = os.environ.get("GHOST_DATA_DIR")
    with tempfile.TemporaryDirectory(prefix="ghost-feed-") as base:
        os.environ["GHOST_DATA_DIR"] = os.path.join(base, "data")
        try:
            from ghost import datadir as paths

            paths.prepare(create=True)
            yield os.environ["GHOST_DATA_DIR"]
        finally:
            if saved is None:
                os.environ.pop("GHOST_DATA_DIR", None)
            else:
                os.environ["GHOST_DATA_DIR"] = saved


def consume(after: int, take: int) -> list[int]:
    """What a consumer that processes `take` records and then stops sees, from `after`."""
    seen: list[int] = []
    for batch in audit.feed(after).batches:
        for event in batch:
            seen.append(event.seq)
            if len(seen) >= take:
                return seen
    return seen


@settings(max_examples=15)
@given(takes=st.lists(st.integers(1, 60), min_size=1, max_size=8),
       writers=st.integers(1, 2), batch=st.sampled_from([1, 3, 17]))
def test_resuming_anywhere_yields_every_seq_once_in_order(data_dir, takes, writers, batch):
    from ghost import datadir as paths

    store = os.path.join(data_dir, "store")
    start = audit.feed(0).batches
    before = max((e.seq for b in start for e in b), default=0)
    count = 60
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, paths.store_dir(data_dir),
                               str(count), str(batch)]) for _ in range(writers)]
    seen: list[int] = []
    deadline = time.monotonic() + 60
    try:
        turn = 0
        while True:
            assert time.monotonic() < deadline, f"the consumer never caught up: {seen[-5:]}"
            writing = any(p.poll() is None for p in procs)
            take = takes[turn % len(takes)]
            turn += 1
            got = consume(seen[-1] if seen else before, take)
            seen += got
            if not writing and len(got) < take:
                break  # the writers were done before this read and it found the end
    finally:
        for p in procs:
            p.kill()
            p.wait()
    assert [p.returncode for p in procs] == [0] * writers
    assert seen == list(range(before + 1, before + writers * count + 1))
    assert os.path.isdir(store)


def test_feed_follow_continues_after_the_backlog(data_dir):
    """--follow: the backlog in chunks, then what is committed later, with no seam."""
    from ghost import datadir as paths

    before = max((e.seq for b in audit.feed(0).batches for e in b), default=0)
    start = max(0, before - 5)
    feed = audit.feed(start, follow=True).batches
    seen = [e.seq for e in next(feed)]
    writer = subprocess.Popen([sys.executable, "-c", WRITER, paths.store_dir(data_dir), "30",
                               "4"])
    deadline = time.monotonic() + 60
    try:
        while len(seen) < before + 30 - start and time.monotonic() < deadline:
            seen += [e.seq for e in next(feed)]  # an empty batch means "nothing yet"
    finally:
        writer.kill()
        writer.wait()
        feed.close()
    assert seen == list(range(start + 1, before + 31))

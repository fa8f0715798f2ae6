"""Many real processes writing the log at once: nothing lost, nothing doubled, no gaps, each
writer's order kept; and a writer killed inside its transaction harms no one."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections import defaultdict

from events.store import Store
from events.types import Event, make
from projections.checkpoint import VIEWS, TaskView, load_tasks
from projections.tasks import EXITED_STATUS, rebuild

WRITERS = 8
EVENTS_EACH = 400

# One task per writer: spawned, stop requests, exited; one durable transaction per event,
# through the same views every ghost process keeps.
WRITER = """
    import sys
    from events.store import Store
    from events.types import make
    from projections.checkpoint import VIEWS
    path, writer, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
    store = Store.open(path, create=True, views=VIEWS)
    task = f"task-{writer}"
    print("ready", flush=True)
    sys.stdin.read(1)  # every writer starts at the same moment
    for n in range(count):
        if n == 0:
            event = make("spawned", task, command=["sleep", "1"], cwd="/", pid=1000 + n,
                         pgid=1000, start_ticks=n, boot_id="b", log_path="/dev/null", n=n)
        elif n == count - 1:
            event = make("exited", task, code=0, end_ns=n, n=n)
        else:
            event = make("stop_requested", task, signal="TERM", timeout=1.0, force=False, n=n)
        assert store.append([event])[0].task == task
    store.close()
"""


def start(code: str, *args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", textwrap.dedent(code), *args],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)


def stop_all(processes: list[subprocess.Popen]) -> None:
    for process in processes:
        process.kill()
        process.wait(10)


def test_many_writer_processes_lose_nothing_and_keep_their_order(tmp_path):
    path = str(tmp_path / "store")
    Store.open(path, create=True, views=VIEWS).close()
    writers = [start(WRITER, path, str(w), str(EVENTS_EACH)) for w in range(WRITERS)]
    try:
        for writer in writers:
            assert writer.stdout.readline() == "ready\n"
        for writer in writers:
            writer.stdin.write("g")
            writer.stdin.close()
        for writer in writers:
            assert writer.wait(60) == 0
    finally:
        stop_all(writers)

    store = Store.open(path, create=False, views=VIEWS)
    try:
        events = store.read()
        total = WRITERS * EVENTS_EACH
        assert [e.seq for e in events] == list(range(1, total + 1))  # gap-free, increasing
        assert all(isinstance(e, Event) and e.known for e in events)
        by_task: dict[str, list[int]] = defaultdict(list)
        for event in events:
            by_task[event.task].append(event.data["n"])
        # Each writer's events all present, once, in its program order.
        assert by_task == {f"task-{w}": list(range(EVENTS_EACH)) for w in range(WRITERS)}
        switches = sum(a.task != b.task for a, b in zip(events, events[1:], strict=False))
        assert switches >= WRITERS - 1  # they really did run side by side
        for w in range(WRITERS):
            assert store.task_events(f"task-{w}") == [e for e in events if e.task == f"task-{w}"]
        # The view every writer kept in its transactions equals a fold of the whole log.
        rows, applied = store.view(TaskView.name, TaskView.version)
        assert applied == total
        assert load_tasks(store) == rebuild(events)
        assert {t.id: t.status for t in load_tasks(store).values()} == {
            f"task-{w}": EXITED_STATUS for w in range(WRITERS)}
    finally:
        store.close()


HOLD_A_WRITE = """
    import sys
    from events import codec
    from events.store import Store, seq_key
    from events.types import make
    store = Store.open(sys.argv[1], create=True)
    store.append([make("lost", "before", reason=str(n)) for n in range(10)])
    txn = store._env.begin(write=True)  # the writer lock, held; the put is never committed
    txn.put(seq_key(11), codec.encode(make("lost", "never", reason="x").with_seq(11)),
            db=store._env.open_db(b"events", txn=txn))
    print("holding", flush=True)
    sys.stdin.read()
"""

APPEND_ONE = """
    import sys
    from events.store import Store
    from events.types import make
    store = Store.open(sys.argv[1], create=False)
    print(store.append([make("lost", "after", reason="x")])[0].seq, flush=True)
"""


def test_a_writer_killed_inside_its_transaction_loses_nothing_and_blocks_no_one(tmp_path):
    path = str(tmp_path / "store")
    holder = start(HOLD_A_WRITE, path)
    waiter = None
    try:
        assert holder.stdout.readline() == "holding\n"
        # The waiter queues behind the held writer lock (opening the store takes it too).
        # Whether or not it got there before the kill, the lock stays owned by the dead
        # writer until LMDB's robust mutex hands it on: the waiter must get it, promptly.
        waiter = start(APPEND_ONE, path)
        holder.kill()
        holder.wait(10)
        out, _ = waiter.communicate(timeout=10)
        assert waiter.returncode == 0 and out.strip() == "11"
    finally:
        stop_all([p for p in (holder, waiter) if p is not None])

    store = Store.open(path, create=False)
    try:
        assert store.append([make("lost", "later", reason="x")])[0].seq == 12
        events = store.read()
        assert [(e.seq, e.task) for e in events] == (
            [(n, "before") for n in range(1, 11)] + [(11, "after"), (12, "later")])
        assert [e.data["reason"] for e in events[:10]] == [str(n) for n in range(10)]
        assert store.task_events("never") == []
    finally:
        store.close()


def test_threads_opening_the_store_at_once_share_one_environment(data_dir):
    """`ghost serve` and `ghost ui` call actions from several threads: the first calls, all at
    once, must open the store once (LMDB allows one environment per file per process)."""
    import threading

    from support import run_json, wait_ended

    from ghost.state.store import close_stores, open_store

    wait_ended(run_json("true")["id"])  # a store to open
    for _ in range(5):
        close_stores()
        start = threading.Barrier(16)
        opened: list[object] = []

        def first_call(start: threading.Barrier, opened: list[object]) -> None:
            start.wait()
            opened.append(open_store(write=False))

        threads = [threading.Thread(target=first_call, args=(start, opened))
                   for _ in range(16)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert len(opened) == 16 and opened[0] is not None
        assert all(store is opened[0] for store in opened)
    close_stores()

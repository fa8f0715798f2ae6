"""`ghost history` and `ghost events`: the audit trail and the export feed, as users see them."""

from __future__ import annotations

import json
import os
import pwd
import signal
import subprocess
import sys

import pytest
from support import GHOST, ghost, run_json, text, wait_ended

from events import codec
from events.store import Store, seq_key
from events.types import Event

FIXTURE = os.path.join(os.path.dirname(__file__), "fixtures", "events_v1.jsonl")
A, B, C, D, E = ("11111111-aaaa-4aaa-8aaa-000000000001", "22222222-bbbb-4bbb-8bbb-000000000002",
                 "33333333-cccc-4ccc-8ccc-000000000003", "44444444-dddd-4ddd-8ddd-000000000004",
                 "55555555-eeee-4eee-8eee-000000000005")


def append(data_dir: str, events: list[Event]) -> list[Event]:
    """Write events straight into the store under `data_dir` (as another ghost would have)."""
    from ghost import datadir as paths
    from projections.checkpoint import VIEWS

    paths.prepare(create=True)
    store = Store.open(paths.store_dir(data_dir), create=True, views=VIEWS)
    assert store is not None
    try:
        return store.append(events)
    finally:
        store.close()


def overwrite(data_dir: str, seq: int, raw: bytes) -> None:
    """Put raw bytes at `seq` in the log, past every check (what disk corruption would do)."""
    import lmdb

    env = lmdb.open(os.path.join(data_dir, "store"), max_dbs=8, subdir=True)
    try:
        with env.begin(write=True) as txn:
            txn.put(seq_key(seq), raw, db=env.open_db(b"events", txn=txn))
    finally:
        env.close()


def load_fixture(data_dir: str) -> list[dict]:
    with open(FIXTURE) as f:
        rows = [json.loads(line) for line in f]
    for row in rows:
        done = append(data_dir, [Event(row["type"], row["task"], row["data"], row["time_ns"],
                                       row["v"])])
        assert done[0].seq == row["seq"]
    return rows


def lines(result: subprocess.CompletedProcess) -> list[str]:
    out, err = text(result)
    assert result.returncode == 0, err
    return out.splitlines()


def records(result: subprocess.CompletedProcess) -> list[dict]:
    return [json.loads(line) for line in lines(result)]


@pytest.fixture
def utc(env):
    return {**env, "TZ": "UTC"}


# -- schema evolution: the oldest events, read by today's code ----------------------------------

HISTORY_V1 = """\
Seq  Time                 Task      Event           Details
-----------------------------------------------------------
  1  2025-01-01 12:00:00  11111111  spawned         make build, pid 501, by alice via cli
  2  2025-01-01 12:00:02  22222222  spawned         python3 -m http.server 8000, pid 502, by alice via cli
  3  2025-01-01 12:01:30  11111111  exited          exit code 0, after 1m30s
  4  2025-01-01 12:02:00  22222222  stop_requested  SIGTERM, timeout 10s, by alice via cli
  5  2025-01-01 12:02:10  22222222  stop_requested  SIGKILL, timeout 10s, escalated, by alice via cli
  6  2025-01-01 12:02:10  22222222  killed          signal SIGKILL, after 2m08s
  7  2025-01-01 12:03:20  33333333  spawned         ./worker.sh --queue emails, pid 503, by alice via cli
  8  2025-01-01 13:00:00  33333333  lost            end unknown: the machine rebooted since the task started, by bob via reconcile
  9  2025-01-01 13:06:40  44444444  spawn_failed    command not found: nosuchcmd (exit code 127), nosuchcmd --flag, by alice via mcp
 10  2025-01-01 13:23:20  55555555  spawned         sh -c 'exit 3', pid 505, by alice via cli
 11  2025-01-01 13:23:21  55555555  exited          exit code 3, after 1.00s
 12  2025-01-02 12:00:00  55555555  cleaned         removed from the list, log deleted, by bob via cli
"""  # noqa: E501


def test_v1_fixture_reads_upcasts_and_projects_as_expected(data_dir, utc):
    rows = load_fixture(data_dir)
    assert ghost("history", env=utc).stdout.decode() == HISTORY_V1

    listed = records(ghost("list", "--json", env=utc))[0]
    assert [(t["id"], t["status"], t["exit_code"], t["signal"]) for t in listed] == [
        (C, "unknown", None, None), (B, "killed", None, "SIGKILL"), (A, "exited", 0, None)]
    assert listed[0]["reason"] == "the machine rebooted since the task started"
    assert listed[1]["started_at"] == "2025-01-01T12:00:02.000Z"
    assert listed[1]["finished_at"] == "2025-01-01T12:02:10.005Z"
    assert listed[2]["command"] == ["make", "build"] and listed[2]["cwd"] == "/srv/app"
    assert listed[2]["rusage"] == {"utime": 0.5, "stime": 0.25, "maxrss_kb": 10240}

    status = lines(ghost("status", B[:6], env=utc))
    assert "Status: killed (SIGKILL)" in status and "Signal: SIGKILL" in status
    assert "Duration: 2m08s" in status
    assert "Stop requested: SIGKILL by alice via cli at 2025-01-01 12:02:10" in status

    # cleaned and never-started tasks are out of the list but keep their whole history
    for task, why in ((E, "it was cleaned"), (D, "it failed to start")):
        result = ghost("status", task, env=utc)
        assert result.returncode == 1 and why in text(result)[1]
    assert [line.split()[4] for line in lines(ghost("history", E[:8], env=utc))[2:]] == [
        "spawned", "exited", "cleaned"]

    exported = records(ghost("events", env=utc))
    store_id = exported[0]["store"]
    assert len(store_id) == 32 and all(r["store"] == store_id for r in exported)
    for got, want in zip(exported, rows, strict=True):
        fields = {k: v for k, v in got.items()
                  if k not in ("seq", "time", "time_ns", "type", "task", "v", "store")}
        assert (got["seq"], got["type"], got["task"], got["v"], got["time_ns"], fields) == (
            want["seq"], want["type"], want["task"], want["v"], want["time_ns"], want["data"])
    assert exported[0]["time"] == "2025-01-01T12:00:00.000000Z"
    assert records(ghost("history", "--json", env=utc)) == exported


def test_unknown_types_and_newer_versions_are_shown_and_exported(data_dir, utc):
    load_fixture(data_dir)
    later = 1735732800 * 10**9 + 90_000 * 10**9
    append(data_dir, [
        Event("paused", A, {"reason": "maintenance", "env": {"TOKEN": "hunter2"}}, later, 1),
        Event("exited", B, {"code": 0, "end_ns": later, "exit_status": {"kind": "x"}},
              later + 1, 99),
    ])
    assert len(records(ghost("list", "--json", env=utc))[0]) == 3  # the view is unchanged
    table = lines(ghost("history", env=utc))
    assert table[-2].endswith("unknown (paused v1)  fields: reason")
    assert table[-1].split()[0] == "14" and "unknown (exited v99)" in table[-1]
    tail = records(ghost("events", "--from", "12", env=utc))
    assert [(r["seq"], r["type"], r["v"]) for r in tail] == [(13, "paused", 1), (14, "exited", 99)]
    assert tail[0]["reason"] == "maintenance" and "env" not in tail[0]
    assert tail[1]["exit_status"] == {"kind": "x"}
    assert "hunter2" not in ghost("events", env=utc).stdout.decode()
    assert "hunter2" not in ghost("history", "--json", env=utc).stdout.decode()


def test_corrupt_entries_are_reported_with_their_seq_not_fatal(data_dir, utc):
    load_fixture(data_dir)
    overwrite(data_dir, 13, b"\xc1 not msgpack")
    assert lines(ghost("history", env=utc))[-1].split()[:4] == [
        "13", "2025-01-02", "12:00:00", "?"]
    last = records(ghost("events", "--from", "12", env=utc))
    assert [(r["seq"], r["type"]) for r in last] == [(13, "corrupt")] and last[0]["reason"]
    assert ghost("list", env=utc).returncode == 0


# -- history of real tasks ------------------------------------------------------------------------

def test_history_of_a_stopped_task_names_who_stopped_it(data_dir, env):
    task = run_json("sleep", "30", env=env)["id"]
    assert ghost("stop", task, env=env).returncode == 0
    rows = lines(ghost("history", task[:8], env=env))
    assert rows[0].split() == ["Seq", "Time", "Task", "Event", "Details"]
    body = [r.split(None, 5) for r in rows[2:]]
    assert [r[4] for r in body] == ["spawned", "stop_requested", "killed"]
    assert [int(r[0]) for r in body] == sorted(int(r[0]) for r in body)
    assert all(r[3] == task[:8] for r in body)
    assert body[0][5].startswith("sleep 30, pid ")
    user = pwd.getpwuid(os.getuid()).pw_name
    assert body[1][5] == f"SIGTERM, timeout 10s, by {user} via cli"
    assert body[2][5].startswith("signal SIGTERM, after ")
    stop = records(ghost("history", task, "--type", "stop_requested", "--json", env=env))
    assert [r["actor"]["via"] for r in stop] == ["cli"]
    assert stop[0]["actor"]["user"] == user and stop[0]["actor"]["pid"] > 0


def test_cleaned_and_failed_tasks_stay_in_history(data_dir, env):
    done = run_json("true", env=env)["id"]
    wait_ended(done, env)
    assert ghost("cleanup", "--all", env=env).returncode == 0
    failed = ghost("run", "no-such-command-for-ghost", env=env)
    assert failed.returncode == 127
    kinds = [r.split()[4] for r in lines(ghost("history", env=env))[2:]]
    assert kinds == ["spawned", "exited", "cleaned", "spawn_failed"]
    assert lines(ghost("history", done, env=env))[-1].endswith(f"log deleted, by "
                                                              f"{pwd.getpwuid(os.getuid())[0]} "
                                                              "via cli")
    refused = records(ghost("history", "--type", "spawn_failed", "--json", env=env))
    assert refused[0]["error"] == "command not found: no-such-command-for-ghost"
    assert refused[0]["exit_code"] == 127
    assert lines(ghost("history", refused[0]["task"], env=env))[-1].split()[4] == "spawn_failed"


def test_since_until_and_type_filters(data_dir, utc):
    load_fixture(data_dir)

    def seqs(*args: str) -> list[int]:
        return [r["seq"] for r in records(ghost("history", "--json", *args, env=utc))]

    assert seqs("--since", "2025-01-01T13:00") == [8, 9, 10, 11, 12]  # local time is UTC here
    assert seqs("--until", "2025-01-01T12:02:10") == [1, 2, 3, 4, 5]  # 6 is 5 ms later
    assert seqs("--since", "2025-01-01T12:01:30Z", "--until", "2025-01-01T13:00:00+00:00") == [
        3, 4, 5, 6, 7, 8]
    assert seqs("--since", "2025-01-02") == [12]
    assert seqs("--type", "exited", "--type", "killed") == [3, 6, 11]
    assert seqs(C, "--since", "2025-01-01T12:30") == [8]
    assert seqs("--since", "2h") == []  # all of it is long ago
    empty = ghost("history", "--since", "yesterday", env=utc)
    assert (empty.returncode, empty.stdout) == (0, b"No events found.\n")

    bad = ghost("history", "--type", "paused", env=utc)
    assert bad.returncode == 2
    assert text(bad)[1] == ("Error: unknown event type 'paused'; known types: cleaned, exited, "
                            "gave_up, input_sent, killed, log_write_failed, lost, queued, "
                            "resized, restart_requested, restart_scheduled, spawn_failed, "
                            "spawned, stop_requested\n")
    backwards = ghost("history", "--since", "2025-01-02", "--until", "2025-01-01", env=utc)
    assert backwards.returncode == 2 and "is later than --until" in text(backwards)[1]
    garbage = ghost("history", "--since", "last tuesday-ish", env=utc)
    assert garbage.returncode == 2 and "'last tuesday-ish'" in text(garbage)[1]
    missing = ghost("history", "9999abcd", env=utc)
    assert missing.returncode == 1 and text(missing)[1] == "Error: task 9999abcd not found\n"


def test_bytes_that_are_not_utf8_come_out_as_replacement_characters(data_dir, utc):
    load_fixture(data_dir)
    argv = ["printf", "caf\udce9"]  # b"caf\xe9" from a Latin-1 terminal, as os.fsdecode keeps it
    append(data_dir, [Event("spawn_failed", D, {"command": argv, "cwd": "/", "error": "x",
                                                "exit_code": 1}, 1735819300 * 10**9, 1)])
    row = lines(ghost("history", "--type", "spawn_failed", env=utc))[-1]
    assert row.endswith("x (exit code 1), printf 'caf\ufffd'")
    exported = records(ghost("events", "--from", "12", env=utc))
    assert exported[0]["command"] == ["printf", "caf\ufffd"]


def test_empty_data_dir(data_dir, env):
    assert ghost("history", env=env).stdout == b"No events found.\n"
    assert ghost("events", env=env).stdout == b""
    assert not os.path.exists(data_dir)  # reading never creates the data dir


# -- the export feed ------------------------------------------------------------------------------

def test_events_resume_after_the_given_seq_and_msgpack_matches_jsonl(data_dir, utc):
    load_fixture(data_dir)
    every = records(ghost("events", env=utc))
    assert [r["seq"] for r in every] == list(range(1, 13))
    assert records(ghost("events", "--from", "5", env=utc)) == every[5:]
    assert records(ghost("events", "--from", "12", env=utc)) == []
    packed = ghost("events", "--format", "msgpack", env=utc)
    assert packed.returncode == 0
    assert list(codec.unpack_stream([packed.stdout])) == every
    past = ghost("events", "--from", "13", env=utc)
    assert past.returncode == 1
    assert "--from 13 is past the end of this event log (its last seq is 12)" in text(past)[1]
    assert ghost("events", "--from", "-1", env=utc).returncode == 2


WRITER = """
import sys, time
from events.store import Store
from events.types import Event
store = Store.open(sys.argv[1], create=True)
for i in range(int(sys.argv[2])):
    store.append([Event("stop_requested", "writer-%d" % (i % 7), {"signal": "SIGTERM",
                  "timeout": 1.0, "force": False}, time.time_ns(), 1)])
store.close()
"""


def test_events_from_in_chunks_during_concurrent_writes_sees_each_seq_once(data_dir, utc):
    load_fixture(data_dir)
    store_path = os.path.join(data_dir, "store")
    writers = [subprocess.Popen([sys.executable, "-c", WRITER, store_path, "150"])
               for _ in range(2)]
    seen: list[int] = []
    try:
        while True:
            writing = any(w.poll() is None for w in writers)
            chunk = records(ghost("events", "--from", str(seen[-1] if seen else 0), env=utc))
            seen += [r["seq"] for r in chunk[:40]]  # a consumer that stops after 40 records
            if not writing and len(chunk) <= 40:
                break
    finally:
        for w in writers:
            w.kill()
            w.wait()
    assert [w.returncode for w in writers] == [0, 0]
    assert seen == list(range(1, 12 + 300 + 1))


def test_follow_streams_new_events_and_ctrl_c_exits_130_quietly(data_dir, env):
    first = run_json("true", env=env)["id"]
    wait_ended(first, env)
    follower = subprocess.Popen([*GHOST, "events", "--follow", "--from", "1"], env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert json.loads(follower.stdout.readline())["type"] == "exited"
        second = run_json("sh", "-c", "exit 4", env=env)["id"]
        got = [json.loads(follower.stdout.readline()) for _ in range(2)]
        assert [(r["task"], r["type"]) for r in got] == [(second, "spawned"), (second, "exited")]
        assert got[1]["code"] == 4 and got[0]["seq"] == 3
        follower.send_signal(signal.SIGINT)
        assert follower.wait(timeout=10) == 130
        assert follower.stderr.read() == b""
    finally:
        follower.kill()
        follower.wait()


def test_follow_ends_quietly_when_the_reader_goes_away(data_dir, env):
    wait_ended(run_json("true", env=env)["id"], env)
    reader_r, reader_w = os.pipe()
    follower = subprocess.Popen([*GHOST, "events", "--follow"], env=env, stdout=reader_w,
                                stderr=subprocess.PIPE)
    os.close(reader_w)
    try:
        with os.fdopen(reader_r, "rb") as reader:
            assert json.loads(reader.readline())["type"] == "spawned"
        assert follower.wait(timeout=10) == 0  # no new event needed to notice
        assert follower.stderr.read() == b""
    finally:
        follower.kill()
        follower.wait()


def test_environment_values_never_leave_the_store(data_dir, env):
    task = run_json("-e", "SECRET=hunter2", "-e", "OTHER=swordfish", "sh", "-c",
                    'test ${#SECRET} = 7', env=env)["id"]
    assert wait_ended(task, env)["exit_code"] == 0  # the task did get the value
    outputs = [ghost(*args, env=env) for args in (
        ("history",), ("history", "--json"), ("history", task), ("events",),
        ("events", "--format", "msgpack"), ("list", "--json"), ("status", "--json", task))]
    for result in outputs:
        assert result.returncode == 0
        assert b"hunter2" not in result.stdout and b"swordfish" not in result.stdout
    spawned = records(ghost("events", env=env))[0]
    assert spawned["env_keys"] == ["OTHER", "SECRET"] and "env" not in spawned
    with open(os.path.join(data_dir, "store", "data.mdb"), "rb") as f:
        assert b"hunter2" not in f.read()


def test_history_of_one_task_does_not_scan_the_log(data_dir, utc):
    """One task's history reads its own events only: a corrupt entry elsewhere is not seen."""
    load_fixture(data_dir)
    overwrite(data_dir, 13, b"\xc1")
    assert "corrupt" in ghost("history", env=utc).stdout.decode()
    assert "corrupt" not in ghost("history", A, env=utc).stdout.decode()


def test_bench_quick_prints_its_table():
    result = subprocess.run([sys.executable, os.path.join(os.path.dirname(__file__), "..",
                                                          "bench", "history.py"), "--quick",
                             "--runs", "1"], capture_output=True, timeout=300)
    out = result.stdout.decode()
    assert result.returncode == 0, result.stderr.decode()
    assert "ghost history ID" in out and "ghost list --at MIDDLE" in out
    assert "events/s" in out and "20,000 events" in out

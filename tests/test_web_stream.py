"""Live streams of a real `ghost serve` (a subprocess on a free port): the event SSE, the output
SSE (resumed by byte offset, cut on character boundaries) and the WebSocket message flow."""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Iterator

import pytest
from support import ghost, wait_ended, wait_for
from web_support import Message, Server, run_task, sse, start_server


@pytest.fixture
def server(env) -> Iterator[Server]:
    srv = start_server(env)
    try:
        yield srv
    finally:
        srv.stop()


def read_until(messages: Iterator[Message], done, limit: float = 20) -> list[Message]:
    got: list[Message] = []
    end = time.monotonic() + limit
    for message in messages:
        got.append(message)
        if done(message, got):
            return got
        assert time.monotonic() < end, f"stream never finished: {got[-3:]}"
    raise AssertionError(f"stream ended early: {got[-3:]}")


def test_the_event_stream_carries_ghost_events_records_and_resumes(server, env):
    http = server.http()
    start = http.get("/api/tasks").json()["seq"]
    with http.stream("GET", f"/api/events/stream?from={start}") as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        messages = sse(response.iter_lines())
        task = run_task("sh", "-c", "exit 3", env=env)
        got = read_until(messages, lambda m, _: json.loads(m.data)["type"] == "exited")
    records = [m.json() for m in got]
    assert [r["task"] for r in records if r["type"] == "spawned"] == [task]
    assert records[-1]["code"] == 3 and [int(m.id) for m in got] == [r["seq"] for r in records]
    cli = [json.loads(line) for line in ghost("events", "--from", str(start), env=env)
           .stdout.decode().splitlines()]
    assert records == cli[:len(records)]
    # A client that saw only the first record resumes with Last-Event-ID: nothing missed.
    with http.stream("GET", "/api/events/stream",
                     headers={"Last-Event-ID": got[0].id}) as response:
        again = read_until(sse(response.iter_lines()),
                           lambda _, seen: len(seen) == len(got) - 1)
    assert [m.data for m in again] == [m.data for m in got[1:]]


def test_output_streams_live_ends_and_resumes_from_a_byte_offset(server, env):
    task = run_task("sh", "-c", "for i in 1 2 3 4 5; do echo line $i; sleep 0.1; done", env=env)
    http = server.http()
    with http.stream("GET", f"/api/tasks/{task}/output/stream") as response:
        got = read_until(sse(response.iter_lines()), lambda m, _: m.event == "end")
    output = [m for m in got if m.event == "output"]
    text = "".join(m.json()["data"] for m in output)
    assert text == "".join(f"line {i}\n" for i in range(1, 6))
    offsets = [m.json()["offset"] for m in output]
    assert offsets[0] == 0 and [int(m.id) for m in output][:-1] == offsets[1:]
    assert got[-1].json()["status"] == "exited" and got[-1].id == str(len(text))
    with http.stream("GET", f"/api/tasks/{task}/output/stream",
                     headers={"Last-Event-ID": "7"}) as response:
        rest = read_until(sse(response.iter_lines()), lambda m, _: m.event == "end")
    assert "".join(m.json()["data"] for m in rest if m.event == "output") == text[7:]


def test_output_is_cut_on_character_boundaries(server, env):
    # "é" is two bytes; the task writes them a moment apart.
    task = run_task("sh", "-c", "printf 'caf\\303'; sleep 0.3; printf '\\251!\\n'", env=env)
    with server.http().stream("GET", f"/api/tasks/{task}/output/stream") as response:
        got = read_until(sse(response.iter_lines()), lambda m, _: m.event == "end")
    pieces = [m.json()["data"] for m in got if m.event == "output"]
    assert "".join(pieces) == "café!\n" and all("\ufffd" not in p for p in pieces)


def test_many_clients_follow_one_task(server, env):
    task = run_task("sh", "-c", "sleep 0.5; for i in $(seq 1 50); do echo $i; done", env=env)
    import httpx

    expected = "".join(f"{i}\n" for i in range(1, 51))
    streams = []
    with httpx.Client(base_url=server.url, headers=server.auth, timeout=30) as http:
        try:
            for _ in range(8):
                streams.append(http.stream("GET", f"/api/tasks/{task}/output/stream"))
            texts = []
            for stream in streams:
                response = stream.__enter__()
                got = read_until(sse(response.iter_lines()), lambda m, _: m.event == "end")
                texts.append("".join(m.json()["data"] for m in got if m.event == "output"))
        finally:
            for stream in streams:
                stream.__exit__(None, None, None)
    assert texts == [expected] * 8


def test_websocket_messages(server, env):
    from websockets.sync.client import connect

    url = server.url.replace("http://", "ws://") + "/api/ws"
    with connect(url, additional_headers=server.auth, open_timeout=10) as ws:
        started = server.http().post("/api/tasks", json={
            "command": ["sh", "-c", "echo hello; sleep 30"]}).json()

        pending: list[dict] = []  # received, not yet asked for: the order between the
        # event feed's messages and replies to requests is not fixed

        def receive(kind: str) -> dict:
            end = time.monotonic() + 20
            while time.monotonic() < end:
                for message in pending:
                    if message["type"] == kind:
                        pending.remove(message)
                        return message
                pending.append(json.loads(ws.recv(timeout=20)))
            raise AssertionError(f"no {kind} in {pending}")

        spawned = receive("process.spawned")
        assert spawned["id"] == started["id"] and spawned["pid"] == started["pid"]
        ws.send(json.dumps({"type": "subscribe", "id": started["id"][:8]}))
        assert receive("subscribed")["id"] == started["id"]
        output = receive("process.output")
        assert output["data"] == "hello\n" and output["offset"] == 0
        ws.send(json.dumps({"type": "process.write", "id": started["id"], "data": "x",
                            "ref": 7}))
        refusal = receive("error")
        assert refusal["ref"] == 7 and refusal["code"] == "no_input"
        ws.send("{not json")
        assert receive("error")["code"] == "bad_json"
        ws.send(json.dumps({"type": "process.kill", "id": started["id"], "ref": "k"}))
        assert receive("process.killed")["signal"] == "SIGKILL"
        exited = receive("process.exited")
        assert exited["status"] == "killed" and exited["signal"] == "SIGKILL"
        ok = receive("ok")
        assert ok["ref"] == "k" and ok["status"] == "killed"
        assert receive("unsubscribed")["reason"] == "ended"
    history = ghost("history", started["id"], env=env).stdout.decode()
    assert "web" in history


def test_the_server_stops_promptly_with_streams_open(server, env):
    task = run_task("sleep", "30", env=env)
    http = server.http()
    with http.stream("GET", f"/api/tasks/{task}/output/stream"), \
            http.stream("GET", "/api/events/stream"):
        server.proc.send_signal(signal.SIGTERM)
        wait_for(lambda: server.proc.poll() is not None, 10, message="the server to exit")
    assert server.proc.returncode == 0
    ghost("kill", task, env=env)
    wait_ended(task, env)


def test_restart_starts_the_task_again(server, env):
    # Against a real server: restarting makes the caller stand in for the task's monitor for
    # a moment, which must never be this test's own process.
    http = server.http()
    task = http.post("/api/tasks", json={"command": ["sh", "-c", "echo run; sleep 30"]}).json()
    response = http.post(f"/api/tasks/{task['id']}/restart", json={"timeout": 5})
    assert response.status_code == 200, response.text
    again = response.json()
    assert again["status"] == "running" and again["id"] == task["id"]
    assert again["pid"] != task["pid"]
    assert server.proc.poll() is None


def test_websocket_input_reaches_a_terminal_task(server, env):
    from websockets.sync.client import connect

    http = server.http()
    task = http.post("/api/tasks", json={
        "command": ["sh", "-c", "stty size; read n; echo hello $n"], "pty": True, "cols": 70,
        "rows": 20}).json()
    assert http.get(f"/api/tasks/{task['id']}").json().get("input") == "pty"
    url = server.url.replace("http://", "ws://") + "/api/ws"
    seen = ""
    with connect(url, additional_headers=server.auth, open_timeout=10) as ws:
        ws.send(json.dumps({"type": "process.resize", "id": task["id"], "cols": 90, "rows": 30,
                            "ref": 1}))
        ws.send(json.dumps({"type": "subscribe", "id": task["id"]}))
        ws.send(json.dumps({"type": "process.write", "id": task["id"], "data": "ann\r",
                            "ref": 2}))
        replies = {}
        end = time.monotonic() + 20
        while "hello ann" not in seen or len(replies) < 2:
            assert time.monotonic() < end, (seen, replies)
            message = json.loads(ws.recv(timeout=20))
            if message["type"] == "process.output":
                seen += message["data"]
            elif message["type"] in ("ok", "error"):
                replies[message["ref"]] = message
    assert replies[1]["type"] == "ok" and replies[2] == {"type": "ok", "ref": 2,
                                                           "id": task["id"], "bytes": 4}
    assert "hello ann" in seen

"""The HTTP API on Starlette's TestClient: every route, what it returns, and every error case,
with real tasks (real processes, real LMDB in tmp_path)."""

from __future__ import annotations

import base64
import json
import sys

import pytest
from support import ghost, status_json, wait_ended, wait_for
from web_support import client

from ghost.web.app import routes

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="ghost runs on Linux")


@pytest.fixture(autouse=True)
def _in_process(data_dir):
    """The app runs in this process: close its store before the fixture's clean-up reads it."""
    yield
    from ghost.state.store import close_stores

    close_stores()


def start(api, *command: str, **extra) -> dict:
    response = api.post("/api/tasks", json={"command": list(command), **extra})
    assert response.status_code == 201, response.text
    return response.json()


def error(response, status: int, code: str) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"} and body["error"]["code"] == code, body
    assert "Traceback" not in response.text
    return str(body["error"]["message"])


def test_start_list_get_and_the_event_says_web_and_the_peer(data_dir, env, tmp_path):
    api = client()
    task = start(api, "sh", "-c", "echo started; sleep 30", cwd=str(tmp_path),
                 env={"GREETING": "secret-value"})
    assert task["status"] == "running" and task["cwd"] == str(tmp_path)
    listed = api.get("/api/tasks").json()
    assert [t["id"] for t in listed["tasks"]] == [task["id"]] and listed["total"] == 1
    assert listed["seq"] >= 1
    one = api.get(f"/api/tasks/{task['id'][:6]}").json()
    assert one["id"] == task["id"] and one["pid"] == task["pid"]
    assert api.get("/api/tasks?status=exited").json()["tasks"] == []
    assert api.get("/api/tasks?group=default").json()["total"] == 1
    history = api.get(f"/api/tasks/{task['id']}/history").json()["events"]
    spawned = history[0]
    assert spawned["type"] == "spawned" and spawned["actor"]["via"] == "web"
    assert spawned["actor"]["remote"].startswith("testclient:")
    assert "secret-value" not in json.dumps(history)  # env values never leave the store
    # The CLI sees the same task.
    assert status_json(task["id"], env)["status"] == "running"


def test_a_command_line_is_split_like_the_cli_does(data_dir):
    api = client()
    response = api.post("/api/tasks", json={"command": "sh -c 'echo \"a b\"'"})
    assert response.status_code == 201, response.text
    task = response.json()
    assert task["command"] == ["sh", "-c", 'echo "a b"']
    wait_ended(task["id"])
    out = api.get(f"/api/tasks/{task['id']}/output").json()
    assert out["data"] == "a b\n" and out["end"] == 4 and out["running"] is False


def test_output_ranges_offsets_and_base64(data_dir):
    api = client()
    task = start(api, "printf", "0123456789\\377")
    wait_ended(task["id"])
    out = api.get(f"/api/tasks/{task['id']}/output?offset=3&limit=4").json()
    assert (out["offset"], out["end"], out["size"], out["data"]) == (3, 7, 11, "3456")
    raw = api.get(f"/api/tasks/{task['id']}/output?encoding=base64&offset=9").json()
    assert base64.b64decode(raw["data"]) == b"9\xff"
    past = api.get(f"/api/tasks/{task['id']}/output?offset=500").json()
    assert past["data"] == "" and past["end"] == 500
    for query in ("offset=-1", "limit=x", f"limit={1 << 21}", "encoding=latin1", "since=1h",
                  "stream=stderr"):
        error(api.get(f"/api/tasks/{task['id']}/output?{query}"), 422, "invalid")


def test_stop_kill_and_cleanup(data_dir, env):
    api = client()
    term = start(api, "sleep", "30")
    stopped = api.post(f"/api/tasks/{term['id']}/stop", json={"timeout": 5})
    assert stopped.status_code == 200 and stopped.json()["status"] == "killed"
    assert stopped.json()["signal"] == "SIGTERM"
    killed = start(api, "sleep", "30")
    response = api.post(f"/api/tasks/{killed['id']}/kill")
    assert response.json()["signal"] == "SIGKILL"
    error(api.post(f"/api/tasks/{killed['id']}/kill"), 409, "not_running")
    error(api.post(f"/api/tasks/{killed['id']}/stop"), 409, "not_running")
    running = start(api, "sleep", "30")
    error(api.delete(f"/api/tasks/{running['id']}"), 409, "running")
    done = api.delete(f"/api/tasks/{killed['id']}")
    assert done.status_code == 200 and done.json() == {"cleaned": [killed["id"]]}
    error(api.get(f"/api/tasks/{killed['id']}"), 404, "not_found")
    error(api.delete(f"/api/tasks/{killed['id']}"), 404, "not_found")
    history = ghost("history", killed["id"], env=env).stdout.decode()
    assert "cleaned" in history and "web" in history


def test_restart_write_and_resize_answer_with_the_actions_refusals(data_dir):
    api = client()
    task = start(api, "sleep", "30")
    for verb, body in (("write", {"data": "hi\n"}), ("resize", {"cols": 80, "rows": 24})):
        response = api.post(f"/api/tasks/{task['id']}/{verb}", json=body)
        assert response.status_code == 409, response.text  # takes no input / not supported
        assert response.json()["error"]["code"] == "no_input"
    error(api.post(f"/api/tasks/{task['id']}/resize", json={"cols": "80"}), 422, "invalid")
    error(api.post(f"/api/tasks/{task['id']}/write", json={"data": 5}), 422, "invalid")
    error(api.post(f"/api/tasks/{task['id']}/write", json={"data": "%%", "encoding": "base64"}),
          422, "invalid")
    error(api.post(f"/api/tasks/{task['id']}/explode"), 404, "not_found")


@pytest.mark.parametrize("body, status, code", [
    (b"{not json", 400, "bad_json"),
    (b"\xff\xfe", 400, "bad_json"),
    (b"[1, 2]", 422, "invalid"),
    (b"{}", 422, "invalid"),
    (b'{"command": []}', 422, "invalid"),
    (b'{"command": [1]}', 422, "invalid"),
    (b'{"command": "a \'b"}', 422, "invalid"),
    (b'{"command": ["true"], "cwd": 5}', 422, "invalid"),
    (b'{"command": ["true"], "cwd": "/no/such/dir"}', 422, "invalid"),
    (b'{"command": ["true"], "env": {"A": 1}}', 422, "invalid"),
    (b'{"command": ["true"], "env": {"": "x"}}', 422, "invalid"),
    (b'{"command": ["true"], "env": {"A": "x\\u0000y"}}', 422, "invalid"),
    (b'{"command": ["no-such-program-xyz"]}', 422, "invalid"),
    (b'{"command": ["true"], "pty": "yes"}', 422, "invalid"),
    (b'{"command": ["true"], "pty": true, "stdin": true}', 422, "invalid"),
    (b'{"command": ["true"], "cols": 80}', 422, "invalid"),
])
def test_bad_start_requests(data_dir, body, status, code):
    api = client()
    message = error(api.post("/api/tasks", content=body,
                             headers={"Content-Type": "application/json"}), status, code)
    assert "x\0y" not in message  # a value is never echoed


def test_bodies_are_capped(data_dir):
    api = client()
    big = b'{"command": ["true"], "pad": "' + b"x" * (1 << 20) + b'"}'
    error(api.post("/api/tasks", content=big), 413, "too_large")

    def chunks():
        yield big  # no Content-Length: the cap is counted while reading

    error(api.post("/api/tasks", content=chunks()), 413, "too_large")


def test_unknown_tasks_and_bad_parameters(data_dir):
    api = client()
    start(api, "true")
    error(api.get("/api/tasks/ffffffff"), 404, "not_found")
    error(api.get("/api/tasks/ffffffff/output"), 404, "not_found")
    error(api.get("/api/tasks/ffffffff/history"), 404, "not_found")
    error(api.post("/api/tasks/ffffffff/stop"), 404, "not_found")
    error(api.get("/api/tasks?status=sleeping"), 422, "invalid")
    error(api.post(f"/api/tasks/{'a' * 200}/stop"), 404, "not_found")
    error(api.get("/api/nothing-here"), 404, "not_found")
    error(api.put("/api/tasks"), 405, "method_not_allowed")
    error(api.post("/api/tasks/ffffffff/stop", json={"timeout": -1}), 422, "invalid")
    error(api.post("/api/tasks/ffffffff/stop", json={"timeout": True}), 422, "invalid")


def test_each_refusal_of_an_action_has_its_status():
    # Random ids rarely share a prefix, so the mapping is checked on the errors themselves.
    from ghost.errors import AmbiguousTask, GhostError, TaskNotFound
    from ghost.web.errors import from_ghost

    cases = [(TaskNotFound("abcd"), 404), (AmbiguousTask("abcd", ["abcd1", "abcd2"]), 400),
             (GhostError("task x is not running (exited with code 0)"), 409),
             (GhostError("task x takes no input (start it with --pty or --stdin)"), 409),
             (GhostError("invalid --env #1", 2), 422), (GhostError("command not found: x", 127),
                                                          422),
             (GhostError("no space left", 74), 507), (GhostError("store is read-only"), 500)]
    assert [(from_ghost(exc).status) for exc, _ in cases] == [status for _, status in cases]


def test_the_event_feed_is_ghost_events(data_dir, env):
    api = client()
    task = start(api, "true")
    wait_ended(task["id"])
    feed = api.get("/api/events?from=0").json()
    cli = [json.loads(line) for line in ghost("events", env=env).stdout.decode().splitlines()]
    assert feed["events"] == cli and feed["last"] == cli[-1]["seq"]
    page = api.get("/api/events?from=1&limit=1").json()
    assert [e["seq"] for e in page["events"]] == [2] and page["next"] == 2
    error(api.get(f"/api/events?from={feed['last'] + 5}"), 422, "invalid")
    error(api.get("/api/events?from=x"), 422, "invalid")
    error(api.get("/api/events?limit=100000"), 422, "invalid")


def test_openapi_describes_every_api_route(data_dir):
    doc = client(token="").get("/api/openapi.json").json()  # no token needed for it
    assert doc["openapi"].startswith("3.")
    described = {path for path in doc["paths"]}
    for route in routes():
        path = getattr(route, "path", "")
        if path.startswith("/api/") and "{verb" not in path and path != "/api/openapi.json":
            assert path in described, path
    for verb in ("stop", "kill", "restart", "write", "resize"):
        assert f"/api/tasks/{{id}}/{verb}" in described


def test_the_dashboard_is_served_with_a_strict_policy(data_dir):
    api = client(token="")
    page = api.get("/")
    assert page.status_code == 200 and "<title>ghost</title>" in page.text
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert page.headers["x-frame-options"] == "DENY"
    for asset in ("/static/app.js", "/static/app.css", "/static/vendor/xterm.js",
                  "/static/vendor/xterm.css", "/static/vendor/LICENSE-xterm"):
        assert api.get(asset).status_code == 200, asset
    assert api.get("/static/../security.py").status_code == 404


def test_a_terminal_task_takes_input_and_resizes(data_dir):
    api = client()
    response = api.post("/api/tasks", json={
        "command": ["sh", "-c", "stty size; read line; stty size; echo got:$line"],
        "pty": True, "cols": 100, "rows": 30})
    assert response.status_code == 201, response.text
    task = response.json()
    assert api.get(f"/api/tasks/{task['id']}").json().get("input") == "pty"
    output = f"/api/tasks/{task['id']}/output"
    # the first size is read before the resize: otherwise the shell may see only the new one
    wait_for(lambda: "30 100" in api.get(output).json()["data"])
    resized = api.post(f"/api/tasks/{task['id']}/resize", json={"cols": 90, "rows": 20})
    assert resized.status_code == 200, resized.text
    error(api.post(f"/api/tasks/{task['id']}/resize", json={"cols": 0, "rows": 20}), 422,
          "invalid")
    sent = api.post(f"/api/tasks/{task['id']}/write", json={"data": "abc\n"})
    assert sent.status_code == 200 and sent.json()["bytes"] == 4, sent.text
    wait_ended(task["id"])
    out = api.get(output).json()["data"]
    assert "30 100" in out and "20 90" in out and "got:abc" in out
    error(api.post(f"/api/tasks/{task['id']}/write", json={"data": "late"}), 409, "no_input")


def test_streams_refuse_bad_cursors_before_streaming(data_dir):
    api = client()
    task = start(api, "true")
    error(api.get("/api/events/stream?from=x"), 422, "invalid")
    error(api.get("/api/events/stream", headers={"Last-Event-ID": "99999"}), 422, "invalid")
    error(api.get(f"/api/tasks/{task['id']}/output/stream?offset=-5"), 422, "invalid")
    error(api.get("/api/tasks/ffffffff/output/stream"), 404, "not_found")


def test_supervision_options_go_through_runs_checks(data_dir):
    api = client()
    task = start(api, "sleep", "30", name="web1", group="demo")
    assert (task["name"], task["group"]) == ("web1", "demo")
    for body in ({"name": "bad name!"}, {"restart": "sometimes"}, {"group": 5},
                 {"after": "abcd"}, {"max_restarts": "3"}):
        error(api.post("/api/tasks", json={"command": ["true"], **body}), 422, "invalid")


def test_output_with_times_and_streams_of_an_indexed_task(data_dir):
    api = client()
    response = api.post("/api/tasks", json={
        "command": ["sh", "-c", "echo out; echo err >&2"], "timestamps": True})
    assert response.status_code == 201, response.text
    task = response.json()
    wait_ended(task["id"])
    plain = api.get(f"/api/tasks/{task['id']}/output").json()
    assert sorted(plain["data"].splitlines()) == ["err", "out"]
    stamped = api.get(f"/api/tasks/{task['id']}/output?timestamps=1").json()
    assert "error" not in stamped, stamped
    lines = stamped["data"].splitlines()
    assert len(lines) == 2 and all(line[:2] == "20" and line[10] == "T" for line in lines)
    assert api.get(f"/api/tasks/{task['id']}/output?stream=stderr").json()["data"] == "err\n"
    assert api.get(f"/api/tasks/{task['id']}/output?stream=stdout").json()["data"] == "out\n"
    future = api.get(f"/api/tasks/{task['id']}/output?since=2200-01-01T00:00:00Z").json()
    assert future["data"] == ""
    error(api.get(f"/api/tasks/{task['id']}/output?stream=pty"), 422, "invalid")
    error(api.get(f"/api/tasks/{task['id']}/output?since=yesterday-ish"), 422, "invalid")


@pytest.mark.parametrize("io", [{"pty": True}, {"stdin": True}, {"timestamps": True}])
def test_the_output_of_a_task_just_started_is_there_and_empty(data_dir, io):
    # A pumped task's log used to be created by its waiter, a moment after `run` returned.
    api = client()
    task = start(api, "sleep", "30", **io)
    first = api.get(f"/api/tasks/{task['id']}/output")
    assert first.status_code == 200 and first.json()["data"] == "", first.text
    assert ghost("log", task["id"]).returncode == 0
    assert api.post(f"/api/tasks/{task['id']}/kill").status_code == 200
    wait_ended(task["id"])

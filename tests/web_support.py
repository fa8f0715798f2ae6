"""Helpers for the `ghost serve` tests: an app under TestClient, a real server, SSE parsing."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
from support import GHOST, pid_alive, wait_for

PORT = 7766


def client(token: str | None = None, host: str = f"127.0.0.1:{PORT}", **kwargs: Any):
    """A TestClient of a fresh app (for the data dir in $GHOST_DATA_DIR) that sends `token`."""
    from starlette.testclient import TestClient

    from ghost import datadir
    from ghost.web.app import create_app
    from ghost.web.security import allowed_hosts, load_token

    base = datadir.prepare(create=True)
    real = load_token(base)
    app = create_app(real, allowed_hosts("127.0.0.1", PORT))
    headers = {"Authorization": f"Bearer {real if token is None else token}"} if token != "" \
        else {}
    return TestClient(app, base_url=f"http://{host}", headers=headers, **kwargs)


@dataclass
class Server:
    proc: subprocess.Popen[bytes]
    url: str  # http://127.0.0.1:PORT
    token: str

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def http(self, **kwargs: Any) -> httpx.Client:
        return httpx.Client(base_url=self.url, headers=self.auth, timeout=30, **kwargs)

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
        if self.proc.stdout is not None:
            self.proc.stdout.close()


def start_server(env: dict[str, str], *args: str) -> Server:
    """`ghost serve --port 0` as a real process; its URL and token from its first line."""
    proc = subprocess.Popen([*GHOST, "serve", "--port", "0", *args], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    assert proc.stdout is not None
    line = proc.stdout.readline().decode()
    match = re.search(r"(http://[^/]+)/\?token=(\S+)", line)
    if match is None:
        proc.kill()
        proc.wait()
        raise AssertionError(f"ghost serve printed {line!r}")
    server = Server(proc, match.group(1), match.group(2))
    wait_for(lambda: _answers(server), 20, message="ghost serve to answer")
    return server


def _answers(server: Server) -> bool:
    try:
        return httpx.get(server.url + "/api/openapi.json", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


@dataclass
class Message:
    id: str | None
    event: str
    data: str

    def json(self) -> Any:
        return json.loads(self.data)


def sse(lines: Iterator[str]) -> Iterator[Message]:
    """Server-Sent Events from a stream of lines (comments and `retry:` skipped)."""
    fields: dict[str, str] = {}
    for line in lines:
        if line == "":
            if "data" in fields:
                yield Message(fields.get("id"), fields.get("event", "message"), fields["data"])
            fields = {}
            continue
        if line.startswith(":"):
            continue
        name, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        if name == "data" and "data" in fields:
            fields["data"] += "\n" + value
        elif name in ("id", "event", "data"):
            fields[name] = value


def run_task(*command: str, env: dict[str, str]) -> str:
    result = subprocess.run([*GHOST, "run", "--json", *command], env=env, capture_output=True,
                            timeout=60)
    assert result.returncode == 0, result.stderr.decode()
    return str(json.loads(result.stdout.decode().splitlines()[0])["id"])


def wait_gone(pid: int, timeout: float = 10) -> None:
    wait_for(lambda: not pid_alive(pid), timeout, message=f"pid {pid} to end")


def deadline(seconds: float) -> float:
    return time.monotonic() + seconds


PYTHON = sys.executable

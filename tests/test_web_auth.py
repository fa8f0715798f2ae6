"""Who may use `ghost serve`: the token (file, Bearer, cookie), the Host allow-list, the Origin
check on WebSockets and state-changing requests, and the refusals of `ghost serve` itself."""

from __future__ import annotations

import os
import stat
import subprocess
import sys

import pytest
from starlette.websockets import WebSocketDisconnect
from support import GHOST, ghost, text
from web_support import PORT, client

from ghost.web.security import COOKIE, load_token, token_path

ORIGIN = f"http://127.0.0.1:{PORT}"
WS = f"ws://127.0.0.1:{PORT}/api/ws"


@pytest.fixture(autouse=True)
def _in_process(data_dir):
    yield
    from ghost.state.store import close_stores

    close_stores()


def refused(response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    assert response.json()["error"]["code"] == code


def test_the_token_file_is_private_and_kept(data_dir):
    from ghost import datadir

    base = datadir.prepare(create=True)
    token = load_token(base)
    st = os.lstat(token_path(base))
    assert stat.S_IMODE(st.st_mode) == 0o600 and stat.S_ISREG(st.st_mode)
    assert len(token) >= 40 and load_token(base) == token
    assert load_token(base, renew=True) != token


def test_an_unsafe_token_file_is_refused(data_dir, tmp_path):
    from ghost import datadir
    from ghost.errors import GhostError

    base = datadir.prepare(create=True)
    path = token_path(base)
    target = tmp_path / "elsewhere"
    target.write_text("x" * 50)
    os.symlink(target, path)
    with pytest.raises(GhostError, match="symlink"):
        load_token(base)
    os.unlink(path)
    with open(path, "w") as f:
        f.write("y" * 50)
    os.chmod(path, 0o644)
    with pytest.raises(GhostError, match="0600"):
        load_token(base)


@pytest.mark.parametrize("path", ["/api/tasks", "/api/events", "/api/tasks/abcd",
                                  "/api/events/stream", "/api/tasks/abcd/output/stream"])
def test_no_token_or_a_wrong_one_is_401(data_dir, path):
    refused(client(token="").get(path), 401, "unauthorized")
    refused(client(token="wrong").get(path), 401, "unauthorized")
    refused(client(token="").get(path, headers={"Authorization": "Basic abc"}), 401,
            "unauthorized")
    response = client(token="").get(path, headers={"Authorization": "Bearer nope"})
    assert response.headers["www-authenticate"] == "Bearer"


def test_a_start_without_the_token_starts_nothing(data_dir):
    refused(client(token="").post("/api/tasks", json={"command": ["true"]}), 401,
            "unauthorized")
    assert not os.path.exists(os.path.join(data_dir, "logs")) or \
        os.listdir(os.path.join(data_dir, "logs")) == []


@pytest.mark.parametrize("host", ["evil.example:7766", "127.0.0.1:9999", "localhost",
                                  "127.0.0.1.nip.io:7766"])
def test_a_foreign_host_header_is_403(data_dir, host):
    refused(client(host=host).get("/api/tasks"), 403, "bad_host")
    refused(client(token="", host=host).get("/"), 403, "bad_host")  # DNS rebinding


def test_localhost_names_are_accepted(data_dir):
    for host in (f"localhost:{PORT}", f"[::1]:{PORT}", f"127.0.0.1:{PORT}"):
        assert client(host=host).get("/api/tasks").status_code == 200


def test_opening_the_printed_url_sets_the_cookie_once(data_dir):
    from ghost import datadir

    browser = client(token="", follow_redirects=False)
    token = load_token(datadir.prepare(create=True))
    refused(browser.get("/?token=wrong"), 401, "unauthorized")
    login = browser.get(f"/?token={token}")
    assert login.status_code == 303 and login.headers["location"] == "/"
    cookie = login.headers["set-cookie"]
    assert cookie.startswith(f"{COOKIE}=") and "HttpOnly" in cookie
    assert "SameSite=strict" in cookie or "SameSite=Strict" in cookie
    assert browser.get("/api/tasks").status_code == 200  # the cookie alone reads
    # ...but changes state only with this server's Origin (a browser always sends one)
    refused(browser.post("/api/tasks", json={"command": ["true"]}), 403, "bad_origin")
    refused(browser.post("/api/tasks", json={"command": ["true"]},
                         headers={"Origin": "http://evil.example"}), 403, "bad_origin")
    started = browser.post("/api/tasks", json={"command": ["true"]}, headers={"Origin": ORIGIN})
    assert started.status_code == 201, started.text


def test_a_foreign_origin_is_refused_even_with_the_token(data_dir):
    api = client()
    refused(api.get("/api/tasks", headers={"Origin": "http://evil.example"}), 403, "bad_origin")
    refused(api.post("/api/tasks", json={"command": ["true"]},
                     headers={"Origin": "null"}), 403, "bad_origin")
    assert api.get("/api/tasks", headers={"Origin": ORIGIN}).status_code == 200


def test_the_websocket_needs_the_token_and_this_origin(data_dir):
    api = client(token="")
    for headers, code in (({}, 4401), ({"Authorization": "Bearer wrong"}, 4401),
                          ({"Cookie": f"{COOKIE}=wrong", "Origin": ORIGIN}, 4401)):
        with pytest.raises(WebSocketDisconnect) as refusal, \
                api.websocket_connect(WS, headers=headers):
            pass
        assert refusal.value.code == code
    from ghost import datadir

    token = load_token(datadir.prepare(create=True))
    for headers in ({"Cookie": f"{COOKIE}={token}"},  # cookie without Origin
                    {"Cookie": f"{COOKIE}={token}", "Origin": "http://evil.example"},
                    {"Authorization": f"Bearer {token}", "Origin": "http://evil.example"}):
        with pytest.raises(WebSocketDisconnect) as refusal, \
                api.websocket_connect(WS, headers=headers):
            pass
        assert refusal.value.code == 4403
    with api.websocket_connect(WS, headers={"Cookie": f"{COOKIE}={token}",
                                                   "Origin": ORIGIN}) as ws:
        ws.send_json({"type": "subscribe", "id": "ffffffff"})
        reply = ws.receive_json()
        assert reply["code"] == "not_found", reply


def test_serve_refuses_a_remote_host_without_allow_remote(env):
    result = ghost("serve", "--host", "0.0.0.0", "--port", "0", env=env, timeout=30)
    out, err = text(result)
    assert result.returncode == 2 and out == ""
    assert err.startswith("Error: refusing --host 0.0.0.0") and "--allow-remote" in err
    assert len(err.splitlines()) == 1


def test_serve_without_the_extra_says_how_to_install_it(env):
    code = ("import sys; sys.modules['starlette'] = None\n"
            "from ghost.cli.main import main; main(['serve'])")
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                            timeout=30)
    assert result.returncode == 1
    assert result.stderr.decode() == ("Error: ghost serve needs the web extra (starlette, "
                                      "uvicorn): pip install 'ghost-tasks[web]'\n")


def test_serve_help_shows_a_systemd_unit(env):
    result = subprocess.run([*GHOST, "serve", "--help"], env=env, capture_output=True,
                            timeout=30)
    out = result.stdout.decode()
    assert result.returncode == 0
    assert "ExecStart=" in out and "KillMode=process" in out and "--allow-remote" in out


def test_serve_on_a_port_in_use_is_one_error_line(env):
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        result = ghost("serve", "--port", str(port), env=env, timeout=30)
    out, err = text(result)
    assert result.returncode == 2 and out == ""
    assert err == f"Error: cannot listen on 127.0.0.1:{port}: Address already in use\n"

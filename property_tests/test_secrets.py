"""Environment values never leave the caller (issue 12 item 1).

For any `--env` pairs given to `ghost run` (accepted or refused: empty names, no `=`,
non-UTF-8 bytes, terminal escapes) and any env object given to the MCP tool `ghost_run`, no
value appears in the store file, the `ghost events` export, `ghost history` (table and JSON),
the MCP log, or anything printed on stderr. Every value carries a marker (`S3CR3T...`) that
nothing else contains, so finding the marker anywhere is a leak, even of a clipped or escaped
value. Each example spawns real processes, so the example counts are small.
"""

from __future__ import annotations

import glob
import os
import subprocess
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support import GHOST, kill_everything_started

EXAMPLES = settings(max_examples=10, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture,
                                           HealthCheck.too_slow])
COMMANDS = [[b"true"], [b"sh", b"-c", b"exit 3"], [b"ghost-no-such-command"]]

@pytest.fixture
def data_dir(tmp_path: object) -> Iterator[str]:
    path = os.path.join(str(tmp_path), "ghost-data")
    yield path
    kill_everything_started(path)


@pytest.fixture
def env(data_dir: str, tmp_path: object) -> dict[str, str]:
    return {**os.environ, "GHOST_DATA_DIR": data_dir,
            "XDG_DATA_HOME": os.path.join(str(tmp_path), "xdg")}


markers = st.integers(0, 10**8).map(lambda n: b"S3CR3T%08d" % n)
noise = st.binary(max_size=6).filter(lambda b: b"\0" not in b)
plain = noise.filter(lambda b: b"=" not in b)
names = st.one_of(st.from_regex(r"[A-Z_][A-Z0-9_]{0,6}", fullmatch=True).map(str.encode),
                  st.just(b""), plain)


@st.composite
def env_pair(draw: st.DrawFn) -> tuple[bytes, bytes]:
    """(the --env argument, its value): KEY=VALUE, or a bare value (`-e "$TOKEN"`)."""
    marker = draw(markers)
    if draw(st.booleans()):
        value = draw(noise) + marker + draw(noise)
        return draw(names) + b"=" + value, value
    value = draw(plain) + marker + draw(plain)
    return value, value


def leaks(secrets: list[bytes], where: dict[str, bytes]) -> list[str]:
    found = []
    for secret in secrets:
        marker = secret[secret.index(b"S3CR3T"):][:14]
        for name, data in where.items():
            if secret in data or marker in data:
                found.append(f"{secret!r} in {name}")
    return found


def store_bytes(data_dir: str) -> dict[str, bytes]:
    found = {}
    for path in glob.glob(os.path.join(data_dir, "store", "*")):
        if os.path.isfile(path):
            with open(path, "rb") as f:
                found[path] = f.read()
    return found


def exports(env: dict[str, str]) -> dict[str, bytes]:
    out = {}
    for args in (("events",), ("history",)):  # history --json is the events' records
        result = subprocess.run([*GHOST, *args], env=env, capture_output=True, timeout=60)
        out[" ".join(args)] = result.stdout + result.stderr
    return out


@EXAMPLES
@given(pairs=st.lists(env_pair(), min_size=1, max_size=3), command=st.sampled_from(COMMANDS),
       missing_cwd=st.booleans())
def test_cli_env_values_are_never_recorded_or_printed(pairs, command, missing_cwd, data_dir,
                                                      env, tmp_path):
    argv = [*map(os.fsencode, GHOST), b"run"]
    if missing_cwd:
        argv += [b"-c", os.fsencode(tmp_path / "gone")]
    for arg, _ in pairs:
        argv += [b"-e", arg]
    result = subprocess.run([*argv, *command], env=env, capture_output=True, timeout=60)
    secrets = [value for _, value in pairs]
    where = {"stderr": result.stderr, "stdout": result.stdout, **store_bytes(data_dir),
             **exports(env)}
    assert leaks(secrets, where) == []


mcp_values = st.builds(lambda a, m, b: a + m.decode() + b,
                       st.text(max_size=4), markers, st.text(max_size=4))
mcp_names = st.one_of(st.from_regex(r"[A-Z_][A-Z0-9_]{0,6}", fullmatch=True),
                      st.sampled_from(["", "A=B", "X\0Y", "\x1b[2J"]))


def test_mcp_env_values_are_never_recorded_or_logged(data_dir, env):
    pytest.importorskip("mcp.server.mcpserver")
    from mcp_support import RawServer

    server = RawServer(env)
    sent: list[bytes] = []

    @EXAMPLES
    @given(envs=st.dictionaries(mcp_names, mcp_values, min_size=1, max_size=3),
           command=st.sampled_from(["true", "ghost-no-such-command"]))
    def one_call(envs: dict[str, str], command: str) -> None:
        sent.extend(v.encode("utf-8", "surrogatepass") for v in envs.values())
        server.request("tools/call", {"name": "ghost_run",
                                      "arguments": {"command": command, "env": envs}})

    try:
        one_call()
    finally:
        server.kill()
    assert server.proc.stderr is not None
    where = {"server stderr": server.proc.stderr.read(), **store_bytes(data_dir),
             **exports(env)}
    for path in glob.glob(os.path.join(data_dir, "logs", "mcp.log*")):
        with open(path, "rb") as f:
            where[path] = f.read()
    assert any("mcp.log" in name for name in where)  # the log really was checked
    assert sent and leaks(sent, where) == []

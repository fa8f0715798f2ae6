"""`run`: validate a start request, hand each task to a new monitor, return what it reports.

Everything that can be checked before a process exists is checked here, so bad input costs no
monitor and gets a precise message; every refusal is still recorded as `spawn_failed`.
"""

from __future__ import annotations

import os
import re
import shlex
import stat
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ghost import datadir
from ghost.actions.supervise import Supervision, existing_task, forget_spec, launch_spec
from ghost.actor import actor
from ghost.errors import CANNOT_EXECUTE, NOT_FOUND, USAGE, GhostError
from ghost.faults import crash_point
from ghost.process.launch import MonitorNotStarted, launch

MAX_ARG_STRLEN = 131072  # Linux: the longest single argument exec accepts


@dataclass(frozen=True, slots=True)
class Started:
    id: str
    pid: int
    command: tuple[str, ...]
    cwd: str
    log_path: str
    started_ns: int = 0  # the `spawned` event's time, as reported by the monitor
    status: str = "running"  # "queued" for --after; another status when `existing`
    existing: bool = False  # --key named a task that already exists: nothing was started
    name: str = ""
    group: str = "default"


def new_task_id() -> str:
    """A random (version 4) UUID, formatted without importing `uuid` (5 ms: it loads platform)."""
    raw = bytearray(os.urandom(16))
    raw[6] = (raw[6] & 0x0F) | 0x40
    raw[8] = (raw[8] & 0x3F) | 0x80
    h = raw.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def split_commands(args: Sequence[str]) -> list[list[str]]:
    """`run "sleep 10" "echo hi"` starts one task per argument; otherwise args are one argv."""
    if args and " " in args[0]:
        commands = []
        for line in args:
            # the messages start with S0's (skanehira/ghost) own words
            try:
                words = shlex.split(line)
            except ValueError as exc:
                raise GhostError(f"Unclosed quote in command string: {line!r}",
                                 USAGE) from exc
            if not words:
                raise GhostError(f"Empty command string: {line!r}", USAGE)
            commands.append(words)
        return commands
    return [list(args)]


_PLAIN_NAME = re.compile(r"[A-Za-z0-9_.:@%+-]{1,64}")  # a name safe and short to show


def env_label(index: int, key: str = "") -> str:
    """How an error names the `index`th (0-based) --env pair: its name when that is plain
    text, else its position. Never its value: refusals are recorded forever (`history`), and
    a value is often a secret (`-e "$NAME=$TOKEN"` with NAME unset gives `=<token>`)."""
    return key if _PLAIN_NAME.fullmatch(key) else f"#{index + 1}"


def parse_env(pairs: Sequence[str]) -> dict[str, str]:
    """`KEY=VALUE` pairs as a dict; every refusal names the pair, never shows its value."""
    env: dict[str, str] = {}
    for index, pair in enumerate(pairs):
        key, sep, value = pair.partition("=")
        if not sep:  # without "=" the whole text may be a secret (`-e "$TOKEN"`)
            raise GhostError(f"invalid --env #{index + 1}: expected KEY=VALUE, found no '='",
                             USAGE)
        if not key:
            raise GhostError(f"invalid --env #{index + 1}: the name before '=' is empty "
                             "(expected KEY=VALUE)", USAGE)
        what = env_label(index, key)
        if "\0" in key:
            raise GhostError(f"invalid --env {what}: the name contains a NUL byte", USAGE)
        if _not_utf8(key):
            raise GhostError(f"invalid --env {what}: the name is not valid UTF-8", USAGE)
        if "\0" in value:
            raise GhostError(f"invalid --env {what}: the value contains a NUL byte", USAGE)
        if _not_utf8(value):
            raise GhostError(f"invalid --env {what}: the value is not valid UTF-8", USAGE)
        env[key] = value
    return env


def _not_utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def check_cwd(cwd: str) -> str:
    full = os.path.abspath(cwd)
    if not os.path.exists(full):
        raise GhostError(f"working directory {full} does not exist", USAGE)
    if not os.path.isdir(full):
        raise GhostError(f"working directory {full} is not a directory", USAGE)
    return full


def resolve(program: str, cwd: str, env: Mapping[str, str]) -> None:
    """Fail like a shell would (127 not found, 126 cannot execute) before any process exists."""
    if "/" in program:
        candidates = [os.path.join(cwd, program)]
    else:
        search = env.get("PATH", os.defpath).split(os.pathsep)
        candidates = [os.path.join(d or ".", program) for d in search]
    blocked = ""
    for path in candidates:
        try:
            st = os.stat(path if os.path.isabs(path) else os.path.join(cwd, path))
        except (FileNotFoundError, NotADirectoryError):
            continue
        except OSError as exc:
            blocked = blocked or f"{program}: {exc.strerror}"
            continue
        if stat.S_ISDIR(st.st_mode):
            blocked = blocked or f"{program}: it is a directory"
        elif not os.access(path if os.path.isabs(path) else os.path.join(cwd, path), os.X_OK):
            blocked = blocked or f"{program}: permission denied (not executable)"
        else:
            return
    if blocked:
        raise GhostError(f"cannot run {blocked}", CANNOT_EXECUTE)
    raise GhostError(f"command not found: {program}", NOT_FOUND)


def check_command(command: Sequence[str]) -> None:
    if not command or not command[0]:
        raise GhostError("No command specified (usage: ghost run CMD [ARG...])", USAGE)
    for arg in command:
        if "\0" in arg:
            raise GhostError(f"argument {arg.split(chr(0))[0]!r}... contains a NUL byte", USAGE)
        if len(os.fsencode(arg)) >= MAX_ARG_STRLEN:
            raise GhostError(f"argument {arg[:40]!r}... is {len(arg)} bytes; the limit for one "
                             f"argument is {MAX_ARG_STRLEN - 1}", USAGE)
    total = sum(len(os.fsencode(a)) + 1 for a in command)
    limit = os.sysconf("SC_ARG_MAX") if hasattr(os, "sysconf") else 2 << 20
    if total >= limit:
        raise GhostError(f"argument list too long: {total} bytes, the limit is {limit}", USAGE)


def record_failure(task: str, command: Sequence[str], cwd: str, error: GhostError,
                   via: str) -> None:
    """Keep the refusal in the audit trail; arguments are clipped so the event stays small."""
    from events import types as ev
    from ghost.state.store import open_store, store_errors

    clipped = [a if len(a) <= 1024 else a[:1024] + "..." for a in command[:256]]
    store = open_store(write=True)
    assert store is not None
    with store_errors():
        store.append([ev.make(ev.SPAWN_FAILED, task, command=clipped, cwd=cwd,
                              error=error.message, exit_code=error.exit_code,
                              actor=actor(via))])


def start_one(command: Sequence[str], cwd: str, env_overrides: Mapping[str, str], *,
              via: str, sup: Supervision | None = None,
              io: Mapping[str, Any] | None = None) -> Started:
    """Start one task (argv `command`) and return it once its monitor reports it running."""
    task = new_task_id()
    try:
        check_command(command)
        full_cwd = check_cwd(cwd)
        env = {**os.environ, **env_overrides}
        resolve(command[0], full_cwd, env)
    except GhostError as exc:
        record_failure(task, command, os.path.abspath(cwd), exc, via)
        raise
    base = datadir.prepare(create=True)
    assert base is not None
    from ghost.state.store import refuse_emptied

    refuse_emptied(base, datadir.store_dir(base))  # the monitor would start a new history
    refuse_read_only(base)
    log = datadir.log_path(task, base)
    spec = {"task": task, "command": list(command), "cwd": full_cwd, "env": env,
            "env_keys": sorted(env_overrides), "log_path": log, "store": datadir.store_dir(base),
            "actor": actor(via), "map_floor": datadir.map_floor()}
    if io:  # --pty, --stdin, --timestamps, --log-max: the pumped path (ghost.actions.stdio)
        from ghost.actions.stdio import complete

        complete(spec, io, base)
    existing = launch_spec(spec, env_overrides, sup, base)  # ghost.actions.supervise
    if existing is not None:
        return existing
    crash_point("run:before-monitor-start")
    try:
        result = launch(spec)
    except MonitorNotStarted as exc:
        forget_spec(spec)
        record_failure(task, command, full_cwd, exc, via)
        raise
    if not result.get("ok"):
        forget_spec(spec)  # nothing started: no launch spec to keep
        if result.get("exists"):
            return existing_task(str(result["exists"]))
        raise GhostError(str(result.get("error", "the task could not be started")),
                         int(result.get("exit_code", 1)))
    return Started(task, int(result["pid"]), tuple(command), full_cwd, log,
                   int(result.get("started_ns", 0)),
                   "queued" if result.get("queued") else "running",
                   name=sup.name if sup else "", group=sup.group if sup else "default")


def refuse_read_only(base: str) -> None:
    """A read-only data dir (a read-only mount, a store file without write permission) stops
    `run` before anything starts, with what to do, instead of a raw errno from the monitor."""
    store = datadir.store_dir(base)
    for path in (datadir.logs_dir(base), store, os.path.join(store, "data.mdb")):
        if os.path.lexists(path) and not os.access(path, os.W_OK, follow_symlinks=False):
            raise GhostError(f"cannot start a task: {path} is read-only, so nothing could be "
                             "recorded; make it writable (remount read-write, fix its "
                             "permissions) or set GHOST_DATA_DIR to a writable directory")


def start(args: Sequence[str], cwd: str | None, env_pairs: Sequence[str], *,
          via: str, sup: Supervision | None = None,
          io: Mapping[str, Any] | None = None) -> Iterator[Started]:
    """Start every command in `args` (see `split_commands`); stops at the first failure.

    Yields each task as it starts, so the caller reports those that started before a later
    one failed (they run; their ids must not be lost)."""
    try:
        cwd = cwd or _caller_dir()
        env = parse_env(env_pairs)
        commands = split_commands(args)
        if sup is not None and len(commands) > 1 and (sup.name or sup.key):
            raise GhostError("--name and --key name one task; give one command", USAGE)
        if io:
            from ghost.actions.stdio import check

            check(io)
    except GhostError as exc:
        record_failure(new_task_id(), list(args), os.path.abspath(cwd) if cwd else "", exc,
                       via)
        raise
    for cmd in commands:
        yield start_one(cmd, cwd, env, via=via, sup=sup, io=io)


def _caller_dir() -> str:
    try:
        return os.getcwd()
    except FileNotFoundError:
        raise GhostError("the current directory no longer exists; cd elsewhere or pass --cwd",
                         USAGE) from None

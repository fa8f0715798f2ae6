"""The task routes: start, list, get, output, stop/kill/restart/write/resize, clean up.

Each route checks the shape of its input (422 with the field named), calls one action through
ghost.web.calls.call and returns the CLI's JSON shapes (ghost.state.task_json). Options are
checked by the same functions `ghost run` uses, so a refusal reads the same everywhere.
"""

from __future__ import annotations

import base64
import os
import shlex
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from ghost.state import task_json
from ghost.web import feeds
from ghost.web.calls import VIA, call, in_thread
from ghost.web.errors import ApiError, field, read_body

STOP_TIMEOUT_MAX = 86400.0
STATUS_FILTERS = ("all", "running", "exited", "killed", "unknown", "queued", "restarting")
SUPERVISION = ("name", "group", "key", "restart", "max_restarts", "restart_delay",
               "min_uptime", "after", "after_any")
DEFAULT_LIMIT = 64 * 1024


def _ident(request: Request) -> str:
    ident: str = request.path_params["id"]
    if not ident or len(ident) > 128:
        raise ApiError(404, "not_found", "task not found")
    return ident


def _argv(body: dict[str, Any]) -> list[str]:
    command = body.get("command")
    if isinstance(command, str):
        try:
            argv = shlex.split(command)
        except ValueError as exc:
            raise ApiError(422, "invalid", f"cannot parse command: {exc}") from None
    elif isinstance(command, list) and all(isinstance(a, str) for a in command):
        argv = list(command)
    else:
        raise ApiError(422, "invalid", "'command' must be an array of strings or a command "
                       "line (string)")
    if not argv or not argv[0]:
        raise ApiError(422, "invalid", "'command' is empty")
    return argv


def _env(body: dict[str, Any]) -> dict[str, str]:
    env: dict[str, str] = field(body, "env", dict, {})
    for key, value in env.items():
        if not isinstance(value, str):
            raise ApiError(422, "invalid", f"env value of {key[:40]!r} must be a string")
        if not key or "=" in key:
            raise ApiError(422, "invalid", f"invalid env name {key[:40]!r}")
    return env


def _supervision(body: dict[str, Any]) -> Any:
    given = {k: body[k] for k in SUPERVISION if k in body}
    if not given:
        return None
    for name in ("after", "after_any"):
        if name in given:
            given[name] = field(body, name, list)
            if not all(isinstance(x, str) for x in given[name]):
                raise ApiError(422, "invalid", f"{name!r} must be an array of task ids")
    for name in ("name", "group", "key", "restart", "restart_delay", "min_uptime"):
        field(body, name, str)
    field(body, "max_restarts", int)
    return given


def _io(body: dict[str, Any]) -> dict[str, Any] | None:
    """--pty, --stdin, --cols/--rows, --timestamps, --log-max/--log-keep as `run` takes them
    (checked by the action); None when none is given."""
    io = {"pty": field(body, "pty", bool, False), "stdin": field(body, "stdin", bool, False),
          "timestamps": field(body, "timestamps", bool, False),
          "cols": field(body, "cols", int), "rows": field(body, "rows", int),
          "log_max": field(body, "log_max", str), "log_keep": field(body, "log_keep", int)}
    if not any(v not in (None, False) for v in io.values()):
        return None
    io["explicit_size"] = io["cols"] is not None or io["rows"] is not None
    return io


def _start(argv: list[str], cwd: str, env: dict[str, str], sup: dict[str, Any] | None,
           io: dict[str, Any] | None) -> Any:
    """Runs in a worker thread: validate like `ghost run` does, then start one task."""
    from ghost.actions.run import new_task_id, parse_env, record_failure, start_one
    from ghost.errors import GhostError

    try:
        parse_env([f"{k}={v}" for k, v in env.items()])  # the same refusals as --env
        extra: dict[str, Any] = {}
        if sup is not None:
            from ghost.actions.supervise import supervision

            extra["sup"] = supervision(**sup)
        if io is not None:
            from ghost.actions.stdio import check

            check(io)
            extra["io"] = io
    except GhostError as exc:
        record_failure(new_task_id(), argv, os.path.abspath(cwd), exc, VIA)
        raise
    return start_one(argv, cwd, env, via=VIA, **extra)


async def start_task(request: Request) -> Response:
    body = await read_body(request)
    argv = _argv(body)
    cwd = field(body, "cwd", str, None) or os.path.expanduser("~")
    env = _env(body)
    sup = _supervision(body)
    io = _io(body)
    started = await call(request, _start, argv, cwd, env, sup, io)
    return JSONResponse(task_json.started(started), status_code=201)


def _listing(status: str, group: str | None, name: str | None) -> dict[str, Any]:
    from ghost.actions import query

    seq = feeds.last_seq()  # before the listing: a client following from here misses nothing
    tasks = query.listing(status)
    if group is not None:
        tasks = [t for t in tasks if getattr(t, "group", "default") == group]
    if name is not None:
        tasks = [t for t in tasks if getattr(t, "name", "") == name]
    return {"tasks": [task_json.task(t) for t in tasks], "total": len(tasks), "seq": seq}


async def list_tasks(request: Request) -> Response:
    status = request.query_params.get("status") or "all"
    if status not in STATUS_FILTERS:
        raise ApiError(422, "invalid", f"invalid status {status[:40]!r}; choose one of "
                       f"{', '.join(STATUS_FILTERS)}")
    result = await in_thread(_listing, status, request.query_params.get("group"),
                             request.query_params.get("name"))
    return JSONResponse(result)


async def get_task(request: Request) -> Response:
    from ghost.actions import query

    observed = await call(request, query.status, _ident(request))
    data = task_json.task(observed.task, observed)
    io = getattr(observed.task, "io", None)  # tasks started with --pty/--stdin take input
    if io is not None and "input" not in data:
        data["input"] = io.get("input") or "none"
    return JSONResponse(data)


def _int_param(request: Request, name: str, default: int, high: int) -> int:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    if not raw.isdigit() or int(raw) > high:
        raise ApiError(422, "invalid", f"invalid {name} {raw[:40]!r}: must be a whole number "
                       f"from 0 to {high}")
    return int(raw)


SHAPING = ("since", "until", "stream", "timestamps")


def _shaped(ident: str, options: dict[str, Any], limit: int) -> dict[str, Any]:
    """`log --since/--until/--stream/--timestamps` of an indexed task (the first `limit`
    bytes of what they keep): the same action, the same refusals."""
    from ghost.actions.logread import Options, read

    if options["stream"] not in (None, "stdout", "stderr"):
        raise ApiError(422, "invalid", "stream must be stdout or stderr")
    task, chunks = read(ident, None, Options(**options))
    data = bytearray()
    truncated = False
    for chunk in chunks:
        data += chunk
        if len(data) > limit:
            truncated = True
            break
    chunks.close()  # type: ignore[attr-defined]  # a generator: its pieces are closed now
    return {"id": task.id, "data": bytes(data[:limit]), "truncated": truncated,
            "running": task.running}


async def get_output(request: Request) -> Response:
    from ghost.actions import query

    params = request.query_params
    encoding = params.get("encoding") or "utf-8"
    if encoding not in ("utf-8", "base64"):
        raise ApiError(422, "invalid", "encoding must be utf-8 or base64")
    offset = _int_param(request, "offset", 0, (1 << 63) - 1)
    limit = _int_param(request, "limit", DEFAULT_LIMIT, feeds.MAX_READ)
    if any(params.get(name) for name in SHAPING):
        options = {"since": params.get("since") or None, "until": params.get("until") or None,
                   "stream": params.get("stream") or None,
                   "timestamps": params.get("timestamps") in ("1", "true", "yes")}
        shaped = await call(request, _shaped, _ident(request), options, limit)
        raw = shaped.pop("data")
        text = raw.decode("utf-8", "replace") if encoding == "utf-8" else \
            base64.b64encode(raw).decode()
        return JSONResponse({**shaped, "encoding": encoding, "data": text})
    observed = await call(request, query.status, _ident(request))
    task = observed.task
    data, start, size = await in_thread(feeds.read_range, task.id, offset, limit)
    if encoding == "utf-8":
        cut = feeds.utf8_cut(data) if start + len(data) < size else len(data)
        data = data[:cut]
        text = data.decode("utf-8", "replace")
    else:
        text = base64.b64encode(data).decode()
    return JSONResponse({"id": task.id, "offset": start, "end": start + len(data),
                         "size": size, "encoding": encoding, "data": text,
                         "running": task.running})


async def _timeout(body: dict[str, Any]) -> float:
    value = field(body, "timeout", (int, float), 10.0)
    if not 0 <= value <= STOP_TIMEOUT_MAX:
        raise ApiError(422, "invalid", f"'timeout' must be 0 to {STOP_TIMEOUT_MAX:g} seconds")
    return float(value)


async def stop_task(request: Request) -> Response:
    from ghost.actions.stop import stop

    body = await read_body(request)
    timeout = await _timeout(body)
    force = request.path_params["verb"] == "kill" or field(body, "force", bool, False)
    task = await call(request, stop, _ident(request), force, timeout, via=VIA)
    return JSONResponse(task_json.task(task))


async def restart_task(request: Request) -> Response:
    body = await read_body(request)
    timeout = await _timeout(body)
    from ghost.actions.restart import restart

    started = await call(request, restart, _ident(request), timeout, via=VIA)
    return JSONResponse(task_json.started(started))


async def write_task(request: Request) -> Response:
    body = await read_body(request)
    data = field(body, "data", str, "")
    encoding = field(body, "encoding", str, "utf-8")
    eof = field(body, "eof", bool, False)
    if encoding == "base64":
        try:
            raw = base64.b64decode(data, validate=True)
        except ValueError:
            raise ApiError(422, "invalid", "'data' is not valid base64") from None
    elif encoding == "utf-8":
        raw = data.encode("utf-8", "surrogatepass")
    else:
        raise ApiError(422, "invalid", "'encoding' must be utf-8 or base64")
    from ghost.actions import send

    sent = await call(request, send.send, _ident(request), [raw], eof=eof, via=VIA)
    return JSONResponse({"id": sent.task.id, "bytes": sent.bytes, "eof": sent.eof})


async def resize_task(request: Request) -> Response:
    body = await read_body(request)
    cols = field(body, "cols", int)
    rows = field(body, "rows", int)
    if cols is None or rows is None:
        raise ApiError(422, "invalid", "'cols' and 'rows' are required")
    from ghost.actions import send

    task = await call(request, send.resize, _ident(request), cols, rows, via=VIA)
    return JSONResponse({"id": task.id, "cols": cols, "rows": rows})


def _cleanup(ident: str) -> list[str]:
    from ghost.actions import query
    from ghost.actions.cleanup import cleanup
    from ghost.state.tasks import describe_end

    task = query.status(ident).task
    if task.running:
        raise ApiError(409, "running", f"task {task.id} is still running ({describe_end(task)});"
                       " stop it first")
    done = cleanup(everything=True, via=VIA, task=task.id)
    if not done.tasks:
        raise ApiError(409, "not_cleaned", f"task {task.id} could not be cleaned up (it is "
                       "running again, or already gone)")
    return [t.id for t in done.tasks]


async def delete_task(request: Request) -> Response:
    cleaned = await call(request, _cleanup, _ident(request))
    return JSONResponse({"cleaned": cleaned})


async def task_history(request: Request) -> Response:
    from ghost.actions import audit
    from ghost.state import records

    def read(ident: str) -> dict[str, Any]:
        found = audit.history(ident)
        return {"id": found.task, "events": [records.jsonable(records.record(e.item,
                                                                             found.store_id))
                                             for e in found.entries]}

    return JSONResponse(await call(request, read, _ident(request)))

"""What the MCP tools do: plain functions over ghost's core that return JSON-ready data.

Nothing here knows about the protocol (ghost.mcp.server registers these and turns GhostError
into an `isError` result). The results are the CLI's `--json` shapes (ghost.cli.render), described
by TypedDicts so the server can publish an output schema. Everything an agent reads back is
bounded: logs by bytes, lists and histories by count.
"""

from __future__ import annotations

import os
import shlex
from typing import Annotated, Any, Literal, NotRequired

from pydantic import Field
from typing_extensions import TypedDict  # pydantic needs this one on Python < 3.12

from ghost.errors import USAGE, GhostError
from ghost.state import task_json

# -- results -------------------------------------------------------------------------------


class TaskInfo(TypedDict):
    """One task, as `ghost status --json` prints it."""

    id: str
    pid: int
    status: Literal["running", "exited", "killed", "unknown", "queued", "restarting"]
    command: list[str]
    cwd: str
    started_at: str | None
    finished_at: str | None
    exit_code: int | None
    signal: str | None
    log_path: str
    reason: NotRequired[str]
    rusage: NotRequired[dict[str, Any]]
    unmonitored: NotRequired[bool]
    group_processes: NotRequired[int]
    # supervision (issue 15): name/group, attempts, the restart policy, --after
    name: NotRequired[str | None]
    group: NotRequired[str]
    attempt: NotRequired[int]
    restarts: NotRequired[int]
    policy: NotRequired[dict[str, Any] | None]
    next_restart_at: NotRequired[str | None]
    restart_reason: NotRequired[str]
    gave_up_after: NotRequired[int]
    after: NotRequired[list[str]]
    after_any: NotRequired[bool]
    # running tasks: processes, cpu_percent, rss_bytes, uptime_s, ports [{proto, address, port}]
    resources: NotRequired[dict[str, Any] | None]


class StartedInfo(TypedDict):
    """A task that has just started, as `ghost run --json` prints it."""

    id: str
    pid: int
    status: Literal["running", "queued"] | str  # another status when `existing` (key)
    command: list[str]
    cwd: str
    log_path: str
    name: NotRequired[str | None]
    group: NotRequired[str]
    existing: NotRequired[bool]
    started_at: NotRequired[str | None]
    finished_at: NotRequired[str | None]
    exit_code: NotRequired[int | None]
    signal: NotRequired[str | None]


class TaskList(TypedDict):
    tasks: list[TaskInfo]
    total: int  # how many tasks matched; more than len(tasks) when `limit` cut the list


class StopResult(TypedDict):
    task: TaskInfo
    summary: str  # e.g. "killed by SIGTERM", "exited with code 0"


class LogResult(TypedDict):
    id: str
    log_path: str
    text: str  # invalid UTF-8 replaced by U+FFFD
    truncated: bool  # earlier output exists that is not in `text`
    start: int  # byte offset in the log where `text` starts
    end: int  # byte offset where it ends (the log's size when read)
    running: bool  # the task may still write more


class WaitOutcome(TypedDict):
    task: TaskInfo
    ended: bool
    timed_out: bool


class History(TypedDict):
    events: list[dict[str, Any]]
    truncated: bool  # older matching events exist that are not in `events`


# -- parameters ----------------------------------------------------------------------------

TaskId = Annotated[str, Field(description="A task id, a unique prefix of at least 4 "
                                          "characters (see ghost_list), or a task name (an "
                                          "id or prefix wins over a name).")]
StatusFilter = Literal["all", "running", "exited", "killed", "unknown", "queued", "restarting"]

MAX_LOG_BYTES = 1 << 20
VIA = "mcp"
MAX_WAIT = 3600.0


def _task(task: Any, observed: Any = None) -> TaskInfo:
    return task_json.task(task, observed)  # type: ignore[return-value]


# -- tools ---------------------------------------------------------------------------------

def ghost_run(
    command: Annotated[str, Field(description="The program to run, e.g. 'npm'. With no "
                                              "`args`, a command line containing spaces is "
                                              "split like a shell would ('npm run dev'), but "
                                              "no shell runs: use 'sh -c' for pipes.")],
    args: Annotated[list[str] | None, Field(description="Arguments, passed as they are.")]
    = None,
    cwd: Annotated[str | None, Field(description="Working directory (default: the "
                                                 "server's).")] = None,
    env: Annotated[dict[str, str] | None, Field(description="Extra environment variables; "
                                                            "the server's environment is "
                                                            "inherited.")] = None,
    name: Annotated[str | None, Field(description="A name for the task, usable wherever an id "
                                                  "is; refused while another task with it "
                                                  "runs.")] = None,
    group: Annotated[str | None, Field(description="The task's group (default: "
                                                   "'default').")] = None,
    restart: Annotated[Literal["no", "on-failure", "always", "unless-stopped"] | None,
                       Field(description="Restart policy (default: no).")] = None,
    max_restarts: Annotated[int | None, Field(ge=0, description="Give up after this many "
                                                                "restarts.")] = None,
    after: Annotated[list[str] | None, Field(description="Start only once these tasks (ids or "
                                                         "names) exited with code 0; queued "
                                                         "until then.")] = None,
    key: Annotated[str | None, Field(description="Idempotency key: if a task with it exists, "
                                                 "that task is returned (existing: true) and "
                                                 "nothing starts.")] = None,
    input: Annotated[Literal["none", "pty", "pipe"], Field(
        description="'pty': run on a terminal; 'pipe': stdin stays open. Either lets "
                    "ghost_send type into the task.")] = "none",
    timestamps: Annotated[bool, Field(description="Record when and on which stream output "
                                                  "was written (ghost_log since/stream/"
                                                  "timestamps).")] = False,
) -> StartedInfo:
    """Start a command in the background (arbitrary command execution) and return at once.

    The task keeps running after this server exits. Its output goes to its log file: read it
    with ghost_log, see how it ended with ghost_status or ghost_wait, end it with ghost_stop.
    """
    from ghost.actions.run import new_task_id, record_failure, start_one

    workdir = cwd or os.getcwd()
    argv = [command, *(args or [])]
    try:
        if not args and " " in command.strip() and \
                not os.path.isfile(os.path.join(workdir, command)):
            argv = _split(command)
        _check_env(env or {})
    except GhostError as exc:  # refused like any other start: on record as spawn_failed
        record_failure(new_task_id(), argv, os.path.abspath(workdir), exc, VIA)
        raise
    from ghost.actions.supervise import supervision

    sup = supervision(name=name, group=group, key=key, restart=restart,
                      max_restarts=max_restarts, after=after or ())
    io = {"pty": input == "pty", "stdin": input == "pipe", "timestamps": timestamps}
    started = start_one(argv, workdir, env or {}, via=VIA, sup=sup,
                        io=io if input != "none" or timestamps else None)
    return task_json.started(started)  # type: ignore[return-value]


def _split(line: str) -> list[str]:
    try:
        return shlex.split(line)
    except ValueError as exc:
        raise GhostError(f"cannot parse command {line!r}: {exc}", USAGE) from None


def _check_env(env: dict[str, str]) -> None:
    for key, value in env.items():
        if not key or "=" in key or "\0" in key:
            raise GhostError(f"invalid environment variable name {key!r}", USAGE)
        if "\0" in value:
            raise GhostError(f"environment variable {key} contains a NUL byte", USAGE)


def ghost_list(
    status: Annotated[StatusFilter, Field(description="Only tasks with this status.")] = "all",
    limit: Annotated[int, Field(ge=1, le=10000, description="At most this many tasks, "
                                                            "newest first.")] = 100,
    wide: Annotated[bool, Field(description="Also what running tasks use: CPU %, memory, "
                                            "uptime, listening TCP/UDP ports.")] = False,
) -> TaskList:
    """List tasks, newest first, with how each one ended (exit code or signal)."""
    from ghost.actions.query import listing

    tasks = listing(status)
    shown = [_task(t) for t in tasks[:limit]]
    if wide:
        _add_usage(shown, tasks[:limit])
    return {"tasks": shown, "total": len(tasks)}


def _add_usage(shown: list[TaskInfo], tasks: list[Any]) -> None:
    from ghost.actions.resources import usage

    used = usage(tasks, via=VIA)
    for info, task in zip(shown, tasks, strict=True):
        found = used.get(task.id)
        info["resources"] = found.as_json() if found is not None else None


def ghost_status(id: TaskId) -> TaskInfo:
    """One task: command, directory, times, pid, and how it ended (exit code or signal); for a
    running task also its CPU %, memory, uptime and listening ports."""
    from ghost.actions.query import status

    observed = status(id)
    info = _task(observed.task, observed)
    _add_usage([info], [observed.task])  # a running task's CPU, memory, uptime and ports
    return info


def ghost_stop(
    id: TaskId,
    force: Annotated[bool, Field(description="SIGKILL at once instead of SIGTERM.")] = False,
    timeout: Annotated[float, Field(ge=0, le=MAX_WAIT, description="Seconds to wait after "
                                                                   "SIGTERM before "
                                                                   "SIGKILL.")] = 10.0,
) -> StopResult:
    """Stop a running task's whole process group (SIGTERM, then SIGKILL after `timeout`).

    Returns once the end is recorded, with the exit code or the signal that ended it.
    """
    from ghost.actions.stop import stop
    from ghost.state.tasks import describe_end

    task = stop(id, force=force, timeout=timeout, via=VIA)
    return {"task": _task(task), "summary": describe_end(task)}


def ghost_log(
    id: TaskId,
    tail: Annotated[int | None, Field(ge=0, description="Only the last N lines (null: no "
                                                        "line limit).")] = 200,
    max_bytes: Annotated[int, Field(ge=1, le=MAX_LOG_BYTES, description="At most this many "
                                                                        "bytes, from the "
                                                                        "end.")] = 65536,
    since: Annotated[str | None, Field(description="Only output written at or after this "
                                                   "time (ISO 8601, '2h', ...).")] = None,
    stream: Annotated[Literal["stdout", "stderr"] | None,
                      Field(description="Only this stream.")] = None,
    timestamps: Annotated[bool, Field(description="Start each line with when it was "
                                                  "written.")] = False,
) -> LogResult:
    """The end of a task's output (stdout and stderr together), bounded by lines and bytes.
    `since`, `stream` and `timestamps` need a task started with input or timestamps."""
    if since or stream or timestamps:  # through the chunk index (ghost.mcp.interactive)
        from ghost.mcp.interactive import indexed_log

        return indexed_log(id, tail, max_bytes, since, stream, timestamps)
    from ghost.actions.query import log_tail

    task, start, end, data = log_tail(id, tail, max_bytes)
    text = data.decode("utf-8", errors="replace")
    shortened = False
    encoded = text.encode("utf-8")
    if len(encoded) > max_bytes:  # each replaced byte grew to 3: keep the bound in UTF-8 too
        text = encoded[-max_bytes:].decode("utf-8", errors="ignore")
        shortened = True
    return {"id": task.id, "log_path": task.log_path, "text": text,
            "truncated": start > 0 or shortened, "start": start, "end": end,
            "running": task.running}


def ghost_wait(
    id: TaskId,
    timeout: Annotated[float, Field(ge=0, le=MAX_WAIT, description="Give up after this many "
                                                                   "seconds.")] = 60.0,
) -> WaitOutcome:
    """Wait until a task ends or `timeout` passes; says which, with the exit code or signal."""
    from ghost.actions.wait import wait_for_end

    result = wait_for_end([id], timeout)
    task = result.tasks[0]
    return {"task": _task(task), "ended": not task.running, "timed_out": result.timed_out}


def ghost_history(
    id: Annotated[str | None, Field(description="Only this task (id or unique prefix), "
                                                "including cleaned tasks and tasks that "
                                                "failed to start.")] = None,
    since: Annotated[str | None, Field(description="Only events at or after this time: ISO "
                                                   "8601, a date, or relative like '2h', "
                                                   "'30m ago', 'yesterday'.")] = None,
    limit: Annotated[int, Field(ge=1, le=10000, description="At most this many events (the "
                                                            "most recent).")] = 200,
) -> History:
    """The audit trail, oldest first: who started or stopped what (actor: user and interface),
    and exactly how each task ended. Environment variable values are never included."""
    from ghost.actions.audit import recent
    from ghost.state.records import jsonable, record

    events, store_id, truncated = recent(id, since, limit)
    return {"events": [jsonable(record(e, store_id)) for e in events], "truncated": truncated}

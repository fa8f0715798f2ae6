"""`ghost mcp`: ghost's tools for AI assistants, served over the Model Context Protocol on stdio.

The MCP SDK costs about half a second to import, so it is imported here, inside the command,
and nowhere on the `ghost run/list/status` path. The tools themselves (ghost.mcp.tools) are
plain functions over ghost's core; this module registers them, turns a GhostError into a tool
result with `isError: true` (the agent reads the message and corrects itself; the server keeps
serving), and keeps the protocol stream clean: diagnostics go to <data dir>/logs/mcp.log, never
to stdout, and tasks write only to their own log files.
"""

from __future__ import annotations

import functools
import logging
import logging.handlers
import os
import time
from collections.abc import Callable
from typing import Any

import click

from ghost.errors import AmbiguousTask, GhostError, TaskNotFound

SDK_MISSING = "ghost mcp needs the MCP SDK: pip install 'ghost-tasks[mcp]'"
LOG_NAME = "mcp.log"
LOG_MAX_BYTES = 1 << 20
LOG_BACKUPS = 3

INSTRUCTIONS = """\
ghost runs commands in the background and records exactly how each one ended.
Start long-running commands (dev servers, watchers, builds, test runs) with ghost_run instead of
running them in the foreground; it returns a task id at once. Read output with ghost_log
(bounded: the last lines only), wait for the end with ghost_wait, check with ghost_status or
ghost_list (exit code, or the signal that killed it), and end tasks with ghost_stop.
Tasks keep running after this server exits. Ids may be shortened to a unique prefix of 4+ chars.
"""

log = logging.getLogger("ghost.mcp")


@click.command(name="mcp", context_settings={"help_option_names": ["-h", "--help"]})
def mcp_command() -> None:
    """Serve ghost to AI assistants over MCP (stdio).

    \b
    Claude Code:  claude mcp add ghost -- ghost mcp
    Other clients: {"mcpServers": {"ghost": {"command": "ghost", "args": ["mcp"]}}}

    Diagnostics go to <data dir>/logs/mcp.log. Closing stdin stops the server; tasks it started
    keep running.
    """
    try:
        serve()
    except KeyboardInterrupt:
        _leave(130)
    _leave(0)


def _leave(status: int) -> None:
    """Exit now: an abandoned call (a client that went away during a long ghost_wait) may
    still block a worker thread, which the interpreter would wait for at exit. Every event is
    already durable; only the log needs flushing."""
    logging.shutdown()
    os._exit(status)


def serve() -> None:
    """Run the server until stdin closes."""
    try:
        from mcp.server.mcpserver import MCPServer  # noqa: F401
    except ImportError:
        try:
            import mcp  # noqa: F401
        except ImportError:
            raise GhostError(SDK_MISSING) from None
        raise GhostError("ghost mcp needs version 2 of the MCP SDK (mcp>=2,<3): "
                         "pip install 'ghost-tasks[mcp]'") from None
    from ghost import datadir
    from ghost.state.store import open_store

    base = datadir.prepare(create=True)
    assert base is not None
    _log_to_file(datadir.logs_dir(base))
    # Opened once here, before worker threads could race to open the environment twice.
    try:
        store = open_store(write=True)
    except GhostError as exc:  # a read-only store still serves list, status, log, history
        log.warning("%s; serving read-only", exc.message)
        store = open_store(write=False)
    log.info("ghost mcp %s started: pid %d, data dir %s, store %s", _version(), os.getpid(),
             base, store.store_id if store else "-")
    server = build_server()
    try:
        server.run("stdio")
    except KeyboardInterrupt:
        log.info("interrupted: server exits; tasks keep running")
        raise
    except BaseExceptionGroup as group:
        _, rest = group.split((BrokenPipeError, ConnectionResetError))
        if rest is not None:
            log.exception("server stopped by an error")
            raise
        log.info("the client closed its end of stdout: server exits; tasks keep running")
        return
    except Exception:
        log.exception("server stopped by an error")
        raise
    log.info("stdin closed: server exits; tasks keep running")


def build_server() -> Any:
    from mcp.server.mcpserver import MCPServer
    from mcp.types import ToolAnnotations

    from ghost.mcp import interactive
    from ghost.mcp import tools as t
    from ghost.mcp.supervise import ghost_restart

    server = MCPServer("ghost", version=_version(), instructions=INSTRUCTIONS,
                       log_level="INFO")
    read_only = ToolAnnotations(read_only_hint=True, open_world_hint=False)
    tools: list[tuple[Callable[..., Any], str, ToolAnnotations]] = [
        (t.ghost_run, "Run a command in the background",
         ToolAnnotations(destructive_hint=True, open_world_hint=True)),
        (t.ghost_list, "List tasks", read_only),
        (t.ghost_status, "Task status", read_only),
        (t.ghost_stop, "Stop a task",
         ToolAnnotations(destructive_hint=True, idempotent_hint=True, open_world_hint=False)),
        (t.ghost_log, "Read a task's output", read_only),
        (t.ghost_wait, "Wait for a task to end", read_only),
        (t.ghost_history, "Audit trail of tasks", read_only),
        (interactive.ghost_send, "Send input to a task",
         ToolAnnotations(destructive_hint=True, open_world_hint=False)),
        (interactive.ghost_resize, "Resize a task's terminal",
         ToolAnnotations(destructive_hint=False, idempotent_hint=True, open_world_hint=False)),
        (ghost_restart, "Restart a task",
         ToolAnnotations(destructive_hint=True, open_world_hint=True)),
    ]
    for fn, title, hints in tools:
        server.add_tool(guarded(fn, blocking=fn in (t.ghost_stop, t.ghost_wait, ghost_restart)),
                        title=title, annotations=hints)
    return server


def guarded(fn: Callable[..., Any], blocking: bool = False) -> Callable[..., Any]:
    """Run a tool in a worker thread; a GhostError becomes the one-line error the agent sees.

    The SDK reports a ToolError as a result with isError: true and logs it; any other
    exception is reported without details and logged with its traceback. The thread is
    abandoned if the call is cancelled (the task itself is not affected). Calls that block for
    seconds (stop, wait) draw on their own pool of threads, so any number of them in flight
    never delays a quick call such as ghost_list.
    """
    import anyio.to_thread
    from mcp.server.mcpserver.exceptions import ToolError

    @functools.wraps(fn)
    async def call(**kwargs: Any) -> Any:
        started = time.monotonic()
        limiter = _blocking_pool() if blocking else None
        try:
            result = await anyio.to_thread.run_sync(functools.partial(fn, **kwargs),
                                                    abandon_on_cancel=True, limiter=limiter)
        except GhostError as exc:
            log.info("%s failed in %.0f ms: %s", fn.__name__,
                     (time.monotonic() - started) * 1000, exc.message)
            raise ToolError(agent_message(exc)) from None
        log.info("%s done in %.0f ms", fn.__name__, (time.monotonic() - started) * 1000)
        return result

    return call


_pools: dict[str, Any] = {}
BLOCKING_THREADS = 100


def _blocking_pool() -> Any:
    """Created on first use: an anyio limiter belongs to the running event loop."""
    import anyio

    if "blocking" not in _pools:
        _pools["blocking"] = anyio.CapacityLimiter(BLOCKING_THREADS)
    return _pools["blocking"]


def agent_message(exc: GhostError) -> str:
    """The GhostError message on one line, with the next step when there is an obvious one."""
    message = " ".join(exc.message.split())
    if isinstance(exc, AmbiguousTask):
        return f"{message}; pass more characters of the id"
    if isinstance(exc, TaskNotFound):
        return f"{message}; call ghost_list to see task ids"
    return message


class _PrivateRotatingFile(logging.handlers.RotatingFileHandler):
    """mcp.log is created 0600 and never opened through a symlink planted in its place."""

    def _open(self) -> Any:
        fd = os.open(self.baseFilename,
                     os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW | os.O_CLOEXEC,
                     0o600)
        os.fchmod(fd, 0o600)
        return os.fdopen(fd, "a", encoding=self.encoding or "utf-8", errors="replace")


def _log_to_file(logs_dir: str) -> None:
    """Route every logger (ghost's and the SDK's) to mcp.log; set up before the SDK's own
    logging.basicConfig, which then leaves the root logger alone."""
    root = logging.getLogger()
    try:
        handler: logging.Handler = _PrivateRotatingFile(
            os.path.join(logs_dir, LOG_NAME), maxBytes=LOG_MAX_BYTES, backupCount=LOG_BACKUPS,
            encoding="utf-8")
    except OSError as exc:
        # Read-only data dir: stderr is the only place left that cannot corrupt the protocol.
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("ghost mcp: %(message)s"))
        root.addHandler(handler)
        root.setLevel(logging.INFO)
        log.warning("cannot write %s (%s); logging to stderr", LOG_NAME, exc.strerror)
        return
    handler.setFormatter(logging.Formatter("%(asctime)s %(process)d %(levelname)s "
                                           "%(name)s: %(message)s"))
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    logging.captureWarnings(True)


def _version() -> str:
    from ghost import __version__

    return __version__

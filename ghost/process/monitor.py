"""The per-task monitor (podman's conmon pattern): `python -I -m ghost.process.monitor`.

`ghost run` starts it with a JSON spec on stdin and reads one JSON line back from its stdout.
The monitor
  1. forks once more so it is not the CLI's child (a long-lived caller such as `ghost mcp`
     reaps the short-lived intermediate and never collects zombies), in its own session;
  2. closes every fd it inherited, forks the task into its own process group, stdin from
     /dev/null, signals reset; the task creates its log file (0600, never through a symlink)
     for its stdout+stderr only once it is recorded;
  3. records `spawned` durably *before* letting the child exec (the child waits on a pipe and
     quits if the monitor dies first), so no task ever runs without a record;
  4. reports the pid, or the exec error, to `ghost run`, then waits and records `exited` or
     `killed` with the end time and resource usage.
Only the store modules are imported (no click, tabulate or watchfiles).
"""

from __future__ import annotations

import errno
import fcntl
import os
import signal
import sys
from typing import Any, NamedTuple

from events import types as ev
from events.store import StoreError
from ghost.faults import crash_point, fork_point, fork_with_pipe
from ghost.process.identity import boot_id, read_stat, start_ticks
from ghost.process.record import append
from ghost.process.supervise import record_start, supervised, supervision_fields, wait_queue

# Signals a task must start with at their defaults, whatever its launcher ignored or blocked.
RESET_SIGNALS = ("SIGINT", "SIGQUIT", "SIGTERM", "SIGHUP", "SIGPIPE", "SIGXFSZ", "SIGCHLD",
                 "SIGTSTP", "SIGTTIN", "SIGTTOU", "SIGUSR1", "SIGUSR2", "SIGALRM")
GO = b"g"
MAX_FD = 2**31 - 1


def exec_exit_code(code: int) -> int:
    """The shell's convention: 127 when the program is missing, 126 when it cannot run."""
    return 127 if code == errno.ENOENT else 126


def _child(spec: dict[str, Any], go_r: int, err_w: int, pumped: Any = None) -> None:
    """Runs in the forked child; never returns.

    The log file is created here, once `spawned` is recorded (GO): a monitor that dies before
    recording leaves nothing behind, not even an empty log.
    """
    try:
        if pumped is None:
            os.setpgid(0, 0)
        else:  # a PTY in a new session, or pipes, as stdio (ghost.process.plumbing)
            _stdio().in_child(pumped)
        for name in RESET_SIGNALS:
            signal.signal(getattr(signal, name), signal.SIG_DFL)
        signal.pthread_sigmask(signal.SIG_SETMASK, [])
        if pumped is None:
            null = os.open(os.devnull, os.O_RDONLY)
            os.dup2(null, 0)
        keep = {go_r, err_w}
        os.closerange(3, min(keep))
        os.closerange(max(keep) + 1, 65536)
        crash_point("task:before-exec")
        if os.read(go_r, 1) != GO:
            os._exit(0)  # the monitor died before recording the task: never run unrecorded
        if pumped is None:  # else the pump writes the log (it opens it once recorded)
            log_fd = _open_log(spec["log_path"], int(spec.get("attempt", 1)) == 1)
            os.dup2(log_fd, 1)
            os.dup2(log_fd, 2)
        os.chdir(spec["cwd"])
        os.execvpe(spec["command"][0], spec["command"], spec["env"])
    except OSError as exc:
        os.write(err_w, f"{exc.errno}:{exc.strerror}".encode())
        os._exit(exec_exit_code(exc.errno or 0))
    except BaseException:  # noqa: BLE001 - nothing may unwind into the monitor's code
        os._exit(126)
    os._exit(126)


def _open_log(path: str, fresh: bool = True) -> int:
    # A later attempt (ghost restart, a restart policy) appends to the task's existing log.
    flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW | os.O_CLOEXEC
    return os.open(path, flags | (os.O_EXCL if fresh else 0), 0o600)


def _report(out: Any, result: dict[str, Any]) -> None:
    """Tell `ghost run` how the start went, in one line: `ok PID STARTED_NS` or
    `error CODE MESSAGE`.

    If `ghost run` is gone (killed), carry on regardless: the task is recorded either way.
    """
    if result.get("exists"):  # run --key: that task has the key; nothing was started
        line = f"exists {result['exists']}"
    elif result.get("queued"):  # run --after: recorded as queued, starts later
        line = "queued 0 0"
    elif result.get("ok"):
        line = f"ok {result['pid']} {result.get('started_ns', 0)}"
    else:
        message = " ".join(str(result.get("error", "")).split())
        line = f"error {result.get('exit_code', 1)} {message}"
    try:
        out.write(line + "\n")
        out.close()
    except OSError:
        pass


class Held(NamedTuple):
    """A forked task blocked on its GO pipe: it runs only once its `spawned` is recorded."""
    pid: int
    go_w: int
    err_r: int


def _stdio() -> Any:
    # Only a pumped task (--pty/--stdin/--timestamps/--log-max) needs it; it pulls in
    # dataclasses and inspect (~9 ms), kept off the crash -> next attempt path.
    from ghost.process import plumbing

    return plumbing


def prepare_stdio(spec: dict[str, Any]) -> Any:
    return _stdio().prepare(spec) if spec.get("io") else None


def hold(spec: dict[str, Any], pumped: Any = None) -> Held:
    """Fork the task, blocked before exec until `release`; raises OSError (e.g. EAGAIN)."""
    go_r, go_w = os.pipe()
    err_r, err_w = os.pipe()
    try:
        fork_point("monitor:fork-task")
        pid = os.fork()
    except OSError:
        for fd in (go_r, go_w, err_r, err_w):
            os.close(fd)
        raise
    if pid == 0:
        os.close(go_w)
        os.close(err_r)
        _child(spec, go_r, err_w, pumped)
    os.close(go_r)
    os.close(err_w)
    if pumped is not None:
        _stdio().in_parent(pumped)  # only the task holds its ends: EOF and hang-up work
    try:
        if pumped is None or pumped.kind != "pty":  # a PTY task leads its own session
            os.setpgid(pid, pid)
    except OSError:
        pass  # the child did it first
    return Held(pid, go_w, err_r)


def abandon(held: Held, pumped: Any = None) -> None:
    """The held task never runs: it sees EOF on its GO pipe and quits; reap it."""
    os.close(held.go_w)
    os.close(held.err_r)
    os.waitpid(held.pid, 0)
    if pumped is not None:
        _stdio().close_all(pumped)


def spawned_event(spec: dict[str, Any], held: Held) -> ev.Event:
    """The `spawned` event of the held task, with this process as its monitor."""
    me = start_ticks(os.getpid()) or 0
    child = read_stat(held.pid)  # our unreaped child: its identity holds even if it died
    extra = supervision_fields(spec)  # name, group, key, policy; attempt and log offset
    return ev.make(
        ev.SPAWNED, spec["task"], command=spec["command"], cwd=spec["cwd"], pid=held.pid,
        pgid=held.pid, start_ticks=child.start_ticks if child else 0, boot_id=boot_id(),
        log_path=spec["log_path"], env_keys=spec["env_keys"],
        monitor={"pid": os.getpid(), "start_ticks": me}, actor=spec["actor"], **extra,
        **spec.get("io_fields", {}))


def start(spec: dict[str, Any], out: Any) -> int | None:
    """Start the task and report; its pid when it runs, None when it could not be started."""
    task = spec["task"]
    pumped = prepare_stdio(spec)  # None unless --pty/--stdin/--timestamps/--log-max
    try:
        held = hold(spec, pumped)
    except OSError as exc:  # e.g. EAGAIN at the process limit: nothing ran, leave no trace
        if pumped is not None:
            _stdio().close_all(pumped)
        error = f"cannot start {spec['command'][0]}: {exc.strerror}"
        append(spec, ev.make(ev.SPAWN_FAILED, task, command=spec["command"], cwd=spec["cwd"],
                             error=error, exit_code=1, actor=spec["actor"]), attempts=5)
        _report(out, {"ok": False, "exit_code": 1, "error": error})
        return None
    crash_point("monitor:before-spawned")
    spawned = spawned_event(spec, held)
    try:
        refused, spec["store_id"] = record_start(spec, spawned) if supervised(spec) \
            else (None, append(spec, spawned))
    except StoreError as exc:
        abandon(held, pumped)  # the child sees EOF and quits without running anything
        # Exit like a write failing in the CLI would (ghost.state.store): 74 disk full or I/O
        # error, 75 map full, 77 unsafe, 65 damaged store.
        code = {"disk_full": 74, "io_error": 74, "map_full": 75, "unsafe": 77,
                "damaged": 65}.get(exc.kind, 1)
        _report(out, {"ok": False, "exit_code": code, "error": str(exc)})
        return None
    if refused is not None:  # ghost.process.supervise said no: nothing runs, nothing stays
        abandon(held, pumped)
        _report(out, refused)
        return None
    return release(spec, held, pumped, spawned, out)


def release(spec: dict[str, Any], held: Held, pumped: Any, spawned: ev.Event,
            out: Any) -> int | None:
    """Let the recorded task exec; report its pid, or record why it could not run."""
    task, pid, err_r = spec["task"], held.pid, held.err_r
    crash_point("monitor:after-spawned")
    try:
        os.write(held.go_w, GO)
    except BrokenPipeError:
        pass  # killed before exec: it is recorded, so wait for it and record how it ended
    os.close(held.go_w)
    crash_point("monitor:after-go")
    failure = b""
    while chunk := os.read(err_r, 512):
        failure += chunk
    os.close(err_r)
    if failure:
        code_text, _, message = failure.decode(errors="replace").partition(":")
        _, status = os.waitpid(pid, 0)
        if pumped is not None:
            _stdio().close_all(pumped)
        exit_code = exec_exit_code(int(code_text or 0))
        error = f"cannot run {spec['command'][0]}: {message}"
        append(spec, ev.make(ev.SPAWN_FAILED, task, command=spec["command"], cwd=spec["cwd"],
                              error=error, exit_code=exit_code, actor=spec["actor"]),
               attempts=5)
        _report(out, {"ok": False, "exit_code": exit_code, "error": error})
        return None
    if pumped is not None:
        # The pump opens the log only once its waiter is up; created here, it exists when
        # `run` returns, as a plain task's does, so a reader never finds it missing.
        try:
            os.close(_open_log(spec["log_path"], fresh=False))
        except OSError:
            pass  # the pump meets the same error when it opens the log itself
        spec["pump_args"] = _stdio().waiter_args(pumped, spec["log_path"], spec["io"])
    _report(out, {"ok": True, "pid": pid, "task": task, "started_ns": spawned.time_ns})
    return pid


def exec_waiter(spec: dict[str, Any], pid: int) -> None:
    """Replace this process by the lean waiter (ghost.process.waiter); `pid` stays its child.

    The monitor needed the store's modules to record the start; waiting needs almost nothing.
    exec() sheds them (and, on the fork path, the whole CLI's memory) for the hours a task may
    run; the waiter imports the store again only when the task has ended.
    """
    import lmdb
    import msgpack

    import ghost
    import ghost.process.waiter

    # Only the directories our own modules came from: never the caller's cwd or script dir.
    roots = list(dict.fromkeys(os.path.dirname(os.path.dirname(m.__file__ or ""))
                               for m in (ghost, lmdb, msgpack)))
    code = f"import sys; sys.path[:0] = {roots!r}; from ghost.process.waiter import main; main()"
    args = [sys.executable, "-I", "-S", "-c", code, spec["task"], str(pid), spec["store"],
            str(spec["map_floor"]), spec.get("store_id", ""), str(spec.get("attempt", 1)),
            _supervision_arg(spec), *spec.get("pump_args", [])]
    try:
        os.execv(sys.executable, args)
    except OSError:
        ghost.process.waiter.run(spec, pid, spec.get("pump_args", []))  # no exec: heavier
        os._exit(0)


def _supervision_arg(spec: dict[str, Any]) -> str:
    """For the waiter: "0" no restart policy, "1" a policy, "1:LOG" a policy that restarts
    at once (base delay 0) a task ghost does not pump: the waiter may fork the next attempt
    before it records the end (ghost.process.restarts), and needs the log path for that."""
    policy = (spec.get("fields") or {}).get("policy")
    if not policy:
        return "0"
    if int(policy.get("delay_ms", 100)) == 0 and not spec.get("io"):
        return "1:" + str(spec["log_path"])
    return "1"


def become(spec: dict[str, Any], out_fd: int) -> None:
    """Run as the monitor in this (already detached) process; never returns."""
    code = 1
    try:
        os.umask(0o077)
        for name in ("SIGHUP", "SIGINT", "SIGPIPE", "SIGQUIT", "SIGTSTP"):
            signal.signal(getattr(signal, name), signal.SIG_IGN)
        out_fd = _keep_only(out_fd)
        out = os.fdopen(out_fd, "w")
        try:
            if spec.get("after"):  # run --after: queued until the dependencies ended
                out = wait_queue(spec, out)
            pid = start(spec, out)
        except Exception as exc:  # noqa: BLE001 - reported to `ghost run`, which prints it
            _report(out, {"ok": False, "exit_code": 1, "error": f"monitor failed: {exc}"})
            pid = None
        if pid is not None:
            exec_waiter(spec, pid)
    finally:
        os._exit(code)


def _keep_only(out_fd: int) -> int:
    """Close every fd inherited from the caller but the report pipe; stdio becomes /dev/null.

    A pipe the caller passed to `ghost run` (its stdout in `$(ghost run ...)`, any fd 3..N)
    must reach EOF when `ghost run` exits, not when the task does hours later.
    """
    if out_fd < 3:  # a caller started with closed stdio: move it out of the way of dup2
        out_fd = fcntl.fcntl(out_fd, fcntl.F_DUPFD_CLOEXEC, 3)
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    if null > 2:
        os.close(null)
    os.closerange(3, out_fd)
    os.closerange(out_fd + 1, MAX_FD)  # close_range(2): one system call
    return out_fd


def fork(spec: dict[str, Any]) -> tuple[int, int]:
    """Fork a detached monitor from this single-threaded process (no interpreter start-up).

    Returns (pid of the short-lived intermediate to reap, fd to read the report from).
    """
    pid, read_fd, write_fd = fork_with_pipe("run:fork-monitor")
    if pid == 0:
        try:
            os.close(read_fd)
            os.setsid()
            if os.fork() == 0:
                become(spec, write_fd)
        finally:
            os._exit(0)
    os.close(write_fd)
    return pid, read_fd


def main() -> int:
    """`python -I -m ghost.process.monitor`: the spec arrives as JSON on stdin (process.launch)."""
    import json

    spec = json.loads(sys.stdin.buffer.read())
    # Detach: the intermediate exits at once (reaped by `ghost run`), the monitor carries on.
    if os.fork() > 0:
        os._exit(0)
    become(spec, os.dup(1))
    return 1


if __name__ == "__main__":
    sys.exit(main())

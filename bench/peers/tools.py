"""The tools compared, each as the commands a user would type, with its own state in a temp dir.

Every tool gets a private home under the run's scratch dir (GHOST_DATA_DIR, PM2_HOME, a
supervisord.conf with its own socket, TS_SOCKET), so nothing touches the user's real instances.
Commands follow /work/shared/research/peer-bench.md so the figures can be compared with it.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from peers.sysproc import Proc, run

BENCH = Path(__file__).resolve().parent.parent
PEERS_DIR = BENCH / ".peers"
# Variables that would distort the peers: NODE_EXTRA_CA_CERTS alone adds ~35 ms to every node
# start on this box (peer-bench.md); PYTHONDONTWRITEBYTECODE would make every Python CLI
# recompile modules that have no .pyc yet. Users do not normally run with these.
DROP_ENV = ("NODE_EXTRA_CA_CERTS", "NODE_OPTIONS", "PYTHONUNBUFFERED", "PYTHONDONTWRITEBYTECODE",
            "PYTHONSTARTUP", "PYTHONPATH", "PYTHONPROFILEIMPORTTIME")


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in DROP_ENV and not k.startswith(("GHOST_", "PM2_", "TS_"))}
    env.update(extra)
    return env


def socket_path(root: Path, name: str) -> Path:
    """A unix socket path under `root`, or in /tmp when that would pass the 107-byte limit."""
    path = root / name
    return path if len(str(path)) < 100 else Path(f"/tmp/ghost-compare-{os.getpid()}-{name}")


@dataclass(slots=True)
class Launched:
    name: str  # unique name we chose (also in the payload's argv)
    ident: str  # what the tool's stop/follow commands take
    pid: int = 0  # the payload's pid, once known


class Tool:
    """A tool as a set of commands. Subclasses fill in the argv of each action."""

    name = ""
    kind = "peer"
    list_ok: tuple[int, ...] = (0,)  # exit codes of a successful list call

    def __init__(self, root: Path) -> None:
        self.root = root / self.name
        self.env: dict[str, str] = clean_env()

    def missing(self) -> str | None:
        """Why the tool cannot be measured here, or None."""
        return None

    def version(self) -> str:
        return ""

    def setup(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)

    def teardown(self) -> None:
        pass

    def cold(self) -> list[str]:
        raise NotImplementedError

    def start(self, name: str, argv: Sequence[str]) -> list[str]:
        raise NotImplementedError

    def before_start(self, name: str, argv: Sequence[str]) -> object:
        """Something the user must do inside the launch (supervisor: write the program file)."""
        return None

    def launched(self, name: str, out: str) -> Launched:
        return Launched(name, name)

    def find_pid(self, task: Launched) -> int:
        raise NotImplementedError

    def list_cmd(self) -> list[str]:
        raise NotImplementedError

    def visible(self, task: Launched, out: str) -> bool:
        return task.ident in out

    def stop(self, task: Launched) -> list[str]:
        raise NotImplementedError

    def remove(self, task: Launched) -> None:
        pass

    def populate(self, items: Sequence[tuple[str, list[str]]]) -> None:
        """Start many tasks, untimed, the cheapest way the tool offers."""
        for name, argv in items:
            run(self.start(name, argv), self.env)

    def reset(self) -> None:
        """Forget every task (stopping the running ones), so the next phase starts empty."""

    def follow(self, task: Launched) -> list[str]:
        raise NotImplementedError

    def owns(self, p: Proc) -> bool:
        """Whether this process is part of the tool itself (not a payload)."""
        return False


def _poll(fn, timeout: float = 10.0, interval: float = 0.01):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while True:
        value = fn()
        if value:
            return value
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out after {timeout}s in {getattr(fn, '__name__', fn)}")
        time.sleep(interval)


class Ghost(Tool):
    name = "ghost"
    kind = "ghost"

    def __init__(self, root: Path, exe: list[str]) -> None:
        super().__init__(root)
        self.exe = exe
        self.generation = 0

    def version(self) -> str:
        return run([*self.exe, "--version"], self.env).strip().removeprefix("ghost ")

    def setup(self) -> None:
        super().setup()
        self.env["GHOST_DATA_DIR"] = str(self.root / f"data{self.generation}")

    def cold(self) -> list[str]:
        return [*self.exe, "--version"]

    def start(self, name: str, argv: Sequence[str]) -> list[str]:
        return [*self.exe, "run", *argv]

    def launched(self, name: str, out: str) -> Launched:
        ident = re.search(r"Task ID: (\S+)", out)
        pid = re.search(r"PID: (\d+)", out)
        if not ident or not pid:
            raise RuntimeError(f"ghost run printed no task id: {out!r}")
        return Launched(name, ident.group(1), int(pid.group(1)))

    def find_pid(self, task: Launched) -> int:
        return task.pid

    def list_cmd(self) -> list[str]:
        return [*self.exe, "list"]

    def stop(self, task: Launched) -> list[str]:
        return [*self.exe, "stop", task.ident]

    def populate(self, items: Sequence[tuple[str, list[str]]]) -> None:
        # `ghost run "cmd 1" "cmd 2" ...` starts one task per argument: one CLI per 50 tasks.
        for i in range(0, len(items), 50):
            batch = [" ".join(argv) for _, argv in items[i:i + 50]]
            run([*self.exe, "run", *batch], self.env)

    def running(self) -> list[dict[str, object]]:
        if not (Path(self.env["GHOST_DATA_DIR"]) / "store").exists():
            return []
        tasks = json.loads(run([*self.exe, "list", "--json", "--status", "running"], self.env))
        return [t for t in tasks if t.get("status") == "running"]

    def reset(self) -> None:
        """Kill the running tasks' process groups (ours: they run below our subreaper), let
        their monitors record the ends, then continue in a fresh data dir."""
        tasks = self.running()
        for t in tasks:
            try:
                os.killpg(int(t["pid"]), 9)  # type: ignore[call-overload]
            except ProcessLookupError:
                pass
        if tasks:
            _poll(lambda: not self.running(), timeout=120, interval=0.2)
        self.generation += 1
        self.env["GHOST_DATA_DIR"] = str(self.root / f"data{self.generation}")

    def follow(self, task: Launched) -> list[str]:
        return [*self.exe, "log", "-f", task.ident]

    def owns(self, p: Proc) -> bool:
        return re.search(r"\bghost\.(monitor|waiter)\b", p.cmdline) is not None


class TaskSpooler(Tool):
    name = "tsp"
    # tsp keeps one client process per running job and its server refuses connections
    # beyond ~1,000 (TS_MAXCONN), so at N=1,000 it holds 900 running + 100 finished jobs.
    max_running = 900

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.bin = shutil.which("tsp") or "tsp"
        self.sock = socket_path(self.root, "tsp.socket")
        self.env.update(TS_SOCKET=str(self.sock), TMPDIR=str(self.root),
                        TS_SLOTS="1000")

    def missing(self) -> str | None:
        return None if shutil.which("tsp") else "not installed (Debian package task-spooler)"

    def version(self) -> str:
        line = run([self.bin, "-V"], self.env).strip().splitlines()[0]
        return line.split(" - ")[0].removeprefix("Task Spooler ")

    def setup(self) -> None:
        super().setup()
        run([self.bin, "-S", "1000"], self.env)  # starts the server

    def teardown(self) -> None:
        run([self.bin, "-K"], self.env)
        self.sock.unlink(missing_ok=True)

    def cold(self) -> list[str]:
        return [self.bin, "-V"]

    def start(self, name: str, argv: Sequence[str]) -> list[str]:
        return [self.bin, *argv]

    def launched(self, name: str, out: str) -> Launched:
        return Launched(name, out.strip())

    def find_pid(self, task: Launched) -> int:
        return _poll(lambda: int(run([self.bin, "-p", task.ident], self.env).strip() or 0))

    def list_cmd(self) -> list[str]:
        return [self.bin]

    def visible(self, task: Launched, out: str) -> bool:
        return any(line.split(None, 1)[:1] == [task.ident] for line in out.splitlines())

    def stop(self, task: Launched) -> list[str]:
        return [self.bin, "-k", task.ident]

    def remove(self, task: Launched) -> None:
        # Not `tsp -w`: it can block for good when a `-k` missed (seen at N=1,000). Poll the
        # state, and end a job that outlived its stop by pid (it runs below our subreaper).
        deadline, killed = time.monotonic() + 10, False
        while run([self.bin, "-s", task.ident], self.env).strip() == "running":
            if time.monotonic() > deadline:
                if killed:
                    raise RuntimeError(f"tsp job {task.ident} still running after SIGTERM")
                pid = int(run([self.bin, "-p", task.ident], self.env).strip() or 0)
                if pid > 1:
                    os.kill(pid, 15)
                deadline, killed = time.monotonic() + 10, True
            time.sleep(0.01)
        run([self.bin, "-r", task.ident], self.env)

    def populate(self, items: Sequence[tuple[str, list[str]]]) -> None:
        running = len(self.running_ids())
        for name, argv in items:
            if running >= self.max_running:
                argv = ["true", name]
            running += 1
            run(self.start(name, argv), self.env)

    def running_ids(self) -> list[str]:
        out = run([self.bin], self.env)
        return [ln.split()[0] for ln in out.splitlines()[1:] if " running " in ln]

    def reset(self) -> None:
        for ident in self.running_ids():
            try:
                run([self.bin, "-k", ident], self.env)
            except RuntimeError:
                pass  # it ended by itself meanwhile
        _poll(lambda: not self.running_ids(), timeout=60, interval=0.1)
        run([self.bin, "-C"], self.env)

    def follow(self, task: Launched) -> list[str]:
        return [self.bin, "-t", task.ident]

    def owns(self, p: Proc) -> bool:
        return p.cmdline.split(" ", 1)[0] in (self.bin, "tsp")


def ghost_exe() -> list[str]:
    """The installed `ghost` console script next to this interpreter, as a user would run it."""
    script = Path(sys.executable).parent / "ghost"
    return [str(script)] if os.access(script, os.X_OK) else [sys.executable, "-m", "ghost"]


def all_tools(root: Path) -> tuple[list[Tool], dict[str, str]]:
    """ghost plus every peer installed here; the others with the reason they are skipped."""
    from peers.daemons import Pm2, Supervisor

    tools: list[Tool] = [Ghost(root, ghost_exe())]
    skipped: dict[str, str] = {}
    for cls in (TaskSpooler, Supervisor, Pm2):
        tool = cls(root)
        reason = tool.missing()
        if reason:
            skipped[tool.name] = reason
        else:
            tools.append(tool)
    return tools, skipped

"""The daemon-based peers, pm2 and supervisord, as the commands a user would type.

Each gets a private home under the run's scratch dir (PM2_HOME; a supervisord.conf with its own
socket), so nothing touches the user's real instances.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Sequence
from pathlib import Path

from peers.sysproc import Proc, run
from peers.tools import PEERS_DIR, Launched, Tool, _poll, socket_path


class Pm2(Tool):
    name = "pm2"

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.bin = str(PEERS_DIR / "npm" / "bin" / "pm2")
        self.env["PM2_HOME"] = str(self.root / "home")

    def missing(self) -> str | None:
        if not os.access(self.bin, os.X_OK):
            return f"not installed ({self.bin}); run bench/install-peers.sh"
        if not shutil.which("node"):
            return "node is not on PATH"
        return None

    def version(self) -> str:
        pkg = PEERS_DIR / "npm" / "lib" / "node_modules" / "pm2" / "package.json"
        node = run(["node", "--version"], self.env).strip()
        return f"{json.loads(pkg.read_text())['version']} (node {node})"

    def setup(self) -> None:
        super().setup()
        run([self.bin, "ping"], self.env)  # starts the God daemon, as the first call would

    def teardown(self) -> None:
        run([self.bin, "kill"], self.env)

    def cold(self) -> list[str]:
        return [self.bin, "--version"]

    def start(self, name: str, argv: Sequence[str]) -> list[str]:
        return [self.bin, "start", argv[0], "--name", name, "--no-autorestart", "--", *argv[1:]]

    def find_pid(self, task: Launched) -> int:
        return _poll(lambda: int(run([self.bin, "pid", task.name], self.env).strip() or 0))

    def list_cmd(self) -> list[str]:
        return [self.bin, "ls"]

    def stop(self, task: Launched) -> list[str]:
        return [self.bin, "stop", task.name]

    def remove(self, task: Launched) -> None:
        run([self.bin, "delete", task.name], self.env)

    def populate(self, items: Sequence[tuple[str, list[str]]]) -> None:
        apps = [{"name": n, "script": a[0], "args": a[1:], "interpreter": "none",
                 "autorestart": False} for n, a in items]
        eco = self.root / f"eco-{len(items)}-{time.monotonic_ns()}.json"
        eco.write_text(json.dumps({"apps": apps}))
        run([self.bin, "start", str(eco)], self.env)

    def reset(self) -> None:
        if json.loads(run([self.bin, "jlist"], self.env) or "[]"):
            run([self.bin, "delete", "all"], self.env)

    def follow(self, task: Launched) -> list[str]:
        return [self.bin, "logs", task.name, "--raw", "--lines", "0"]

    def owns(self, p: Proc) -> bool:
        return p.cmdline.startswith("PM2 v")


class Supervisor(Tool):
    name = "supervisor"
    list_ok = (0, 3)  # `status` exits 3 when any program is not RUNNING (e.g. STOPPED)

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        venv = PEERS_DIR / "supervisor-venv" / "bin"
        self.ctl, self.daemon = str(venv / "supervisorctl"), str(venv / "supervisord")
        self.conf = self.root / "supervisord.conf"
        self.sock = socket_path(self.root, "supervisor.sock")
        self.confd = self.root / "conf.d"

    def missing(self) -> str | None:
        if not os.access(self.ctl, os.X_OK):
            return f"not installed ({self.ctl}); run bench/install-peers.sh"
        return None

    def version(self) -> str:
        return run([self.daemon, "--version"], self.env).strip()

    def setup(self) -> None:
        super().setup()
        self.confd.mkdir(exist_ok=True)
        (self.root / "logs").mkdir(exist_ok=True)
        r = self.root
        # minfds: each program holds pipes and log files; the default 1024 cannot run 1,000.
        self.conf.write_text(
            f"[unix_http_server]\nfile={self.sock}\n\n"
            f"[supervisord]\nlogfile={r}/supervisord.log\npidfile={r}/supervisord.pid\n"
            f"childlogdir={r}/logs\nminfds=16384\n\n"
            "[rpcinterface:supervisor]\n"
            "supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface\n\n"
            f"[supervisorctl]\nserverurl=unix://{self.sock}\n\n"
            f"[include]\nfiles={self.confd}/*.conf\n")
        run([self.daemon, "-c", str(self.conf)], self.env)
        _poll(lambda: self.sock.exists())

    def teardown(self) -> None:
        run([self.ctl, "-c", str(self.conf), "shutdown"], self.env)
        self.sock.unlink(missing_ok=True)

    def _ctl(self, *args: str) -> list[str]:
        return [self.ctl, "-c", str(self.conf), *args]

    def cold(self) -> list[str]:
        return self._ctl("help")

    def _write_program(self, name: str, argv: Sequence[str]) -> None:
        (self.confd / f"{name}.conf").write_text(
            f"[program:{name}]\ncommand={' '.join(argv)}\nautorestart=false\n")

    def before_start(self, name: str, argv: Sequence[str]) -> object:
        return lambda: self._write_program(name, argv)

    def start(self, name: str, argv: Sequence[str]) -> list[str]:
        return self._ctl("update", name)

    def find_pid(self, task: Launched) -> int:
        return _poll(lambda: int(run(self._ctl("pid", task.name), self.env).strip() or 0))

    def list_cmd(self) -> list[str]:
        return self._ctl("status")

    def stop(self, task: Launched) -> list[str]:
        return self._ctl("stop", task.name)

    def remove(self, task: Launched) -> None:
        (self.confd / f"{task.name}.conf").unlink(missing_ok=True)
        run(self._ctl("update", task.name), self.env)

    def populate(self, items: Sequence[tuple[str, list[str]]]) -> None:
        for name, argv in items:
            self._write_program(name, argv)
        run(self._ctl("update"), self.env)

    def reset(self) -> None:
        # `stop all` stops in parallel; removing running groups via `update` stops them one
        # by one with a 1 s poll each (~17 min for 1,000).
        run(self._ctl("stop", "all"), self.env)
        for f in self.confd.glob("*.conf"):
            f.unlink()
        run(self._ctl("update"), self.env)

    def follow(self, task: Launched) -> list[str]:
        return self._ctl("tail", "-f", task.name)

    def owns(self, p: Proc) -> bool:
        return "supervisord" in p.cmdline

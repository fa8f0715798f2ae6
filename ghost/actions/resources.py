"""What running tasks use right now: CPU, memory, uptime and the ports they listen on.

Read from /proc only (no psutil): one pass over /proc/*/stat finds every task's process group
at once, so the cost does not multiply by the number of tasks; socket inodes come from the
group's /proc/PID/fd links and are matched against /proc/net/{tcp,tcp6,udp,udp6}, which are
read only when some task has a socket. Figures are like ps(1)'s: CPU % is the group's CPU time
(including children it has reaped) over the task's lifetime, memory the sum of the group's
resident sets (shared pages count once per process, as in `ps`).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from projections.tasks import Task

TICKS = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")
TCP_LISTEN = "0A"
UDP_UNCONNECTED = "07"
NET_FILES = (("tcp", "tcp"), ("tcp", "tcp6"), ("udp", "udp"), ("udp", "udp6"))


@dataclass(frozen=True, slots=True)
class Port:
    proto: str  # tcp or udp
    address: str  # the local address it is bound to ("0.0.0.0", "::", "127.0.0.1", ...)
    port: int

    def __str__(self) -> str:
        return f"{self.proto}:{self.port}"


@dataclass(frozen=True, slots=True)
class Usage:
    processes: int  # live processes in the task's group
    cpu_percent: float
    rss_bytes: int
    uptime_s: float
    ports: tuple[Port, ...] = field(default=())

    def as_json(self) -> dict[str, Any]:
        return {"processes": self.processes, "cpu_percent": round(self.cpu_percent, 1),
                "rss_bytes": self.rss_bytes, "uptime_s": round(self.uptime_s, 3),
                "ports": [{"proto": p.proto, "address": p.address, "port": p.port}
                          for p in self.ports]}


class _Proc:
    __slots__ = ("pid", "pgid", "start_ticks", "cpu_ticks", "rss_pages")

    def __init__(self, pid: int, fields: list[bytes]) -> None:
        # fields start at /proc/PID/stat's third field (state): see proc(5)
        self.pid = pid
        self.pgid = int(fields[2])
        self.cpu_ticks = sum(int(f) for f in fields[11:15])  # utime stime cutime cstime
        self.start_ticks = int(fields[19])
        self.rss_pages = int(fields[21])


def usage(tasks: Iterable[Task], *, via: str) -> dict[str, Usage]:
    """Usage of every running task among `tasks`, by task id (tasks not running are left
    out). `via` names the surface asking, like every action (nothing is recorded)."""
    running = [t for t in tasks if t.status == "running"]
    if not running:
        return {}
    groups = _groups({t.pgid for t in running})
    uptime = _boot_uptime()
    now_ns = time.time_ns()
    found: dict[str, list[_Proc]] = {}
    for task in running:
        members = [p for p in groups.get(task.pgid, ()) if p.start_ticks >= task.start_ticks]
        leader = next((p for p in groups.get(task.pgid, ()) if p.pid == task.pgid), None)
        if leader is not None and leader.start_ticks != task.start_ticks:
            members = []  # the number leads another group now (see identity.group_members)
        found[task.id] = members
    sockets = {t.id: _socket_inodes(found[t.id]) for t in running}
    listening = _listening() if any(sockets.values()) else {}
    result = {}
    for task in running:
        members = found[task.id]
        lifetime = (uptime - task.start_ticks / TICKS) if uptime else \
            (now_ns - task.started_ns) / 1e9
        cpu = sum(p.cpu_ticks for p in members) / TICKS
        ports = sorted({listening[i] for i in sockets[task.id] if i in listening},
                       key=lambda p: (p.proto, p.port, p.address))
        result[task.id] = Usage(
            processes=len(members),
            cpu_percent=100.0 * cpu / lifetime if lifetime > 0 else 0.0,
            rss_bytes=sum(p.rss_pages for p in members) * PAGE,
            uptime_s=max(0.0, (now_ns - task.started_ns) / 1e9),
            ports=tuple(ports))
    return result


def _groups(pgids: set[int]) -> dict[int, list[_Proc]]:
    """Live processes of the given process groups, from one pass over /proc."""
    groups: dict[int, list[_Proc]] = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        raw = _read(f"/proc/{name}/stat")
        if raw is None:
            continue
        fields = raw[raw.rindex(b")") + 2:].split()
        if fields[0] in (b"Z", b"X") or int(fields[2]) not in pgids:
            continue
        proc = _Proc(int(name), fields)
        groups.setdefault(proc.pgid, []).append(proc)
    return groups


def _read(path: str) -> bytes | None:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:  # gone, or not ours to read
        return None
    try:
        return os.read(fd, 1 << 16)
    except OSError:
        return None
    finally:
        os.close(fd)


def _boot_uptime() -> float:
    raw = _read("/proc/uptime")
    return float(raw.split()[0]) if raw else 0.0


def _socket_inodes(procs: list[_Proc]) -> set[int]:
    inodes = set()
    for proc in procs:
        base = f"/proc/{proc.pid}/fd"
        try:
            names = os.listdir(base)
        except OSError:
            continue
        for name in names:
            try:
                target = os.readlink(f"{base}/{name}")
            except OSError:
                continue
            if target.startswith("socket:["):
                inodes.add(int(target[8:-1]))
    return inodes


def _listening() -> dict[int, Port]:
    """Listening TCP and bound, unconnected UDP sockets by inode (in our network namespace)."""
    found = {}
    for proto, name in NET_FILES:
        try:
            with open(f"/proc/net/{name}", encoding="ascii") as f:
                lines = f.read().splitlines()[1:]
        except OSError:
            continue
        wanted = TCP_LISTEN if proto == "tcp" else UDP_UNCONNECTED
        for line in lines:
            parts = line.split()
            if len(parts) < 10 or parts[3] != wanted:
                continue
            address, _, port = parts[1].partition(":")
            found[int(parts[9])] = Port(proto, _address(address), int(port, 16))
    return found


def _address(hex_address: str) -> str:
    """/proc/net's address: 32-bit words in host byte order (little-endian here)."""
    import ipaddress
    import sys

    raw = bytes.fromhex(hex_address)
    words = [raw[i:i + 4] for i in range(0, len(raw), 4)]
    if sys.byteorder == "little":
        words = [w[::-1] for w in words]
    return str(ipaddress.ip_address(b"".join(words)))

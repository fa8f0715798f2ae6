"""`ghost serve` under load: SSE latency, concurrent starts, memory and idle CPU.

    .venv/bin/python bench/serve.py [--clients 100] [--lines 500] [--starts 50] [--idle 10]

Phases, all against a real `ghost serve` (a subprocess on a free port, fresh data dir):
  1. idle: the server's RSS and CPU over --idle seconds with no client, then with one
     dashboard-like client holding the event stream open (target: <= 1 % of a core);
  2. output SSE: --clients clients follow one busy task that prints a wall-clock timestamp per
     line (--lines lines, 100 a second); each line's latency is the time from its write to a
     client parsing it (clients share this process: their own CPU is in the figure);
  3. starts: --starts concurrent `POST /api/tasks` (sleep 300): wall time and per-request
     latency; then, in the same run, supervisord's XML-RPC `startProcess` for as many programs
     configured beforehand (startsecs=0, so "started" means spawned, as for ghost), when
     bench/install-peers.sh has installed it. supervisord has no output push to compare with
     phase 2 (its tail is polled), so phase 2 is ghost's alone.
Prints medians and percentiles; nothing is asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import xmlrpc.client
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
SUPERVISOR = ROOT / "bench" / ".peers" / "supervisor-venv" / "bin"
TICKS = os.sysconf("SC_CLK_TCK")
BUSY = ("import sys, time\n"
        "n = int(sys.argv[1])\n"
        "time.sleep(3)\n"  # clients connect first
        "for i in range(n):\n"
        "    sys.stdout.write(f'{time.time_ns()}\\n'); sys.stdout.flush(); time.sleep(0.01)\n")


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]


def rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        line = next(ln for ln in f if ln.startswith("VmRSS:"))
    return int(line.split()[1]) / 1024


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def cpu_share(pid: int, seconds: float) -> float:
    """Percent of one core the process used over the next `seconds`."""
    before, t0 = cpu_seconds(pid), time.monotonic()
    time.sleep(seconds)
    return 100 * (cpu_seconds(pid) - before) / (time.monotonic() - t0)


class Served:
    def __init__(self, data: str) -> None:
        self.env = {**os.environ, "GHOST_DATA_DIR": data}
        self.proc = subprocess.Popen([sys.executable, "-m", "ghost", "serve", "--port", "0"],
                                     env=self.env, stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL, cwd=ROOT)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().decode()
        match = re.search(r"(http://[^/]+)/\?token=(\S+)", line)
        if match is None:
            raise SystemExit(f"ghost serve did not start: {line!r}")
        self.url, token = match.group(1), match.group(2)
        self.headers = {"Authorization": f"Bearer {token}"}
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(self.url + "/api/openapi.json", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.05)
        raise SystemExit("ghost serve never answered")

    def stop(self) -> None:
        os.kill(self.proc.pid, signal.SIGTERM)
        self.proc.wait(15)


def idle(server: Served, seconds: float) -> None:
    pid = server.proc.pid
    time.sleep(1)
    bare = cpu_share(pid, seconds)
    print(f"idle, no client:           RSS {rss_mib(pid):6.1f} MiB   CPU {bare:.2f} % of a core")
    with httpx.Client(base_url=server.url, headers=server.headers, timeout=None) as http, \
            http.stream("GET", "/api/events/stream") as response:
        assert response.status_code == 200
        time.sleep(2.5)  # past the follower's hot phase
        watched = cpu_share(pid, seconds)
    print(f"idle, one event stream:    RSS {rss_mib(pid):6.1f} MiB   CPU {watched:.2f} % of a core")


async def _client(server: Served, task: str, lines: int, latencies: list[float]) -> None:
    """A lean SSE client on a raw socket (httpx costs ~10x more CPU per message, and the
    clients share this process): it only looks for the stamps in the `data:` lines."""
    host, port = server.url.removeprefix("http://").rsplit(":", 1)
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(f"GET /api/tasks/{task}/output/stream HTTP/1.1\r\nHost: {host}:{port}\r\n"
                 f"Authorization: {server.headers['Authorization']}\r\n\r\n".encode())
    await writer.drain()
    got, buffer = 0, b""
    try:
        while got < lines:
            chunk = await reader.read(1 << 16)
            if not chunk:
                return
            now = time.time_ns()
            buffer += chunk
            *done, buffer = buffer.split(b"\n\n")
            for message in done:
                for stamp in STAMP.findall(message):
                    latencies.append((now - int(stamp)) / 1e6)
                    got += 1
    finally:
        writer.close()


STAMP = re.compile(rb"(1[0-9]{18})\\n")


async def _fan_out(server: Served, task: str, clients: int, lines: int) -> list[float]:
    latencies: list[float] = []
    jobs = [asyncio.create_task(_client(server, task, lines, latencies))
            for _ in range(clients)]
    await asyncio.wait_for(asyncio.gather(*jobs), timeout=120)
    return latencies


def fan_out(server: Served, clients: int, lines: int) -> None:
    http = httpx.Client(base_url=server.url, headers=server.headers, timeout=60)
    task = http.post("/api/tasks", json={"command": [sys.executable, "-c", BUSY, str(lines)],
                                         "cwd": str(ROOT)}).json()["id"]
    peak = [0.0]

    def sample() -> None:
        while not stop:
            peak[0] = max(peak[0], rss_mib(server.proc.pid))
            time.sleep(0.2)

    stop = False
    with ThreadPoolExecutor(1) as pool:
        sampler = pool.submit(sample)
        before = cpu_seconds(server.proc.pid)
        t0 = time.monotonic()
        latencies = asyncio.run(_fan_out(server, task, clients, lines))
        used = cpu_seconds(server.proc.pid) - before
        elapsed = time.monotonic() - t0
        stop = True
        sampler.result()
    expected = clients * lines
    print(f"\noutput SSE: {clients} clients x {lines} lines (100 lines/s), "
          f"{len(latencies)}/{expected} delivered")
    print(f"  write -> client latency: p50 {statistics.median(latencies):.1f} ms   "
          f"p95 {pct(latencies, 95):.1f} ms   max {max(latencies):.1f} ms")
    print(f"  server: peak RSS {peak[0]:.1f} MiB, CPU {100 * used / elapsed:.0f} % of a core "
          f"while streaming")


def starts(server: Served, count: int) -> list[float]:
    def one(_: int) -> float:
        t0 = time.perf_counter()
        response = httpx.post(server.url + "/api/tasks", headers=server.headers, timeout=120,
                              json={"command": ["sleep", "300"]})
        assert response.status_code == 201, response.text
        return (time.perf_counter() - t0) * 1000

    t0 = time.perf_counter()
    with ThreadPoolExecutor(count) as pool:
        times = list(pool.map(one, range(count)))
    wall = (time.perf_counter() - t0) * 1000
    print(f"\n{count} concurrent starts:")
    print(f"  ghost serve  POST /api/tasks        wall {wall:7.0f} ms   per request p50 "
          f"{statistics.median(times):6.0f} ms  p95 {pct(times, 95):6.0f} ms")
    kill_running(server)
    return times


def supervisor_starts(count: int, scratch: Path) -> None:
    daemon, ctl = SUPERVISOR / "supervisord", SUPERVISOR / "supervisorctl"
    if not os.access(daemon, os.X_OK):
        print("  supervisord  (not installed: run bench/install-peers.sh)")
        return
    root = scratch / "supervisor"
    (root / "logs").mkdir(parents=True)
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    programs = "".join(f"[program:p{i}]\ncommand=sleep 300\nautostart=false\nautorestart=false\n"
                       f"startsecs=0\n\n" for i in range(count))
    conf = root / "supervisord.conf"
    conf.write_text(f"[inet_http_server]\nport=127.0.0.1:{port}\n\n"
                    f"[supervisord]\nlogfile={root}/supervisord.log\npidfile={root}/s.pid\n"
                    f"childlogdir={root}/logs\nminfds=4096\n\n[rpcinterface:supervisor]\n"
                    "supervisor.rpcinterface_factory = supervisor.rpcinterface:"
                    f"make_main_rpcinterface\n\n[supervisorctl]\nserverurl=http://127.0.0.1:"
                    f"{port}\n\n{programs}")
    subprocess.run([str(daemon), "-c", str(conf)], check=True)
    url = f"http://127.0.0.1:{port}/RPC2"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                xmlrpc.client.ServerProxy(url).supervisor.getState()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

        def one(i: int) -> float:
            t0 = time.perf_counter()
            assert xmlrpc.client.ServerProxy(url).supervisor.startProcess(f"p{i}", True)
            return (time.perf_counter() - t0) * 1000

        t0 = time.perf_counter()
        with ThreadPoolExecutor(count) as pool:
            times = list(pool.map(one, range(count)))
        wall = (time.perf_counter() - t0) * 1000
        print(f"  supervisord  XML-RPC startProcess   wall {wall:7.0f} ms   per request p50 "
              f"{statistics.median(times):6.0f} ms  p95 {pct(times, 95):6.0f} ms")
        with open(root / "s.pid") as f:
            print(f"  (supervisord RSS with {count} programs: {rss_mib(int(f.read())):.1f} MiB)")
    finally:
        subprocess.run([str(ctl), "-c", str(conf), "shutdown"], capture_output=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=100)
    parser.add_argument("--lines", type=int, default=500)
    parser.add_argument("--starts", type=int, default=50)
    parser.add_argument("--idle", type=float, default=10.0)
    args = parser.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="ghost-bench-serve-"))
    server = Served(str(scratch / "data"))
    try:
        print(f"ghost serve pid {server.proc.pid} on {server.url}, {os.cpu_count()} CPUs\n")
        idle(server, args.idle)
        fan_out(server, args.clients, args.lines)
        starts(server, args.starts)
        supervisor_starts(args.starts, scratch)
        print(f"\nserver RSS at the end: {rss_mib(server.proc.pid):.1f} MiB")
    finally:
        kill_running(server)
        server.stop()
        shutil.rmtree(scratch, ignore_errors=True)


def kill_running(server: Served) -> None:
    http = httpx.Client(base_url=server.url, headers=server.headers, timeout=120)
    running = http.get("/api/tasks?status=running").json()["tasks"]
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda t: http.post(f"/api/tasks/{t['id']}/kill"), running))


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Supervision, measured against pm2 and supervisord in the same run (issue 15).

    .venv/bin/python bench/supervise.py [--quick] [--restarts N] [--group N] [--rounds N]

- restart latency: a task that crashes (exit 1) after 0.2 s, restarted by the tool's own policy
  (ghost `--restart always --restart-delay 0`, pm2 autorestart with `--restart-delay 0`,
  supervisord `autorestart=true startsecs=0`). The payload stamps the time just before it exits
  and as soon as the next attempt runs; latency = next start - previous exit. Median over N.
- `stop -g` of N tasks (ghost), next to `pm2 stop all` and `supervisorctl stop all` of N.
- `restart` of a running task end to end: `ghost restart`, `pm2 restart`, `supervisorctl
  restart`, each call timed from outside until it returns.
- the waiter's memory while it supervises a policy task (PSS, smaps_rollup).
Tools missing here (bench/install-peers.sh) are skipped with a note. Everything runs in a
scratch directory; every process started is shut down by its tool, leftovers killed by pid.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from peers.daemons import Pm2, Supervisor  # noqa: E402
from peers.sysproc import become_subreaper, kill_descendants, memory_kib, run, timed  # noqa: E402
from peers.tools import Ghost, Tool, ghost_exe  # noqa: E402

CRASH = "echo S $(date +%s%N) >> {0}; sleep 0.2; echo E $(date +%s%N) >> {0}; exit 1"


def crash_argv(stamps: Path) -> list[str]:
    return ["sh", "-c", CRASH.format(stamps)]


def latencies(stamps: Path) -> list[float]:
    """ms from each attempt's exit stamp to the next attempt's start stamp."""
    out, last_end = [], None
    for line in stamps.read_text().splitlines():
        kind, _, ns = line.partition(" ")
        if kind == "E":
            last_end = int(ns)
        elif kind == "S" and last_end is not None:
            out.append((int(ns) - last_end) / 1e6)
            last_end = None
    return out


def start_crasher(tool: Tool, name: str, stamps: Path) -> None:
    argv = crash_argv(stamps)
    if isinstance(tool, Ghost):
        run([*tool.exe, "run", "--name", name, "--restart", "always", "--restart-delay", "0",
             *argv], tool.env)
    elif isinstance(tool, Pm2):
        run([tool.bin, "start", "sh", "--name", name, "--restart-delay", "0", "--", *argv[1:]],
            tool.env)
    elif isinstance(tool, Supervisor):
        (tool.confd / f"{name}.conf").write_text(
            # supervisord expands %(...)s in its config: a literal % is written %%
            f"[program:{name}]\ncommand=sh -c \"{CRASH.format(stamps).replace('%', '%%')}\"\n"
            "autorestart=true\n"
            "startsecs=0\nstartretries=100000\n")
        run(tool._ctl("update", name), tool.env)


def stop_crasher(tool: Tool, name: str) -> None:
    if isinstance(tool, Ghost):
        run([*tool.exe, "stop", name], tool.env, ok=(0, 1))
    elif isinstance(tool, Pm2):
        run([tool.bin, "delete", name], tool.env, ok=(0, 1))
    elif isinstance(tool, Supervisor):
        run(tool._ctl("stop", name), tool.env, ok=(0, 1, 3))


def restart_latency(tools: list[Tool], root: Path, restarts: int) -> dict[str, Any]:
    """All tools' crashers run at once (same machine state); each gives `restarts` samples."""
    files = {t.name: root / f"stamps-{t.name}" for t in tools}
    for tool in tools:
        start_crasher(tool, "crasher", files[tool.name])
    deadline = time.monotonic() + 60 + restarts * 2
    while time.monotonic() < deadline:
        if all(f.exists() and len(latencies(f)) >= restarts for f in files.values()):
            break
        time.sleep(0.2)
    for tool in tools:
        stop_crasher(tool, "crasher")
    return {name: latencies(f)[:restarts] if f.exists() else [] for name, f in files.items()}


def group_stop(tools: list[Tool], bench: Path, n: int, rounds: int) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {t.name: [] for t in tools}
    for r in range(rounds):
        for tool in tools:
            items = [(f"g{r}x{i}", ["sleep", f"300.{r}{i:04d}"]) for i in range(n)]
            if isinstance(tool, Ghost):
                for i in range(0, n, 50):
                    run([*tool.exe, "run", "-g", "bench", *(" ".join(a) for _, a in
                                                           items[i:i + 50])], tool.env)
                argv = [*tool.exe, "stop", "-g", "bench"]
            else:
                tool.populate(items)
                argv = ([tool.bin, "stop", "all"] if isinstance(tool, Pm2)
                        else tool._ctl("stop", "all"))
            t = timed(argv, tool.env, str(bench / "out.txt"))
            out[tool.name].append(t.ms)
            if isinstance(tool, Ghost):
                run([*tool.exe, "cleanup", "--all"], tool.env)
            else:
                tool.reset()
    return out


def restart_running(tools: list[Tool], bench: Path, rounds: int) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {t.name: [] for t in tools}
    for tool in tools:
        if isinstance(tool, Ghost):
            run([*tool.exe, "run", "--name", "svc", "sleep", "300"], tool.env)
        elif isinstance(tool, Pm2):
            run([tool.bin, "start", "sleep", "--name", "svc", "--", "300"], tool.env)
        elif isinstance(tool, Supervisor):
            (tool.confd / "svc.conf").write_text("[program:svc]\ncommand=sleep 300\n"
                                                 "startsecs=0\n")
            run(tool._ctl("update", "svc"), tool.env)
    for _ in range(rounds):
        for tool in tools:
            argv = ([*tool.exe, "restart", "svc"] if isinstance(tool, Ghost)
                    else [tool.bin, "restart", "svc"] if isinstance(tool, Pm2)
                    else tool._ctl("restart", "svc"))
            t = timed(argv, tool.env, str(bench / "out.txt"))
            if t.code != 0:
                raise RuntimeError(f"{tool.name} restart failed: {t.err[:200]}")
            out[tool.name].append(t.ms)
    for tool in tools:
        stop_crasher(tool, "svc")
    return out


def waiter_memory(ghost: Ghost) -> tuple[int, int] | None:
    """(RSS, PSS) KiB of the monitor/waiter of a running `--restart always` task."""
    import json

    run([*ghost.exe, "run", "--name", "mem", "--restart", "always", "sleep", "300"], ghost.env)
    events = [json.loads(line) for line in run([*ghost.exe, "events"], ghost.env).splitlines()]
    spawned = [e for e in events if e["type"] == "spawned" and e.get("name") == "mem"]
    pid = spawned[-1]["monitor"]["pid"]
    time.sleep(0.5)  # the exec into the lean waiter
    found = memory_kib(pid)
    run([*ghost.exe, "stop", "mem"], ghost.env)
    return found


def summary(samples: list[float]) -> str:
    if not samples:
        return "-"
    low, high = min(samples), max(samples)
    return f"{statistics.median(samples):.1f} ms ({low:.1f}–{high:.1f}, n={len(samples)})"


def measure(tools: list[Tool], root: Path, restarts: int, group_n: int,
            rounds: int) -> dict[str, Any]:
    """Every metric for ghost and the peers among `tools` (others, e.g. tsp, are left out)."""
    tools = [t for t in tools if isinstance(t, Ghost | Pm2 | Supervisor)]
    print("  restart latency ...", flush=True)
    latency = restart_latency(tools, root, restarts)
    print(f"  stop of a group of {group_n} ...", flush=True)
    stops = group_stop(tools, root, group_n, rounds)
    print("  restart of a running task ...", flush=True)
    manual = restart_running(tools, root, rounds)
    ghost = next(t for t in tools if isinstance(t, Ghost))
    return {"tools": [t.name for t in tools], "latency": latency, "group_n": group_n,
            "group_stop": stops, "restart": manual, "waiter_kib": waiter_memory(ghost)}


def render(result: dict[str, Any]) -> str:
    names = result["tools"]
    lines = [f"| supervision | {' | '.join(names)} |", f"| --- |{' --- |' * len(names)}"]
    rows = (("crash -> next attempt running", result["latency"]),
            (f"stop a group of {result['group_n']}", result["group_stop"]),
            ("restart a running task", result["restart"]))
    for label, samples in rows:
        lines.append(f"| {label} | " + " | ".join(summary(samples.get(n, [])) for n in names)
                     + " |")
    latency = result["latency"]
    for name in names[1:]:
        if latency.get("ghost") and latency.get(name):
            ratio = statistics.median(latency["ghost"]) / statistics.median(latency[name])
            lines.append(f"\nrestart latency ghost ÷ {name}: {ratio:.2f}")
    if result.get("waiter_kib"):
        rss, pss = result["waiter_kib"]
        lines.append(f"\nwaiter of a `--restart always` task while it runs: RSS {rss} KiB, "
                     f"PSS {pss} KiB")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true")
    p.add_argument("--restarts", type=int, default=None)
    p.add_argument("--group", type=int, default=None)
    p.add_argument("--rounds", type=int, default=None)
    args = p.parse_args(argv)
    restarts = args.restarts or (5 if args.quick else 21)
    group_n = args.group or (10 if args.quick else 100)
    rounds = args.rounds or (2 if args.quick else 7)
    become_subreaper()
    load_before = os.getloadavg()[0]
    root = Path(tempfile.mkdtemp(prefix="ghost-supervise-"))
    tools: list[Tool] = [Ghost(root, ghost_exe())]
    for cls in (Pm2, Supervisor):
        peer = cls(root)
        reason = peer.missing()
        if reason:
            print(f"note: skipping {peer.name}: {reason}", flush=True)
        else:
            tools.append(peer)
    started: list[Tool] = []
    try:
        for tool in tools:
            tool.setup()
            started.append(tool)
        result = measure(started, root, restarts, group_n, rounds)
    finally:
        for tool in reversed(started):
            try:
                tool.teardown()
            except (RuntimeError, OSError) as exc:
                print(f"note: {tool.name} shutdown failed: {exc}", file=sys.stderr)
        kill_descendants()
        shutil.rmtree(root, ignore_errors=True)
    print()
    print(render(result))
    # Every figure is inflated on a busy machine: say how busy it was (2 CPUs here).
    print(f"\nload average (1 min) before {load_before:.1f}, after {os.getloadavg()[0]:.1f} "
          f"on {os.cpu_count()} CPUs")
    return 0


if __name__ == "__main__":
    sys.exit(main())

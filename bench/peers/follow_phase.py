"""Follow: every tool's follower runs at the same time on its own 20 ms emitter task, next to
an idle follower on a silent task whose CPU use is measured over the same window."""

from __future__ import annotations

import subprocess
import sys
import time
from typing import Any

from peers import report
from peers.context import Bench
from peers.linetiming import EMITTER, Follower, idle_cpu_percent
from peers.sysproc import reap, run
from peers.tools import Launched, Tool, clean_env

INTERVAL_S = 0.02


def follow(bench: Bench, seconds: float) -> dict[str, Any]:
    emitter = bench.root / "emitter.py"
    emitter.write_text(EMITTER)
    payload = [sys.executable, "-u", str(emitter), str(INTERVAL_S)]
    active: list[Follower] = []
    idle: list[Follower] = []
    tasks: list[tuple[Tool, Launched]] = []
    floor_proc = None
    shown: dict[str, dict[str, str]] = {}
    try:
        # tail -f on a plain file: the floor any follower can hope for.
        log = bench.root / "floor.log"
        with open(log, "wb") as f:
            floor_proc = subprocess.Popen(payload, stdout=f, stderr=subprocess.STDOUT,
                                          stdin=subprocess.DEVNULL, env=clean_env())
        active.append(Follower("tail -f (floor)", ["tail", "-n", "0", "-f", str(log)],
                               clean_env()))
        for tool in bench.tools:
            try:
                for argv, bucket in ((payload, active), (["sleep", "300"], idle)):
                    name, _ = bench.fresh()
                    task = tool.launched(name, _start(tool, name, argv))
                    task.pid = tool.find_pid(task)
                    tasks.append((tool, task))
                    bucket.append(Follower(tool.name, tool.follow(task), tool.env))
                    shown[tool.name] = {task.ident: "ID", task.name: "NAME"}
            except RuntimeError as exc:
                bench.fail(tool, "follow set-up", exc)
        commands = {f.label: bench.show(f.argv, shown.get(f.label)) for f in active}
        for f in active + idle:
            f.start()
        time.sleep(1.0)  # followers start up and replay history; those lines are dropped
        cpu = idle_cpu_percent(idle, seconds)  # the active followers collect lines meanwhile
    finally:
        for f in active + idle:
            f.stop()
        for tool, task in tasks:
            try:
                run(tool.stop(task), tool.env)
                tool.remove(task)
            except RuntimeError as exc:
                bench.fail(tool, "follow clean-up", exc)
        if floor_proc is not None:
            floor_proc.kill()
            floor_proc.wait()
        reap()
    return {"commands": commands,
            "delays_ms": {f.label: f.delays_ms for f in active},
            "lost": {f.label: f.lost() for f in active},
            "errors": {f.label: f.error for f in active + idle if f.error},
            "idle_cpu_percent": cpu, "seconds": seconds, "interval_s": INTERVAL_S}


def _start(tool: Tool, name: str, argv: list[str]) -> str:
    before = tool.before_start(name, argv)
    if callable(before):
        before()
    return run(tool.start(name, argv), tool.env)


def render_follow(data: dict[str, Any]) -> str:
    rows = []
    for label, delays in data["delays_ms"].items():
        err = data["errors"].get(label, "")
        cpu = data["idle_cpu_percent"].get(label)
        rows.append([label, f"`{data['commands'][label]}`", str(len(delays)),
                     report.num(report.pct(delays, 0.5)), report.num(report.pct(delays, 0.95)),
                     report.num(max(delays) if delays else None), str(data["lost"][label]),
                     "—" if cpu is None else f"{cpu:.2f} %", err[:80] or ""])
    return report.section(
        "Follow latency (ms, line written → line read from the follower's stdout)",
        f"A task prints `tick <seq> <time_ns>` every {data['interval_s'] * 1000:.0f} ms; all "
        f"followers run at once for {data['seconds']:.0f} s (first second dropped). Idle CPU = "
        "a second follower of the same tool on a silent task, over the same window, in % of "
        "one core (clock-tick resolution).",
        report.table(["tool", "follower", "lines", "p50", "p95", "max", "lost", "idle CPU",
                      "error"], rows))

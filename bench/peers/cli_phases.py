"""Phases timed per CLI call: cold start, launch (and when the task shows in the list), stop."""

from __future__ import annotations

import shutil
import sys
import time
from typing import Any

from peers import report
from peers.context import Bench
from peers.sysproc import gone, reap, timed
from peers.tools import Tool, clean_env

SETTLE_BEFORE_STOP_S = 1.0  # supervisord counts a program as started after startsecs=1


def _floors(bench: Bench) -> list[tuple[str, list[str], dict[str, str]]]:
    env = clean_env()
    rows = [("floor", ["/bin/true"], env), ("floor", [sys.executable, "-c", "pass"], env)]
    if any(t.name == "pm2" for t in bench.tools) and shutil.which("node"):
        rows.append(("floor", ["node", "-e", "0"], env))
    return rows


def cold(bench: Bench) -> dict[str, Any]:
    rows = _floors(bench) + [(t.name, t.cold(), t.env) for t in bench.tools]
    samples: dict[str, list[float]] = {bench.show(argv): [] for _, argv, _ in rows}
    for r in range(bench.rounds + 1):  # round 0 warms caches and is not counted
        k = r % len(rows)
        for _, argv, env in rows[k:] + rows[:k]:
            t = timed(argv, env, bench.scratch)
            if t.code != 0:
                raise RuntimeError(f"{bench.show(argv)} exited {t.code}: {t.err.strip()[:200]}")
            if r:
                samples[bench.show(argv)].append(t.ms)
    return {"tools": {bench.show(argv): tool for tool, argv, _ in rows}, "samples": samples}


def render_cold(data: dict[str, Any]) -> str:
    samples = data["samples"]
    ghost = next(v for k, v in samples.items() if data["tools"][k] == "ghost")
    rows = [[data["tools"][cmd], f"`{cmd}`", report.spread(xs),
             report.ratio(report.paired_ratio(ghost, xs))] for cmd, xs in samples.items()]
    return report.section(
        "CLI cold start (ms)",
        "Each tool's cheapest command (daemons already running), and the floors. "
        "ghost ÷ this = median over rounds of ghost's time ÷ this row's time in the same round.",
        report.table(["tool", "command", "median (min–max)", "ghost ÷ this"], rows))


def _launch(bench: Bench, tool: Tool) -> tuple[Any, float, float]:
    """Start one `sleep 300.N`; (task, CLI ms, ms until the list shows it)."""
    name, argv = bench.fresh()
    t0 = time.perf_counter_ns()
    t = timed(tool.start(name, argv), tool.env, bench.scratch, tool.before_start(name, argv))
    if t.code != 0:
        raise RuntimeError(f"launch exited {t.code}: {t.err.strip()[:200]}")
    task = tool.launched(name, t.out)
    deadline = time.monotonic() + 15
    while True:
        listed = timed(tool.list_cmd(), tool.env, bench.scratch)
        if tool.visible(task, listed.out):
            visible = (time.perf_counter_ns() - t0) / 1e6
            break
        if time.monotonic() > deadline:
            raise RuntimeError(f"{task.ident} not in the list 15 s after launch")
    task.pid = tool.find_pid(task)
    return task, t.ms, visible


def _stop(bench: Bench, tool: Tool, task: Any) -> tuple[float, float, bool]:
    """Stop it; (CLI ms, ms until the payload is gone, whether it was gone on return)."""
    t0 = time.perf_counter_ns()
    t = timed(tool.stop(task), tool.env, bench.scratch)
    gone_on_return = gone(task.pid)
    while not gone(task.pid):
        if time.perf_counter_ns() - t0 > 30e9:
            raise RuntimeError(f"payload {task.pid} still alive 30 s after stop")
        time.sleep(0.0002)
    gone_after = (time.perf_counter_ns() - t0) / 1e6
    if t.code != 0:
        raise RuntimeError(f"stop exited {t.code}: {t.err.strip()[:200]}")
    tool.remove(task)
    return t.ms, gone_after, gone_on_return


def launch_stop(bench: Bench) -> dict[str, Any]:
    keys = ("launch", "visible", "stop", "gone")
    out: dict[str, dict[str, list[float | None]]] = {k: {} for k in keys}
    gone_flags: dict[str, list[bool]] = {}
    cmds: dict[str, dict[str, str]] = {}
    for tool in bench.tools:
        for k in keys:
            out[k][tool.name] = []
        gone_flags[tool.name] = []
    live = list(bench.tools)
    for r in range(bench.rounds + 1):
        tasks = {}
        for tool in bench.order(r, live):
            try:
                tasks[tool.name] = (tool, *_launch(bench, tool))
            except RuntimeError as exc:
                bench.fail(tool, "launch", exc)
                live.remove(tool)
            reap()
        time.sleep(SETTLE_BEFORE_STOP_S)
        for tool in bench.order(r, live):
            _, task, launch_ms, visible_ms = tasks[tool.name]
            names = {task.ident: "ID", task.name: "NAME"}
            cmds[tool.name] = {"launch": bench.show(tool.start(task.name, ["sleep", "300"]),
                                                    names),
                               "stop": bench.show(tool.stop(task), names)}
            try:
                stop_ms, gone_ms, flag = _stop(bench, tool, task)
            except RuntimeError as exc:
                bench.fail(tool, "stop", exc)
                live.remove(tool)
                continue
            reap()
            if r:
                for k, v in zip(keys, (launch_ms, visible_ms, stop_ms, gone_ms), strict=True):
                    out[k][tool.name].append(v)
                gone_flags[tool.name].append(flag)
        # a tool that failed this round has fewer samples; pad so rounds stay paired
        for tool in bench.tools:
            for k in keys:
                if r and len(out[k][tool.name]) < r:
                    out[k][tool.name].append(None)
    return {"samples": out, "gone_on_return": gone_flags, "commands": cmds}


def _vals(xs: list[float | None]) -> list[float]:
    return [x for x in xs if x is not None]


def render_launch_stop(data: dict[str, Any]) -> str:
    s, cmds = data["samples"], data["commands"]
    g = s["launch"]["ghost"]
    launch_rows, stop_rows = [], []
    for name in s["launch"]:
        c = cmds.get(name, {})
        launch_rows.append([
            name, f"`{c.get('launch', '?')}`", report.spread(_vals(s["launch"][name])),
            report.spread(_vals(s["visible"][name])),
            report.ratio(report.paired_ratio(g, s["launch"][name])),
            report.ratio(report.paired_ratio(s["visible"]["ghost"], s["visible"][name]))])
        flags = data["gone_on_return"][name]
        stop_rows.append([
            name, f"`{c.get('stop', '?')}`", report.spread(_vals(s["stop"][name])),
            report.spread(_vals(s["gone"][name])), f"{sum(flags)}/{len(flags)}",
            report.ratio(report.paired_ratio(s["gone"]["ghost"], s["gone"][name]))])
    launch = report.section(
        "Launch `sleep 300` (ms)",
        "CLI = from just before Popen to the end of a blocking wait(); visible = from the same "
        "start until a `list` call that shows the task has returned (so it includes one list "
        "call). Daemons warm.",
        report.table(["tool", "command", "CLI median (min–max)", "visible in list after",
                      "ghost ÷ this (CLI)", "ghost ÷ this (visible)"], launch_rows))
    stop = report.section(
        "Stop a running `sleep 300` (ms)",
        "Until the CLI returns, and until the payload process is gone (polled in /proc, "
        "zombie counts as gone). The task obeys SIGTERM.",
        report.table(["tool", "command", "CLI returned", "payload gone after",
                      "gone when CLI returned", "ghost ÷ this (gone)"], stop_rows))
    return launch + "\n" + stop

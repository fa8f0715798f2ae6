"""Phases that need many managed tasks: list latency, launch while N are managed, memory.

All tools hold N running `sleep`s at the same time (built up untimed, the cheapest way each
tool offers), so they are measured on the same machine state, interleaved round by round.
"""

from __future__ import annotations

import os
import re
import signal
import statistics
import time
import uuid
from typing import Any

from peers import report
from peers.context import Bench
from peers.sysproc import (
    descendants,
    memory_kib,
    reap,
    smaps_breakdown,
    timed,
    wait_gone,
)
from peers.tools import Launched, Tool

PAYLOAD = re.compile(r"^(\S*/)?sleep \d+\.\d+$")  # daemons exec /usr/bin/sleep
MANAGED_S = 36_000  # the N managed tasks must outlive the whole phase


def _payloads() -> int:
    return sum(1 for p in descendants() if PAYLOAD.match(p.cmdline) and p.state != "Z")


def _settle(bench: Bench, expected: int) -> None:
    """Wait (deadline 5 min) until every tool's payloads run, then 1 s more for the daemons."""
    deadline = time.monotonic() + 300
    while (running := _payloads()) < expected:
        if time.monotonic() > deadline:
            bench.errors.append(f"only {running} of {expected} payloads running after 300 s")
            break
        reap()
        time.sleep(0.2)
    time.sleep(1.0)


def _memory(bench: Bench) -> dict[str, Any]:
    snap: dict[str, Any] = {}
    procs = descendants()
    for tool in bench.tools:
        mine = [p for p in procs if tool.owns(p) and p.state != "Z"]
        mem = [m for m in (memory_kib(p.pid) for p in mine) if m is not None]
        snap[tool.name] = {"processes": len(mem), "rss_kib": sum(m[0] for m in mem),
                           "pss_kib": sum(m[1] for m in mem),
                           "per_process_pss_kib": sorted(m[1] for m in mem)}
        if tool.kind == "ghost" and mine:
            snap[tool.name]["one_monitor_smaps"] = smaps_breakdown(mine[0].pid)
    return snap


def _lists(bench: Bench, n_rounds: int) -> dict[str, list[float]]:
    samples: dict[str, list[float]] = {t.name: [] for t in bench.tools}
    for r in range(n_rounds + 1):
        for tool in bench.order(r):
            t = timed(tool.list_cmd(), tool.env, bench.scratch)
            if t.code not in tool.list_ok:
                raise RuntimeError(f"{tool.name} list exited {t.code}: {t.err[:200]}")
            if r:
                samples[tool.name].append(t.ms)
    return samples


def _launches(bench: Bench, n_rounds: int, tools: list[Tool]) -> dict[str, list[float]]:
    samples: dict[str, list[float]] = {t.name: [] for t in tools}
    for r in range(n_rounds + 1):
        for tool in bench.order(r, tools):
            name, argv = bench.fresh()
            t = timed(tool.start(name, argv), tool.env, bench.scratch,
                      tool.before_start(name, argv))
            if t.code != 0:
                raise RuntimeError(f"{tool.name} launch exited {t.code}: {t.err[:200]}")
            task = tool.launched(name, t.out)
            task.pid = tool.find_pid(task)
            ensure_stopped(bench, tool, task)  # untimed clean-up
            tool.remove(task)
            reap()
            if r:
                samples[tool.name].append(t.ms)
    return samples


def ensure_stopped(bench: Bench, tool: Tool, task: Launched) -> None:
    """Stop with the tool's command; if the payload survives (tsp's `-k` right after a start
    can miss it), SIGTERM it by pid: it is our descendant."""
    timed(tool.stop(task), tool.env, bench.scratch)
    if not wait_gone([task.pid], 5.0):
        bench.errors.append(f"{tool.name}: {bench.show(tool.stop(task))} left pid "
                            f"{task.pid} running; killed it by pid")
        os.kill(task.pid, signal.SIGTERM)
        wait_gone([task.pid], 5.0)


def add_finished_history(data_dir: str, count: int) -> float:
    """Append `count` spawned+exited pairs straight into ghost's store (seconds taken).

    Cheap stand-in for a long history: the same events a monitor writes, so `ghost list` reads
    and folds them exactly as it would real ones.
    """
    from events import types as ev
    from events.store import Store
    from projections.checkpoint import VIEWS

    t0 = time.monotonic()
    store = Store.open(os.path.join(data_dir, "store"), create=True, views=VIEWS,
                       map_floor=1 << 30)
    assert store is not None
    try:
        for start in range(0, count, 1000):
            batch = []
            for i in range(start, min(count, start + 1000)):
                task = str(uuid.uuid4())
                batch.append(ev.make(
                    ev.SPAWNED, task, command=["true", str(i)], cwd="/", pid=4_000_000 + i,
                    pgid=4_000_000 + i, start_ticks=1, boot_id="history", log_path=os.path.join(
                        data_dir, "logs", f"{task}.log")))
                batch.append(ev.make(ev.EXITED, task, code=0, end_ns=time.time_ns()))
            store.append(batch)
    finally:
        store.close()
    return time.monotonic() - t0


def scale(bench: Bench, list_ns: list[int], mem_ns: list[int], launch_at_n: bool,
          history: int) -> dict[str, Any]:
    steps = sorted(set(list_ns) | set(mem_ns))
    result: dict[str, Any] = {"list": {}, "launch_at_n": {}, "memory": {}, "list_lines": {},
                              "history": {}}
    current = 0
    for n in steps:
        print(f"  scale: building up to N={n}", flush=True)
        for tool in bench.tools:
            tool.populate([bench.fresh(MANAGED_S) for _ in range(n - current)])
        current = n
        _settle(bench, n * len(bench.tools) - _tsp_finished(bench, n))
        if n in mem_ns:
            result["memory"][n] = _memory(bench)
        if n in list_ns:
            rounds = bench.rounds if n < 1000 else max(3, bench.rounds // 2)
            result["list"][n] = _lists(bench, rounds)
            result["list_lines"][n] = {t.name: len(timed(t.list_cmd(), t.env, bench.scratch)
                                                   .out.splitlines()) for t in bench.tools}
            if launch_at_n:
                result["launch_at_n"][n] = _launches(bench, max(3, bench.rounds // 2),
                                                     bench.tools)
    if history and list_ns:
        g = bench.ghost
        took = add_finished_history(g.env["GHOST_DATA_DIR"], history)
        rounds = max(3, bench.rounds // 2)
        result["history"] = {"finished": history, "running": current, "append_s": took,
                             "list": _lists(Bench([g], bench.root, rounds, bench.quick), rounds)
                             ["ghost"]}
        if launch_at_n:
            result["history"]["launch"] = _launches(bench, rounds, [g])["ghost"]
    return result


def _tsp_finished(bench: Bench, n: int) -> int:
    """tsp holds at most 900 running jobs; the rest of its N are finished (`true`) jobs."""
    from peers.tools import TaskSpooler

    return sum(max(0, n - t.max_running) for t in bench.tools if isinstance(t, TaskSpooler))


def render_scale(data: dict[str, Any], tools: list[str]) -> str:
    parts = []
    if data["list"]:
        ns = sorted(data["list"])
        head = ["tool", *[f"N={n:,}" for n in ns], *[f"ghost ÷ this N={n:,}" for n in ns]]
        rows = []
        for name in tools:
            rows.append([name, *[report.spread(data["list"][n][name]) for n in ns],
                         *[report.ratio(report.paired_ratio(data["list"][n]["ghost"],
                                                            data["list"][n][name]))
                           for n in ns]])
        h = data.get("history") or {}
        if h:
            rows.append([f"ghost, {h['running']:,} running + {h['finished']:,} finished",
                         *["" for _ in ns[:-1]], report.spread(h["list"]), *["" for _ in ns]])
        lines = "; ".join(f"N={n:,}: " + ", ".join(f"{k} {v}" for k, v in
                                                   data["list_lines"][n].items()) for n in ns)
        parts.append(report.section(
            "List latency (ms)", "`ghost list`, `tsp`, `supervisorctl status`, `pm2 ls` with N "
            "running sleeps each (tsp at N ≥ 1,000: 900 running + the rest finished, its "
            f"connection cap). Output lines: {lines}.", report.table(head, rows)))
    if data["launch_at_n"]:
        ns = sorted(data["launch_at_n"])
        head = ["tool", *[f"N={n:,}" for n in ns], f"ghost ÷ this N={ns[-1]:,}"]
        rows = [[name, *[report.spread(data["launch_at_n"][n][name]) for n in ns],
                 report.ratio(report.paired_ratio(data["launch_at_n"][ns[-1]]["ghost"],
                                                  data["launch_at_n"][ns[-1]][name]))]
                for name in tools]
        h = data.get("history") or {}
        if h.get("launch"):
            rows.append([f"ghost, {h['running']:,} running + {h['finished']:,} finished",
                         *["" for _ in ns[:-1]], report.spread(h["launch"]), ""])
        parts.append(report.section(
            "Launch while N tasks are managed (ms, CLI until it returns)", "", report.table(
                head, rows)))
    if data["memory"]:
        ns = sorted(data["memory"])
        head = ["tool", *[f"RSS N={n:,}" for n in ns], *[f"PSS N={n:,}" for n in ns],
                f"PSS per task N={ns[-1]:,}", "processes"]
        rows = []
        for name in tools:
            m = {n: data["memory"][n][name] for n in ns}
            per = m[ns[-1]]["pss_kib"] / ns[-1] / 1024
            rows.append([name, *[report.num(m[n]["rss_kib"] / 1024) for n in ns],
                         *[report.num(m[n]["pss_kib"] / 1024) for n in ns],
                         report.num(per), str(m[ns[-1]]["processes"])])
        g = data["memory"][ns[-1]].get("ghost", {})
        mons = g.get("per_process_pss_kib") or [0]
        breakdown = ", ".join(f"{x['mapping']} {x['pss_kib']} KiB PSS ({x['rss_kib']} RSS, "
                              f"{x['private_dirty_kib']} private dirty)"
                              for x in g.get("one_monitor_smaps", [])[:6])
        parts.append(report.section(
            "Memory (MiB; sum over each tool's own processes, payloads excluded)",
            "ghost = its per-task monitors (`ghost.process.monitor`, which execs the lean "
            "`ghost.process.waiter` "
            f"while the task runs); median monitor PSS at N={ns[-1]:,}: "
            f"{statistics.median(mons):.0f} KiB. Largest mappings of one monitor: "
            f"{breakdown or '—'}.", report.table(head, rows)))
    return "\n".join(parts)

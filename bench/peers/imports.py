"""`python -X importtime` of ghost's hot commands: which imports the CLI pays for, per call."""

from __future__ import annotations

import re
import statistics
import subprocess
import time
from typing import Any

from peers import report
from peers.context import Bench

LINE = re.compile(r"^import time:\s+(\d+) \|\s+(\d+) \|( *)(\S+)\s*$")


def parse(stderr: str) -> dict[str, tuple[int, int, int]]:
    """module -> (self µs, cumulative µs, nesting depth), from -X importtime output."""
    found = {}
    for line in stderr.splitlines():
        m = LINE.match(line)
        if m:
            found[m.group(4)] = (int(m.group(1)), int(m.group(2)), len(m.group(3)) // 2)
    return found


def _interpreter(exe: list[str]) -> list[str]:
    """`ghost` is a console script: run its shebang interpreter with -X importtime."""
    if len(exe) == 1:
        with open(exe[0], "rb") as f:
            shebang = f.readline().decode().strip()
        if shebang.startswith("#!"):
            return [shebang[2:].split()[0], "-X", "importtime", exe[0]]
    return [exe[0], "-X", "importtime", *exe[1:]]


def importtime(bench: Bench, runs: int) -> dict[str, Any]:
    g = bench.ghost
    result: dict[str, Any] = {}
    for label in ("list", "run"):
        per_module: dict[str, list[tuple[int, int, int]]] = {}
        walls = []
        for _ in range(runs + 1):
            args = ["list"] if label == "list" else ["run", *bench.fresh()[1]]
            argv = [*_interpreter(g.exe), *args]
            t0 = time.perf_counter_ns()
            done = subprocess.run(argv, env=g.env, capture_output=True, stdin=subprocess.DEVNULL)
            walls.append((time.perf_counter_ns() - t0) / 1e6)
            if done.returncode != 0:
                raise RuntimeError(f"ghost {label} exited {done.returncode}: "
                                   f"{done.stderr.decode(errors='replace')[-300:]}")
            for mod, v in parse(done.stderr.decode(errors="replace")).items():
                per_module.setdefault(mod, []).append(v)
        med = {m: (statistics.median(x[0] for x in v), statistics.median(x[1] for x in v),
                   v[0][2]) for m, v in per_module.items()}
        top = sorted(med.items(), key=lambda kv: -kv[1][1])[:10]
        result[label] = {"command": "ghost " + " ".join(args[:1]), "wall_ms": walls[1:],
                         "total_self_ms": sum(v[0] for v in med.values()) / 1000,
                         "modules": len(med),
                         "top": [{"module": m, "self_ms": s / 1000, "cumulative_ms": c / 1000,
                                  "depth": d} for m, (s, c, d) in top]}
    g.reset()  # the `run` samples started tasks
    return result


def render_importtime(data: dict[str, Any]) -> str:
    parts = []
    for d in data.values():
        rows = [[f"`{'· ' * t['depth']}{t['module']}`", report.num(t["cumulative_ms"]),
                 report.num(t["self_ms"])] for t in d["top"]]
        parts.append(report.section(
            f"Imports of `{d['command']}` (python -X importtime, medians over runs)",
            f"{d['modules']} modules, {report.num(d['total_self_ms'])} ms of import time in "
            f"total; whole call under -X importtime {report.spread(d['wall_ms'])} ms. "
            "Ten largest by cumulative time (· = nesting depth):",
            report.table(["module", "cumulative ms", "self ms"], rows)))
    return "\n".join(parts)

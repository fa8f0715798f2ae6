#!/usr/bin/env python3
"""ghost side by side with the tools users would pick instead: task-spooler, supervisor, pm2.

    .venv/bin/python bench/compare.py [--quick] [--only METRIC[,METRIC]] [--rounds N]

Every installed peer (bench/install-peers.sh) is measured in the same run as ghost, interleaved
round-robin so machine noise hits all tools alike; a missing peer is skipped with a note.
Metrics: cold, launch, stop, list, follow, memory, importtime, supervise (bench/supervise.py).
Prints one Markdown table per metric (median, min–max, ghost ÷ each peer as a paired per-round
ratio) and writes every raw sample to bench/results/compare-<date>.json.

Everything runs in a throwaway directory (GHOST_DATA_DIR, PM2_HOME, supervisord.conf, TS_SOCKET
of its own). The script is a child subreaper, so every process the tools detach stays below it;
at the end (also on Ctrl+C) it shuts each daemon down with its own command, kills what is left
of its own descendants by pid, and removes the directory.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, NoReturn

sys.path.insert(0, str(Path(__file__).resolve().parent))

from peers import cli_phases, follow_phase, imports, scale_phase  # noqa: E402
from peers.context import Bench  # noqa: E402
from peers.sysproc import become_subreaper, kill_descendants  # noqa: E402
from peers.tools import Tool, all_tools  # noqa: E402

METRICS = ("cold", "launch", "stop", "list", "follow", "memory", "importtime", "supervise")
RESULTS = Path(__file__).resolve().parent / "results"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true",
                   help="smoke test: 3 rounds, N of 1 and 10 instead of up to 1,000")
    p.add_argument("--only", default="", metavar="METRIC[,METRIC]",
                   help=f"measure only these: {', '.join(METRICS)}")
    p.add_argument("--rounds", type=int, default=None, help="counted rounds per measurement")
    p.add_argument("--out", default=None, help="JSON results file (default "
                   "bench/results/compare-<date>.json)")
    args = p.parse_args(argv)
    args.metrics = [m for m in args.only.split(",") if m] or list(METRICS)
    unknown = [m for m in args.metrics if m not in METRICS]
    if unknown:
        p.error(f"unknown metric {', '.join(unknown)}; choose from {', '.join(METRICS)}")
    if args.rounds is None:
        args.rounds = 3 if args.quick else 15
    if args.rounds < 1:
        p.error(f"--rounds must be at least 1, not {args.rounds}")
    return args


def machine() -> dict[str, Any]:
    model = ""
    with open("/proc/cpuinfo", encoding="utf-8") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    with open("/proc/meminfo", encoding="ascii") as f:
        mem_kib = int(f.readline().split()[1])
    return {"cpus": os.cpu_count(), "cpu_model": model, "mem_gib": round(mem_kib / 2**20, 1),
            "kernel": platform.release(), "python": platform.python_version(),
            "loadavg_start": os.getloadavg()}


def _interrupt(signum: int, frame: object) -> NoReturn:
    raise KeyboardInterrupt


def measure(bench: Bench, args: argparse.Namespace) -> dict[str, Any]:
    want = set(args.metrics)
    results: dict[str, Any] = {}
    list_ns = [1, 10] if args.quick else [1, 100, 1000]
    mem_ns = [1, 10] if args.quick else [1, 10, 100]
    phases: list[tuple[str, Any]] = []
    if "cold" in want:
        phases.append(("cold", lambda: cli_phases.cold(bench)))
    if want & {"launch", "stop"}:
        phases.append(("launch_stop", lambda: cli_phases.launch_stop(bench)))
    if want & {"list", "launch", "memory"}:
        phases.append(("scale", lambda: scale_phase.scale(
            bench, list_ns if want & {"list", "launch"} else [],
            mem_ns if "memory" in want else [], "launch" in want,
            (100 if args.quick else 10_000) if "list" in want else 0)))
    if "follow" in want:
        phases.append(("follow", lambda: follow_phase.follow(bench, 3.0 if args.quick else 15.0)))
    if "importtime" in want:
        phases.append(("importtime", lambda: imports.importtime(bench, 2 if args.quick else 7)))
    if "supervise" in want:  # bench/supervise.py: restart latency, stop -g, restart (issue 15)
        import supervise

        phases.append(("supervise", lambda: supervise.measure(
            bench.tools, bench.root, 5 if args.quick else 21, 10 if args.quick else 100,
            2 if args.quick else 7)))
    for name, run in phases:
        print(f"phase {name} ...", flush=True)
        t0 = time.monotonic()
        try:
            results[name] = run()
        except RuntimeError as exc:
            bench.errors.append(f"phase {name} failed: {exc}")
            print(f"  ! phase {name} failed: {exc}", flush=True)
        for tool in bench.tools:  # every phase starts with no managed tasks
            try:
                tool.reset()
            except RuntimeError as exc:
                bench.fail(tool, "reset", exc)
        print(f"  done in {time.monotonic() - t0:.0f} s", flush=True)
    return results


def render(meta: dict[str, Any], results: dict[str, Any], names: list[str]) -> str:
    m = meta["machine"]
    head = [
        f"Run {meta['date']}: {m['cpus']} CPUs ({m['cpu_model']}), {m['mem_gib']} GiB, Linux "
        f"{m['kernel']}, Python {m['python']}; load average at start "
        f"{m['loadavg_start'][0]:.2f}, at end {m['loadavg_end'][0]:.2f}; "
        f"{meta['rounds']} counted rounds{' (--quick)' if meta['quick'] else ''}.",
        "Tools: " + "; ".join(f"{k} {v}" for k, v in meta["versions"].items()) + ".",
    ]
    if meta["skipped"]:
        head.append("Skipped: " + "; ".join(f"{k} ({v})" for k, v in meta["skipped"].items())
                    + ".")
    if meta["errors"]:
        head.append("Errors: " + "; ".join(meta["errors"]) + ".")
    parts = ["\n\n".join(head)]
    if "cold" in results:
        parts.append(cli_phases.render_cold(results["cold"]))
    if "launch_stop" in results:
        parts.append(cli_phases.render_launch_stop(results["launch_stop"]))
    if "scale" in results:
        parts.append(scale_phase.render_scale(results["scale"], names))
    if "follow" in results:
        parts.append(follow_phase.render_follow(results["follow"]))
    if "importtime" in results:
        parts.append(imports.render_importtime(results["importtime"]))
    if "supervise" in results:
        import supervise

        parts.append(supervise.render(results["supervise"]))
    return "\n\n".join(parts)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _interrupt)
    if not become_subreaper():
        print("warning: not a child subreaper; detached daemons may escape clean-up",
              file=sys.stderr)
    root = Path(tempfile.mkdtemp(prefix="ghost-compare-"))
    tools, skipped = all_tools(root)
    for name, reason in skipped.items():
        print(f"note: skipping {name}: {reason}", flush=True)
    started: list[Tool] = []
    meta: dict[str, Any] = {"date": datetime.datetime.now().isoformat(timespec="seconds"),
                            "machine": machine(), "quick": args.quick, "rounds": args.rounds,
                            "metrics": args.metrics, "skipped": skipped, "versions": {}}
    bench = Bench([], root, args.rounds, args.quick)
    results: dict[str, Any] = {}
    interrupted = False
    try:
        for tool in tools:
            try:
                meta["versions"][tool.name] = tool.version()
                if not (args.metrics == ["importtime"] and tool.kind != "ghost"):
                    tool.setup()
                    started.append(tool)
            except (RuntimeError, OSError) as exc:
                skipped[tool.name] = f"set-up failed: {exc}"
                print(f"note: skipping {tool.name}: set-up failed: {exc}", flush=True)
        bench.tools = started
        results = measure(bench, args)
    except KeyboardInterrupt:
        interrupted = True
        print("interrupted: cleaning up", file=sys.stderr, flush=True)
    finally:
        for tool in reversed(started):
            try:
                tool.teardown()
            except (RuntimeError, OSError) as exc:
                bench.errors.append(f"{tool.name}: shutdown failed: {exc}")
        leftovers = kill_descendants()
        if leftovers:
            bench.errors.append(f"killed {len(leftovers)} leftover processes: "
                                + ", ".join(leftovers[:5]))
        shutil.rmtree(root, ignore_errors=True)
    if interrupted:
        return 130
    meta["machine"]["loadavg_end"] = os.getloadavg()
    meta["errors"] = bench.errors
    text = render(meta, results, [t.name for t in started])
    out = Path(args.out) if args.out else RESULTS / (
        "compare-" + datetime.datetime.now().strftime("%Y%m%d-%H%M") + ".json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"meta": meta, "results": results}, indent=1, default=str) + "\n")
    print()
    print(text)
    print(f"\nraw samples: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

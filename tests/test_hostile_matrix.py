"""Every command and option against a matrix of hostile values (issue 12 item 6).

Each value goes, as raw argv bytes, into every slot that takes user input: empty, blank, huge,
negative, nan/inf, 400 digits, non-UTF-8, terminal escapes, newlines, far past and future
times, path tricks. Whatever ghost does with it (accept or refuse), it must: print no
traceback; on failure write exactly one `Error:` line (escaped: no ESC or BEL reaches the
terminal) and exit with a code from the README's table; and leave nothing running. The
installed entry point runs as a subprocess, several at a time to keep the run short.
"""

from __future__ import annotations

import json
import os
import subprocess
from concurrent.futures import ThreadPoolExecutor

from support import GHOST, ghost, run_json, wait_ended, wait_for

# The README's exit-code table (0 success; wait passes on the task's code, 0 here).
DOCUMENTED = {0, 1, 2, 74, 77, 124, 126, 127, 130}

COMMON: list[bytes] = [b"", b"-1", b"nan", b"9" * 400, b"\xff\xfe", b"\x1b[2J\x1b]0;PWNED\x07",
                       b"x" * 5000]
NUMBERS: list[bytes] = [*COMMON, b"inf", b"-inf", b"1e308", b"3000000",
                        b"\xd9\xa3"]  # the last: ARABIC-INDIC DIGIT THREE
TIMES: list[bytes] = [*COMMON, b"0001-01-01", b"9999-12-31T23:59:59", b"9" * 400 + b"h ago",
                      b"2026-13-45", b"yesterday"]
TEXT: list[bytes] = [*COMMON, b"a\nb", b"../../etc/passwd", b"$(touch /tmp/ghost-pwned)", b"-h"]
CHOICE = COMMON[:3] + COMMON[4:6]  # options click checks against a fixed list

ID = b"@ID@"  # replaced by the id of a real, finished task


def slots() -> list[tuple[list[bytes], list[bytes]]]:
    """(argv template with one None slot, values for it) for every command and option."""
    n, t, x, c = NUMBERS, TIMES, TEXT, CHOICE
    return [
        ([b"run", b"-c", None, b"true"], x), ([b"run", b"-e", None, b"true"], x),
        ([b"run", b"-e", b"K=" + b"\x1b[2J", None], x[:4]), ([b"run", None], x),
        ([b"list", b"-s", None], c), ([b"list", b"--at", None], t),
        ([b"status", None], x), ([b"status", b"--at", None, ID], t),
        ([b"log", None], x), ([b"log", b"-n", None, ID], n),
        ([b"stop", None], x), ([b"stop", b"-t", None, ID], n), ([b"kill", None], x),
        ([b"cleanup", b"-d", None, b"--dry-run"], n), ([b"cleanup", b"-s", None, b"-n"], c),
        ([b"wait", None], x), ([b"wait", b"-t", None, ID], n),
        ([b"history", None], x), ([b"history", b"--since", None], t),
        ([b"history", b"--until", None], t), ([b"history", b"--type", None], c),
        ([b"events", b"--from", None], n), ([b"events", b"--format", None], c),
    ]


def invocations(task_id: str) -> list[list[bytes]]:
    found = []
    for template, values in slots():
        for value in values:
            argv = [value if part is None else part for part in template]
            found.append([task_id.encode() if part == ID else part for part in argv])
    return found


def check(argv: list[bytes], result: subprocess.CompletedProcess) -> list[str]:
    """What is wrong with one answer (empty when it is right)."""
    problems = []
    err = result.stderr
    shown = b" ".join(argv)[:120]
    if b"Traceback" in err or b"Exception" in err:
        problems.append(f"{shown!r}: traceback {err[-300:]!r}")
    if result.returncode not in DOCUMENTED:
        problems.append(f"{shown!r}: exit {result.returncode} is not documented")
    if result.returncode not in (0, 124):
        lines = err.decode("utf-8", "replace").splitlines()
        errors = [line for line in lines if line.startswith("Error: ")]
        if len(errors) != 1 or len(lines) != 1:
            problems.append(f"{shown!r}: stderr is not one Error line: {err[:300]!r}")
    if b"\x1b" in err or b"\x07" in err:
        problems.append(f"{shown!r}: a raw escape reached stderr: {err[:200]!r}")
    return problems


def test_every_option_survives_every_hostile_value(data_dir, env, tmp_path):
    task = run_json("sh", "-c", "echo done", env=env)["id"]
    wait_ended(task, env)
    argvs = invocations(task)
    base = [*map(os.fsencode, GHOST)]

    def one(argv: list[bytes]) -> tuple[list[bytes], subprocess.CompletedProcess]:
        return argv, subprocess.run([*base, *argv], env=env, capture_output=True, timeout=60,
                                    cwd=tmp_path, stdin=subprocess.DEVNULL)

    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(one, argvs))
    problems = [p for argv, result in results for p in check(argv, result)]
    assert problems == [], "\n".join(problems[:20])
    assert len(results) > 200  # the matrix really ran

    def nothing_running() -> bool:
        listed = json.loads(ghost("list", "--json", env=env).stdout)
        return all(t["status"] != "running" for t in listed)

    wait_for(nothing_running, timeout=20, message="every task started by the matrix to end")
    assert not os.path.exists("/tmp/ghost-pwned")
    doctor = ghost("doctor", env=env)
    assert doctor.returncode == 0, doctor.stdout + doctor.stderr

"""`ghost list` keeps the finished tasks' rendered lines (ghost.cli.listlines): whatever happens,
the table is exactly the one rendered from scratch — which `list --since` (a filter, so never
cached) still renders."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import msgpack
from support import ghost, run_json, text, wait_ended

from ghost.state.listing import LINES_NAME

EVERY = ("--since", "2000-01-01T00:00:00Z")  # every task, through the uncached path


def table(env: dict[str, str], *args: str) -> str:
    result = ghost("list", *args, env=env)
    out, err = text(result)
    assert result.returncode == 0 and err == "", err
    return out


def same_as_uncached(env: dict[str, str]) -> str:
    cached = table(env)  # (bare `list`: answered without click, ghost.cli.entry)
    assert cached == table(env, *EVERY)
    assert table(env, "-s", "all") == cached  # the click command, kept lines and all
    assert table(env) == cached  # and once more, now from the kept lines
    return cached


def finish(env: dict[str, str], *command: str, extra: tuple[str, ...] = ()) -> str:
    task = run_json(*extra, *command, env=env)["id"]
    wait_ended(task, env)
    return task


def test_the_table_is_always_the_uncached_one(data_dir, env):
    for n in range(3):
        finish(env, "sh", "-c", f"exit {n}")
    first = same_as_uncached(env)
    kept = os.path.join(data_dir, "store", LINES_NAME)
    assert os.path.isfile(kept) and os.stat(kept).st_mode & 0o777 == 0o600
    assert len(first.splitlines()) == 5
    # a running task wider than every finished row: all rows padded wider
    wide = run_json("sh", "-c", "sleep 300", "x" * 80, env=env)["id"]
    assert len(same_as_uncached(env).splitlines()[0]) > len(first.splitlines()[0]) + 70
    assert "x" * 80 in same_as_uncached(env)
    assert ghost("kill", wide, env=env).returncode == 0
    wait_ended(wide, env)
    same_as_uncached(env)  # the wide one is a finished row now
    finish(env, "sh", "-c", "exit 0", "y" * 60, extra=("-g", "wide"))
    assert "y" * 60 in same_as_uncached(env)
    assert ghost("cleanup", "--all", "-g", "wide", env=env).returncode == 0
    narrower = same_as_uncached(env)  # the widest row is gone: the padding shrinks
    assert "y" * 60 not in narrower
    finish(env, "sh", "-c", "exit 0", extra=("-g", "swap"))
    same_as_uncached(env)
    assert ghost("cleanup", "--all", "-g", "swap", env=env).returncode == 0
    finish(env, "sh", "-c", "exit 5")  # as many finished rows as before, another set
    assert "exit 5" in same_as_uncached(env)
    finish(env, "true", extra=("--name", "named-one"))
    assert same_as_uncached(env).splitlines()[0].split()[:5] == \
        ["Task", "ID", "PID", "Status", "Name"]


def test_another_time_zone_is_rendered_for_itself(data_dir, env):
    finish(env, "true")
    utc = same_as_uncached({**env, "TZ": "UTC"})
    india = same_as_uncached({**env, "TZ": "Asia/Kolkata"})
    assert utc != india
    assert table({**env, "TZ": "UTC"}) == utc


def test_the_kept_lines_are_what_is_shown(data_dir, env):
    task = finish(env, "true")
    good = same_as_uncached(env)
    kept = os.path.join(data_dir, "store", LINES_NAME)
    version, key, (own, widths, lines) = msgpack.unpackb(Path(kept).read_bytes())
    assert lines.startswith(task)
    Path(kept).write_bytes(msgpack.packb([version, key, [own, widths, "kept-" + lines]]))
    assert table(env).splitlines()[2] == "kept-" + good.splitlines()[2]


def test_a_damaged_or_planted_file_changes_nothing(data_dir, env):
    finish(env, "true")
    good = same_as_uncached(env)
    kept = os.path.join(data_dir, "store", LINES_NAME)
    Path(kept).write_bytes(b"\x93\x04garbage")
    assert same_as_uncached(env) == good
    target = os.path.join(data_dir, "target")
    Path(target).write_bytes(b"untouched")
    os.unlink(kept)
    os.symlink(target, kept)  # never read through nor written through
    assert same_as_uncached(env) == good
    assert Path(target).read_bytes() == b"untouched"
    assert not os.path.islink(kept)


def test_bare_list_goes_without_click_and_answers_as_the_click_command(data_dir, env):
    finish(env, "sh", "-c", "exit 3")
    running = run_json("sh", "-c", "sleep 300", env=env)["id"]
    try:
        code = ("import sys; sys.argv = ['ghost', 'list']; from ghost.cli.entry import main\n"
                "try:\n    main()\n"
                "finally:\n    sys.stderr.write(f'click {\"click\" in sys.modules}')")
        bare = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                              timeout=60)
        assert bare.returncode == 0 and bare.stderr.decode() == "click False"
        shown = bare.stdout.decode()
        assert "exited (3)" in shown and running in shown
        assert shown == table(env, "-s", "all")
        # a stream that only takes ASCII gets UTF-8, as click writes it
        finish(env, "echo", "café")
        ascii_out = {**env, "PYTHONIOENCODING": "ascii"}
        bare_ascii = ghost("list", env=ascii_out)
        assert bare_ascii.returncode == 0 and bare_ascii.stderr == b""
        assert "café" in bare_ascii.stdout.decode()
        assert bare_ascii.stdout == ghost("list", "-s", "all", env=ascii_out).stdout
    finally:
        assert ghost("kill", running, env=env).returncode == 0
    # no stdout at all (`ghost list >&-`): nothing written, no traceback, as click does
    for args in (["list"], ["list", "-s", "all"]):
        closed = subprocess.run([sys.executable, "-m", "ghost", *args], env=env, timeout=60,
                                stderr=subprocess.PIPE, preexec_fn=lambda: os.close(1))
        assert (closed.returncode, closed.stderr) == (0, b""), (args, closed.stderr)
    # its errors are the click command's: one Error: line, the same exit code
    refused = {**env, "GHOST_DATA_DIR": "/etc/passwd"}
    for result in (ghost("list", env=refused), ghost("list", "-s", "all", env=refused)):
        assert result.returncode == 77 and result.stdout == b""
        assert text(result)[1] == ("Error: refusing data directory /etc/passwd: "
                                   "it is not a directory\n")

"""Issue 13: S0's own words, `stop`'s line, shell completion, and a read-only store."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from support import GHOST, ghost, run_json, text, wait_ended

STUBBORN = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('ready', " \
           "flush=True); time.sleep(300)"


def one_error(result: subprocess.CompletedProcess, code: int, message: str) -> None:
    out, err = text(result)
    assert (result.returncode, out) == (code, ""), err
    assert err.count("\n") == 1 and err.startswith(f"Error: {message}"), err


def test_s0_lines(data_dir, env):
    assert text(ghost("list", env=env)) == ("No tasks found.\n", "")
    one_error(ghost("run", env=env), 2, "No command specified")
    one_error(ghost("run", "echo 'open", "true", env=env), 2,
              "Unclosed quote in command string")
    one_error(ghost("run", "echo one", "", env=env), 2, "Empty command string")
    task = run_json("sleep", "300", env=env)
    lines = text(ghost("status", task["id"], env=env))[0].splitlines()
    for prefix in ("Task:", "PID:", "Status:", "Command:", "Working directory:", "Log file:"):
        assert any(line.startswith(prefix + " ") for line in lines), prefix
    one_error(ghost("cleanup", "--status", "running", env=env), 1,
              "Cannot cleanup running tasks")
    result = ghost("stop", task["id"], env=env)
    assert text(result) == (f"Process {task['id']} ({task['pid']}) has been exited\n", "")
    other = run_json("sleep", "300", env=env)
    result = ghost("stop", "--force", other["id"], env=env)
    assert text(result) == (f"Process {other['id']} ({other['pid']}) has been killed\n", "")
    assert text(ghost("cleanup", "--all", "--dry-run", env=env))[0].startswith(
        "The following 2 task(s) would be deleted:\n")
    assert text(ghost("cleanup", "--all", env=env)) == (
        "Successfully deleted 2 task(s).\nDeleted all finished tasks regardless of age.\n", "")
    assert text(ghost("cleanup", env=env)) == ("No tasks found matching cleanup criteria.\n", "")


def test_stop_line_says_when_sigkill_was_needed(data_dir, env):
    task = run_json(sys.executable, "-c", STUBBORN, env=env)
    log = task["log_path"]

    def ready() -> bool:
        return os.path.exists(log) and b"ready" in open(log, "rb").read()  # noqa: SIM115

    from support import wait_for

    wait_for(ready, 20, message="the task to ignore SIGTERM")
    result = ghost("stop", "-t", "0.5", task["id"], env=env)
    assert text(result) == (f"Process {task['id']} ({task['pid']}) has been exited "
                            "(SIGKILL after 0.5 s)\n", "")
    json_end = wait_ended(task["id"], env)
    assert (json_end["status"], json_end["signal"]) == ("killed", "SIGKILL")


def complete(env: dict[str, str], words: str, shell: str = "bash") -> list[str]:
    """What the shell's completion function gets back for the command line `words`."""
    cword = len(words.split()) - (0 if words.endswith(" ") else 1)
    result = subprocess.run(GHOST, env={**env, "COMP_WORDS": words, "COMP_CWORD": str(cword),
                                        "_GHOST_COMPLETE": f"{shell}_complete"},
                            capture_output=True, timeout=60)
    assert result.returncode == 0 and result.stderr == b"", result.stderr
    return [line.split(",", 1)[1] for line in result.stdout.decode().splitlines() if line]


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_completion_script(env, shell):
    result = ghost("completion", shell, env=env)
    assert result.returncode == 0 and b"_GHOST_COMPLETE" in result.stdout


def test_completion_of_task_ids(data_dir, env):
    assert complete(env, "ghost stop ") == []  # nothing recorded: nothing offered, no error
    running = run_json("sleep", "300", env=env)
    done = run_json("true", env=env)
    wait_ended(done["id"], env)
    assert complete(env, "ghost stop ") == [running["id"]]
    assert complete(env, "ghost kill ") == [running["id"]]
    assert complete(env, "ghost status ") == [done["id"], running["id"]]  # newest first
    assert complete(env, "ghost log ") == [done["id"], running["id"]]
    assert complete(env, "ghost history ") == [done["id"], running["id"]]
    assert complete(env, f"ghost status {done['id'][:6]}") == [done["id"]]
    assert complete(env, "ghost li") == ["list"]
    assert "completion" in complete(env, "ghost comp")
    bad = ghost("completion", "tcsh", env=env)
    assert bad.returncode == 2 and text(bad)[1].startswith("Error: ")


@pytest.fixture
def read_only_dir(tmp_path):
    """A tmpfs mounted read-only after a store was made in it (skipped where mount is not
    permitted: it needs root, as in CI)."""
    mount = tmp_path / "ro"
    mount.mkdir()
    made = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(mount)],
                          capture_output=True)
    if made.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {made.stderr.decode().strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def test_read_only_store_says_what_to_do(read_only_dir, env):
    data = str(read_only_dir / "ghost")
    env = {**env, "GHOST_DATA_DIR": data}
    task = run_json("true", env=env)
    wait_ended(task["id"], env)
    subprocess.run(["mount", "-o", "remount,ro", str(read_only_dir)], check=True)
    result = ghost("run", "true", env=env)
    one_error(result, 1, "cannot start a task: ")
    err = text(result)[1]
    assert "Errno" not in err and "read-only" in err and "GHOST_DATA_DIR" in err
    assert [r.split()[0] for r in text(ghost("list", env=env))[0].splitlines()[2:]] == [
        task["id"]]  # reading still works

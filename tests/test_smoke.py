"""The first promise: a command started with `ghost run` is seen, and its exact end recorded."""

from support import ghost, run_json, text, wait_ended


def test_version_and_help(data_dir):
    assert text(ghost("--version"))[0].startswith("ghost ")
    out, _ = text(ghost())
    assert "Usage:" in out and "run" in out


def test_exit_code_is_recorded_exactly(data_dir, env):
    started = run_json("sh", "-c", "exit 3", env=env)
    ended = wait_ended(started["id"], env)
    assert ended["status"] == "exited"
    assert ended["exit_code"] == 3

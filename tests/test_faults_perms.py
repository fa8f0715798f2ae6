"""Permissions: ghost's files are private whatever the umask, and ghost refuses (exit 77, the
path named) a data dir that someone else could have planted or can write to. A symlink planted
where ghost reads or writes a file is never followed. Runs as root in CI: the refusals are
ghost's own lstat checks, not the kernel's permission bits, so they hold for root too."""

from __future__ import annotations

import json
import os
import stat
import subprocess

import pytest
from support import GHOST, ghost, run_json, text, wait_ended
from test_faults_crash import list_json

from ghost.errors import NOPERM, GhostError
from ghost.process import monitor
from ghost.state.logs import open_log


def one_error_line(result: subprocess.CompletedProcess, code: int, *needles: str) -> None:
    out, err = text(result)
    assert result.returncode == code, (out, err)
    assert out == "" and err.startswith("Error: ") and err.count("\n") == 1, err
    for needle in needles:
        assert needle in err, err


def modes(root: str) -> dict[str, int]:
    found = {}
    for base, dirs, files in os.walk(root):
        for name in [*dirs, *files, ""]:
            path = os.path.join(base, name) if name else base
            found[os.path.relpath(path, root)] = stat.S_IMODE(os.lstat(path).st_mode)
    return found


def test_everything_is_private_even_under_umask_000(data_dir, env, tmp_path):
    def loose() -> None:
        os.umask(0)

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([*GHOST, *args], env=env, capture_output=True, timeout=60,
                              preexec_fn=loose, cwd=tmp_path)

    started = run("run", "--json", "sh", "-c", "echo out")
    assert started.returncode == 0, started.stderr
    wait_ended(json.loads(started.stdout)["id"], env)
    for args in (("list",), ("doctor",), ("cleanup", "--dry-run")):
        assert run(*args).returncode == 0
    found = modes(data_dir)
    assert {"store/data.mdb", "store/lock.mdb", "store/wake"} <= set(found)
    assert any(p.startswith("logs/") and p.endswith(".log") for p in found)
    wrong = {p: f"{m:04o}" for p, m in found.items()
             if m != (0o700 if os.path.isdir(os.path.join(data_dir, p)) else 0o600)}
    assert wrong == {}


@pytest.mark.parametrize("damage", ["foreign owner", "group-writable", "world-writable",
                                    "symlink", "store symlink", "logs symlink", "file"])
def test_unsafe_data_dir_is_refused_with_the_path_named(damage, data_dir, env, tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir(mode=0o700)
    named = data_dir
    if damage == "symlink":
        os.symlink(elsewhere, data_dir)
    elif damage == "file":
        open(data_dir, "w").close()
    else:
        os.mkdir(data_dir, 0o700)
        if damage == "foreign owner":
            os.chown(data_dir, 65534, 65534)
        elif damage == "group-writable":
            os.chmod(data_dir, 0o770)
        elif damage == "world-writable":
            os.chmod(data_dir, 0o777)
        else:
            sub = "store" if damage == "store symlink" else "logs"
            named = os.path.join(data_dir, sub)
            os.symlink(elsewhere, named)
    for args in (("list",), ("run", "true"), ("status", "abcd1234"), ("cleanup", "--all")):
        one_error_line(ghost(*args, env=env), NOPERM, f"refusing data directory {named}:")
    assert os.listdir(elsewhere) == []  # nothing was written through the link
    if damage == "foreign owner":
        assert os.stat(data_dir).st_uid == 65534  # and nothing was "fixed" behind our back


def test_symlink_planted_in_the_store_is_refused(data_dir, env, tmp_path):
    assert ghost("run", "true", env=env).returncode == 0
    target = tmp_path / "target"
    target.write_bytes(b"precious")
    wake = os.path.join(data_dir, "store", "wake")
    os.unlink(wake)
    os.symlink(target, wake)
    try:
        one_error_line(ghost("run", "true", env=env), NOPERM, wake, "symlink")
        one_error_line(ghost("list", env=env), NOPERM, wake)
        assert target.read_bytes() == b"precious"
    finally:
        os.unlink(wake)  # so the teardown can open the store and kill what the test started


def test_symlink_at_a_log_path_is_never_followed(data_dir, env, tmp_path):
    target = tmp_path / "target"
    target.write_bytes(b"precious")
    link = tmp_path / "task.log"
    os.symlink(target, link)
    with pytest.raises(GhostError) as caught:
        open_log(str(link))
    assert str(link) in caught.value.message
    with pytest.raises(OSError):  # the monitor creates logs with O_EXCL|O_NOFOLLOW
        monitor._open_log(str(link))
    assert target.read_bytes() == b"precious"


def test_log_replaced_by_a_symlink_is_refused_and_its_target_untouched(data_dir, env, tmp_path):
    started = run_json("sh", "-c", "echo secret-output", env=env)
    wait_ended(started["id"], env)
    target = tmp_path / "target"
    target.write_bytes(b"precious")
    os.unlink(started["log_path"])
    os.symlink(target, started["log_path"])

    result = ghost("log", started["id"], env=env)
    one_error_line(result, 1, started["log_path"])
    assert b"precious" not in result.stdout
    assert ghost("cleanup", "--all", env=env).returncode == 0  # removes the link, not the file
    assert not os.path.lexists(started["log_path"])
    assert target.read_bytes() == b"precious"
    assert list_json(env) == []


def test_relative_xdg_data_home_is_ignored(tmp_path, monkeypatch):
    home = tmp_path / "home"
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "GHOST_DATA_DIR"}
    env.update(HOME=str(home), XDG_DATA_HOME="relative/dir")
    result = ghost("list", "--json", env=env, cwd=str(tmp_path))
    assert result.returncode == 0 and result.stdout == b"[]\n", result.stderr
    assert not (tmp_path / "relative").exists()
    assert not (home / ".local").exists()  # a read creates nothing


# -- issue 12 item 2: every directory ghost creates is private -----------------------------------

def test_every_created_ancestor_is_0700_under_umask_000(tmp_path):
    def loose() -> None:
        os.umask(0)

    home = tmp_path / "home"
    home.mkdir(mode=0o755)
    deep = tmp_path / "a" / "b" / "c" / "ghost"
    base = {k: v for k, v in os.environ.items() if k not in ("GHOST_DATA_DIR", "XDG_DATA_HOME")}
    for env, made in (({**base, "HOME": str(home)},
                       [home / ".local", home / ".local" / "share", home / ".local" / "share" /
                        "ghost"]),
                      ({**base, "GHOST_DATA_DIR": str(deep)},
                       [tmp_path / "a", tmp_path / "a" / "b", tmp_path / "a" / "b" / "c", deep])):
        result = subprocess.run([*GHOST, "run", "true"], env=env, capture_output=True,
                                timeout=60, preexec_fn=loose, cwd=tmp_path)
        assert result.returncode == 0, result.stderr
        modes_of = {str(p): f"{stat.S_IMODE(os.lstat(p).st_mode):04o}" for p in made}
        assert set(modes_of.values()) == {"0700"}, modes_of
    assert stat.S_IMODE(os.lstat(home).st_mode) == 0o755  # an existing dir is left alone


# -- issue 12 item 11: logs are found relative to the data dir and must be our regular files ---

def _ended_task(env: dict[str, str], script: str = "echo hello") -> dict:
    started = run_json("sh", "-c", script, env=env)
    wait_ended(started["id"], env)
    return started


def test_fifo_at_a_log_path_is_refused_without_blocking(data_dir, env):
    started = _ended_task(env)
    os.unlink(started["log_path"])
    os.mkfifo(started["log_path"], 0o600)
    for args in (("log", started["id"]), ("log", "-n", "1", started["id"]),
                 ("log", "-f", started["id"])):
        one_error_line(ghost(*args, env=env, timeout=20), 1, "is a FIFO, not a regular file")
    from ghost.state.logs import check_log

    assert "FIFO" in (check_log(started["log_path"]) or "")


def test_log_owned_by_someone_else_is_refused(data_dir, env):
    started = _ended_task(env)
    os.chown(started["log_path"], 65534, 65534)
    one_error_line(ghost("log", started["id"], env=env), 1, "owned by uid 65534")


def test_moved_data_dir_reads_its_own_logs_not_the_old_path(data_dir, env, tmp_path):
    started = _ended_task(env, "echo the-real-output")
    moved = str(tmp_path / "moved")
    os.rename(data_dir, moved)
    os.makedirs(os.path.join(data_dir, "logs"), mode=0o700)  # something now sits at the old path
    with open(started["log_path"], "wb") as planted:
        planted.write(b"planted\n")
    env = {**env, "GHOST_DATA_DIR": moved}
    for args in (("log", started["id"]), ("log", "-n", "1", started["id"]),
                 ("log", "-f", started["id"])):
        result = ghost(*args, env=env)
        assert result.returncode == 0 and result.stdout == b"the-real-output\n", text(result)
    os.rename(moved, data_dir + ".gone")  # the teardown looks in data_dir: put the store back
    os.rename(data_dir, str(tmp_path / "old-place"))
    os.rename(data_dir + ".gone", data_dir)


def test_a_damaged_task_id_never_becomes_a_path():
    from ghost.state.logs import task_log

    with pytest.raises(GhostError) as caught:
        task_log("../../etc/passwd")
    assert "not a valid task id" in caught.value.message

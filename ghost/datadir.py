"""Where ghost keeps its data, and the checks that keep that place safe.

The data dir holds the event store (`store/`) and task output (`logs/<task id>.log`). It must be
a real directory owned by the user, not writable by group or others, and not on a network file
system (LMDB's locking does not work there). Reads of a missing data dir return nothing and
create nothing; the first write creates it 0700.
"""

from __future__ import annotations

import errno
import os
import stat

from ghost.errors import NOPERM, GhostError
from ghost.text import printable

NETWORK_FS = frozenset({"nfs", "nfs4", "cifs", "smb3", "smbfs", "ncpfs", "afs", "9p",
                        "fuse.sshfs", "glusterfs", "ceph", "lustre", "davfs", "fuse.rclone"})


def data_dir() -> str:
    explicit = os.environ.get("GHOST_DATA_DIR")
    if explicit:
        return os.path.abspath(os.path.expanduser(explicit))
    xdg = os.environ.get("XDG_DATA_HOME", "")
    if os.path.isabs(xdg):  # a relative XDG path is invalid per the spec and ignored
        return os.path.join(xdg, "ghost")
    # An empty $HOME is not "no home": os.path.expanduser would turn it into "/" (a data dir
    # in /.local as root). Only an unset $HOME falls back to the passwd entry.
    home = os.environ["HOME"] if "HOME" in os.environ else os.path.expanduser("~")
    if not os.path.isabs(home):  # empty, relative, or no passwd entry: never use the cwd
        raise GhostError("cannot find your home directory ($HOME is not an absolute path); "
                         "set GHOST_DATA_DIR", 1)
    return os.path.join(home, ".local", "share", "ghost")


def map_floor() -> int:
    """Address space reserved for the store; it doubles by itself when full."""
    forced = os.environ.get("GHOST_TEST_MAP_SIZE")  # test seam: a tiny map to force growth
    return int(forced) if forced else 1 << 30


def store_dir(base: str | None = None) -> str:
    return os.path.join(base or data_dir(), "store")


def logs_dir(base: str | None = None) -> str:
    return os.path.join(base or data_dir(), "logs")


def log_path(task_id: str, base: str | None = None) -> str:
    return os.path.join(logs_dir(base), f"{task_id}.log")


def _unreachable(path: str, exc: OSError) -> GhostError:
    """One error line for a data dir that cannot be reached or created: 77 when permission is
    missing (like an unsafe dir, the user must pick another place), else 1."""
    why = exc.strerror or str(exc)
    code = NOPERM if exc.errno in (errno.EACCES, errno.EPERM) else 1
    if exc.errno == errno.ENAMETOOLONG:
        why = "a path component is longer than the file system allows"
    return GhostError(f"cannot use data directory {printable(path)}: {why}; set "
                      "GHOST_DATA_DIR to a directory you own", code)


def make_private_dirs(path: str) -> None:
    """Create `path` and each missing ancestor one by one, each 0700 whatever the umask (an
    intermediate `~/.local` left 0777 would let another user plant `~/.local/bin/git`).
    Directories that already exist are left exactly as they are."""
    missing: list[str] = []
    current = path
    while not os.path.lexists(current):
        missing.append(current)
        parent = os.path.dirname(current)
        if parent == current:
            break
        current = parent
    for directory in reversed(missing):
        try:
            os.mkdir(directory, 0o700)
        except FileExistsError:
            continue  # created by a concurrent ghost (0700 too); checked by the caller
        os.chmod(directory, 0o700)  # mkdir's mode was filtered by the umask only downwards


def checked_dir(path: str, create: bool) -> bool:
    """Check (and with `create`, make) one of ghost's directories. False when it is missing."""
    try:
        st: os.stat_result | None = os.lstat(path)
    except FileNotFoundError:
        st = None
    except OSError as exc:  # ENOTDIR (under /dev/null), ENAMETOOLONG, EACCES, ...
        raise _unreachable(path, exc) from None
    if st is None:
        if not create:
            return False
        try:
            make_private_dirs(path)
            st = os.lstat(path)
        except OSError as exc:
            raise _unreachable(path, exc) from None
    if stat.S_ISLNK(st.st_mode):
        raise GhostError(f"refusing data directory {path}: it is a symlink", NOPERM)
    if not stat.S_ISDIR(st.st_mode):
        raise GhostError(f"refusing data directory {path}: it is not a directory", NOPERM)
    if st.st_uid != os.geteuid():
        raise GhostError(f"refusing data directory {path}: it is owned by uid {st.st_uid}, "
                         f"not by you (uid {os.geteuid()})", NOPERM)
    if st.st_mode & 0o022:
        raise GhostError(f"refusing data directory {path}: it is writable by group or others "
                         f"(mode {stat.S_IMODE(st.st_mode):04o}); chmod 700 it", NOPERM)
    if create and stat.S_IMODE(st.st_mode) != 0o700:
        os.chmod(path, 0o700)
    return True


def prepare(create: bool) -> str | None:
    """The checked data dir (created when `create`), or None when it does not exist yet."""
    base = data_dir()
    if not checked_dir(base, create):
        return None
    fs = filesystem_type(base)
    if fs in NETWORK_FS:
        raise GhostError(f"refusing data directory {base}: it is on a network file system "
                         f"({fs}), where the event store's locking is unreliable; set "
                         "GHOST_DATA_DIR to a local directory", NOPERM)
    for sub in (store_dir(base), logs_dir(base)):
        checked_dir(sub, create)
    return base


def filesystem_type(path: str) -> str:
    """The type of the file system holding `path` (Linux: from mountinfo), or ''."""
    forced = os.environ.get("GHOST_TEST_FS_TYPE")  # test seam: no NFS mount in CI
    if forced:
        return forced
    try:
        with open("/proc/self/mountinfo", encoding="utf-8", errors="replace") as f:
            lines = f.readlines()
    except OSError:
        return ""
    real = os.path.realpath(path)
    best, best_type = "", ""
    for line in lines:
        left, _, right = line.partition(" - ")
        parts = left.split()
        if len(parts) < 5 or not right:
            continue
        mount = parts[4].replace("\\040", " ")
        inside = real == mount or real.startswith(mount.rstrip("/") + "/")
        if inside and len(mount) >= len(best):
            best, best_type = mount, right.split()[0]
    return best_type

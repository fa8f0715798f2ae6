"""Opening the LMDB environment: a safe directory, private file modes, read-only fallback."""

from __future__ import annotations

import contextlib
import errno
import os
import stat

import lmdb

from events.errors import StoreError

WAKE = "wake"
DATA = "data.mdb"


def check_dir(path: str, create: bool) -> None:
    """The store directory must be a real directory of ours; created 0700 when missing."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        if not create:
            raise StoreError(f"no event store in {path}") from None
        os.makedirs(os.path.dirname(path) or ".", mode=0o700, exist_ok=True)
        with contextlib.suppress(FileExistsError):
            os.mkdir(path, 0o700)
        os.chmod(path, 0o700)
        st = os.lstat(path)
    if stat.S_ISLNK(st.st_mode) or not stat.S_ISDIR(st.st_mode):
        raise StoreError(f"{path} is not a directory (a symlink or file is in its place)", "unsafe")
    for name in (DATA, "lock.mdb", WAKE):
        try:
            if stat.S_ISLNK(os.lstat(os.path.join(path, name)).st_mode):
                raise StoreError(f"{os.path.join(path, name)} is a symlink; refusing it", "unsafe")
        except FileNotFoundError:
            pass


def open_env(path: str, map_floor: int) -> tuple[lmdb.Environment, bool]:
    kwargs = dict(subdir=True, max_dbs=8, max_readers=126, max_spare_txns=0, mode=0o600,
                  writemap=False, sync=True, metasync=True, lock=True)
    old_umask = os.umask(0o077)
    try:
        env = lmdb.open(path, map_size=0 if os.path.exists(os.path.join(path, DATA))
                        else map_floor, **kwargs)
    except lmdb.Error as exc:
        if not is_readonly_error(exc):
            raise StoreError(f"cannot open the event store in {path}: {exc}") from exc
        try:
            env = lmdb.open(path, readonly=True, map_size=0, **kwargs)
        except lmdb.Error:
            # LMDB cannot take its lock on a read-only file system; a snapshot read is still safe.
            env = lmdb.open(path, readonly=True, map_size=0, **{**kwargs, "lock": False})
        return env, True
    finally:
        os.umask(old_umask)
    if env.info()["map_size"] < map_floor:
        env.set_mapsize(map_floor)
    return env, False


def is_readonly_error(exc: lmdb.Error) -> bool:
    if isinstance(exc, lmdb.ReadonlyError):
        return True
    text = str(exc)
    return any(os.strerror(code) in text for code in (errno.EACCES, errno.EROFS, errno.EPERM))

"""Opening the LMDB environment: a safe directory, private file modes, read-only fallback."""

from __future__ import annotations

import contextlib
import errno
import os
import stat

import lmdb

from events import lmdbfile
from events.errors import StoreError, os_error_kind

WAKE = "wake"
DATA = "data.mdb"
LOCK = "lock.mdb"
# LMDB's lock file for 126 readers: a 192-byte header and 125 more 64-byte reader slots.
LOCK_SIZE = 8192
WHAT_TO_DO = "restore it from a backup, or run `ghost doctor --salvage`"


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


def check_data_file(path: str) -> None:
    """Refuse a data file LMDB must not map: truncated, not LMDB, or emptied after use.

    Mapping a file shorter than its header says ends in SIGBUS at the first read past the end,
    so this check reads the meta pages with plain reads first.
    """
    data = os.path.join(path, DATA)
    try:
        size = os.lstat(data).st_size
        wrong = lmdbfile.problem(data)
    except FileNotFoundError:
        return
    except OSError as exc:
        raise StoreError(f"cannot read the event store {data}: {exc.strerror}",
                         os_error_kind(exc.errno)) from exc
    if wrong is None and size == 0 and _emptied(path):
        wrong = "it is empty, but a store was used here (its wake file remains)"
    if wrong is not None:
        raise StoreError(f"the event store {data} is damaged: {wrong}; {WHAT_TO_DO}",
                         "damaged")


def _emptied(path: str) -> bool:
    """Whether an empty data file is a store that lost its contents, not one being created.

    The wake file is written after a commit only, so a store being created (or one whose
    creation failed on a full disk) has none; the lock file is no evidence: LMDB creates it
    before the data file.
    """
    return os.path.lexists(os.path.join(path, WAKE))


def reserve_lock_file(path: str) -> None:
    """Give LMDB's lock file real blocks before LMDB maps it.

    LMDB sizes a new lock file with ftruncate (a sparse file) and writes it through mmap: on a
    full file system that write kills the process with SIGBUS. Allocating the blocks first
    turns a full disk into an ordinary ENOSPC here.
    """
    lock = os.path.join(path, LOCK)
    # Look before opening: closing any descriptor of the lock file drops every POSIX lock this
    # process holds on it, LMDB's own included, so an existing full-size file is left alone.
    with contextlib.suppress(FileNotFoundError):
        if os.lstat(lock).st_size >= LOCK_SIZE:
            return
    try:
        fd = os.open(lock, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    except OSError as exc:
        if exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
            return  # a read-only store: LMDB falls back to reading it without a lock
        raise StoreError(f"cannot create the event store's lock file {lock}: "
                         f"{describe(exc)}", os_error_kind(exc.errno)) from exc
    try:
        if os.fstat(fd).st_size < LOCK_SIZE:
            os.posix_fallocate(fd, 0, LOCK_SIZE)
    except OSError as exc:
        raise StoreError(f"cannot create the event store's lock file {lock}: "
                         f"{describe(exc)}", os_error_kind(exc.errno)) from exc
    finally:
        os.close(fd)


def describe(exc: OSError) -> str:
    """An OSError in words that say which fault it is (a full disk is not an I/O error)."""
    kind = os_error_kind(exc.errno)
    if kind == "disk_full":
        return f"the disk is full ({exc.strerror})"
    if kind == "io_error":
        return f"an I/O error on the disk ({exc.strerror})"
    return str(exc.strerror or exc)


def open_env(path: str, map_floor: int) -> tuple[lmdb.Environment, bool]:
    check_data_file(path)
    reserve_lock_file(path)
    kwargs = dict(subdir=True, max_dbs=8, max_readers=126, max_spare_txns=0, mode=0o600,
                  writemap=False, sync=True, metasync=True, lock=True)
    old_umask = os.umask(0o077)
    try:
        env = lmdb.open(path, map_size=0 if os.path.exists(os.path.join(path, DATA))
                        else map_floor, **kwargs)
    except lmdb.Error as exc:
        if not is_readonly_error(exc):
            raise open_error(path, exc) from exc
        try:
            env = lmdb.open(path, readonly=True, map_size=0, **kwargs)
        except lmdb.Error:
            # LMDB cannot take its lock on a read-only file system; a snapshot read is still safe.
            try:
                env = lmdb.open(path, readonly=True, map_size=0, **{**kwargs, "lock": False})
            except lmdb.Error as again:
                raise open_error(path, again) from again
        return env, True
    finally:
        os.umask(old_umask)
    if env.info()["map_size"] < map_floor:
        env.set_mapsize(map_floor)
    return env, False


def open_error(path: str, exc: lmdb.Error) -> StoreError:
    """LMDB's refusal to open, as a StoreError of the right kind (damage, disk, other)."""
    if isinstance(exc, (lmdb.InvalidError, lmdb.VersionMismatchError, lmdb.CorruptedError,
                        lmdb.PageNotFoundError)):
        return StoreError(f"the event store {os.path.join(path, DATA)} is damaged: {exc}; "
                          f"{WHAT_TO_DO}", "damaged")
    kind = lmdb_error_kind(exc)
    return StoreError(f"cannot open the event store in {path}: {exc}", kind)


def lmdb_error_kind(exc: lmdb.Error) -> str:
    """disk_full, io_error or io (other) for an LMDB error that carries an errno's text."""
    text = str(exc)
    for code in (errno.ENOSPC, errno.EDQUOT, errno.EIO):
        if os.strerror(code) in text:
            return os_error_kind(code)
    return "io"


def open_file(path: str, map_floor: int) -> tuple[lmdb.Environment, bool, int]:
    """open_env, and the inode of the data file it mapped (stat before and after agree)."""
    data = os.path.join(path, DATA)
    for _ in range(8):
        before = inode(data)
        env, readonly = open_env(path, map_floor)
        after = inode(data)
        if before == after:
            return env, readonly, after
        env.close()  # a compaction swapped the file while it was being opened
    raise StoreError(f"the event store in {path} keeps being replaced", "io")


def inode(path: str) -> int:
    try:
        return os.stat(path).st_ino
    except FileNotFoundError:
        return 0


def is_readonly_error(exc: lmdb.Error) -> bool:
    if isinstance(exc, lmdb.ReadonlyError):
        return True
    text = str(exc)
    return any(os.strerror(code) in text for code in (errno.EACCES, errno.EROFS, errno.EPERM))

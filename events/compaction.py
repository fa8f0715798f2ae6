"""Giving space back: the data file rewritten without free pages, swapped in atomically.

LMDB never shrinks its file: pages freed by deletes (view rows of cleaned tasks, old
snapshots) are reused but not returned. `compact` writes a compacted copy of the snapshot of
the caller's write transaction next to the file and renames it over `data.mdb` while that
transaction (the writer lock) is held, so concurrent writers wait rather than fail, and none
can commit to the replaced file: each checks the data file's inode once it holds the writer
lock and reopens the new file (events.store.Store._begin). Readers check before each read.
"""

from __future__ import annotations

import contextlib
import os

import lmdb

from events import lmdbfile
from events.environment import DATA, describe, lmdb_error_kind
from events.errors import StoreError, os_error_kind


def compact(env: lmdb.Environment, txn: lmdb.Transaction, path: str) -> tuple[int, int]:
    """Inside write transaction `txn` of `env` (store dir `path`): swap in a compacted copy.

    Returns the file's size before and after, in bytes."""
    data = os.path.join(path, DATA)
    before = os.stat(data).st_size
    # Other processes keep the lock file, whose last transaction id picks the meta page they
    # read: the copy must claim the same id (see lmdbfile.patch_txnid).
    import shutil  # here: every reader imports this module, few ever compact

    last_txnid = int(env.info()["last_txnid"])
    work = os.path.join(path, f".compact-{os.getpid()}")
    old_umask = os.umask(0o077)
    try:
        shutil.rmtree(work, ignore_errors=True)  # left by a compaction that was killed
        os.mkdir(work, 0o700)
        env.copy(work, compact=True, txn=txn)
        copy = os.path.join(work, DATA)
        lmdbfile.patch_txnid(copy, last_txnid)
        os.chmod(copy, 0o600)
        os.rename(copy, data)
        _sync_dir(path)
    except OSError as exc:
        raise StoreError(f"cannot compact the event store in {path}: {describe(exc)}",
                         os_error_kind(exc.errno)) from exc
    finally:
        os.umask(old_umask)
        shutil.rmtree(work, ignore_errors=True)
    return before, os.stat(data).st_size


def _sync_dir(path: str) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_error(path: str, exc: lmdb.Error) -> StoreError:
    """A failed write in words that say which fault it was.

    LMDB reports a short write as EIO, and a disk filling up mid-commit gives short writes: an
    EIO on a file system with (almost) no space left is a full disk, any other is an I/O error.
    """
    kind = lmdb_error_kind(exc)
    if kind == "io_error" and _nearly_full(path):
        return StoreError(f"cannot write the event store in {path}: the disk is full "
                          f"(a short write: {exc})", "disk_full")
    if kind == "disk_full":
        return StoreError(f"cannot write the event store in {path}: the disk is full ({exc})",
                          kind)
    if kind == "io_error":
        return StoreError(f"cannot write the event store in {path}: an I/O error on the disk "
                          f"({exc})", kind)
    return StoreError(f"cannot write the event store in {path}: {exc}", kind)


FULL_BELOW = 1 << 20  # bytes free: below this a short write is taken for a full disk


def _nearly_full(path: str) -> bool:
    with contextlib.suppress(OSError):
        st = os.statvfs(path)
        return st.f_bavail * st.f_frsize < FULL_BELOW
    return False

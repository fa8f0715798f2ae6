"""LMDB's data file read as plain bytes: its meta pages, and the events left in its leaf pages.

LMDB maps `data.mdb` and trusts it: a file shorter than its own header says (a half-finished
copy or restore) kills the process with SIGBUS on the first read past the end. So the store
checks the file here, with ordinary reads, before LMDB maps it; and `ghost doctor --salvage`
collects events from a file LMDB cannot open by reading its leaf pages one by one.

Layout (LMDB 0.9, 64-bit): each page starts with a 16-byte header (pgno u64, pad u16,
flags u16, lower u16, upper u16). Pages 0 and 1 are meta pages: magic u32 at 16, version u32
at 20, the free-list database record at 40 (its first u32 is the page size), last used page
u64 at 136, transaction id u64 at 144. The meta with the higher transaction id is current.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterator
from typing import NamedTuple

MAGIC = 0xBEEFC0DE
VERSION = 1
_HEADER = 16
_P_LEAF, _P_META = 0x02, 0x08
_F_BIGDATA, _F_SUBDATA, _F_DUPDATA = 0x01, 0x02, 0x04
_MIN_PAGE, _MAX_PAGE = 512, 1 << 16  # LMDB's own limits on the page size
UNWRITTEN_SLACK = 16  # pages at the end a sound file may lack (see `problem`)


class Meta(NamedTuple):
    page_size: int
    last_page: int
    txnid: int

    @property
    def needed(self) -> int:
        """The smallest file size that holds every page this meta refers to."""
        return (self.last_page + 1) * self.page_size


def _meta_at(buf: bytes, offset: int) -> Meta | None:
    if len(buf) < offset + 152:
        return None
    flags = struct.unpack_from("<H", buf, offset + 10)[0]
    magic, version = struct.unpack_from("<II", buf, offset + 16)
    if not flags & _P_META or magic != MAGIC or version != VERSION:
        return None
    page_size = struct.unpack_from("<I", buf, offset + 40)[0]
    last_page, txnid = struct.unpack_from("<QQ", buf, offset + 136)
    if not _MIN_PAGE <= page_size <= _MAX_PAGE or page_size & (page_size - 1):
        return None
    return Meta(page_size, last_page, txnid)


def read_meta(fd: int) -> Meta | str:
    """The current meta of the data file open on `fd`, or what is wrong with the file."""
    size = os.fstat(fd).st_size
    first = os.pread(fd, 4096, 0)
    meta0 = _meta_at(first, 0)
    if meta0 is None:
        return "its first page is not an LMDB meta page"
    if size < 2 * meta0.page_size:
        return f"it is {size} bytes, shorter than its two meta pages"
    meta1 = _meta_at(os.pread(fd, 4096, meta0.page_size), 0)
    if meta1 is None:
        return "its second page is not an LMDB meta page"
    if meta1.page_size != meta0.page_size:
        return "its two meta pages disagree on the page size"
    return max(meta0, meta1, key=lambda m: m.txnid)


def problem(path: str) -> str | None:
    """Why LMDB must not map the data file at `path` (None: the file is sound to open).

    A 0-byte file is no problem here (LMDB writes a new store into it); the caller decides
    whether an empty file is a store that was lost.
    """
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        size = os.fstat(fd).st_size
        if size == 0:
            return None
        meta = read_meta(fd)
        if isinstance(meta, str):
            return meta
        # The size again, now: a writer may have grown the file and committed a newer meta
        # since the first look. And a sound store can be a little shorter than its meta says:
        # LMDB counts pages it allocated and freed again in one transaction without writing
        # them (seen: one page short, under 100 concurrent monitors); nothing refers to them.
        size = os.fstat(fd).st_size
        if size < meta.needed - UNWRITTEN_SLACK * meta.page_size:
            return (f"it is {size} bytes but its own header says the store needs "
                    f"{meta.needed} bytes (truncated: a half-finished copy or restore?)")
        return None
    finally:
        os.close(fd)


def patch_txnid(path: str, txnid: int) -> None:
    """Make both meta pages of a fresh compacted copy current as of transaction `txnid`.

    A compacted copy starts at txnid 1, but other processes keep using the store's lock
    file, whose last txnid picks the meta page they read (txnid & 1): so both pages carry the
    copy's meta, the one `txnid & 1` with `txnid` and the other with `txnid - 1`.
    """
    fd = os.open(path, os.O_RDWR | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        meta = read_meta(fd)
        if isinstance(meta, str):
            raise ValueError(f"the compacted copy {path} is unreadable: {meta}")
        page = meta.page_size
        current = next(p for p in (0, 1)
                       if _txnid(os.pread(fd, page, p * page)) == meta.txnid)
        body = bytearray(os.pread(fd, page, current * page))
        for number, value in ((txnid & 1, txnid), ((txnid - 1) & 1, txnid - 1)):
            struct.pack_into("<Q", body, 0, number)  # the page header's own page number
            struct.pack_into("<Q", body, 144, value)
            os.pwrite(fd, bytes(body), number * page)
        os.fsync(fd)
    finally:
        os.close(fd)


def _txnid(page: bytes) -> int:
    value: int = struct.unpack_from("<Q", page, 144)[0]
    return value


def leaf_items(path: str) -> Iterator[tuple[bytes, bytes]]:
    """Every (key, value) stored in a leaf page of the file, read without LMDB.

    Pages that are not leaves, nodes that point outside the page or the file, and sub-databases
    are skipped: this is for salvage, where any page may be damaged. Old copies of pages
    (LMDB writes copy-on-write) are included, so a key may come more than once.
    """
    with open(path, "rb") as f:
        data = f.read()
    meta = _meta_at(data, 0)
    page = meta.page_size if meta is not None else 4096
    for start in range(2 * page, len(data) - _HEADER + 1, page):
        flags, lower, upper = struct.unpack_from("<HHH", data, start + 10)
        if flags & ~0x10 != _P_LEAF or lower < _HEADER or lower > upper or upper > page:
            continue
        for i in range((lower - _HEADER) >> 1):
            node = start + struct.unpack_from("<H", data, start + _HEADER + 2 * i)[0]
            item = _node(data, node, start + page, page)
            if item is not None:
                yield item


def _node(data: bytes, node: int, end: int, page: int) -> tuple[bytes, bytes] | None:
    if node + 8 > end:
        return None
    lo, hi, flags, ksize = struct.unpack_from("<HHHH", data, node)
    size = lo | hi << 16
    key_end = node + 8 + ksize
    if key_end > end or flags & (_F_SUBDATA | _F_DUPDATA):
        return None
    key = data[node + 8:key_end]
    if flags & _F_BIGDATA:
        if key_end + 8 > end:
            return None
        first = struct.unpack_from("<Q", data, key_end)[0] * page + _HEADER
        if first + size > len(data):
            return None
        return key, data[first:first + size]
    if key_end + size > end:
        return None
    return key, data[key_end:key_end + size]

"""Reads that meet damage: one StoreError("damaged") instead of a decoding error or a crash."""

from __future__ import annotations

import functools
import struct
from collections.abc import Callable
from typing import Concatenate, ParamSpec, Protocol, TypeVar

import lmdb

from events.environment import lmdb_error_kind
from events.errors import StoreError

# What reading a damaged value or page raises: msgpack and key decoding errors, LMDB's checks.
DAMAGE = (ValueError, TypeError, AttributeError, struct.error, lmdb.CorruptedError,
          lmdb.PageNotFoundError)


class _Reader(Protocol):
    path: str

    def damaged(self, exc: BaseException) -> StoreError: ...


_S = TypeVar("_S", bound=_Reader)
_P = ParamSpec("_P")
_R = TypeVar("_R")


def guarded(method: Callable[Concatenate[_S, _P], _R]) -> Callable[Concatenate[_S, _P], _R]:
    """A read that meets a damaged value, key or page raises StoreError("damaged"), never a
    decoding error from deep inside (every command turns that into one `Error:` line)."""
    def guarded(self: _S, /, *args: _P.args, **kwargs: _P.kwargs) -> _R:
        try:
            return method(self, *args, **kwargs)
        except DAMAGE as exc:
            raise self.damaged(exc) from exc
        except lmdb.MapResizedError:
            raise
        except lmdb.Error as exc:
            raise StoreError(f"cannot read the event store in {self.path}: {exc}",
                             lmdb_error_kind(exc)) from exc
    functools.update_wrapper(guarded, method)
    return guarded


def what(exc: BaseException) -> str:
    """What kind of damage an exception from reading the store means, in words."""
    if isinstance(exc, struct.error):
        return f"a key of the wrong length ({exc})"
    if isinstance(exc, UnicodeDecodeError):
        return "a key that is not UTF-8"
    if isinstance(exc, (lmdb.CorruptedError, lmdb.PageNotFoundError)):
        return f"a damaged page ({exc})"
    if isinstance(exc, ValueError):
        return f"a value that does not decode ({type(exc).__name__}{': ' if str(exc) else ''}{exc})"
    return f"a value of the wrong shape ({exc})"

"""Errors as the API shows them: `{"error": {"code", "message"}}` with an HTTP status.

Every failure a client can cause has its own status (the table is in docs/http.md); anything
else is a 500 with a fixed message, logged on the server, never a traceback to the client.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from ghost.errors import (
    CANNOT_EXECUTE,
    IO,
    NOPERM,
    NOT_FOUND,
    TEMPFAIL,
    USAGE,
    AmbiguousTask,
    GhostError,
    TaskNotFound,
)

log = logging.getLogger("ghost.web")

_NO_INPUT = (" takes no input", " has no terminal")
MAX_BODY = 1 << 20  # bytes: the largest request body accepted (a `write` of 1 MiB fits)


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def error_response(status: int, code: str, message: str,
                   headers: dict[str, str] | None = None) -> Response:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status,
                        headers=headers)


def from_ghost(exc: GhostError) -> ApiError:
    """The HTTP meaning of an action's refusal."""
    if isinstance(exc, TaskNotFound):
        return ApiError(404, "not_found", exc.message)
    if isinstance(exc, AmbiguousTask):
        return ApiError(400, "ambiguous_id", exc.message)
    if " is not running" in exc.message:  # stop/kill on a task that has ended
        return ApiError(409, "not_running", exc.message)
    if any(why in exc.message for why in _NO_INPUT):  # write/resize it cannot take
        return ApiError(409, "no_input", exc.message)
    if " is queued" in exc.message or " cannot be restarted" in exc.message:
        return ApiError(409, "conflict", exc.message)
    if exc.exit_code in (USAGE, CANNOT_EXECUTE, NOT_FOUND):  # bad option, command not found
        return ApiError(422, "invalid", exc.message)
    if exc.exit_code == IO:
        return ApiError(507, "disk_full", exc.message)
    if exc.exit_code == TEMPFAIL:
        return ApiError(503, "store_full", exc.message)
    if exc.exit_code == NOPERM:
        return ApiError(500, "unsafe_data_dir", exc.message)
    return ApiError(500, "failed", exc.message)


async def api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return error_response(exc.status, exc.code, exc.message)


async def ghost_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, GhostError)
    err = from_ghost(exc)
    return error_response(err.status, err.code, err.message)


async def unexpected(request: Request, exc: Exception) -> Response:
    # One line on the server's log; the client learns only that it failed.
    log.error("internal error on %s %s: %s: %s", request.method, request.url.path,
              type(exc).__name__, exc)
    return error_response(500, "internal", "internal error (see the server's log)")


async def read_body(request: Request, cap: int = MAX_BODY) -> dict[str, Any]:
    """The request's JSON object; 413 past `cap` bytes, 400 when it is not JSON, 422 when it is
    JSON but not an object. An empty body is an empty object."""
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > cap):
        raise ApiError(413, "too_large", f"the request body is larger than {cap} bytes")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > cap:
            raise ApiError(413, "too_large", f"the request body is larger than {cap} bytes")
    if not body.strip():
        return {}
    try:
        value = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ApiError(400, "bad_json", f"the request body is not valid JSON: {exc}") from None
    if not isinstance(value, dict):
        raise ApiError(422, "invalid", "the request body must be a JSON object")
    return value


def field(body: dict[str, Any], name: str, kinds: type | tuple[type, ...], default: Any = None,
          ) -> Any:
    """`body[name]` when it has one of `kinds` (bool is never an int here), else 422."""
    value = body.get(name, default)
    if value is default:
        return value
    wanted = kinds if isinstance(kinds, tuple) else (kinds,)
    if isinstance(value, bool) and bool not in wanted or not isinstance(value, wanted):
        names = " or ".join(k.__name__ for k in wanted).replace("str", "string") \
            .replace("list", "array").replace("dict", "object").replace("float", "number") \
            .replace("int", "integer").replace("bool", "boolean")
        raise ApiError(422, "invalid", f"{name!r} must be {names}")
    return value

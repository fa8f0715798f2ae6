"""The Starlette application of `ghost serve`: routes, the guard, the dashboard's files."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles

from ghost.errors import GhostError
from ghost.web import errors, streams, tasks, ws
from ghost.web.calls import in_thread
from ghost.web.errors import ApiError
from ghost.web.hub import Hubs
from ghost.web.security import COOKIE, Guard, check_token

STATIC = os.path.join(os.path.dirname(os.path.abspath(__file__)), "static")
MAX_EVENTS = 10_000
# The dashboard loads nothing from elsewhere and runs no inline script. (xterm.js writes
# its theme into <style> elements, hence inline styles.)
CSP = ("default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
       "script-src 'self'; "
       "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'")
PAGE_HEADERS = {"Content-Security-Policy": CSP, "X-Frame-Options": "DENY",
                "Referrer-Policy": "no-referrer", "X-Content-Type-Options": "nosniff",
                "Cache-Control": "no-store"}


async def index(request: Request) -> Response:
    """The dashboard. `/?token=T` (the URL `ghost serve` prints) sets the cookie once and
    sends the browser to `/`, so the token leaves the address bar and the history."""
    given = request.query_params.get("token")
    token: str = request.app.state.token
    if given is not None:
        if not check_token(given, token):
            return errors.error_response(401, "unauthorized", "wrong token")
        response: Response = RedirectResponse("/", status_code=303, headers=PAGE_HEADERS)
        response.set_cookie(COOKIE, token, httponly=True, samesite="strict", path="/")
        return response
    return FileResponse(os.path.join(STATIC, "index.html"), headers=PAGE_HEADERS)


async def events_list(request: Request) -> Response:
    from ghost.web import feeds

    after = streams.cursor(request, "from")
    raw = request.query_params.get("limit") or "1000"
    if not raw.isdigit() or not 0 <= int(raw) <= MAX_EVENTS:
        raise ApiError(422, "invalid", f"invalid limit {raw[:40]!r}: must be 0 to {MAX_EVENTS}")
    limit = int(raw)

    def read() -> dict[str, Any]:
        last = feeds.last_seq()
        if after > last:
            raise ApiError(422, "invalid", f"from {after} is past the end of this event log "
                           f"(its last seq is {last})")
        import json

        out: list[Any] = []
        if limit:
            for batch in feeds.event_lines(after, until=min(last, after + limit)):
                out.extend(json.loads(line) for _, line in batch)
        return {"events": out[:limit], "last": last,
                "next": out[:limit][-1]["seq"] if out[:limit] else after}

    return JSONResponse(await in_thread(read))


async def openapi(request: Request) -> Response:
    from ghost.web.openapi import document

    return JSONResponse(document())


async def not_found(request: Request, exc: Exception) -> Response:
    status = getattr(exc, "status_code", 404)
    if status == 405:
        return errors.error_response(405, "method_not_allowed", "method not allowed here")
    return errors.error_response(404, "not_found", "no such route")


def routes() -> list[Any]:
    return [
        Route("/", index),
        Route("/api/openapi.json", openapi),
        Route("/api/tasks", tasks.list_tasks, methods=["GET"]),
        Route("/api/tasks", tasks.start_task, methods=["POST"]),
        Route("/api/tasks/{id}", tasks.get_task, methods=["GET"]),
        Route("/api/tasks/{id}", tasks.delete_task, methods=["DELETE"]),
        Route("/api/tasks/{id}/output", tasks.get_output, methods=["GET"]),
        Route("/api/tasks/{id}/output/stream", streams.output_stream, methods=["GET"]),
        Route("/api/tasks/{id}/history", tasks.task_history, methods=["GET"]),
        Route("/api/tasks/{id}/{verb:str}", _verb, methods=["POST"]),
        Route("/api/events", events_list, methods=["GET"]),
        Route("/api/events/stream", streams.events_stream, methods=["GET"]),
        WebSocketRoute("/api/ws", ws.websocket),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]


VERBS = {"stop": tasks.stop_task, "kill": tasks.stop_task, "restart": tasks.restart_task,
         "write": tasks.write_task, "resize": tasks.resize_task}


async def _verb(request: Request) -> Response:
    handler = VERBS.get(request.path_params["verb"])
    if handler is None:
        raise ApiError(404, "not_found", "no such action (stop, kill, restart, write, resize)")
    return await handler(request)


def create_app(token: str, hosts: frozenset[str]) -> Starlette:
    """The app, guarded: only requests for `hosts` (Host header values) with `token`."""
    from ghost.state.store import open_store

    # Open (and create) the store now, once: open_store's per-process cache is not locked,
    # and two worker threads opening it at the same moment would trip over each other.
    open_store(write=True)
    hubs = Hubs()

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        hubs.stop_all()

    app = Starlette(
        routes=routes(),
        middleware=[Middleware(Guard, token=token, hosts=hosts)],
        exception_handlers={ApiError: errors.api_error, GhostError: errors.ghost_error,
                            404: not_found, 405: not_found, Exception: errors.unexpected},
        lifespan=lifespan)
    app.state.token = token
    app.state.hubs = hubs
    return app

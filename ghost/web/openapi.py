"""The OpenAPI 3.1 description served at /api/openapi.json (kept beside the routes it
describes; tests/test_web_api.py checks that every route is in it)."""

from __future__ import annotations

from typing import Any

from ghost import __version__

_ERROR = {"type": "object", "required": ["error"], "properties": {"error": {
    "type": "object", "required": ["code", "message"],
    "properties": {"code": {"type": "string"}, "message": {"type": "string"}}}}}

_TASK = {"type": "object", "required": ["id", "pid", "status", "command", "cwd"], "properties": {
    "id": {"type": "string", "format": "uuid"},
    "pid": {"type": "integer"},
    "status": {"enum": ["running", "exited", "killed", "unknown", "queued", "restarting"]},
    "command": {"type": "array", "items": {"type": "string"}},
    "cwd": {"type": "string"},
    "started_at": {"type": ["string", "null"], "format": "date-time"},
    "finished_at": {"type": ["string", "null"], "format": "date-time"},
    "exit_code": {"type": ["integer", "null"]},
    "signal": {"type": ["string", "null"]},
    "log_path": {"type": "string"},
    "reason": {"type": "string"},
    "rusage": {"type": "object"},
    "unmonitored": {"type": "boolean"},
    "group_processes": {"type": "integer"}}}

_START = {"type": "object", "required": ["command"], "properties": {
    "command": {"oneOf": [{"type": "array", "items": {"type": "string"}, "minItems": 1},
                          {"type": "string", "description": "split like a shell would; no "
                                                            "shell runs"}]},
    "cwd": {"type": "string", "description": "default: the server's home directory"},
    "env": {"type": "object", "additionalProperties": {"type": "string"}},
    "name": {"type": "string"}, "group": {"type": "string"}, "key": {"type": "string"},
    "restart": {"enum": ["no", "on-failure", "always", "unless-stopped"]},
    "max_restarts": {"type": "integer"},
    "after": {"type": "array", "items": {"type": "string"}}}}


def _json(schema: dict[str, Any], description: str = "OK") -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _errors(*statuses: int) -> dict[str, Any]:
    meaning = {400: "bad JSON or ambiguous id", 401: "no or wrong token",
               403: "wrong Host or Origin", 404: "unknown task", 409: "not running, or takes "
               "no input", 413: "body too large", 422: "invalid parameter or body"}
    return {str(s): {**_json({"$ref": "#/components/schemas/Error"}, meaning[s])}
            for s in statuses}


_ID = {"name": "id", "in": "path", "required": True, "schema": {"type": "string"},
       "description": "task id, unique prefix (4+ characters) or name"}
_TASK_REF = {"$ref": "#/components/schemas/Task"}
_SSE = {"description": "Server-Sent Events", "content": {"text/event-stream": {}}}
_ACTION = {"type": "object", "properties": {"timeout": {"type": "number", "default": 10}}}


def _post(summary: str, body: dict[str, Any], result: dict[str, Any],
          *codes: int) -> dict[str, Any]:
    return {"post": {"summary": summary, "parameters": [_ID],
                     "requestBody": {"content": {"application/json": {"schema": body}}},
                     "responses": {"200": _json(result), **_errors(400, 401, 403, 404,
                                                                   *codes)}}}


def document() -> dict[str, Any]:
    query = [{"name": n, "in": "query", "schema": {"type": "string"}}
             for n in ("status", "group", "name")]
    output_params = [_ID, *({"name": n, "in": "query", "schema": {"type": t}}
                            for n, t in (("offset", "integer"), ("limit", "integer"),
                                         ("encoding", "string"), ("since", "string"),
                                         ("until", "string"), ("stream", "string"),
                                         ("timestamps", "boolean")))]
    return {
        "openapi": "3.1.0",
        "info": {"title": "ghost serve", "version": __version__,
                 "description": "Every call needs `Authorization: Bearer TOKEN` (the token is "
                                "in <data dir>/web-token) or the dashboard's cookie."},
        "components": {
            "schemas": {"Error": _ERROR, "Task": _TASK, "Start": _START},
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"},
                                "cookie": {"type": "apiKey", "in": "cookie",
                                           "name": "ghost_token"}}},
        "security": [{"bearer": []}, {"cookie": []}],
        "paths": {
            "/api/tasks": {
                "get": {"summary": "List tasks, newest first", "parameters": query,
                        "responses": {"200": _json({"type": "object", "properties": {
                            "tasks": {"type": "array", "items": _TASK_REF},
                            "total": {"type": "integer"},
                            "seq": {"type": "integer", "description": "the last event seq "
                                    "before the listing: follow /api/events/stream from it"}}}),
                            **_errors(401, 403, 422)}},
                "post": {"summary": "Start a task",
                         "requestBody": {"required": True, "content": {"application/json": {
                             "schema": {"$ref": "#/components/schemas/Start"}}}},
                         "responses": {"201": _json(_TASK_REF, "started"),
                                       **_errors(400, 401, 403, 413, 422)}}},
            "/api/tasks/{id}": {
                "get": {"summary": "One task", "parameters": [_ID],
                        "responses": {"200": _json(_TASK_REF), **_errors(400, 401, 403, 404)}},
                "delete": {"summary": "Clean up a finished task (forget it, delete its log)",
                           "parameters": [_ID],
                           "responses": {"200": _json({"type": "object", "properties": {
                               "cleaned": {"type": "array", "items": {"type": "string"}}}}),
                               **_errors(400, 401, 403, 404, 409)}}},
            "/api/tasks/{id}/output": {"get": {
                "summary": "Output history: bytes [offset, offset+limit) of the log",
                "parameters": output_params,
                "responses": {"200": _json({"type": "object", "properties": {
                    "offset": {"type": "integer"}, "end": {"type": "integer"},
                    "size": {"type": "integer"}, "data": {"type": "string"},
                    "encoding": {"enum": ["utf-8", "base64"]},
                    "running": {"type": "boolean"}}}), **_errors(401, 403, 404, 422)}}},
            "/api/tasks/{id}/output/stream": {"get": {
                "summary": "Live output (SSE `output` events, id = byte offset reached; an "
                           "`end` event with the task when it ended); resume with "
                           "Last-Event-ID or ?offset=",
                "parameters": [_ID, {"name": "offset", "in": "query",
                                     "schema": {"type": "integer"}}],
                "responses": {"200": _SSE, **_errors(401, 403, 404, 422)}}},
            "/api/tasks/{id}/history": {"get": {
                "summary": "Everything that happened to the task (event records)",
                "parameters": [_ID], "responses": {"200": _json({"type": "object"}),
                                                   **_errors(401, 403, 404)}}},
            "/api/tasks/{id}/stop": _post("SIGTERM the task's group, SIGKILL after timeout",
                                          _ACTION, _TASK_REF, 409, 422),
            "/api/tasks/{id}/kill": _post("SIGKILL the task's group", _ACTION, _TASK_REF, 409),
            "/api/tasks/{id}/restart": _post("Stop the task if it runs, start it again",
                                             _ACTION, _TASK_REF, 409),
            "/api/tasks/{id}/write": _post(
                "Send input to a task started with a terminal or stdin",
                {"type": "object", "properties": {"data": {"type": "string"},
                                                  "encoding": {"enum": ["utf-8", "base64"]},
                                                  "eof": {"type": "boolean"}}},
                {"type": "object"}, 409, 413, 422),
            "/api/tasks/{id}/resize": _post(
                "Set the terminal size of a task started with a terminal",
                {"type": "object", "required": ["cols", "rows"],
                 "properties": {"cols": {"type": "integer"}, "rows": {"type": "integer"}}},
                {"type": "object"}, 409, 422),
            "/api/events": {"get": {
                "summary": "The event feed after seq `from` (the records of `ghost events`)",
                "parameters": [{"name": "from", "in": "query", "schema": {"type": "integer"}},
                               {"name": "limit", "in": "query", "schema": {"type": "integer"}}],
                "responses": {"200": _json({"type": "object"}), **_errors(401, 403, 422)}}},
            "/api/events/stream": {"get": {
                "summary": "The event feed as SSE, id = seq; resume with Last-Event-ID",
                "parameters": [{"name": "from", "in": "query", "schema": {"type": "integer"}}],
                "responses": {"200": _SSE, **_errors(401, 403, 422)}}},
            "/api/ws": {"get": {
                "summary": "WebSocket: process.spawned/output/exited/killed; send subscribe, "
                           "unsubscribe, process.write/resize/kill (see docs/http.md)",
                "responses": {"101": {"description": "switching protocols"},
                              **_errors(401, 403)}}},
        },
    }

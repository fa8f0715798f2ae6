"""`ghost serve`: the HTTP API, WebSocket and web dashboard surface (Starlette + uvicorn)."""

"""The MCP tool for restarts (ghost.mcp.tools holds the others; the server registers both)."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from ghost.mcp.tools import MAX_WAIT, VIA, StartedInfo, TaskId
from ghost.state import task_json


def ghost_restart(
    id: TaskId,
    timeout: Annotated[float, Field(ge=0, le=MAX_WAIT, description="For a running task: "
                                                                   "seconds to wait after "
                                                                   "SIGTERM before "
                                                                   "SIGKILL.")] = 10.0,
) -> StartedInfo:
    """Restart a task: stop it if it runs (like ghost_stop), then start the same command again
    (same cwd, environment, name, group and restart policy). It keeps its id; the new run is
    its next attempt, and its log continues."""
    from ghost.actions.restart import restart

    return task_json.started(restart(id, timeout=timeout, via=VIA))  # type: ignore[return-value]

"""The one error type the CLI turns into `Error: ...` on stderr and an exit code."""

from __future__ import annotations

# Exit codes (documented in README): 1 general failure, 2 usage, 74 I/O (disk full),
# 75 store cannot grow, 77 unsafe or foreign data dir, 124 timeout, 126/127 like a shell.
USAGE = 2
IO = 74
TEMPFAIL = 75
NOPERM = 77
TIMEOUT = 124
CANNOT_EXECUTE = 126
NOT_FOUND = 127


class GhostError(Exception):
    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code


class TaskNotFound(GhostError):
    def __init__(self, ident: str, note: str = "") -> None:
        super().__init__(f"task {ident} not found{note}", 1)


class AmbiguousTask(GhostError):
    def __init__(self, prefix: str, candidates: list[str]) -> None:
        shown = ", ".join(candidates[:10]) + (", ..." if len(candidates) > 10 else "")
        super().__init__(f"task id prefix {prefix} is ambiguous; it matches {shown}", USAGE)
        self.candidates = candidates

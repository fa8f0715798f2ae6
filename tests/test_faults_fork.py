"""Fault row 11a: fork() fails (EAGAIN at the process limit) while starting a task.

As root RLIMIT_NPROC does not apply, so the failure comes from the GHOST_TEST_FAIL_FORK seam
(ghost.faults.fork_point), raised exactly where os.fork() would raise it.
"""

from __future__ import annotations

import os

import pytest
from support import ghost, text

from events.store import Store
from events.types import SPAWN_FAILED, SPAWNED, Event
from ghost.faults import FORK_POINTS


@pytest.mark.parametrize("point", FORK_POINTS)
def test_a_failed_fork_is_one_error_line_and_leaves_nothing_running(point, data_dir, env):
    result = ghost("run", "sleep", "30", env={**env, "GHOST_TEST_FAIL_FORK": point})
    out, err = text(result)
    assert result.returncode == 1
    assert out == ""
    assert err.splitlines() == [err.strip()] and err.startswith("Error: cannot start")
    assert "Resource temporarily unavailable" in err

    store = Store.open(os.path.join(data_dir, "store"), create=False)
    assert store is not None
    try:
        events = [e for e in store.scan() if isinstance(e, Event)]
    finally:
        store.close()
    assert [e.type for e in events] == [SPAWN_FAILED]  # recorded for the audit trail
    assert not any(e.type == SPAWNED for e in events)
    assert os.listdir(os.path.join(data_dir, "logs")) == []  # no orphan log file
    listed = ghost("list", "--json", env=env)
    assert listed.returncode == 0 and text(listed)[0].strip() == "[]"

    after = ghost("run", "true", env=env)  # the next start works normally
    assert after.returncode == 0, text(after)

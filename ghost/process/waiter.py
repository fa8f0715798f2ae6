"""The lean half of the monitor: waits for the task and records how it ended.

Started by exec from ghost.process.monitor as `python -I -S -c ...`, it imports nothing but
`os` and `sys` while the task runs (about 2.6 MB private memory instead of ~7 MB), and loads the
store's modules only once there is an end to record. It writes only into the store whose id it
was given (see ghost.process.record.append_end).
"""

import os
import sys


def wait_and_record(spec: dict[str, object], pid: int) -> None:
    while True:
        try:
            _, status, rusage = os.wait4(pid, 0)
            break
        except InterruptedError:
            continue
        except ChildProcessError:
            return  # not our child (cannot happen after exec); readers reconcile it as lost
    record(spec, status, rusage)


def _crash_point(name: str) -> None:
    """ghost.faults.crash_point, without importing signal and enum (~5 ms) on the way to
    the end file unless a test asked for a crash: 100 waiters of a `stop -g` pay it at once."""
    if os.environ.get("GHOST_TEST_CRASH_AT") == name:
        from ghost.faults import crash_point

        crash_point(name)


def record(spec: dict[str, object], status: int, rusage: object) -> None:
    """Keep the end in its file (ghost.process.endfile), leave it to a stopper that marked
    this attempt, else record it (and, under a restart policy, decide and make the next
    attempt)."""
    import time

    from ghost.process import endfile

    _crash_point("monitor:before-end-record")
    spec["end_ns"] = time.time_ns()  # the file and the record carry the same end
    kept = endfile.write(spec, status, rusage, int(str(spec["end_ns"])))
    _crash_point("waiter:after-end-file")
    if kept and endfile.handed_off(spec):
        return  # a stopper recorded it from the file, with its neighbours in one transaction
    if spec.get("supervised"):  # a restart policy: the end, the decision, the next attempt
        from ghost.process.restarts import end_and_restart

        end_and_restart(spec, status, rusage)
        return
    from ghost.process.record import record_end

    record_end(spec, status, rusage)
    if kept:
        endfile.discard(str(spec["store"]), str(spec["task"]), int(str(spec.get("attempt", 1))))


def run(spec: dict[str, object], pid: int, pump_args: list[str]) -> None:
    """Wait for the task, or for a --pty/--stdin/--timestamps/--log-max task pump its output
    until it ends (ghost.process.pump); then record the end."""
    if not pump_args:
        wait_and_record(spec, pid)
        return
    from ghost.process.pump import pump_task

    status, rusage = pump_task(spec, pid, pump_args)
    if rusage is not None:  # else not our child (cannot happen after exec): reconciled as lost
        record(spec, status, rusage)


def main() -> None:
    task, pid, store, map_floor, store_id = sys.argv[1:6]
    attempt, supervised = (sys.argv[6:8] + ["1", "0"][len(sys.argv[6:8]):])
    policy, _, log_path = supervised.partition(":")  # see monitor._supervision_arg
    run({"task": task, "store": store, "map_floor": int(map_floor), "store_id": store_id,
         "attempt": int(attempt), "supervised": policy == "1", "log_path": log_path},
        int(pid), sys.argv[8:])

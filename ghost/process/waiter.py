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
    from ghost.process.record import record_end

    record_end(spec, status, rusage)


def main() -> None:
    task, pid, store, map_floor, store_id = sys.argv[1:6]
    wait_and_record({"task": task, "store": store, "map_floor": int(map_floor),
                     "store_id": store_id}, int(pid))

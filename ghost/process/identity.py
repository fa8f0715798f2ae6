"""Process identity and signalling, safe against PID reuse.

A process is identified by (boot id, pid, start time in clock ticks since boot), read from
/proc. Signals go through a pidfd opened on a pid whose start time was checked, so they can
never reach a process that merely inherited the number.
"""

from __future__ import annotations

import os
from typing import NamedTuple

PIDFD_SIGNAL_PROCESS_GROUP = 4  # Linux >= 6.9


def boot_id() -> str:
    forced = os.environ.get("GHOST_TEST_BOOT_ID")  # test seam: simulate a reboot
    if forced:
        return forced
    try:
        with open("/proc/sys/kernel/random/boot_id", encoding="ascii") as f:
            return f.read().strip()
    except OSError:
        return ""


class ProcStat(NamedTuple):
    pid: int
    state: str
    ppid: int
    pgid: int
    start_ticks: int


def read_stat(pid: int) -> ProcStat | None:
    """Fields of /proc/PID/stat; None when the process does not exist."""
    fields = _stat_fields(pid)
    if fields is None:
        return None
    rest = fields.split()
    return ProcStat(pid, rest[0].decode(), int(rest[1]), int(rest[2]), int(rest[19]))


def start_ticks(pid: int) -> int | None:
    """Start time of a live process; None when it is gone or a zombie. (`list` calls this once
    per running task: it splits only up to the start time, not all ~50 fields.)"""
    fields = _stat_fields(pid)
    if fields is None:
        return None
    rest = fields.split(None, 20)  # state ... starttime (field 22)
    if rest[0] in (b"Z", b"X"):
        return None
    return int(rest[19])


def _stat_fields(pid: int) -> bytes | None:
    """/proc/PID/stat from field 3 (state) on; None when the process does not exist."""
    if pid <= 0:
        return None
    try:  # os.open, not open(): no io objects, 8 us instead of 12 (list reads one per task)
        fd = os.open(f"/proc/{pid}/stat", os.O_RDONLY | os.O_CLOEXEC)
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    try:
        raw = os.read(fd, 4096)  # one line of at most ~700 bytes, made whole by the kernel
    except ProcessLookupError:  # it exited between the open and the read
        return None
    finally:
        os.close(fd)
    # comm (field 2) may hold spaces and parentheses: parse after its last ')'.
    return raw[raw.rindex(b")") + 2:]


def exit_status(pid: int, ticks: int) -> int | None:
    """The wait status of an exited process not yet reaped (a zombie), from /proc/PID/stat.

    Lets `ghost stop` know how a task ended while its monitor, frozen or slow, has not reaped
    it; None when the process is alive, already reaped, or another process by now.
    """
    if pid <= 0:
        return None
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            raw = f.read()
    except OSError:
        return None
    rest = raw[raw.rindex(b")") + 2:].split()
    if rest[0] != b"Z" or int(rest[19]) != ticks or len(rest) < 50:
        return None
    return int(rest[49])  # field 52, exit_code: readable by the same user (ptrace read access)


def pidfd(pid: int, ticks: int) -> int | None:
    """A pidfd on the process with this identity (readable once it exits); None when gone."""
    if pid <= 1 or ticks <= 0:
        return None
    try:
        fd = os.pidfd_open(pid)
    except OSError:
        return None
    st = read_stat(pid)  # checked after the fd pins the process: no race with pid reuse
    if st is None or st.start_ticks != ticks:
        os.close(fd)
        return None
    return fd


def is_alive(pid: int, ticks: int) -> bool:
    return ticks > 0 and start_ticks(pid) == ticks


def group_members(pgid: int, not_before_ticks: int) -> list[int]:
    """Live processes in process group `pgid` that started no earlier than the task did.

    `not_before_ticks` is the start time of the group's leader (ghost's tasks lead their group);
    0 means any group by that number (tests only).
    """
    if pgid <= 1 or pgid == os.getpgrp():
        return []
    leader = read_stat(pgid)
    if not_before_ticks and leader is not None and leader.start_ticks != not_before_ticks:
        # The kernel frees a pid only once no group uses it as its id, so a different process
        # with this pid means the task's group is gone and the number leads another group.
        return []
    members = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        st = read_stat(int(name))
        if (st is not None and st.pgid == pgid and st.state not in ("Z", "X")
                and st.start_ticks >= not_before_ticks):
            members.append(st.pid)
    return sorted(members)


def _signal_one(pid: int, ticks: int, sig: int, group: bool) -> bool:
    """Signal the process (or its group) only if it still is the one with that start time."""
    if pid <= 1 or pid == os.getpid() or (group and pid == os.getpgrp()):
        return False
    import signal  # here, not at the top: `signal` builds its enums on import (~1.5 ms of a
    # `ghost list`, which reads identities but signals nothing)

    try:
        fd = os.pidfd_open(pid)
    except (ProcessLookupError, OSError):
        return False
    try:
        if start_ticks(pid) != ticks:  # checked after the fd pins the process: no race
            return False
        if group:
            try:
                signal.pidfd_send_signal(fd, sig, None, PIDFD_SIGNAL_PROCESS_GROUP)
                return True
            except OSError:
                os.killpg(pid, sig)  # older kernel; pid is a verified live leader of its group
                return True
        signal.pidfd_send_signal(fd, sig)
        return True
    except ProcessLookupError:
        return False
    finally:
        os.close(fd)


def signal_task(pid: int, pgid: int, ticks: int, sig: int) -> int:
    """Send `sig` to the task's process group; returns how many targets were signalled.

    While the leader lives its group is signalled through its pidfd. Once it has exited, the
    remaining members of its group are signalled one by one, each verified by start time.
    """
    if pid == pgid and _signal_one(pid, ticks, sig, group=True):
        return 1
    sent = 0
    for member in group_members(pgid, ticks):
        st = read_stat(member)
        if st is not None and _signal_one(member, st.start_ticks, sig, group=False):
            sent += 1
    return sent


def signal_name(signum: int) -> str:
    import signal

    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"SIG{signum}"


def signal_number(name: str) -> int:
    import signal

    try:
        return int(signal.Signals[name if name.startswith("SIG") else "SIG" + name])
    except KeyError:
        return 0

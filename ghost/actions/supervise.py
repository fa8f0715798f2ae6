"""What `run --name/--group/--key/--restart/--after` ask for, validated before anything starts.

`Supervision` travels inside the monitor's spec; its `event_fields` go into the task's
`spawned` (or `queued`) event, and the restart policy decides, in the monitor, whether an
ended attempt is followed by another one (ghost.process.supervise).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ghost.errors import USAGE, GhostError

if TYPE_CHECKING:
    from ghost.actions.run import Started

DEFAULT_GROUP = "default"  # projections.tasks.DEFAULT_GROUP, without loading it on `run`

POLICIES = ("no", "on-failure", "always", "unless-stopped")
DEFAULT_DELAY_MS = 100
MAX_DELAY_MS = 30_000
DEFAULT_MIN_UPTIME_MS = 10_000
ON_FAILURE_MAX = 10


@dataclass(frozen=True, slots=True)
class Supervision:
    name: str = ""
    group: str = DEFAULT_GROUP
    key: str = ""
    policy: Mapping[str, Any] = field(default_factory=dict)  # empty: restart "no"
    after: tuple[str, ...] = ()  # task ids, resolved
    after_any: bool = False

    def event_fields(self) -> dict[str, Any]:
        """The optional fields of `spawned`/`queued` (defaults left out: older readers and
        small events)."""
        out: dict[str, Any] = {}
        if self.name:
            out["name"] = self.name
        if self.group != DEFAULT_GROUP:
            out["group"] = self.group
        if self.key:
            out["key"] = self.key
        if self.policy:
            out["policy"] = dict(self.policy)
        return out

    def to_spec(self) -> dict[str, Any]:
        return {"name": self.name, "group": self.group, "key": self.key,
                "policy": dict(self.policy), "after": list(self.after),
                "after_any": self.after_any}

    @classmethod
    def from_spec(cls, spec: Mapping[str, Any]) -> Supervision:
        return cls(str(spec.get("name") or ""), str(spec.get("group") or DEFAULT_GROUP),
                   str(spec.get("key") or ""), dict(spec.get("policy") or {}),
                   tuple(spec.get("after") or ()), bool(spec.get("after_any")))


def parse_duration_ms(value: str | float | int, what: str) -> int:
    """`100ms`, `2s`, `1.5s`, `1m`, or a plain number of seconds -> milliseconds."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        seconds = float(value)
    else:
        text = str(value).strip().lower()
        units = (("ms", 0.001), ("s", 1.0), ("m", 60.0), ("h", 3600.0))
        scale = 1.0
        for suffix, factor in units:
            if text.endswith(suffix):
                text, scale = text[: -len(suffix)], factor
                break
        try:
            seconds = float(text) * scale
        except ValueError:
            raise GhostError(f"invalid {what} {value!r}: expected a duration such as 100ms, "
                             "2s or 1m", USAGE) from None
    if not seconds >= 0 or seconds > 86400 * 365:  # `not >=` also refuses NaN
        raise GhostError(f"invalid {what} {value!r}: must be between 0 and a year", USAGE)
    return int(round(seconds * 1000))


def policy(restart: str | None, max_restarts: int | None, delay: str | None,
           min_uptime: str | None) -> dict[str, Any]:
    """The policy map recorded in `spawned` ({} for the default, no restarts)."""
    restart = restart or "no"
    if restart not in POLICIES:
        raise GhostError(f"invalid --restart {restart!r}: choose {', '.join(POLICIES)}", USAGE)
    if max_restarts is not None and max_restarts < 0:
        raise GhostError(f"invalid --max-restarts {max_restarts}: must be 0 or more", USAGE)
    if restart == "no":
        extra = [flag for flag, value in (("--max-restarts", max_restarts),
                                          ("--restart-delay", delay),
                                          ("--min-uptime", min_uptime)) if value is not None]
        if extra:
            raise GhostError(f"{extra[0]} needs --restart on-failure, always or "
                             "unless-stopped", USAGE)
        return {}
    limit = max_restarts if max_restarts is not None else (
        ON_FAILURE_MAX if restart == "on-failure" else None)
    out: dict[str, Any] = {
        "restart": restart,
        "delay_ms": DEFAULT_DELAY_MS if delay is None else parse_duration_ms(delay,
                                                                            "--restart-delay"),
        "min_uptime_ms": DEFAULT_MIN_UPTIME_MS if min_uptime is None
        else parse_duration_ms(min_uptime, "--min-uptime"),
    }
    if limit is not None:
        out["max_restarts"] = limit
    return out


def supervision(name: str | None = None, group: str | None = None, key: str | None = None,
                restart: str | None = None, max_restarts: int | None = None,
                restart_delay: str | None = None, min_uptime: str | None = None,
                after: Sequence[str] = (), after_any: Sequence[str] = ()) -> Supervision | None:
    """Validate the supervision options of `run`; None when none was given.

    `after` and `after_any` are task ids, prefixes or names (comma-separated lists allowed);
    they are resolved to task ids here, so the queued event names exact tasks."""
    from ghost.state.names import check_key, check_name

    given = (name, group, key, restart, max_restarts, restart_delay, min_uptime)
    if all(v is None for v in given) and not after and not after_any:
        return None
    if after and after_any:
        raise GhostError("use either --after or --after-any, not both", USAGE)
    deps = _resolve_deps([*after, *after_any])
    return Supervision(
        name=check_name(name) if name is not None else "",
        group=check_name(group, "--group") if group is not None else DEFAULT_GROUP,
        key=check_key(key) if key is not None else "",
        policy=policy(restart, max_restarts, restart_delay, min_uptime),
        after=deps, after_any=bool(after_any))


def _resolve_deps(idents: Sequence[str]) -> tuple[str, ...]:
    parts = [p.strip() for item in idents for p in item.split(",")]
    if any(not p for p in parts):
        raise GhostError("invalid --after: an empty task id in the list", USAGE)
    if not parts:
        return ()
    from ghost.state.store import open_store
    from ghost.state.tasks import resolve

    store = open_store(write=False)
    return tuple(dict.fromkeys(resolve(store, p) for p in parts))


# -- on `ghost run`'s path -----------------------------------------------------------------

def launch_spec(spec: dict[str, Any], env_overrides: Mapping[str, str],
                sup: Supervision | None, base: str) -> Started | None:
    """Complete the monitor's `spec` with the supervision options, keep the launch spec for
    restarts (ghost.state.specs), and answer a `--key` already used without a new monitor
    (the exact check is the monitor's, in the transaction that records the start)."""
    if sup is not None:
        fields = sup.event_fields()
        spec.update(name=sup.name, key=sup.key, after=list(sup.after),
                    after_any=sup.after_any, fields=fields)
        known = _known(sup, spec)
        if known is not None:
            return known
        import threading

        from ghost.state.store import close_stores

        if threading.active_count() == 1:  # a threaded caller (ghost ui) keeps its store:
            close_stores()  # so the monitor is forked from a process without an open store
    from ghost.process import plumbing as stdio
    from ghost.state import specs

    specs.write(base, spec["task"], {"command": spec["command"], "cwd": spec["cwd"],
                                     "env": dict(env_overrides),
                                     **(sup.to_spec() if sup is not None else {}),
                                     **stdio.to_launch(spec)})  # --pty/--stdin/... again
    return None


def _known(sup: Supervision, spec: Mapping[str, Any]) -> Started | None:
    """A quick look before starting anything: the key's task, or a live task with the name
    (refused like the monitor would: exit 1, recorded as `spawn_failed`)."""
    if not sup.key and not sup.name:
        return None
    from ghost.state.store import open_store, store_errors

    store = open_store(write=False)
    if store is None:
        return None
    from ghost.state.names import by_key, name_in_use
    from ghost.state.tasks import load

    with store_errors():
        tasks = load(store)
        if sup.key:
            task_id = by_key(store, sup.key)
            if task_id is not None and task_id in tasks:
                return existing_task(task_id)
    if sup.name:
        live = [t for t in tasks.values() if t.name == sup.name and t.live]
        if live:
            from ghost.actions.run import new_task_id, record_failure

            error = GhostError(name_in_use(sup.name, live[0]))
            record_failure(new_task_id(), spec["command"], spec["cwd"], error,
                           str(spec["actor"].get("via", "cli")))
            raise error
    return None


def existing_task(task_id: str) -> Started:
    """What `run --key` prints for the task that already has the key."""
    from ghost.actions.run import Started
    from ghost.state.store import open_store
    from ghost.state.tasks import get

    task = get(open_store(write=False), task_id)
    return Started(task.id, task.pid, task.command, task.cwd, task.log_path, task.started_ns,
                   task.status, existing=True, name=task.name, group=task.group)


def forget_spec(spec: Mapping[str, Any]) -> None:
    """Delete the launch spec of a task that did not start (refused, or already keyed)."""
    import os

    from ghost.state import specs

    specs.delete(os.path.dirname(spec["store"]), spec["task"])

"""The health view: is every required actor alive?

An actor is alive while it is running and has heartbeated within its
``heartbeat_timeout_s``; one that is stuck (wedged) stops heartbeating and so stops being
alive, even though its task still exists. An actor is required when its child spec says
so and so does every supervisor above it. The daemon feeds the systemd watchdog only
while :meth:`HealthView.all_required_alive` holds, so a wedged required actor that its
supervisor does not restart leads systemd to restart the process.

Restarting a child takes it out of ``running`` for its backoff, so the view is briefly
false during a restart; the watchdog interval is meant to be longer than that.
"""

from __future__ import annotations

from dataclasses import dataclass

import trio

from .supervisor import ChildState, ChildStatus, Supervisor


@dataclass(frozen=True, kw_only=True)
class ActorHealth:
    """One actor in the tree; ``path`` is ``root/child/grandchild``."""

    path: str
    state: ChildState
    required: bool
    alive: bool
    restarts: int
    last_error: str | None
    started_at: float | None
    last_heartbeat: float | None
    heartbeat_age_s: float | None


class HealthView:
    """A read-only view of a supervisor tree, evaluated on trio's clock when asked."""

    def __init__(self, root: Supervisor) -> None:
        self._root = root

    def actors(self) -> list[ActorHealth]:
        """Every actor of the tree, root first, depth first in start order."""
        now = trio.current_time()
        root = self._root
        root_alive = root.running and not root.is_wedged()
        result = [
            ActorHealth(
                path=root.name,
                state=ChildState.RUNNING if root.running else ChildState.STOPPED,
                required=True,
                alive=root_alive,
                restarts=0,
                last_error=None,
                started_at=None,
                last_heartbeat=root.last_heartbeat,
                heartbeat_age_s=_age(root.last_heartbeat, now),
            )
        ]
        _flatten(root.status(), root.name, True, now, result)
        return result

    def all_required_alive(self) -> bool:
        return not self.unhealthy()

    def unhealthy(self) -> list[ActorHealth]:
        """The required actors that are not alive (for the watchdog's STATUS= line)."""
        return [actor for actor in self.actors() if actor.required and not actor.alive]


def _flatten(
    children: tuple[ChildStatus, ...],
    parent: str,
    parent_required: bool,
    now: float,
    into: list[ActorHealth],
) -> None:
    for child in children:
        path = f"{parent}/{child.name}"
        required = parent_required and child.required
        into.append(
            ActorHealth(
                path=path,
                state=child.state,
                required=required,
                alive=child.alive,
                restarts=child.restarts,
                last_error=child.last_error,
                started_at=child.started_at,
                last_heartbeat=child.last_heartbeat,
                heartbeat_age_s=_age(child.last_heartbeat, now),
            )
        )
        _flatten(child.children, path, required, now, into)


def _age(last_heartbeat: float | None, now: float) -> float | None:
    return None if last_heartbeat is None else now - last_heartbeat

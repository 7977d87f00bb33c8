"""Wiring: every configured system as one supervised subtree, added to the root in a line.

::

    systems = build_systems(adapters, journal=journal, backlog=dispatcher.backlog,
                            settings=per_system_settings, high_water_marks=per_workflow)
    root = Supervisor("root", [..., systems.child_spec, ...])
    ...
    await execute(systems.mailboxes["erp"], command, timeout_s=60)
    ...
    await systems.aclose()          # after the root has stopped: closes the adapters

The tree (paths as ``pssync actors`` shows them)::

    systems                  one_for_one over the systems
    ├── crm                  one_for_one: a system's actor and pollers fail independently
    │   ├── commands         SystemActor (mailbox kept across restarts)
    │   ├── poll:won_deals   Poller, one per change feed
    │   └── poll:accounts
    └── erp …

Pollers are supervised children of their system's supervisor, not tasks inside the
SystemActor: a poller that fails (the journal refusing a write) restarts alone from its
stored watermark without touching queued commands, each poller heartbeats and shows up
in the health view on its own, and a drain stops pollers and commands in order. What they
share (the pause switch, counters) lives in one :class:`SystemControl` per system.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial

import msgspec

from actors.interval import Interval
from actors.mailbox import Mailbox
from actors.supervisor import ChildSpec, RestartPolicy, Supervisor
from adapters.base import VendorAdapter
from store import Journal

from .actor import SYSTEM_MAILBOX_SIZE, SystemActor
from .control import SystemControl, SystemStatus
from .messages import SystemRequest
from .poller import Backlog, Poller, PollSettings

DEFAULT_HIGH_WATER_MARK = 10_000


class SystemSettings(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Runtime settings of one system's actors (from ``[systems.<name>]``)."""

    max_concurrency: int = 4
    """Commands executing at once (the governor's ``max_concurrency`` is the usual value)."""
    max_queued: int = 1_000
    """Commands waiting in the lane queue before the actor stops reading its mailbox."""
    command_timeout_s: float | None = None
    """Bound on one command at the vendor; past it the asker gets a RetryableError."""
    shutdown_timeout_s: float = 30.0
    """Drain: time for in-flight commands and polls to finish."""
    poll: PollSettings = msgspec.field(default_factory=PollSettings)


#: Restarts within a system: a poller or the actor failing repeatedly escalates to the
#: ``systems`` supervisor after five restarts in a minute.
SYSTEM_POLICY = RestartPolicy(max_restarts=5, period_s=60.0, backoff_min_s=1.0, backoff_max_s=30.0)


@dataclass
class Systems:
    """The systems' subtree and the handles other actors need."""

    child_spec: ChildSpec
    """Add to the root supervisor's children."""
    mailboxes: dict[str, Mailbox[SystemRequest]]
    """Where to send :data:`SystemRequest` (``execute(systems.mailboxes["erp"], …)``)."""
    controls: dict[str, SystemControl]
    """Pause, resume and status without queueing behind commands (the control server)."""
    adapters: dict[str, VendorAdapter] = field(default_factory=dict)

    def status(self) -> dict[str, SystemStatus]:
        """Every system's status snapshot."""
        return {name: control.status() for name, control in self.controls.items()}

    async def aclose(self) -> None:
        """Close every adapter (its HTTP client); call once the subtree has stopped."""
        for adapter in self.adapters.values():
            await adapter.aclose()


def build_systems(
    adapters: Sequence[VendorAdapter],
    *,
    journal: Journal,
    backlog: Backlog,
    settings: Mapping[str, SystemSettings] | None = None,
    high_water_marks: Mapping[str, int] | None = None,
    default_high_water_mark: int = DEFAULT_HIGH_WATER_MARK,
    exception_owner: str = "mapping",
    policy: RestartPolicy = SYSTEM_POLICY,
    name: str = "systems",
) -> Systems:
    """One supervisor per system (its SystemActor plus a Poller per feed) under ``name``.

    ``settings`` and ``high_water_marks`` (per workflow) default per system and workflow;
    ``exception_owner`` owns undecodable-record exceptions (``governance.owners.mapping``).
    """
    settings = settings or {}
    high_water_marks = high_water_marks or {}
    names = [adapter.system for adapter in adapters]
    if len(set(names)) != len(names):
        raise ValueError(f"system names must be unique: {names}")
    unknown = set(settings) - set(names)
    if unknown:
        raise ValueError(f"settings for unconfigured systems: {sorted(unknown)}")

    mailboxes: dict[str, Mailbox[SystemRequest]] = {}
    controls: dict[str, SystemControl] = {}
    specs: list[ChildSpec] = []
    for adapter in adapters:
        system = adapter.system
        system_settings = settings.get(system, SystemSettings())
        # Created once, outside the factories: senders keep the address and the pause
        # switch survives restarts of the actors.
        mailbox: Mailbox[SystemRequest] = Mailbox(system, SYSTEM_MAILBOX_SIZE)
        control = SystemControl(
            system, poll_interval=Interval(system_settings.poll.poll_interval_s)
        )
        mailboxes[system] = mailbox
        controls[system] = control
        children = [
            ChildSpec(
                name="commands",
                factory=partial(
                    SystemActor,
                    adapter,
                    control=control,
                    mailbox=mailbox,
                    max_concurrency=system_settings.max_concurrency,
                    max_queued=system_settings.max_queued,
                    command_timeout_s=system_settings.command_timeout_s,
                ),
                shutdown_timeout_s=system_settings.shutdown_timeout_s,
            )
        ]
        feed_names: set[str] = set()
        for feed in adapter.feeds():
            if feed.name in feed_names:
                raise ValueError(f"system {system!r}: feed names must be unique: {feed.name!r}")
            feed_names.add(feed.name)
            children.append(
                ChildSpec(
                    name=f"poll:{feed.name}",
                    factory=partial(
                        Poller,
                        feed,
                        system=system,
                        journal=journal,
                        backlog=backlog,
                        control=control,
                        high_water_mark=high_water_marks.get(
                            feed.workflow, default_high_water_mark
                        ),
                        settings=system_settings.poll,
                        exception_owner=exception_owner,
                    ),
                    shutdown_timeout_s=system_settings.shutdown_timeout_s,
                    # A poller keeps nothing in memory: restarting a wedged one is safe.
                    restart_when_wedged=True,
                )
            )
        # Draining a system stops its children one after another, each within its own
        # timeout, so the system's supervisor may need the sum of them.
        system_timeout_s = system_settings.shutdown_timeout_s * len(children)
        specs.append(
            ChildSpec(
                name=system,
                factory=partial(Supervisor, system, children, policy=policy),
                shutdown_timeout_s=system_timeout_s,
            )
        )
    child_spec = ChildSpec(
        name=name,
        factory=partial(Supervisor, name, specs, policy=policy),
        shutdown_timeout_s=sum(spec.shutdown_timeout_s for spec in specs) or 5.0,
    )
    return Systems(
        child_spec=child_spec,
        mailboxes=mailboxes,
        controls=controls,
        adapters={adapter.system: adapter for adapter in adapters},
    )

"""The operations behind the control socket, against what the daemon has running.

:class:`DaemonControl` is built by :mod:`daemon.service` from the root supervisor, the
journal, the configuration, the notifier and a :class:`~.registry.ControlRegistry` that
other components fill. Each operation returns a JSON-encodable result or raises
``ControlError(code, message)``; the server turns both into response lines.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, assert_never

import msgspec
import structlog
import trio

from actors import HealthView, Supervisor
from actors.errors import ControlError, StoreError
from store import UNFINISHED_STATUSES, ExceptionRecord, Journal, RunRecord

from ..config import Config
from . import protocol as p
from .peer import Peer
from .registry import ControlRegistry, Pausable
from .reload import Reloader

log = structlog.get_logger("daemon.control")


class DaemonControl:
    """Serves decoded requests; one instance per running daemon."""

    def __init__(
        self,
        *,
        root: Supervisor,
        journal: Journal,
        reloader: Reloader,
        registry: ControlRegistry,
        version: str,
        #: Starts the daemon's drain; the argument says who asked.
        request_stop: Callable[[str], None],
        stopping: Callable[[], bool],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.root = root
        self.journal = journal
        self.reloader = reloader
        self.registry = registry
        self.version = version
        self._request_stop = request_stop
        self._stopping = stopping
        self._clock = clock
        self._health = HealthView(root)
        self._started_at = clock()
        self._started_trio = trio.current_time()

    @property
    def config(self) -> Config:
        """The running configuration (replaced by a successful reload)."""
        return self.reloader.config

    async def handle(self, request: p.AnyRequest, peer: Peer) -> Any:
        """The result of ``request``; raises ControlError for a refusal or failure."""
        match request:
            case p.Status():
                return await self.status()
            case p.Actors():
                return self.actors()
            case p.Pause(name=name, kind=kind):
                return await self.pause(name, kind, pause=True)
            case p.Resume(name=name, kind=kind):
                return await self.pause(name, kind, pause=False)
            case p.Drain():
                return await self.drain(peer)
            case p.Reload():
                return await self.reloader.reload(f"control ({peer.describe()})")
            case p.Limits(system=system):
                return self.limits(system)
            case p.RunsList():
                return await self.runs_list(request)
            case p.RunsShow(run_id=run_id):
                return await self.runs_show(run_id)
            case p.ExceptionsList():
                return await self.exceptions_list(request)
            case p.ExceptionsShow(exception_id=exception_id):
                return self._exception_view(await self._exception(exception_id), detail=True)
            case p.ExceptionsRetry() | p.ExceptionsResolve() | p.ExceptionsAssign():
                return await self.exceptions_change(request, peer)
            case p.Reconcile():
                handler = self.registry.reconcile
                if handler is None:
                    raise _missing("reconcile", "the reconcile workflow (actors/workflows)")
                return await handler(request)
            case p.ClosePeriod():
                handler = self.registry.close_period
                if handler is None:
                    raise _missing("close_period", "the tm_close workflow (actors/workflows)")
                return await handler(request)
            case p.Replay():
                handler = self.registry.replay
                if handler is None:
                    raise _missing("replay", "the dispatcher (actors/workflows)")
                return await handler(request)
            case p.JournalStats():
                return await self.journal.stats()
            case p.JournalVerify():
                return await self.journal.verify()
            case p.JournalBackup(destination=destination):
                return await self.backup(destination)
            case _:
                assert_never(request)

    # ------------------------------------------------------------------ daemon, actors

    async def status(self) -> dict[str, Any]:
        config = self.config
        # The mapping files in force (a successful reload has applied them to the adapters).
        mappings = self.reloader.settings.mappings
        stats = await self.journal.stats()
        cursors = await self.journal.cursors()
        systems = [
            {
                "name": name,
                "kind": system.kind,
                "vendor": system.vendor,
                "mapping_version": (
                    mappings[system.vendor].version if system.vendor in mappings else None
                ),
                **_component(self.registry.systems.get(name), "system actor"),
            }
            for name, system in sorted(config.systems.items())
        ]
        workflows = [
            {
                "name": name,
                "enabled": workflow.enabled,
                # Journal events the dispatcher has not yet looked at for this workflow.
                "undispatched": max(0, stats.max_seq - cursors.get(name, 0)),
                **_component(self.registry.workflows.get(name), "workflow actor"),
            }
            for name, workflow in sorted(config.workflows.items())
        ]
        unfinished = sum(stats.runs_by_status.get(s, 0) for s in UNFINISHED_STATUSES)
        return {
            "version": self.version,
            "pid": os.getpid(),
            "state": "draining" if self._stopping() else "running",
            "started_at": _iso(self._started_at),
            "uptime_s": round(trio.current_time() - self._started_trio, 3),
            "healthy": self._health.all_required_alive(),
            "systems": systems,
            "workflows": workflows,
            "backlog": {
                "runs_unfinished": unfinished,
                "runs_by_status": stats.runs_by_status,
                "undispatched_events": sum(w["undispatched"] for w in workflows),
            },
            "exceptions_open": stats.exceptions_by_status.get("open", 0),
            "journal": {
                "path": stats.path,
                "bytes": stats.file_bytes + stats.wal_bytes,
                "file_bytes": stats.file_bytes,
                "wal_bytes": stats.wal_bytes,
                "last_seq": stats.max_seq,
            },
        }

    def actors(self) -> list[dict[str, Any]]:
        return [
            {
                "path": actor.path,
                "state": str(actor.state),
                "alive": actor.alive,
                "required": actor.required,
                "restarts": actor.restarts,
                "heartbeat_age_s": _round(actor.heartbeat_age_s),
                "last_error": actor.last_error,
            }
            for actor in self._health.actors()
        ]

    async def pause(self, name: str, kind: p.Target | None, *, pause: bool) -> dict[str, Any]:
        config = self.config
        candidates: list[tuple[p.Target, Pausable | None]] = []
        if kind in (None, "system") and (name in config.systems or name in self.registry.systems):
            candidates.append(("system", self.registry.systems.get(name)))
        if kind in (None, "workflow") and (
            name in config.workflows or name in self.registry.workflows
        ):
            candidates.append(("workflow", self.registry.workflows.get(name)))
        if not candidates:
            known = sorted({*config.systems, *config.workflows})
            raise ControlError(
                "not_found",
                f"no {kind or 'system or workflow'} named {name!r}; known: "
                + (", ".join(known) or "none configured"),
            )
        if len(candidates) > 1:
            raise ControlError(
                "bad_request", f"{name!r} is both a system and a workflow: give kind"
            )
        [(found_kind, actor)] = candidates
        if actor is None:
            component = "actors/systems" if found_kind == "system" else "actors/workflows"
            raise ControlError(
                "unavailable",
                f"{found_kind} {name!r} is configured but has no running actor to "
                f"{'pause' if pause else 'resume'} ({component} has not registered it)",
            )
        await (actor.pause() if pause else actor.resume())
        return {"name": name, "kind": found_kind, **_snapshot(actor)}

    async def drain(self, peer: Peer) -> dict[str, Any]:
        """Stop polling (pause every system and workflow), then stop the daemon.

        The root supervisor's drain lets in-flight work finish (each child's
        ``shutdown_timeout_s``); the connection that asked stays open until the daemon
        has stopped, which is how ``pssync drain`` knows when it has gone.
        """
        if self._stopping():
            return {"draining": True, "already": True, "paused": [], "pause_failed": {}}
        paused: list[str] = []
        failed: dict[str, str] = {}
        for kind, actors in (
            ("system", self.registry.systems),
            ("workflow", self.registry.workflows),
        ):
            for name, actor in list(actors.items()):
                try:
                    await actor.pause()
                    paused.append(f"{kind} {name}")
                except Exception as exc:
                    failed[f"{kind} {name}"] = f"{type(exc).__name__}: {exc}"
                    log.warning("control.drain_pause_failed", kind=kind, name=name, error=str(exc))
        self._request_stop(peer.describe())
        return {"draining": True, "already": False, "paused": paused, "pause_failed": failed}

    def limits(self, system: str | None) -> list[dict[str, Any]]:
        governors = self.registry.governors
        if system is not None:
            if system not in governors:
                if system in self.config.systems:
                    raise _missing("limits", f"the governor of system {system!r} (actors/systems)")
                raise ControlError("not_found", f"no system named {system!r}")
            names = [system]
        else:
            if not governors and self.config.systems:
                raise _missing("limits", "the system actors' governors (actors/systems)")
            names = sorted(governors)
        return [
            {"system": name, **msgspec.to_builtins(governors[name].snapshot(), enc_hook=str)}
            for name in names
        ]

    # -------------------------------------------------------------- runs, exceptions

    async def runs_list(self, request: p.RunsList) -> list[RunRecord]:
        return await self.journal.list_runs(
            status=request.status, workflow=request.workflow, key=request.key, limit=request.limit
        )

    async def runs_show(self, run_id: int) -> dict[str, Any]:
        run = await self.journal.get_run(run_id)
        if run is None:
            raise ControlError("not_found", f"run {run_id} does not exist")
        steps = await self.journal.get_steps(run_id)
        triggers = await self.journal.get_events_by_seq(run.trigger_seqs)
        return {
            "run": run,
            "steps": [
                {
                    "name": step.name,
                    "status": step.status,
                    "recorded_at": _iso(step.recorded_at),
                    "result_bytes": len(step.result),
                }
                for step in sorted(steps.values(), key=lambda s: s.recorded_at)
            ],
            "triggers": [
                {
                    "seq": event.seq,
                    "id": event.id,
                    "type": event.type,
                    "key": event.key,
                    "source": event.source,
                    "occurred_at": _iso(event.occurred_at),
                }
                for event in triggers
            ],
        }

    async def exceptions_list(self, request: p.ExceptionsList) -> list[dict[str, Any]]:
        older_than = None
        if request.older_than_s is not None:
            older_than = self._clock() - request.older_than_s
        records = await self.journal.list_exceptions(
            status=None if request.status == "all" else request.status,
            workflow=request.workflow,
            category=request.category,
            owner=request.owner,
            older_than=older_than,
            limit=request.limit,
        )
        return [self._exception_view(record, detail=False) for record in records]

    async def exceptions_change(
        self,
        request: p.ExceptionsRetry | p.ExceptionsResolve | p.ExceptionsAssign,
        peer: Peer,
    ) -> dict[str, Any]:
        current = await self._exception(request.exception_id)
        now, by = self._clock(), peer.describe()
        try:
            match request:
                case p.ExceptionsRetry(note=note):
                    record = await self.journal.retry_exception(current.id, by, note, now)
                case p.ExceptionsResolve(resolution=resolution):
                    record = await self.journal.resolve_exception(current.id, by, resolution, now)
                case p.ExceptionsAssign(owner=owner):
                    record = await self.journal.assign_exception(current.id, owner, now)
                case _:
                    assert_never(request)
        except StoreError as exc:
            raise ControlError("conflict", str(exc)) from None
        return self._exception_view(record, detail=True)

    def _exception_view(self, record: ExceptionRecord, *, detail: bool) -> dict[str, Any]:
        view = _exception(record, detail=detail)
        view["age_s"] = round(max(0.0, self._clock() - record.opened_at), 3)
        return view

    async def _exception(self, exception_id: int) -> ExceptionRecord:
        record = await self.journal.get_exception(exception_id)
        if record is None:
            raise ControlError("not_found", f"exception {exception_id} does not exist")
        return record

    # ------------------------------------------------------------------------ journal

    async def backup(self, destination: str | None) -> Any:
        if destination is None:
            stamp = datetime.fromtimestamp(self._clock(), UTC).strftime("%Y%m%dT%H%M%SZ")
            directory = Path(self.config.journal.backup_dir)
            await trio.to_thread.run_sync(
                lambda: directory.mkdir(mode=0o750, parents=True, exist_ok=True)
            )
            destination = str(directory / f"journal-{stamp}.sqlite3")
        elif not os.path.isabs(destination):
            raise ControlError(
                "bad_request",
                f"destination: {destination!r} is relative; the daemon needs an absolute path",
            )
        return await self.journal.backup(destination)


def _missing(operation: str, component: str) -> ControlError:
    return ControlError(
        "unavailable",
        f"{operation} is not available yet: nothing has registered it with the control "
        f"server (expected from {component})",
    )


def _component(actor: Pausable | None, what: str) -> dict[str, Any]:
    if actor is None:
        return {"state": f"no {what}", "paused": None}
    return _snapshot(actor)


def _snapshot(actor: Pausable) -> dict[str, Any]:
    snapshot = msgspec.to_builtins(actor.snapshot(), enc_hook=str)
    if not isinstance(snapshot, Mapping):
        return {"state": str(snapshot), "paused": None}
    return {"state": None, "paused": None, **snapshot}


def _exception(record: ExceptionRecord, *, detail: bool) -> dict[str, Any]:
    fields = msgspec.structs.asdict(record)
    fields["amount"] = None if record.amount is None else str(record.amount)
    body = fields.pop("detail")
    if detail:
        try:
            fields["detail"] = body.decode("utf-8")
        except UnicodeDecodeError:
            fields["detail"] = f"<{len(body)} bytes, not text>"
    return fields


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="seconds")


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)

"""A workspace's plan: phases, milestones and resource slots, matched or added.

A template brings phases (top-level ``deliverable`` stories), their tasks and milestones
(sub-stories) and resource slots (``workspace_resources``). The project's own phases and
milestones are matched to them by title, and the missing ones created in one bulk call
each; a repeat finds them by title, so it adds nothing.
"""

from __future__ import annotations

from typing import Any

import structlog

from actors.messages import Milestone, Phase, Project

from .api import Call, KantataApi
from .wire import Story, WorkspaceResource, same_text, typed

__all__ = ["Plan"]

_log = structlog.get_logger("pssync.adapters.kantata")


class Plan:
    """Reads and completes the plan of one workspace."""

    def __init__(self, api: KantataApi, workspace_id: str, call: Call) -> None:
        self.api = api
        self.workspace_id = workspace_id
        self.call = call

    async def apply(self, project: Project) -> tuple[dict[str, str], dict[str, str]]:
        """``(ids, details)``: each phase, milestone and demand of ``project`` → Kantata id,
        plus every other milestone story as ``milestone:<title>``."""
        ids = await self.ensure_phases(project.phases)
        ids.update(await self.ensure_milestones(project.milestones, ids))
        claimed = set(ids.values())
        for story in await self.stories():
            if story.story_type == "milestone" and story.id not in claimed:
                ids.setdefault(f"milestone:{story.title}", story.id)
        details: dict[str, str] = {}
        resources = await self.resources()
        unplaced = []
        for demand in project.resource_demand:
            match = next((r for r in resources if same_text(r.role_name, demand.role)), None)
            if match is None:
                unplaced.append(demand.id)
            else:
                resources.remove(match)
                ids[demand.id] = match.id
        if unplaced:
            # The sandbox's workspace resources are read-only (only templates make them).
            _log.warning("kantata.demand_unplaced", workspace=self.workspace_id, demand=unplaced)
            details["unplaced_demand"] = ",".join(unplaced)
        return ids, details

    async def stories(self) -> list[Story]:
        """Every story of the workspace (phases, tasks, milestones)."""
        pages = await self.api.all("stories", self.call, {"workspace_id": self.workspace_id})
        return [typed(r, Story, plural="stories") for page in pages for r in page.records]

    async def resources(self) -> list[WorkspaceResource]:
        """The workspace's resource slots."""
        params = {"workspace_id": self.workspace_id}
        pages = await self.api.all("workspace_resources", self.call, params)
        return [
            typed(r, WorkspaceResource, plural="workspace_resources")
            for page in pages
            for r in page.records
        ]

    async def ensure_phases(self, phases: tuple[Phase, ...]) -> dict[str, str]:
        """Canonical phase id → deliverable story id; missing ones created in one call."""

        def item(phase: Phase) -> dict[str, Any]:
            fields: dict[str, Any] = {}
            if phase.start_date is not None:
                fields["start_date"] = phase.start_date.isoformat()
            if phase.end_date is not None:
                fields["due_date"] = phase.end_date.isoformat()
            return fields

        return await self._ensure_stories(
            phases,
            story_type="deliverable",
            top_level_only=True,
            fields=item,
            what=f"phases of {self.workspace_id}",
        )

    async def ensure_milestones(
        self, milestones: tuple[Milestone, ...], phase_ids: dict[str, str]
    ) -> dict[str, str]:
        """Canonical milestone id → milestone story id; missing ones created in one call."""

        def item(milestone: Milestone) -> dict[str, Any]:
            fields: dict[str, Any] = {}
            parent = phase_ids.get(milestone.phase_id or "")
            if parent is not None:
                fields["parent_id"] = parent
            if milestone.due_date is not None:
                fields["due_date"] = milestone.due_date.isoformat()
            return fields

        return await self._ensure_stories(
            milestones,
            story_type="milestone",
            top_level_only=False,
            fields=item,
            what=f"milestones of {self.workspace_id}",
        )

    async def _ensure_stories(
        self,
        wanted: tuple[Any, ...],
        *,
        story_type: str,
        top_level_only: bool,
        fields: Any,
        what: str,
    ) -> dict[str, str]:
        """Canonical id → story id for ``wanted`` (phases or milestones, matched by title).

        Kantata has no idempotency key: the missing ones are created in one bulk call, and
        after a 5xx only what is still missing is created again (look before create).
        """

        def existing(found: list[Story]) -> dict[str, str]:
            candidates = [
                s
                for s in found
                if s.story_type == story_type and not (top_level_only and s.parent_id is not None)
            ]
            matched = {}
            for one in wanted:
                title = one.name or one.id
                story = next((s for s in candidates if same_text(s.title, title)), None)
                if story is not None:
                    matched[one.id] = story.id
            return matched

        matched = existing(await self.stories()) if wanted else {}
        missing = [one for one in wanted if one.id not in matched]
        if not missing:
            return matched

        tried = False

        async def create() -> dict[str, str]:
            nonlocal missing, tried
            if tried:  # a bulk create said 5xx: add only what is still missing
                found = existing(await self.stories())
                missing = [one for one in missing if one.id not in found]
                if not missing:
                    return found
            tried = True
            items = [
                {
                    "workspace_id": self.workspace_id,
                    "title": one.name or one.id,
                    "story_type": story_type,
                    **fields(one),
                }
                for one in missing
            ]
            await self.api.post_many("stories", self.call, items)
            return existing(await self.stories())

        async def find() -> dict[str, str] | None:
            found = existing(await self.stories())
            return found if all(one.id in found for one in wanted) else None

        matched, _ = await self.api.create_once(create, find, what=what)
        return matched

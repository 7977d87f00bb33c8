"""Workspaces: ``UpsertProject`` and ``CreateProjectFromTemplate``.

Kantata has no idempotency key and no upsert, so a workspace pssync creates is found again
by the external reference written on it right after the create (``service_model``
``project``, ``service_model_ref`` the canonical project id). The moment between the two
is covered by a second look, for the marker ``[<service_name>:<project id>]`` pssync puts
in the workspace's description. A command repeated after a crash at any point therefore
leaves one workspace; a repeat that finds everything in place only reads.
"""

from __future__ import annotations

from actors.errors import PermanentError
from actors.messages import CreateProjectFromTemplate, Project, UpsertProject

from ..base import CommandResult
from ..mapping import LiveMappings
from .api import Call, KantataApi
from .clients import Clients
from .options import KantataOptions
from .plan import Plan
from .wire import ProjectTemplate, Workspace, as_typed, fields_of, same_text, typed

__all__ = ["PROJECT_MODEL", "Workspaces"]

PROJECT_MODEL = "project"


class Workspaces:
    """Creates and updates workspaces and their plans, idempotently."""

    def __init__(
        self,
        *,
        api: KantataApi,
        clients: Clients,
        mappings: LiveMappings,
        options: KantataOptions,
        system: str,
    ) -> None:
        self.api = api
        self.clients = clients
        self.options = options
        self.system = system
        self._mappings = mappings  # looked up at each use: a reload swaps it
        self._templates: dict[str, str] = {}

    async def upsert_project(self, command: UpsertProject, call: Call) -> CommandResult:
        """The project as a plain workspace: updated when found, else created."""
        project = command.project
        workspace, created = await self._workspace(project, call, template_id=None)
        client_id = await self.clients.client_id(project.account_id, call)
        if not created:
            await self._update_workspace(workspace, project, client_id, call)
        ids = {project.id: workspace.id, "workspace": workspace.id}
        if client_id:
            ids["client"] = client_id
        return CommandResult(system=self.system, ids=ids, created=created)

    async def create_project_from_template(
        self, command: CreateProjectFromTemplate, call: Call
    ) -> CommandResult:
        """A workspace from the service line's template, plus the command's own plan.

        The template brings phases (deliverable stories), tasks, milestones and resource
        slots; the project's phases and milestones are matched to them by title and the
        missing ones added. ``ids`` maps the project, each phase, milestone and resource
        demand to its Kantata id, and every other template milestone as
        ``milestone:<title>``, so completions can be linked back.
        """
        project = command.project
        template_id = await self._template(command.template_id, call)
        workspace, created = await self._workspace(project, call, template_id=template_id)
        ids: dict[str, str] = {project.id: workspace.id, "workspace": workspace.id}
        ids["template"] = template_id
        if workspace.workspace_group_ids:
            ids["client"] = workspace.workspace_group_ids[0]
        plan_ids, details = await Plan(self.api, workspace.id, call).apply(project)
        ids.update(plan_ids)
        return CommandResult(system=self.system, ids=ids, created=created, details=details)

    async def _workspace(
        self, project: Project, call: Call, *, template_id: str | None
    ) -> tuple[Workspace, bool]:
        """The project's workspace, created (and referenced at once) if it does not exist."""
        found = await self.api.find_by_reference(
            "workspaces", call, model=PROJECT_MODEL, ref=project.id
        )
        if found is not None:
            return as_typed(found[0], Workspace, plural="workspaces"), False
        workspace = await self._find_workspace_by_marker(project, call)
        if workspace is not None:  # created by an attempt that died before the reference
            await self.api.ensure_reference(
                "Workspace", workspace.id, call, model=PROJECT_MODEL, ref=project.id
            )
            return workspace, False
        values = self._mappings.entity("project").to_vendor(fields_of(project))
        values["description"] = self._marker(project.id)
        values["creator_role"] = self.options.creator_role
        client_id = await self.clients.client_id(project.account_id, call)
        if client_id:
            values["workspace_group_ids"] = [client_id]
        if template_id is not None:
            values["project_template_id"] = template_id
            if project.start_date is not None:
                values["project_template_start_date"] = project.start_date.isoformat()
        record, created = await self.api.create_once(
            lambda: self.api.post("workspaces", "workspace", call, values),
            lambda: self._find_workspace_by_marker(project, call),
            what=f"workspace {project.id}",
        )
        workspace = as_typed(record, Workspace, plural="workspaces")
        # At once: from here on a repeat finds the workspace by its reference.
        await self.api.ensure_reference(
            "Workspace", workspace.id, call, model=PROJECT_MODEL, ref=project.id
        )
        return workspace, created

    async def _find_workspace_by_marker(self, project: Project, call: Call) -> Workspace | None:
        marker = self._marker(project.id)
        params = {"search": project.name}
        async for page in self.api.pages("workspaces", call, params):
            for record in page.records:
                workspace = typed(record, Workspace, plural="workspaces")
                if marker in (workspace.description or ""):
                    return workspace
        return None

    def _marker(self, project_id: str) -> str:
        return f"[{self.options.service_name}:{project_id}]"

    async def _update_workspace(
        self, workspace: Workspace, project: Project, client_id: str | None, call: Call
    ) -> None:
        values = self._mappings.entity("project").to_vendor(fields_of(project))
        if client_id and client_id not in workspace.workspace_group_ids:
            values["workspace_group_ids"] = [*workspace.workspace_group_ids, client_id]
        page = await self.api.get("workspaces", call, {"only": workspace.id})
        current = page.records[0] if page.records else {}
        changed = {key: value for key, value in values.items() if current.get(key) != value}
        if changed:
            await self.api.put("workspaces", "workspace", workspace.id, call, changed)

    async def _template(self, wanted: str, call: Call) -> str:
        """The template id for a service line, a template id or a template name."""
        wanted = self.options.templates.get(wanted, wanted)
        if wanted in self._templates:
            return self._templates[wanted]
        templates = [
            typed(record, ProjectTemplate, plural="project_templates")
            for page in await self.api.all("project_templates", call, {})
            for record in page.records
        ]
        match = next((t for t in templates if t.id == wanted), None) or next(
            (t for t in templates if same_text(t.title, wanted)), None
        )
        if match is None:
            raise PermanentError(
                f"no Kantata project template {wanted!r} (map the service line in "
                "options.templates)",
                system=self.system,
                code="template",
            )
        self._templates[wanted] = match.id
        return match.id

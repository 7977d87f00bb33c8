"""``MarkEntriesExported``: external references on time entries and expenses.

Each entry gets our reference ``service_model`` = the ERP document's type,
``service_model_ref`` = its id, ``external_message`` = the ERP system's name. The entries
are read first, 200 a call (``only=`` with the references side-loaded): those already
marked for the same document are skipped, so marking twice is a no-op; one marked for a
*different* document means it was posted twice, and fails the command after the others
are marked (nothing failing silently). Kantata creates references one at a time.
"""

from __future__ import annotations

from actors.errors import PermanentError
from actors.messages import MarkEntriesExported

from ..base import CommandResult
from .api import Call, KantataApi

__all__ = ["mark_entries_exported"]


async def mark_entries_exported(
    api: KantataApi, command: MarkEntriesExported, call: Call, *, system: str
) -> CommandResult:
    """Mark every entry of ``command`` exported to ``command.exported_to``."""
    document = command.exported_to
    model = document.object_type or "document"
    marked = already = 0
    problems: list[str] = []
    for subject_type, ids in (
        ("TimeEntry", command.time_entry_ids),
        ("Expense", command.expense_entry_ids),
    ):
        wanted = list(dict.fromkeys(str(i) for i in ids))  # once each, in order
        if not wanted:
            continue
        refs = await api.references(subject_type, wanted, call)
        for entry_id in wanted:
            if entry_id not in refs:
                problems.append(f"{subject_type} {entry_id} not found")
                continue
            others = refs[entry_id]
            if any(r.service_model == model and r.service_model_ref == document.id for r in others):
                already += 1
                continue
            if others:
                held = ", ".join(f"{r.service_model} {r.service_model_ref}" for r in others)
                problems.append(f"{subject_type} {entry_id} already exported to {held}")
                continue
            await api.ensure_reference(
                subject_type,
                entry_id,
                call,
                model=model,
                ref=document.id,
                message=f"exported to {document.system}",
            )
            marked += 1
    if problems:
        raise PermanentError(
            f"{len(problems)} entries not marked exported to {model} {document.id}: "
            + "; ".join(problems[:20]),
            system=system,
            code="mark_exported",
        )
    return CommandResult(
        system=system,
        ids={"exported_to": document.id},
        details={"marked": str(marked), "already_marked": str(already)},
    )

"""The seven business workflows (DESIGN §6, plus tm_close), by name, and their registration.

The workflow modules never register themselves at import; the daemon's pipeline takes
:data:`SPECS` (or calls :func:`register_all` to fill :data:`~actors.workflows.REGISTRY`).
A missing module fails this import loudly: every configured workflow must exist.
"""

from __future__ import annotations

from types import MappingProxyType

from . import (
    customer_master,
    deal_to_project,
    invoice_feedback,
    milestone_to_invoice,
    reconcile,
    time_expense_to_erp,
    tm_close,
)
from .spec import REGISTRY, Registry, WorkflowSpec

__all__ = ["SPECS", "register_all"]

SPECS: MappingProxyType[str, WorkflowSpec] = MappingProxyType(
    {
        spec.name: spec
        for spec in (
            deal_to_project.SPEC,
            time_expense_to_erp.SPEC,
            milestone_to_invoice.SPEC,
            invoice_feedback.SPEC,
            customer_master.SPEC,
            reconcile.SPEC,
            tm_close.SPEC,
        )
    }
)
"""Every business workflow's spec, by its name."""

assert len(SPECS) == 7, f"two workflow modules declare the same name: {sorted(SPECS)}"


def register_all(registry: Registry = REGISTRY) -> Registry:
    """Register every spec of :data:`SPECS` in ``registry`` (idempotent); returns it."""
    for spec in SPECS.values():
        registry.register(spec)
    return registry

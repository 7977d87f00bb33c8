"""Financial dimensions: where a posting lands in the ERP's books."""

from __future__ import annotations

from msgspec import Struct

__all__ = ["FinancialDimensions"]


class FinancialDimensions(Struct, frozen=True, kw_only=True):
    """The segments an ERP posting carries; ``None`` means "not set, use the ERP default".

    Names are canonical; each ERP adapter maps them (NetSuite: subsidiary, department,
    class, location; Business Central: dimension values; SAP: company code, cost centre,
    profit centre). ERP routing is by ``legal_entity``.
    """

    legal_entity: str | None = None
    subsidiary: str | None = None
    department: str | None = None
    cost_centre: str | None = None
    """NetSuite's "class", SAP's cost centre."""
    region: str | None = None
    location: str | None = None
    project_code: str | None = None
    tax_code: str | None = None

    def merged_over(self, defaults: FinancialDimensions) -> FinancialDimensions:
        """These dimensions with every unset one taken from ``defaults``."""
        values = {}
        for name in self.__struct_fields__:
            own = getattr(self, name)
            values[name] = own if own is not None else getattr(defaults, name)
        return FinancialDimensions(**values)

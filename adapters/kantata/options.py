"""What a Kantata OX system can be told (``systems.<name>.options`` for a ``kantata`` PSA)."""

from __future__ import annotations

from datetime import datetime

import msgspec

__all__ = ["KantataOptions"]

MAX_PER_PAGE = 200
"""Kantata's ceiling for ``per_page`` / ``limit`` (systems.md §2)."""


class KantataOptions(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Paging, change-feed and provisioning settings of one Kantata account."""

    per_page: int = MAX_PER_PAGE
    """Records per list request (at most 200)."""
    overlap_s: float = 300.0
    """Each change-feed sweep re-reads this much time before the newest change it saw, so
    a record committed late with an earlier ``updated_at`` is still found (the journal
    drops what was already read, by envelope id)."""
    start_watermark: str | None = None
    """ISO 8601 time the feeds start from on their first poll; None reads all history."""
    service_name: str = "pssync"
    """The ``service_name`` of every external reference pssync writes and looks for."""
    templates: dict[str, str] = {}
    """Service line (``implementation``) → project template id (``"3"``) or exact name."""
    creator_role: str = "maven"
    """``creator_role`` of created workspaces: ``maven`` (provider) or ``buyer``."""

    def __post_init__(self) -> None:
        # ValueError, so a config decode names the offending key.
        if not 1 <= self.per_page <= MAX_PER_PAGE:
            raise ValueError(f"per_page must be within 1..{MAX_PER_PAGE}")
        if self.overlap_s < 0:
            raise ValueError("overlap_s must be >= 0")
        if not self.service_name:
            raise ValueError("service_name must not be empty")
        if self.creator_role not in ("maven", "buyer"):
            raise ValueError("creator_role must be maven or buyer")
        if self.start_watermark is not None:
            moment = datetime.fromisoformat(self.start_watermark.replace("Z", "+00:00"))
            if moment.utcoffset() is None:
                raise ValueError("start_watermark needs a time zone")

"""Kantata OX (PSA): clients, workspaces from templates, approved time, expenses and
completed milestones, exports marked with external references.

- :mod:`.adapter` — :class:`KantataAdapter`, :func:`create_adapter`;
- :mod:`.options` — :class:`KantataOptions`;
- :mod:`.feeds` — the change feeds and their sweep cursor;
- :mod:`.clients` — ``UpsertCustomer``; :mod:`.workspaces` — ``UpsertProject`` and
  ``CreateProjectFromTemplate`` (look before create); :mod:`.plan` — phases, milestones,
  resource slots;
- :mod:`.exports` — ``MarkEntriesExported``;
- :mod:`.api` — the calls over the governed HTTP client; :mod:`.wire` — the envelope.
"""

from .adapter import MAPPED_ENTITIES as MAPPED_ENTITIES
from .adapter import KantataAdapter as KantataAdapter
from .adapter import create_adapter as create_adapter
from .feeds import KantataFeed as KantataFeed
from .options import KantataOptions as KantataOptions

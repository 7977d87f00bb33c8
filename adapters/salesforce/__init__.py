"""Salesforce (CRM): won deals and changed accounts in, deal status and customers out.

- :mod:`.adapter` — :class:`SalesforceAdapter` and :func:`create_adapter`.
- :mod:`.options` — :class:`SalesforceOptions`, :class:`SalesforceFields` (custom fields).
- :mod:`.feeds` — ``won_deals`` and ``changed_accounts`` (SystemModstamp watermarks).
- :mod:`.deals`, :mod:`.customers` — write-backs (:mod:`.writes`: what they share);
  :mod:`.batches` — sObject Collections batches.
- :mod:`.api` — the REST calls; :mod:`.wire` — response shapes; :mod:`.soql` — SOQL text.
- :mod:`.canonical` — records → canonical entities through ``config/mappings/salesforce.toml``;
  :mod:`.hierarchy` — accounts with their parent chains.
"""

from .adapter import MAPPED_ENTITIES as MAPPED_ENTITIES
from .adapter import SalesforceAdapter as SalesforceAdapter
from .adapter import create_adapter as create_adapter
from .batches import BatchWriteError as BatchWriteError
from .feeds import ChangedAccountsFeed as ChangedAccountsFeed
from .feeds import WonDealsFeed as WonDealsFeed
from .options import SalesforceFields as SalesforceFields
from .options import SalesforceOptions as SalesforceOptions

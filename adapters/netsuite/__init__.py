"""NetSuite (ERP) adapter: REST record upserts by external id, SuiteQL look-ups and totals.

- :mod:`.adapter` — :class:`NetSuiteAdapter`, :func:`create_adapter`
- :mod:`.options` — :class:`NetSuiteOptions`, :class:`RecordTypes`
- :mod:`.ids` — :func:`external_id`, the deterministic external-id scheme
- :mod:`.signals` — :class:`NetSuiteErrorSignals` (every ``o:errorDetails`` with its path)
- :mod:`.wire` — :class:`RecordService` (upsert, read, SuiteQL paging, look-before-create)
- :mod:`.context`, :mod:`.references`, :mod:`.fields` — what the handlers share
- handlers: :mod:`.masterdata`, :mod:`.timebills`, :mod:`.expenses`, :mod:`.receivables`,
  :mod:`.totals`
"""

from .adapter import NetSuiteAdapter as NetSuiteAdapter
from .adapter import create_adapter as create_adapter
from .fields import MAPPED_ENTITIES as MAPPED_ENTITIES
from .ids import external_id as external_id
from .options import NetSuiteOptions as NetSuiteOptions
from .options import RecordTypes as RecordTypes
from .signals import NetSuiteErrorSignals as NetSuiteErrorSignals

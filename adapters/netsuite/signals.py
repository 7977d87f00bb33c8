"""NetSuite error signals that keep every ``o:errorDetails`` entry and its ``o:errorPath``.

:class:`adapters.signals.NetSuiteSignals` reports the first detail's text only; for a
refused posting the operator needs the field too ("Invalid value for field subsidiary."
at ``subsidiary``, or ``line.items[3].account``). Same classification, richer message.
"""

from __future__ import annotations

import httpx
import msgspec

from adapters.signals import NetSuiteSignals

__all__ = ["NetSuiteErrorSignals"]


class _Detail(msgspec.Struct):
    detail: str = ""
    code: str = msgspec.field(default="", name="o:errorCode")
    path: str = msgspec.field(default="", name="o:errorPath")
    query_param: str = msgspec.field(default="", name="o:errorQueryParam")
    header: str = msgspec.field(default="", name="o:errorHeader")


class _Body(msgspec.Struct):
    details: list[_Detail] = msgspec.field(default_factory=list, name="o:errorDetails")
    title: str = ""


class NetSuiteErrorSignals(NetSuiteSignals):
    """:class:`NetSuiteSignals` whose message lists every detail with where it points."""

    def error_detail(self, response: httpx.Response) -> tuple[str, str]:
        try:
            body = msgspec.json.decode(response.content, type=_Body)
        except (msgspec.DecodeError, msgspec.ValidationError):
            return super().error_detail(response)
        if not body.details:
            return "", body.title or response.reason_phrase
        parts = []
        for item in body.details:
            where = item.path or item.query_param or item.header
            parts.append(f"{item.detail} (at {where})" if where else item.detail)
        return body.details[0].code, "; ".join(parts)

"""Write-backs onto deals: provisioning status and ids, billing progress.

Both compare before they write: a value Salesforce already holds is not sent again, so a
replayed step does not move the opportunity's ``SystemModstamp`` and the won_deals feed
does not report the deal anew for a write that changed nothing. (A write that does change
a deal moves its ``SystemModstamp``, and the feed reports the deal again — see the
DealWon note in :mod:`.feeds`.)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

from actors.errors import PermanentError
from actors.messages import Money, UpdateBillingProgress, UpdateDealStatus

from ..base import CommandResult
from ..governor import Lane
from ..http import new_correlation_id
from .api import SalesforceApi
from .batches import write_in_collections
from .options import SalesforceOptions
from .soql import id_list, select
from .writes import changes, record_key, record_path, require_id

__all__ = ["DealWriter"]

_PERCENT = Decimal("0.01")


class DealWriter:
    """UpdateDealStatus (single and batched) and UpdateBillingProgress."""

    def __init__(self, *, system: str, api: SalesforceApi, options: SalesforceOptions) -> None:
        self.system = system
        self.api = api
        self.options = options
        self.fields = options.fields

    def _deal_targets(
        self, command: UpdateDealStatus
    ) -> tuple[dict[str, Any], dict[str, Any], list[str]]:
        """(opportunity fields, account fields, refs with no configured field)."""
        opportunity: dict[str, Any] = {
            self.fields.project_status: command.status,
            self.fields.status_message: command.message or None,
        }
        account: dict[str, Any] = {}
        skipped = []
        for ref in command.refs:
            if ref.object_type == "customer":
                field = self.fields.account_refs.get(ref.system)
                target = account
            else:
                field = self.fields.opportunity_refs.get(ref.system)
                target = opportunity
            if field is None:
                skipped.append(f"{ref.system}/{ref.object_type or '-'}")
            else:
                target[field] = ref.id
        return opportunity, account, skipped

    async def update_deal_status(self, command: UpdateDealStatus) -> CommandResult:
        """Write status, message and other systems' ids onto the opportunity (and account)."""
        results = await self.update_deal_statuses([command])
        return results[0]

    async def update_deal_statuses(
        self, commands: Sequence[UpdateDealStatus]
    ) -> list[CommandResult]:
        """Many deal write-backs: one query to compare, then sObject Collections updates.

        Only records whose values differ are written, at most ``collection_size`` per call.
        Records that fail are listed in a BatchWriteError; the others are written.
        """
        if not commands:
            return []
        correlation_id = commands[0].correlation_id or new_correlation_id()
        for command in commands:
            require_id(command.opportunity_id, "Opportunity", self.system)
        targets = [self._deal_targets(command) for command in commands]
        opp_fields = {name for target in targets for name in target[0]}
        acc_fields = {name for target in targets for name in target[1]}
        opportunities = await self._current(
            "Opportunity",
            [command.opportunity_id for command in commands],
            ["AccountId", *sorted(opp_fields)],
            correlation_id,
        )
        missing = [
            c.opportunity_id for c in commands if record_key(c.opportunity_id) not in opportunities
        ]
        if missing:
            raise PermanentError(
                f"no Opportunity {', '.join(missing)} in Salesforce",
                system=self.system,
                status=404,
                code="NOT_FOUND",
            )
        account_ids = {
            str(opportunities[record_key(c.opportunity_id)]["AccountId"])
            for c, target in zip(commands, targets, strict=True)
            if target[1] and opportunities[record_key(c.opportunity_id)].get("AccountId")
        }
        accounts = await self._current(
            "Account", sorted(account_ids), sorted(acc_fields), correlation_id
        )
        writes: dict[str, dict[str, Any]] = {}
        results = []
        for command, (opp_target, acc_target, skipped) in zip(commands, targets, strict=True):
            current = opportunities[record_key(command.opportunity_id)]
            record_id = str(current["Id"])
            _merge_changes(writes, "Opportunity", record_id, current, opp_target)
            ids = {"opportunity": record_id}
            if acc_target:
                account_id = current.get("AccountId")
                if not account_id or record_key(str(account_id)) not in accounts:
                    raise PermanentError(
                        f"Opportunity {record_id} has no readable account for customer ids",
                        system=self.system,
                        code="NO_ACCOUNT",
                    )
                account = accounts[record_key(str(account_id))]
                _merge_changes(writes, "Account", str(account["Id"]), account, acc_target)
                ids["account"] = str(account["Id"])
            details = {"skipped_refs": ",".join(skipped)} if skipped else {}
            results.append(CommandResult(system=self.system, ids=ids, details=details))
        # Opportunities first, then accounts: Collections process contiguous types in chunks.
        ordered = sorted(
            writes.items(), key=lambda item: item[1]["attributes"]["type"] != "Opportunity"
        )
        await write_in_collections(
            self.api,
            "",
            ordered,
            size=self.options.collection_size,
            lane=Lane.MASTER_DATA,
            correlation_id=correlation_id,
            what="deal status write-back",
        )
        return results

    async def _current(
        self, sobject: str, ids: Sequence[str], fields: Sequence[str], correlation_id: str
    ) -> dict[str, dict[str, Any]]:
        """Current values of ``fields`` of records by (18-character-insensitive) id."""
        found: dict[str, dict[str, Any]] = {}
        unique = sorted(set(ids))
        for start in range(0, len(unique), 200):
            chunk = unique[start : start + 200]
            soql = f"SELECT {select(['Id', *fields])} FROM {sobject} WHERE Id IN {id_list(chunk)}"
            for record in await self.api.query_all(
                soql, lane=Lane.MASTER_DATA, correlation_id=correlation_id
            ):
                found[record_key(str(record["Id"]))] = record
        return found

    # -- billing progress ----------------------------------------------------------------

    async def update_billing_progress(self, command: UpdateBillingProgress) -> CommandResult:
        """Invoiced, paid and percent billed on the deal; the balance due on the account."""
        correlation_id = command.correlation_id or new_correlation_id()
        lane = Lane.ANALYTICS
        ids: dict[str, str] = {}
        updated: list[str] = []
        if command.opportunity_id is not None:
            path = self._path("Opportunity", command.opportunity_id)
            fields = self.fields
            wanted = [fields.invoiced_amount, fields.paid_amount, fields.billing_progress_percent]
            current = await self.api.get(
                path,
                ["Id", "Amount", "CurrencyIsoCode", *wanted],
                lane=lane,
                correlation_id=correlation_id,
            )
            currency = str(current.get("CurrencyIsoCode") or "")
            target: dict[str, Any] = {
                fields.invoiced_amount: self._amount(command.invoiced, currency, path)
            }
            if command.paid is not None:
                target[fields.paid_amount] = self._amount(command.paid, currency, path)
            total = current.get("Amount")
            if isinstance(total, (int, Decimal)) and total > 0:
                share = command.invoiced.amount * 100 / Decimal(total)
                target[fields.billing_progress_percent] = share.quantize(_PERCENT)
            changed = changes(current, target)
            if changed:
                await self.api.patch(path, changed, lane=lane, correlation_id=correlation_id)
            ids["opportunity"] = str(current.get("Id") or command.opportunity_id)
            updated += sorted(changed)
        if command.outstanding is not None:
            path = self._path("Account", command.account_id)
            current = await self.api.get(
                path,
                ["Id", "CurrencyIsoCode", self.fields.balance_due],
                lane=lane,
                correlation_id=correlation_id,
            )
            currency = str(current.get("CurrencyIsoCode") or "")
            target = {self.fields.balance_due: self._amount(command.outstanding, currency, path)}
            changed = changes(current, target)
            if changed:
                await self.api.patch(path, changed, lane=lane, correlation_id=correlation_id)
            ids["account"] = str(current.get("Id") or command.account_id)
            updated += sorted(changed)
        return CommandResult(
            system=self.system, ids=ids, details={"updated_fields": ",".join(updated)}
        )

    def _amount(self, money: Money, currency: str, where: str) -> Decimal:
        # A currency field holds the record's currency; another currency cannot go there.
        if money.currency != currency:
            raise PermanentError(
                f"{where}: record is in {currency or 'no currency'}, amount is {money.currency}",
                system=self.system,
                code="CURRENCY_MISMATCH",
            )
        return money.amount

    def _path(self, sobject: str, record_id: str) -> str:
        return record_path(self.api, sobject, record_id, self.fields.customer_external_id)


def _merge_changes(
    writes: dict[str, dict[str, Any]],
    sobject: str,
    record_id: str,
    current: Mapping[str, Any],
    target: Mapping[str, Any],
) -> None:
    changed = changes(current, target)
    if changed:
        entry = writes.setdefault(record_id, {"attributes": {"type": sobject}, "id": record_id})
        entry.update(changed)

"""UpsertCustomer: one customer per account, found by metadata, even after 24 hours."""

from __future__ import annotations

import msgspec
import pytest

from actors.errors import PermanentError
from actors.messages import Contact, UpdateDealStatus, UpsertCustomer
from adapters.governor import Lane
from adapters.stripe import StripeOptions

from .conftest import Harness, account, build, upsert_customer


async def test_creates_a_customer_with_mapped_fields_and_metadata(harness: Harness) -> None:
    result = await harness.adapter.execute(upsert_customer())

    [customer] = harness.objects("customer")
    assert result.created is True
    assert result.ids == {"customer": customer["id"], "A-1": customer["id"]}
    assert customer["name"] == "Acme Ltd"
    assert customer["email"] == "ap@acme.test"
    assert customer["address"]["line1"] == "1 Main St"
    assert customer["address"]["line2"] == "Floor 2"
    assert customer["address"]["country"] == "US"
    assert customer["metadata"] == {"pssync_id": "A-1", "pssync_source": "account:A-1"}


async def test_requests_carry_form_body_version_key_and_correlation(harness: Harness) -> None:
    await harness.adapter.execute(upsert_customer())

    [post] = harness.recorder.posts()
    assert post.headers["content-type"] == "application/x-www-form-urlencoded"
    assert post.headers["Stripe-Version"] == "2024-06-20"
    assert post.headers["Idempotency-Key"] == "run-1:customer:customer"
    assert post.form["metadata[pssync_id]"] == "A-1"
    assert all(s.headers["X-Correlation-ID"] == "corr-1" for s in harness.recorder.sent)
    assert all(
        s.headers["Authorization"].startswith("Bearer sk_test_") for s in harness.recorder.sent
    )


async def test_executing_twice_leaves_one_customer_and_writes_nothing(harness: Harness) -> None:
    first = await harness.adapter.execute(upsert_customer())
    second = await harness.adapter.execute(upsert_customer())

    assert second.created is False
    assert second.ids == first.ids
    assert len(harness.objects("customer")) == 1
    assert len(harness.recorder.posts()) == 1
    assert await harness.duplicates() == []


async def test_a_changed_account_updates_the_found_customer(harness: Harness) -> None:
    first = await harness.adapter.execute(upsert_customer())
    second = await harness.adapter.execute(upsert_customer("run-2:customer", name="Acme Group"))

    [customer] = harness.objects("customer")
    assert second.created is False
    assert second.ids == first.ids
    assert customer["name"] == "Acme Group"
    assert [p.path for p in harness.recorder.posts()][-1] == f"/v1/customers/{customer['id']}"


async def test_replay_after_stripe_forgot_the_key_still_finds_the_customer(
    autojump_clock, harness: Harness
) -> None:
    await harness.adapter.execute(upsert_customer())
    await harness.advance(25 * 3600)  # Stripe keeps idempotency keys for 24 hours

    again = await harness.adapter.execute(upsert_customer())

    assert again.created is False
    assert len(harness.objects("customer")) == 1
    assert await harness.duplicates() == []


async def test_search_lag_is_covered_by_the_recent_list(autojump_clock, clock) -> None:
    # Search sees new customers only after ten minutes; a different command (another key)
    # for the same account right away must still find the one just created.
    _, recorder, adapter = build(clock, sandbox_options={"search_lag_s": 600})
    await adapter.execute(upsert_customer("run-1:customer"))
    clock.advance(5)
    second = await adapter.execute(upsert_customer("run-9:customer"))

    assert second.created is False
    assert len([p for p in recorder.posts() if p.path == "/v1/customers"]) == 1
    await adapter.aclose()


async def test_search_lag_without_the_recent_list_would_duplicate(autojump_clock, clock) -> None:
    # The same setup with the window switched off shows what the list is there for.
    options = StripeOptions(search_lag_window_s=0)
    sandbox, _, adapter = build(clock, options=options, sandbox_options={"search_lag_s": 600})
    await adapter.execute(upsert_customer("run-1:customer"))
    clock.advance(5)
    await adapter.execute(upsert_customer("run-9:customer"))

    assert len(sandbox.vendors["stripe"].state.duplicates()) == 1
    await adapter.aclose()


async def test_unsupported_command_is_permanent_and_names_both(harness: Harness) -> None:
    command = UpdateDealStatus(idempotency_key="k", opportunity_id="006x", status="active")

    with pytest.raises(PermanentError, match="stripe does not handle update_deal_status"):
        await harness.adapter.execute(command)
    assert harness.adapter.lane_for(command) is Lane.MASTER_DATA
    assert harness.recorder.sent == []


async def test_an_id_search_cannot_quote_is_found_by_listing(harness: Harness) -> None:
    await harness.adapter.execute(upsert_customer(account_id="O'Brien-1"))
    second = await harness.adapter.execute(
        upsert_customer("run-2:customer", account_id="O'Brien-1")
    )

    assert second.created is False
    assert len(harness.objects("customer")) == 1
    assert not any(s.path.endswith("/search") for s in harness.recorder.sent)


# -- restricted upserts (UpsertCustomer.fields) -------------------------------------------


def restricted(key: str, *fields: str, **values) -> UpsertCustomer:
    """An UpsertCustomer of the conftest account with ``values`` replaced, naming ``fields``."""
    changed = msgspec.structs.replace(account(), **values)
    return UpsertCustomer(
        idempotency_key=key, correlation_id="corr-1", account=changed, fields=fields
    )


async def test_a_restricted_update_sends_only_the_named_fields(harness: Harness) -> None:
    await harness.adapter.execute(upsert_customer())
    [customer] = harness.objects("customer")
    # Changed in Stripe by billing, which owns the invoice email.
    harness.state.update("customer", customer["id"], {"email": "billing@acme.test"})

    result = await harness.adapter.execute(restricted("run-2:customer", "name", name="Acme Group"))

    [customer] = harness.objects("customer")
    assert result.created is False
    assert customer["name"] == "Acme Group"
    assert customer["email"] == "billing@acme.test"
    assert customer["phone"] == "+1 555 0100"
    assert customer["address"]["line1"] == "1 Main St"
    assert customer["metadata"] == {"pssync_id": "A-1", "pssync_source": "account:A-1"}
    update = harness.recorder.posts()[-1]
    assert update.path == f"/v1/customers/{customer['id']}"
    assert set(update.form) == {"name", "metadata[pssync_id]", "metadata[pssync_source]"}


async def test_a_restricted_update_of_an_unchanged_field_writes_nothing(
    harness: Harness,
) -> None:
    await harness.adapter.execute(upsert_customer())
    [customer] = harness.objects("customer")
    harness.state.update("customer", customer["id"], {"email": "billing@acme.test"})

    # The name is what Stripe has; the stale email is not named, so nothing differs.
    await harness.adapter.execute(restricted("run-2:customer", "name"))

    assert len(harness.recorder.posts()) == 1
    assert harness.objects("customer")[0]["email"] == "billing@acme.test"


async def test_invoice_email_names_the_email_alone(harness: Harness) -> None:
    await harness.adapter.execute(upsert_customer())
    [customer] = harness.objects("customer")
    harness.state.update("customer", customer["id"], {"phone": "+44 20 0000"})

    await harness.adapter.execute(
        restricted(
            "run-2:customer",
            "invoice_email",
            billing_contact=Contact(id="C-1", email="new@acme.test", phone="+1 555 0100"),
        )
    )

    [customer] = harness.objects("customer")
    assert customer["email"] == "new@acme.test"
    assert customer["phone"] == "+44 20 0000"


async def test_a_restricted_command_for_a_missing_customer_creates_it_whole(
    harness: Harness,
) -> None:
    result = await harness.adapter.execute(restricted("run-1:customer", "name"))

    [customer] = harness.objects("customer")
    assert result.created is True
    assert customer["email"] == "ap@acme.test"
    assert customer["address"]["city"] == "Springfield"

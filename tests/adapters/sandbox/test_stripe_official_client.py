"""The official ``stripe`` library against the sandbox on a real loopback socket.

``stripe`` is a dev dependency; the test is skipped (with the reason) if it is missing.
The library is synchronous (``requests``), so it runs in a worker thread while hypercorn
serves the sandbox app on trio in this test's event loop.
"""

from __future__ import annotations

import time

import pytest
import trio
from hypercorn.config import Config
from hypercorn.trio import serve

from adapters.sandbox.clock import SandboxClock
from adapters.sandbox.stripe import create_vendor

stripe = pytest.importorskip("stripe", reason="the official stripe library is not installed")

pytestmark = pytest.mark.slow


async def test_official_client_creates_and_finalizes_an_invoice() -> None:
    vendor = create_vendor(clock=SandboxClock(start=time.time()), seed=5)
    config = Config()
    config.bind = ["127.0.0.1:0"]
    config.accesslog = None
    config.errorlog = None
    config.graceful_timeout = 1.0

    async with trio.open_nursery() as nursery:
        binds = await nursery.start(serve, vendor.app, config)
        base = binds[0]
        assert base.startswith("http://127.0.0.1:")

        def billing_run() -> tuple:
            client = stripe.StripeClient(
                vendor.credentials["api_key"],
                base_addresses={"api": base},
                max_network_retries=0,
            )
            customer = client.v1.customers.create(
                params={"name": "Acme Corp", "metadata": {"pssync_id": "crm-1"}}
            )
            invoice = client.v1.invoices.create(
                params={
                    "customer": customer.id,
                    "collection_method": "send_invoice",
                    "days_until_due": 30,
                    "metadata": {"pssync_source": "milestone-1"},
                },
                options={"idempotency_key": "invoice-milestone-1"},
            )
            item = client.v1.invoice_items.create(
                params={
                    "customer": customer.id,
                    "invoice": invoice.id,
                    "amount": 150_000,
                    "currency": "usd",
                    "description": "Milestone 1",
                }
            )
            finalized = client.v1.invoices.finalize_invoice(invoice.id)
            try:
                client.v1.customers.retrieve("cus_missing")
            except stripe.InvalidRequestError as error:
                missing = error
            else:  # pragma: no cover - the assertion below reports it
                missing = None
            return customer, item, finalized, missing

        customer, item, finalized, missing = await trio.to_thread.run_sync(billing_run)
        nursery.cancel_scope.cancel()

    assert customer.id.startswith("cus_")
    assert customer.metadata["pssync_id"] == "crm-1"
    assert item.id.startswith("ii_")
    assert finalized.status == "open"
    assert finalized.number is not None
    assert finalized.amount_due == 150_000
    assert finalized.lines.data[0].amount == 150_000
    assert missing is not None
    assert missing.http_status == 404
    assert missing.code == "resource_missing"
    assert missing.request_id.startswith("req_")

"""Fixtures: the in-process Stripe sandbox and an adapter wired to it through SystemClient."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from pathlib import Path
from urllib.parse import parse_qsl

import httpx
import pytest
import trio

from actors.messages import (
    Account,
    Address,
    Contact,
    CreateInvoice,
    Invoice,
    InvoiceLine,
    Money,
    UpsertCustomer,
)
from adapters.auth import BearerToken
from adapters.backoff import RetryPolicy
from adapters.governor import Governor, GovernorConfig
from adapters.http import HttpConfig, SystemClient
from adapters.mapping import load_mapping
from adapters.sandbox import Sandbox, SandboxClock, SandboxConfig, build_sandbox
from adapters.signals import StripeSignals
from adapters.stripe import StripeAdapter, StripeOptions, create_adapter

START = 1_767_225_600.0  # 2026-01-01T00:00:00Z
MAPPING = Path(__file__).parents[3] / "config" / "mappings" / "stripe.toml"


@dataclass
class Sent:
    """One request as it left the client."""

    method: str
    path: str
    headers: httpx.Headers
    form: dict[str, str]
    query: dict[str, str]


@dataclass
class Recorder(httpx.AsyncBaseTransport):
    """Wraps the sandbox transport and keeps every request that went out."""

    inner: httpx.AsyncBaseTransport
    sent: list[Sent] = field(default_factory=list)
    truncate: set[tuple[str, str]] = field(default_factory=set)
    """(method, path) whose next answer loses half its body after the vendor acted."""

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        body = (await request.aread()).decode()
        self.sent.append(
            Sent(
                method=request.method,
                path=request.url.path,
                headers=request.headers,
                form=dict(parse_qsl(body, keep_blank_values=True)),
                query=dict(parse_qsl(request.url.query.decode(), keep_blank_values=True)),
            )
        )
        response = await self.inner.handle_async_request(request)
        if (request.method, request.url.path) in self.truncate:
            self.truncate.discard((request.method, request.url.path))
            body = await response.aread()
            return httpx.Response(response.status_code, content=body[: len(body) // 2])
        return response

    def posts(self, path_prefix: str = "/v1/") -> list[Sent]:
        return [s for s in self.sent if s.method == "POST" and s.path.startswith(path_prefix)]


@dataclass
class Harness:
    """A sandbox, an adapter on it, and what went over the wire."""

    sandbox: Sandbox
    clock: SandboxClock
    recorder: Recorder
    adapter: StripeAdapter
    admin: httpx.AsyncClient

    @property
    def state(self):
        return self.sandbox.vendors["stripe"].state

    def objects(self, kind: str) -> list[dict]:
        return list(self.state.objects[kind].values())

    async def duplicates(self) -> list[dict]:
        response = await self.admin.get("/_sandbox/duplicates")
        assert response.status_code == 200
        return response.json()["duplicates"]

    async def advance(self, seconds: float) -> None:
        response = await self.admin.post("/_sandbox/clock/advance", json={"seconds": seconds})
        assert response.status_code == 200


@pytest.fixture
def clock() -> SandboxClock:
    return SandboxClock(start=START, monotonic_source=trio.current_time)


def build(
    clock: SandboxClock,
    *,
    options: StripeOptions | None = None,
    sandbox_options: dict | None = None,
    max_attempts: int = 8,
    rate_per_s: float = 1000.0,
) -> tuple[Sandbox, Recorder, StripeAdapter]:
    sandbox = build_sandbox(
        SandboxConfig(
            vendors=("stripe",),
            seed=7,
            options={"stripe": {"rate_limit_per_s": 1000, **(sandbox_options or {})}},
        ),
        clock=clock,
    )
    recorder = Recorder(httpx.ASGITransport(app=sandbox.apps["stripe"]))
    client = SystemClient(
        "billing",
        HttpConfig(
            base_url="https://api.stripe.com",
            retry=RetryPolicy(max_attempts=max_attempts, base_delay_s=0.5, max_delay_s=10.0),
        ),
        auth=BearerToken(sandbox.vendors["stripe"].credentials["api_key"]),
        governor=Governor(
            GovernorConfig(rate_per_s=rate_per_s, burst=int(rate_per_s), max_concurrency=8)
        ),
        signals=StripeSignals(),
        transport=recorder,
        rng=random.Random(3),
        wall_clock=clock.now,
    )
    adapter = create_adapter(
        system="billing",
        client=client,
        mappings=load_mapping(MAPPING),
        options=options or StripeOptions(),
        wall_clock=clock.now,
    )
    return sandbox, recorder, adapter


@pytest.fixture
async def harness(clock: SandboxClock) -> AsyncIterator[Harness]:
    sandbox, recorder, adapter = build(clock)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=sandbox.apps["stripe"]), base_url="https://api.stripe.com"
    ) as admin:
        yield Harness(sandbox, clock, recorder, adapter, admin)
    await adapter.aclose()


def account(account_id: str = "A-1", name: str = "Acme Ltd", **fields) -> Account:
    return Account(
        id=account_id,
        name=name,
        currency="USD",
        billing_contact=Contact(id="C-1", email="ap@acme.test", phone="+1 555 0100"),
        billing_address=Address(
            lines=("1 Main St", "Floor 2"), city="Springfield", postal_code="12345", country="US"
        ),
        **fields,
    )


def upsert_customer(key: str = "run-1:customer", **fields) -> UpsertCustomer:
    return UpsertCustomer(idempotency_key=key, correlation_id="corr-1", account=account(**fields))


def usd(amount: str) -> Money:
    return Money.of(amount, "USD")


def invoice(invoice_id: str = "INV-1", project_id: str = "P-1", **fields) -> Invoice:
    lines = fields.pop(
        "lines",
        (
            InvoiceLine(
                id="L-1",
                description="Milestone 1: discovery",
                unit_price=usd("12500.00"),
                amount=usd("12500.00"),
                milestone_id="M-1",
            ),
            InvoiceLine(
                id="L-2",
                description="Workshops",
                quantity=Decimal(3),
                unit_price=usd("400.50"),
                amount=usd("1201.50"),
            ),
            InvoiceLine(
                id="L-3",
                description="Senior consultant, 7.5 h",
                quantity=Decimal("7.5"),
                unit_price=usd("180.00"),
                amount=usd("1350.00"),
            ),
        ),
    )
    return Invoice(
        id=invoice_id,
        account_id="A-1",
        project_id=project_id,
        currency="USD",
        due_date=date(2026, 2, 15),
        lines=lines,
        **fields,
    )


def create_invoice(customer_id: str, key: str = "run-7:create_invoice", **fields) -> CreateInvoice:
    return CreateInvoice(
        idempotency_key=key,
        correlation_id="corr-inv",
        customer_id=customer_id,
        invoice=invoice(**fields),
    )

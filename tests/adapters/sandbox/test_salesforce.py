"""The simulated Salesforce: OAuth, sObjects, upsert, collections, SOQL, limits."""

from __future__ import annotations

import httpx
import pytest

from adapters.sandbox import Sandbox, SandboxClock, SandboxConfig, build_sandbox
from adapters.sandbox.salesforce.ids import make_id, to_18

from .conftest import client_for

DATA = "/services/data/v66.0"
CREDENTIALS = {
    "grant_type": "client_credentials",
    "client_id": "3MVG9pssync.sandbox.consumer.key",
    "client_secret": "pssync-sandbox-consumer-secret",
}


async def query(sf: httpx.AsyncClient, soql: str, **headers: str) -> httpx.Response:
    return await sf.get(f"{DATA}/query", params={"q": soql}, headers=headers)


async def create(sf: httpx.AsyncClient, type_name: str, **fields: object) -> str:
    response = await sf.post(f"{DATA}/sobjects/{type_name}", json=fields)
    assert response.status_code == 201, response.text
    return response.json()["id"]


# -- ids and auth ----------------------------------------------------------------------


def test_ids_have_key_prefixes_and_case_safe_suffixes() -> None:
    account = make_id("001", 1)
    assert len(account) == 18
    assert account.startswith("001")
    assert to_18(account[:15]) == account
    assert make_id("00k", 61) != make_id("00k", 62)


async def test_client_credentials_token(autojump_clock, sf_raw: httpx.AsyncClient) -> None:
    response = await sf_raw.post("/services/oauth2/token", data=CREDENTIALS)
    body = response.json()
    assert response.status_code == 200
    assert body["token_type"] == "Bearer"
    assert body["instance_url"] == "https://pssync-sandbox.my.salesforce.com"
    assert body["id"].startswith(body["instance_url"] + "/id/00D")
    assert body["issued_at"] == "1767225600000"
    assert {"access_token", "signature"} <= set(body)
    assert "refresh_token" not in body
    assert "expires_in" not in body


async def test_bad_secret_is_invalid_client(autojump_clock, sf_raw: httpx.AsyncClient) -> None:
    response = await sf_raw.post(
        "/services/oauth2/token", data={**CREDENTIALS, "client_secret": "wrong"}
    )
    assert response.status_code == 400
    assert response.json() == {
        "error": "invalid_client",
        "error_description": "invalid client credentials",
    }


async def test_jwt_bearer_grant_is_not_offered(autojump_clock, sf_raw: httpx.AsyncClient) -> None:
    response = await sf_raw.post(
        "/services/oauth2/token",
        data={"grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer", "assertion": "x.y.z"},
    )
    assert response.status_code == 400
    assert response.json()["error"] == "unsupported_grant_type"


async def test_data_calls_need_a_valid_session(autojump_clock, sf_raw: httpx.AsyncClient) -> None:
    for headers in ({}, {"Authorization": "Bearer nope"}):
        response = await sf_raw.get(f"{DATA}/limits", headers=headers)
        assert response.status_code == 401
        assert response.json() == [
            {"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}
        ]


async def test_expired_session_then_a_new_token_works(
    autojump_clock, sf: httpx.AsyncClient
) -> None:
    assert (await sf.get(f"{DATA}/limits")).status_code == 200
    assert (await sf.post("/_sandbox/sessions/expire", json={})).json() == {"expired": 1}
    assert (await sf.get(f"{DATA}/limits")).status_code == 401
    token = (await sf.post("/services/oauth2/token", data=CREDENTIALS)).json()["access_token"]
    sf.headers["Authorization"] = f"Bearer {token}"
    assert (await sf.get(f"{DATA}/limits")).status_code == 200


async def test_sessions_time_out_after_inactivity(
    autojump_clock, sf: httpx.AsyncClient, sandbox: Sandbox
) -> None:
    sandbox.clock.advance(7199)
    assert (await sf.get(f"{DATA}/limits")).status_code == 200
    sandbox.clock.advance(7201)
    assert (await sf.get(f"{DATA}/limits")).status_code == 401


async def test_unknown_versions_and_paths_are_not_found(
    autojump_clock, sf: httpx.AsyncClient
) -> None:
    for path in ("/services/data/v99.0/limits", f"{DATA}/nothing", "/elsewhere"):
        response = await sf.get(path)
        assert response.status_code == 404
        assert response.json()[0]["errorCode"] == "NOT_FOUND"
    versions = (await sf.get("/services/data/")).json()
    assert versions[-1] == {"label": "v66", "url": "/services/data/v66.0", "version": "66.0"}


# -- sObject rows ----------------------------------------------------------------------


async def test_create_read_update_delete(
    autojump_clock, sf: httpx.AsyncClient, sandbox: Sandbox
) -> None:
    response = await sf.post(
        f"{DATA}/sobjects/Account", json={"Name": "Acme", "BillingCountry": "US"}
    )
    assert response.status_code == 201
    account_id = response.json()["id"]
    assert response.json() == {"id": account_id, "success": True, "errors": []}
    assert account_id.startswith("001")
    assert len(account_id) == 18

    record = (await sf.get(f"{DATA}/sobjects/Account/{account_id}")).json()
    assert record["attributes"] == {
        "type": "Account",
        "url": f"{DATA}/sobjects/Account/{account_id}",
    }
    assert record["Name"] == "Acme"
    assert record["CurrencyIsoCode"] == "USD"
    assert record["SystemModstamp"] == "2026-01-01T00:00:00.000+0000"

    sandbox.clock.advance(90)
    patched = await sf.patch(f"{DATA}/sobjects/Account/{account_id}", json={"Name": "Acme Ltd"})
    assert patched.status_code == 204
    record = (
        await sf.get(
            f"{DATA}/sobjects/Account/{account_id}", params={"fields": "Name,SystemModstamp"}
        )
    ).json()
    assert record["Name"] == "Acme Ltd"
    assert record["SystemModstamp"] == "2026-01-01T00:01:30.000+0000"
    assert "BillingCountry" not in record

    assert (await sf.delete(f"{DATA}/sobjects/Account/{account_id}")).status_code == 204
    gone = await sf.get(f"{DATA}/sobjects/Account/{account_id}")
    assert gone.status_code == 404
    assert gone.json() == [
        {"message": "The requested resource does not exist", "errorCode": "NOT_FOUND"}
    ]


async def test_unknown_ids_and_types_are_not_found(autojump_clock, sf: httpx.AsyncClient) -> None:
    unknown = make_id("001", 999)
    for method in ("GET", "PATCH", "DELETE"):
        response = await sf.request(method, f"{DATA}/sobjects/Account/{unknown}", json={})
        assert response.status_code == 404, method
        assert response.json()[0]["errorCode"] == "NOT_FOUND"
    assert (await sf.post(f"{DATA}/sobjects/Widget", json={"Name": "x"})).status_code == 404


MISSING = "REQUIRED_FIELD_MISSING"
PICKLIST = "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST"
ACCOUNT_1, ACCOUNT_999 = make_id("001", 1), make_id("001", 999)


@pytest.mark.parametrize(
    ("type_name", "body", "code", "fields"),
    [
        ("Account", {"BillingCountry": "US"}, MISSING, ["Name"]),
        ("Opportunity", {"Name": "x"}, MISSING, ["CloseDate", "StageName"]),
        ("Account", {"Name": "x", "Nope__c": 1}, "INVALID_FIELD", ["Nope__c"]),
        ("Account", {"Name": "x", "Id": ACCOUNT_1}, "INVALID_FIELD_FOR_INSERT_UPDATE", ["Id"]),
        ("Account", {"Name": "x", "CurrencyIsoCode": "XXX"}, PICKLIST, ["CurrencyIsoCode"]),
        ("Account", {"Name": "x", "ParentId": "bogus"}, "MALFORMED_ID", ["ParentId"]),
        (
            "Account",
            {"Name": "x", "ParentId": ACCOUNT_999},
            "INVALID_CROSS_REFERENCE_KEY",
            ["ParentId"],
        ),
        (
            "Account",
            {"Name": "x", "Balance_Due__c": "lots"},
            "JSON_PARSER_ERROR",
            ["Balance_Due__c"],
        ),
    ],
)
async def test_validation_errors(
    autojump_clock, sf: httpx.AsyncClient, type_name: str, body: dict, code: str, fields: list[str]
) -> None:
    response = await sf.post(f"{DATA}/sobjects/{type_name}", json=body)
    assert response.status_code == 400
    [error] = response.json()
    assert (error["errorCode"], error["fields"]) == (code, fields)
    assert error["message"]


async def test_opportunity_flags_and_amount_follow_stage_and_lines(
    autojump_clock, sf: httpx.AsyncClient
) -> None:
    account_id = await create(sf, "Account", Name="Acme")
    opportunity_id = await create(
        sf,
        "Opportunity",
        Name="Deal",
        AccountId=account_id,
        StageName="Prospecting",
        CloseDate="2026-02-01",
        Amount=5.0,
    )
    await create(
        sf, "OpportunityLineItem", OpportunityId=opportunity_id, Quantity=10, UnitPrice=150
    )
    await create(
        sf, "OpportunityLineItem", OpportunityId=opportunity_id, Quantity=2, TotalPrice=500
    )
    opportunity = (await sf.get(f"{DATA}/sobjects/Opportunity/{opportunity_id}")).json()
    assert (opportunity["IsClosed"], opportunity["IsWon"], opportunity["Amount"]) == (
        False,
        False,
        2000.0,
    )
    assert opportunity["HasOpportunityLineItem"] is True

    await sf.patch(
        f"{DATA}/sobjects/Opportunity/{opportunity_id}", json={"StageName": "Closed Won"}
    )
    opportunity = (await sf.get(f"{DATA}/sobjects/Opportunity/{opportunity_id}")).json()
    assert (opportunity["IsClosed"], opportunity["IsWon"], opportunity["Probability"]) == (
        True,
        True,
        100.0,
    )
    refused = await sf.patch(f"{DATA}/sobjects/Opportunity/{opportunity_id}", json={"IsWon": False})
    assert refused.json()[0]["errorCode"] == "INVALID_FIELD_FOR_INSERT_UPDATE"


async def test_line_items_take_unit_or_total_price_not_both(
    autojump_clock, sf: httpx.AsyncClient
) -> None:
    account_id = await create(sf, "Account", Name="Acme")
    opportunity_id = await create(
        sf,
        "Opportunity",
        Name="D",
        AccountId=account_id,
        StageName="Prospecting",
        CloseDate="2026-02-01",
    )
    both = await sf.post(
        f"{DATA}/sobjects/OpportunityLineItem",
        json={"OpportunityId": opportunity_id, "Quantity": 1, "UnitPrice": 1, "TotalPrice": 1},
    )
    assert both.json()[0]["errorCode"] == "FIELD_INTEGRITY_EXCEPTION"
    neither = await sf.post(
        f"{DATA}/sobjects/OpportunityLineItem",
        json={"OpportunityId": opportunity_id, "Quantity": 1},
    )
    assert neither.json()[0]["errorCode"] == "REQUIRED_FIELD_MISSING"
    bad_type = await sf.post(
        f"{DATA}/sobjects/OpportunityLineItem",
        json={
            "OpportunityId": opportunity_id,
            "Quantity": 1,
            "UnitPrice": 1,
            "Billing_Type__c": "barter",
        },
    )
    assert bad_type.json()[0]["errorCode"] == "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST"


# -- upsert by external id ---------------------------------------------------------------

UPSERT = f"{DATA}/sobjects/Account/ERP_Customer_Id__c"


async def test_upsert_creates_then_updates(autojump_clock, sf: httpx.AsyncClient) -> None:
    created = await sf.patch(f"{UPSERT}/C-100", json={"Name": "Globex"})
    assert created.status_code == 201
    account_id = created.json()["id"]
    assert created.json() == {"id": account_id, "success": True, "errors": [], "created": True}
    updated = await sf.patch(f"{UPSERT}/C-100", json={"Name": "Globex plc"})
    assert updated.status_code == 200
    assert updated.json() == {"id": account_id, "success": True, "errors": [], "created": False}
    record = (await sf.get(f"{UPSERT}/C-100")).json()
    assert (record["Id"], record["Name"], record["ERP_Customer_Id__c"]) == (
        account_id,
        "Globex plc",
        "C-100",
    )


async def test_upsert_update_on_old_versions_is_204(autojump_clock, sf: httpx.AsyncClient) -> None:
    await sf.patch(f"{UPSERT}/C-1", json={"Name": "Old"})
    response = await sf.patch(
        "/services/data/v45.0/sobjects/Account/ERP_Customer_Id__c/C-1", json={"Name": "Old2"}
    )
    assert response.status_code == 204


async def test_upsert_with_several_matches_is_300_and_writes_nothing(
    autojump_clock, sf: httpx.AsyncClient
) -> None:
    first = await create(sf, "Account", Name="One", ERP_Customer_Id__c="DUP")
    second = await create(sf, "Account", Name="Two", ERP_Customer_Id__c="DUP")
    response = await sf.patch(f"{UPSERT}/DUP", json={"Name": "Three"})
    assert response.status_code == 300
    assert response.json() == [
        f"{DATA}/sobjects/Account/{first}",
        f"{DATA}/sobjects/Account/{second}",
    ]
    names = (await query(sf, "SELECT Name FROM Account ORDER BY Name")).json()["records"]
    assert [row["Name"] for row in names] == ["One", "Two"]


async def test_upsert_refusals(autojump_clock, sf: httpx.AsyncClient) -> None:
    with_id = await sf.patch(f"{UPSERT}/C-2", json={"Name": "x", "Id": make_id("001", 1)})
    assert with_id.status_code == 400
    assert with_id.json()[0]["errorCode"] == "INVALID_FIELD_FOR_INSERT_UPDATE"
    with_key = await sf.patch(f"{UPSERT}/C-2", json={"Name": "x", "ERP_Customer_Id__c": "C-2"})
    assert (with_key.status_code, with_key.json()[0]["errorCode"]) == (400, "INVALID_FIELD")
    not_external = await sf.patch(f"{DATA}/sobjects/Account/Name/Acme", json={"Name": "x"})
    assert (not_external.status_code, not_external.json()[0]["errorCode"]) == (404, "NOT_FOUND")
    update_only = await sf.patch(f"{UPSERT}/C-404?updateOnly=true", json={"Name": "x"})
    assert update_only.status_code == 404
    missing_name = await sf.patch(f"{UPSERT}/C-3", json={"BillingCountry": "US"})
    assert missing_name.json()[0]["errorCode"] == "REQUIRED_FIELD_MISSING"
    assert (await sf.get(f"{UPSERT}/C-404")).status_code == 404


async def test_upsert_values_are_url_decoded(autojump_clock, sf: httpx.AsyncClient) -> None:
    response = await sf.patch(f"{UPSERT}/A%2FB%20C", json={"Name": "Slash"})
    assert response.status_code == 201
    record = (await sf.get(f"{DATA}/sobjects/Account/{response.json()['id']}")).json()
    assert record["ERP_Customer_Id__c"] == "A/B C"


# -- sObject Collections -----------------------------------------------------------------

COLLECTION = f"{DATA}/composite/sobjects"


def account(**fields: object) -> dict:
    return {"attributes": {"type": "Account"}, **fields}


async def test_collection_create_partial_success(
    autojump_clock, sf: httpx.AsyncClient, sandbox: Sandbox
) -> None:
    response = await sf.post(
        COLLECTION,
        json={"allOrNone": False, "records": [account(Name="A"), account(), account(Name="C")]},
    )
    assert response.status_code == 200
    first, second, third = response.json()
    assert first["success"]
    assert third["success"]
    assert second == {
        "success": False,
        "errors": [
            {
                "statusCode": "REQUIRED_FIELD_MISSING",
                "message": "Required fields are missing: [Name]",
                "fields": ["Name"],
            }
        ],
    }
    assert sandbox.vendors["salesforce"].state.counts()["Account"] == 2


async def test_collection_all_or_none_rolls_everything_back(
    autojump_clock, sf: httpx.AsyncClient, sandbox: Sandbox
) -> None:
    existing = await create(sf, "Account", Name="Before")
    response = await sf.patch(
        COLLECTION,
        json={
            "allOrNone": True,
            "records": [account(id=existing, Name="Changed"), account(id=existing, Name=None)],
        },
    )
    first, second = response.json()
    assert first["errors"][0]["statusCode"] == "ALL_OR_NONE_OPERATION_ROLLED_BACK"
    assert second["errors"][0]["statusCode"] == "REQUIRED_FIELD_MISSING"
    assert (await sf.get(f"{DATA}/sobjects/Account/{existing}")).json()["Name"] == "Before"

    created = await sf.post(
        COLLECTION,
        json={"allOrNone": True, "records": [account(Name="New"), account(Name="X", Nope=1)]},
    )
    assert [result["success"] for result in created.json()] == [False, False]
    assert sandbox.vendors["salesforce"].state.counts()["Account"] == 1


async def test_collection_all_or_none_rolls_back_line_rollups(
    autojump_clock, sf: httpx.AsyncClient
) -> None:
    account_id = await create(sf, "Account", Name="Acme")
    opportunity_id = await create(
        sf,
        "Opportunity",
        Name="D",
        AccountId=account_id,
        StageName="Prospecting",
        CloseDate="2026-02-01",
        Amount=7.0,
    )
    line = {
        "attributes": {"type": "OpportunityLineItem"},
        "OpportunityId": opportunity_id,
        "Quantity": 1,
    }
    response = await sf.post(
        COLLECTION, json={"allOrNone": True, "records": [{**line, "UnitPrice": 10}, line]}
    )
    assert [result["success"] for result in response.json()] == [False, False]
    opportunity = (await sf.get(f"{DATA}/sobjects/Opportunity/{opportunity_id}")).json()
    assert (opportunity["Amount"], opportunity["HasOpportunityLineItem"]) == (7.0, False)


async def test_collection_upsert_reports_created(autojump_clock, sf: httpx.AsyncClient) -> None:
    await create(sf, "Account", Name="Existing", ERP_Customer_Id__c="E-1")
    response = await sf.patch(
        f"{COLLECTION}/Account/ERP_Customer_Id__c",
        json={
            "allOrNone": False,
            "records": [
                account(ERP_Customer_Id__c="E-1", Name="Existing renamed"),
                account(ERP_Customer_Id__c="E-2", Name="Fresh"),
                account(Name="No key"),
            ],
        },
    )
    updated, created_, missing = response.json()
    assert (updated["success"], updated["created"]) == (True, False)
    assert (created_["success"], created_["created"]) == (True, True)
    assert missing["success"] is False
    names = (await query(sf, "SELECT Name FROM Account ORDER BY ERP_Customer_Id__c")).json()[
        "records"
    ]
    assert [row["Name"] for row in names] == ["Existing renamed", "Fresh"]


async def test_collection_limits_and_deletes(
    autojump_clock, sf: httpx.AsyncClient, sandbox: Sandbox
) -> None:
    too_many = await sf.post(
        COLLECTION, json={"records": [account(Name=str(i)) for i in range(201)]}
    )
    assert (too_many.status_code, too_many.json()[0]["errorCode"]) == (400, "EXCEEDED_ID_LIMIT")
    ok = await sf.post(COLLECTION, json={"records": [account(Name=str(i)) for i in range(200)]})
    ids = [result["id"] for result in ok.json()]
    assert len(ids) == 200
    deleted = await sf.delete(COLLECTION, params={"ids": ",".join(ids[:3]), "allOrNone": "false"})
    assert [result["success"] for result in deleted.json()] == [True, True, True]
    assert sandbox.vendors["salesforce"].state.counts()["Account"] == 197
    chunks = [
        {"attributes": {"type": "Account" if i % 2 else "Contact"}, "Name": "x"} for i in range(11)
    ]
    assert (await sf.post(COLLECTION, json={"records": chunks})).json()[0][
        "errorCode"
    ] == "EXCEEDED_MAX_TYPES_LIMIT"


# -- SOQL --------------------------------------------------------------------------------


async def _deal_book(sf: httpx.AsyncClient, sandbox: Sandbox) -> dict[str, str]:
    acme = await create(sf, "Account", Name="Acme", BillingCountry="US")
    initech = await create(
        sf, "Account", Name="Initech", BillingCountry="GB", CurrencyIsoCode="GBP"
    )
    sandbox.clock.advance(60)
    won = await create(
        sf,
        "Opportunity",
        Name="Acme rollout",
        AccountId=acme,
        StageName="Closed Won",
        CloseDate="2026-01-15",
        Amount=1000.0,
    )
    await create(
        sf, "OpportunityLineItem", OpportunityId=won, Quantity=1, UnitPrice=700, ProductCode="IMPL"
    )
    await create(
        sf, "OpportunityLineItem", OpportunityId=won, Quantity=3, UnitPrice=100, ProductCode="TM"
    )
    sandbox.clock.advance(60)
    open_ = await create(
        sf,
        "Opportunity",
        Name="Initech advisory",
        AccountId=initech,
        StageName="Prospecting",
        CloseDate="2026-03-01",
    )
    orphan = await create(
        sf, "Opportunity", Name="Orphan", StageName="Closed Lost", CloseDate="2026-01-02"
    )
    return {"acme": acme, "initech": initech, "won": won, "open": open_, "orphan": orphan}


async def test_soql_filters_ordering_relationships_and_subqueries(
    autojump_clock, sf: httpx.AsyncClient, sandbox: Sandbox
) -> None:
    ids = await _deal_book(sf, sandbox)
    response = await query(
        sf,
        "SELECT Id, Name, Amount, Account.Name, (SELECT Quantity, TotalPrice, ProductCode FROM "
        "OpportunityLineItems ORDER BY ProductCode DESC) FROM Opportunity WHERE IsWon = true "
        "AND SystemModstamp > 2026-01-01T00:00:30Z",
    )
    body = response.json()
    assert (response.status_code, body["totalSize"], body["done"]) == (200, 1, True)
    [row] = body["records"]
    assert row["attributes"] == {
        "type": "Opportunity",
        "url": f"{DATA}/sobjects/Opportunity/{ids['won']}",
    }
    assert (row["Id"], row["Amount"]) == (ids["won"], 1000.0)
    assert row["Account"]["Name"] == "Acme"
    assert row["Account"]["attributes"]["type"] == "Account"
    lines = row["OpportunityLineItems"]
    assert (lines["totalSize"], lines["done"]) == (2, True)
    assert [line["ProductCode"] for line in lines["records"]] == ["TM", "IMPL"]

    rows = (
        await query(
            sf,
            "select name, account.name, (select id from opportunitylineitems) "
            "from opportunity where isWon = false order by name",
        )
    ).json()["records"]
    assert [(r["Name"], r["Account"] and r["Account"]["Name"]) for r in rows] == [
        ("Initech advisory", "Initech"),
        ("Orphan", None),
    ]
    assert rows[0]["OpportunityLineItems"] is None


@pytest.mark.parametrize(
    ("where", "expected"),
    [
        ("StageName = 'closed won'", ["Acme rollout"]),
        ("StageName != 'Closed Won'", ["Initech advisory", "Orphan"]),
        ("StageName IN ('Prospecting', 'Closed Lost')", ["Initech advisory", "Orphan"]),
        ("StageName NOT IN ('Prospecting')", ["Acme rollout", "Orphan"]),
        ("Amount >= 1000", ["Acme rollout"]),
        ("Amount < 1000", []),
        ("Amount = null", ["Initech advisory", "Orphan"]),
        ("AccountId != null AND Account.BillingCountry = 'GB'", ["Initech advisory"]),
        ("CloseDate <= 2026-01-15", ["Acme rollout", "Orphan"]),
        ("CloseDate > 2026-01-15 OR IsWon = true", ["Acme rollout", "Initech advisory"]),
        ("NOT (IsClosed = true)", ["Initech advisory"]),
        ("Name LIKE 'acme%'", ["Acme rollout"]),
        ("SystemModstamp >= 2026-01-01T00:02:00.000+0000", ["Initech advisory", "Orphan"]),
    ],
)
async def test_soql_where(
    autojump_clock, sf: httpx.AsyncClient, sandbox: Sandbox, where: str, expected: list[str]
) -> None:
    await _deal_book(sf, sandbox)
    response = await query(sf, f"SELECT Name FROM Opportunity WHERE {where} ORDER BY Name ASC")
    assert response.status_code == 200, response.text
    assert [row["Name"] for row in response.json()["records"]] == expected


async def test_soql_order_by_several_columns_limit_and_count(
    autojump_clock, sf: httpx.AsyncClient, sandbox: Sandbox
) -> None:
    await _deal_book(sf, sandbox)
    rows = (
        await query(
            sf,
            "SELECT Name FROM Opportunity "
            "ORDER BY IsClosed DESC, Amount DESC NULLS LAST, Name LIMIT 2",
        )
    ).json()
    assert [row["Name"] for row in rows["records"]] == ["Acme rollout", "Orphan"]
    assert rows["totalSize"] == 2
    offset = (await query(sf, "SELECT Name FROM Opportunity ORDER BY Name LIMIT 1 OFFSET 1")).json()
    assert [row["Name"] for row in offset["records"]] == ["Initech advisory"]
    nulls_first = (await query(sf, "SELECT Name FROM Opportunity ORDER BY Amount, Name")).json()
    assert [row["Name"] for row in nulls_first["records"]] == [
        "Initech advisory",
        "Orphan",
        "Acme rollout",
    ]
    count = (await query(sf, "SELECT COUNT() FROM Opportunity WHERE IsClosed = true")).json()
    assert count == {"totalSize": 2, "done": True, "records": []}


@pytest.mark.parametrize(
    ("soql", "code"),
    [
        ("SELECT Id FROM Account WHERE", "MALFORMED_QUERY"),
        ("SELECT Id Account", "MALFORMED_QUERY"),
        ("SELECT Id, FROM Account", "MALFORMED_QUERY"),
        ("SELECT Id FROM Account LIMIT -1", "MALFORMED_QUERY"),
        ("SELECT Id FROM Account WHERE Name = 'unterminated", "MALFORMED_QUERY"),
        ("SELECT Id FROM Account WHERE Name ~ 'x'", "MALFORMED_QUERY"),
        ("", "MALFORMED_QUERY"),
        ("SELECT Nope__c FROM Account", "INVALID_FIELD"),
        ("SELECT Account.Nope FROM Opportunity", "INVALID_FIELD"),
        ("SELECT Id FROM Widget", "INVALID_TYPE"),
        ("SELECT Id, (SELECT Id FROM Widgets) FROM Opportunity", "INVALID_TYPE"),
        (
            "SELECT Id FROM Account WHERE SystemModstamp > '2026-01-01T00:00:00Z'",
            "INVALID_QUERY_FILTER_OPERATOR",
        ),
        ("SELECT Id FROM Opportunity WHERE IsWon = 'true'", "INVALID_QUERY_FILTER_OPERATOR"),
    ],
)
async def test_soql_errors(autojump_clock, sf: httpx.AsyncClient, soql: str, code: str) -> None:
    response = await query(sf, soql)
    assert response.status_code == 400
    [error] = response.json()
    assert error["errorCode"] == code
    if soql:
        assert "ERROR at Row:1:Column:" in error["message"]


async def test_query_paging_returns_every_record_once(
    autojump_clock, sf: httpx.AsyncClient, sandbox: Sandbox
) -> None:
    state = sandbox.vendors["salesforce"].state
    expected = {state.insert("Account", {"Name": f"Account {n:05d}"}) for n in range(4321)}
    seen: list[str] = []
    pages = []
    response = await query(sf, "SELECT Id FROM Account ORDER BY Name")
    while True:
        body = response.json()
        assert body["totalSize"] == 4321
        pages.append(len(body["records"]))
        seen.extend(row["Id"] for row in body["records"])
        if body["done"]:
            assert "nextRecordsUrl" not in body
            break
        assert body["nextRecordsUrl"].startswith(f"{DATA}/query/01g")
        response = await sf.get(body["nextRecordsUrl"])
    assert pages == [2000, 2000, 321]
    assert len(seen) == len(set(seen))
    assert set(seen) == expected

    small = await query(sf, "SELECT Id FROM Account", **{"Sforce-Query-Options": "batchSize=500"})
    assert len(small.json()["records"]) == 500
    assert small.json()["nextRecordsUrl"].endswith("-500")
    tiny = await query(sf, "SELECT Id FROM Account", **{"Sforce-Query-Options": "batchSize=5"})
    assert len(tiny.json()["records"]) == 200
    stale = await sf.get(f"{DATA}/query/01gRs0000000zzzAAA-2000")
    assert (stale.status_code, stale.json()[0]["errorCode"]) == (400, "INVALID_QUERY_LOCATOR")


async def test_get_updated_and_deleted(
    autojump_clock, sf: httpx.AsyncClient, sandbox: Sandbox
) -> None:
    first = await create(sf, "Account", Name="First")
    sandbox.clock.advance(120)
    second = await create(sf, "Account", Name="Second")
    await sf.delete(f"{DATA}/sobjects/Account/{first}")
    sandbox.clock.advance(120)
    window = {"start": "2026-01-01T00:01:00Z", "end": "2026-01-01T00:04:00Z"}
    updated = (await sf.get(f"{DATA}/sobjects/Account/updated/", params=window)).json()
    assert updated == {"ids": [second], "latestDateCovered": "2026-01-01T00:04:00.000+0000"}
    deleted = (await sf.get(f"{DATA}/sobjects/Account/deleted/", params=window)).json()
    assert [entry["id"] for entry in deleted["deletedRecords"]] == [first]
    bad = await sf.get(
        f"{DATA}/sobjects/Account/updated/", params={"start": window["end"], "end": window["start"]}
    )
    assert bad.json()[0]["errorCode"] == "INVALID_REPLICATION_DATE"


# -- daily API limit ---------------------------------------------------------------------


async def test_daily_limit_header_and_403_until_the_window_rolls(
    autojump_clock, clock: SandboxClock
) -> None:
    sandbox = build_sandbox(
        SandboxConfig(vendors=("salesforce",), options={"salesforce": {"daily_api_limit": 3}}),
        clock=clock,
    )
    async with client_for(sandbox, "salesforce") as sf:
        token = (await sf.post("/services/oauth2/token", data=CREDENTIALS)).json()["access_token"]
        sf.headers["Authorization"] = f"Bearer {token}"
        headers = [(await sf.get(f"{DATA}/limits")).headers["Sforce-Limit-Info"] for _ in range(3)]
        assert headers == ["api-usage=1/3", "api-usage=2/3", "api-usage=3/3"]
        refused = await sf.get(f"{DATA}/limits")
        assert refused.status_code == 403
        assert refused.json() == [
            {"message": "TotalRequests Limit exceeded.", "errorCode": "REQUEST_LIMIT_EXCEEDED"}
        ]
        assert refused.headers["Sforce-Limit-Info"] == "api-usage=3/3"
        assert (await sf.get("/_sandbox/api-usage")).json() == {"used": 3, "limit": 3}
        sandbox.clock.advance(86_400)
        token = (await sf.post("/services/oauth2/token", data=CREDENTIALS)).json()["access_token"]
        sf.headers["Authorization"] = f"Bearer {token}"
        again = await sf.get(f"{DATA}/limits")
        assert again.status_code == 200
        assert again.json() == {"DailyApiRequests": {"Max": 3, "Remaining": 2}}


async def test_describe_lists_fields_and_rules(autojump_clock, sf: httpx.AsyncClient) -> None:
    describe = (await sf.get(f"{DATA}/sobjects/Opportunity/describe")).json()
    fields = {field["name"]: field for field in describe["fields"]}
    assert describe["keyPrefix"] == "006"
    assert fields["StageName"]["nillable"] is False
    assert fields["IsWon"]["updateable"] is False
    assert fields["PSA_Project_Id__c"]["externalId"] is True
    assert fields["AccountId"]["referenceTo"] == ["Account"]
    assert describe["childRelationships"][0]["relationshipName"] == "OpportunityLineItems"


async def test_the_last_page_can_be_fetched_again(
    autojump_clock, sf: httpx.AsyncClient, sandbox: Sandbox
) -> None:
    state = sandbox.vendors["salesforce"].state
    for n in range(250):
        state.insert("Account", {"Name": f"A{n}"})
    first = await query(sf, "SELECT Id FROM Account", **{"Sforce-Query-Options": "batchSize=200"})
    last = await sf.get(first.json()["nextRecordsUrl"])
    again = await sf.get(first.json()["nextRecordsUrl"])
    assert last.json() == again.json()
    assert (len(again.json()["records"]), again.json()["done"]) == (50, True)

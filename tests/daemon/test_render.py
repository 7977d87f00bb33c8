from __future__ import annotations

import json

import msgspec

from daemon.render import key_values, table, to_json


def test_table_aligns_text_left_and_numbers_right() -> None:
    text = table(
        [("crm", "salesforce", 10, 100000), ("erp", "netsuite", 4.5, None)],
        ("system", "vendor", "rate/s", "daily quota"),
    )

    assert text.splitlines() == [
        "SYSTEM  VENDOR      RATE/S  DAILY QUOTA",
        "crm     salesforce      10      100,000",
        "erp     netsuite       4.5            -",
    ]


def test_table_accepts_mappings_and_lists() -> None:
    text = table(
        [{"workflow": "reconcile", "systems": ["psa", "erp"], "enabled": True}],
        ("workflow", "enabled", "systems"),
    )

    assert text.splitlines()[1] == "reconcile  yes      psa, erp"


def test_key_values_pads_keys() -> None:
    assert key_values([("journal", "/j"), ("control socket", "/c")]) == (
        "journal         /j\ncontrol socket  /c"
    )


def test_to_json_encodes_structs() -> None:
    class Point(msgspec.Struct):
        x: int

    assert json.loads(to_json({"points": [Point(1)]})) == {"points": [{"x": 1}]}

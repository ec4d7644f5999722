from __future__ import annotations

from typing import Any

import pytest

from lictor.core.risk.arguments import (
    MAX_DESTINATIONS,
    MAX_NODES,
    MAX_VALUE_CHARS,
    Amount,
    DestinationKind,
    classify_value,
    find_amounts,
    find_destinations,
    read_arguments,
    requested_items,
)


def keys(arguments: dict[str, Any]) -> list[tuple[str, str]]:
    return [(d.path, d.key) for d in find_destinations(arguments)]


def test_recipients_by_key_name_are_normalised_emails() -> None:
    args = {"to": ["Bob@Corp.Example", "Ann Lee <ann@corp.example>"], "subject": "Q3"}
    assert keys(args) == [
        ("to.0", "email:bob@corp.example"),
        ("to.1", "email:ann@corp.example"),
    ]


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        ({"url": "https://Evil.Example:8443/pay?x=1"}, ("url", "host:evil.example")),
        ({"webhookUrl": "http://hooks.example/x"}, ("webhookUrl", "host:hooks.example")),
        ({"domain": "Corp.Example."}, ("domain", "host:corp.example")),
        ({"iban": "de89 3704 0044 0532 0130 00"}, ("iban", "iban:DE89370400440532013000")),
        ({"account_number": "12-3456-78"}, ("account_number", "account:12345678")),
        ({"creditor": {"account": 99887766}}, ("creditor.account", "account:99887766")),
        ({"phone": "+49 (30) 1234-567"}, ("phone", "phone:49301234567")),
        ({"to": "+1 415 555 0100"}, ("to", "phone:14155550100")),
        ({"channel": "#Finance-Alerts"}, ("channel", "channel:#finance-alerts")),
        ({"chat_id": 4242}, ("chat_id", "channel:4242")),
        ({"file_id": "1AbC_xyz"}, ("file_id", "file:1AbC_xyz")),
        ({"payee": "ACME Corp"}, ("payee", "id:acme corp")),
        ({"account": "12-3"}, ("account", "id:12-3")),  # too few digits for an account
        ({"payee": {"id": "ACME-1"}}, ("payee.id", "id:acme-1")),  # "id" inherits the kind
        ({"to": 12345}, ("to", "id:12345")),
        ({"iban": 12345678}, ("iban", "account:12345678")),
        (
            {"to": [{"address": "bob@corp.example", "name": "Bob"}]},
            ("to.0.address", "email:bob@corp.example"),
        ),
        ({"mailto": "mailto:Bob@Corp.Example?subject=hi"}, ("mailto", "email:bob@corp.example")),
    ],
)
def test_destination_keys_and_normalisation(
    arguments: dict[str, Any], expected: tuple[str, str]
) -> None:
    assert keys(arguments) == [expected]


def test_shape_alone_marks_emails_urls_and_ibans_but_not_bare_numbers() -> None:
    args = {
        "note": "bob@corp.example",
        "source": "https://docs.example/page",
        "memo": "GB82 WEST 1234 5698 7654 32",
        "ref": "12345678",
        "text": "write to bob@corp.example soon",
        "flag": True,
        "nothing": None,
    }
    assert keys(args) == [
        ("note", "email:bob@corp.example"),
        ("source", "host:docs.example"),
        ("memo", "iban:GB82WEST12345698765432"),
    ]


def test_a_postal_address_is_personal_data_not_a_destination() -> None:
    # An HR record's new home address: "address" beside a postal word names a place
    # where someone lives, not a channel data can leave through.
    record = {
        "employee_id": "E-1042",
        "fields": {"home_address": "12 Hauptstrasse, Berlin"},
        "shippingAddress": {"street": "Am Markt 3", "city": "Bonn"},
        "billing_addresses": ["Parkweg 7, 10115 Berlin"],
    }
    assert keys(record) == []
    # Its shape still counts on its own, and "address" alone, or with a mail word, is
    # still a recipient.
    assert keys({"home_address": "bob@corp.example"}) == [
        ("home_address", "email:bob@corp.example")
    ]
    assert keys({"address": "Bob"}) == [("address", "id:bob")]
    assert keys({"email_address": "Bob"}) == [("email_address", "id:bob")]
    assert keys({"reply_address": "Bob"}) == [("reply_address", "id:bob")]


def test_kind_nouns_read_well() -> None:
    assert DestinationKind.EMAIL.noun == "recipient"
    dest = classify_value("bob@corp.example")
    assert dest is not None
    assert dest.to_json() == {
        "path": "",
        "kind": "email",
        "value": "bob@corp.example",
        "key": "email:bob@corp.example",
    }


def test_long_values_and_unreadable_values_are_not_destinations() -> None:
    assert find_destinations({"to": "x" * (MAX_VALUE_CHARS + 1) + "@corp.example"}) == ()
    assert find_destinations({"note": "https://"}) == ()
    # Under a destination key an unreadable value still counts, as an opaque id.
    assert keys({"url": "https://"}) == [("url", "id:https://")]
    assert classify_value(3.5, DestinationKind.ACCOUNT) is None
    assert classify_value(10**40, DestinationKind.ACCOUNT) is None
    assert classify_value(12, None) is None


def test_the_walk_is_bounded() -> None:
    many = {"to": [f"user{i}@corp.example" for i in range(1000)]}
    assert len(find_destinations(many)) == MAX_DESTINATIONS
    deep: Any = "bob@corp.example"
    for _ in range(50):
        deep = {"to": deep}
    assert find_destinations(deep) == ()


def test_same_destination_twice_at_one_path_counts_once() -> None:
    args = {"to": {"email": "bob@corp.example", "address": "BOB@corp.example"}}
    assert len(find_destinations(args)) == 2  # two paths
    assert len({d.key for d in find_destinations(args)}) == 1


def test_amounts() -> None:
    args = {
        "amount": 1200.5,
        "currency": "EUR",
        "totalPrice": "1,200.50",
        "fee": True,
        "lines": [{"qty": 3, "description": "x"}],
        "value": "n/a",
    }
    assert find_amounts(args) == (
        Amount("amount", 1200.5),
        Amount("totalPrice", "1,200.50"),
        Amount("lines.0.qty", 3),
    )


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        ({"limit": 50}, 50),
        ({"maxResults": 10, "page_size": 200}, 200),
        ({"per_page": True}, None),
        ({"limit": -1}, None),
        ({"limit": "50"}, None),
        ({"query": "x"}, None),
    ],
)
def test_requested_items(arguments: dict[str, Any], expected: int | None) -> None:
    assert requested_items(arguments) == expected


def test_odd_keys_and_deep_lists_are_skipped() -> None:
    deep: Any = "bob@corp.example"
    for _ in range(20):
        deep = [deep]
    assert find_destinations({"to": deep}) == ()
    assert find_destinations({"to": {1: "bob@corp.example"}}) == ()
    assert requested_items({"limit": 50, "top": 10}) == 50


def test_top_level_keys_past_the_node_budget_are_not_read() -> None:
    args: dict[Any, Any] = {f"k{i}": i for i in range(MAX_NODES + 5)}
    args["to"] = "bob@corp.example"
    args[7] = "carol@corp.example"
    assert read_arguments(args).destinations == ()
    assert keys({7: "carol@corp.example", "to": "bob@corp.example"}) == [  # type: ignore[dict-item]
        ("to", "email:bob@corp.example")
    ]

from __future__ import annotations

import pytest

from lictor.core.risk.detect import (
    MAX_SCAN_CHARS,
    DataLabel,
    detect_labels,
    find_ibans,
    flatten_text,
    is_luhn_valid,
    is_valid_iban,
)

VALID_IBANS = [
    "DE89 3704 0044 0532 0130 00",
    "GB82 WEST 1234 5698 7654 32",
    "FR14 2004 1010 0505 0001 3M02 606",
    "NL91ABNA0417164300",
    "ch93 0076 2011 6238 5295 7",
]


@pytest.mark.parametrize("iban", VALID_IBANS)
def test_valid_iban_passes_mod97(iban: str) -> None:
    assert is_valid_iban(iban)
    assert detect_labels(f"please pay {iban} today") == {DataLabel.IBAN}


@pytest.mark.parametrize(
    "iban",
    [
        "DE89 3704 0044 0532 0130 01",  # checksum broken
        "DE88 3704 0044 0532 0130 00",  # check digits broken
        "DE89 3704 0044 0532 0130",  # too short for DE
        "ZZ89 3704 0044 0532 0130 00",  # no such country
        "",
    ],
)
def test_invalid_iban_fails(iban: str) -> None:
    assert not is_valid_iban(iban)
    assert DataLabel.IBAN not in detect_labels(f"pay {iban}")


def test_find_ibans_cuts_to_country_length_and_skips_false_starts() -> None:
    text = "ref AB12 DE89 3704 0044 0532 0130 00 and more"
    assert find_ibans(text) == ["DE89370400440532013000"]


@pytest.mark.parametrize(
    "card",
    [
        "4111 1111 1111 1111",
        "5500-0000-0000-0004",
        "378282246310005",
        "6011111111111117",
        "3530111333300000",
        "3056 930902 5904",  # Diners Club
        "6212 3456 7890 1232",  # UnionPay
    ],
)
def test_valid_card_is_labelled(card: str) -> None:
    assert DataLabel.CARD in detect_labels(f"card: {card}")


@pytest.mark.parametrize(
    "text",
    [
        "4111 1111 1111 1112",  # Luhn fails
        "0000 0000 0000 0000",  # passes Luhn, but one repeated digit
        "9111 1111 1111 1111 1",  # unknown issuer
        "order 1234567890123",
    ],
)
def test_invalid_card_is_not_labelled(text: str) -> None:
    assert DataLabel.CARD not in detect_labels(text)


def test_card_inside_a_longer_digit_run_is_found() -> None:
    assert DataLabel.CARD in detect_labels("order 12 4111 1111 1111 1111 shipped")


def test_luhn() -> None:
    assert is_luhn_valid("79927398713")
    assert not is_luhn_valid("79927398710")
    assert not is_luhn_valid("")
    assert not is_luhn_valid("12a4")


@pytest.mark.parametrize(
    "text",
    [
        "aws_access_key_id AKIAIOSFODNN7EXAMPLE",
        "token ghp_" + "a1B2c3D4e5" * 4,
        "github_pat_" + "A1b2C3d4E5f6G7h8I9j0K1",
        "SLACK=xoxb-123456789012-abcdefghijkl",
        "https://hooks.slack.com/services/T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX",
        "key AIza" + "SyA1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q",
        "sk_live_" + "4eC39HqLyjWDarjtT1zdp7dc",
        'config = {"api_key": "q8Zr3LmX9pT2vB7kN4sW"}',
        "export CLIENT_SECRET=Zt7q9PxW2mLk4Rb8Vn3c",
    ],
)
def test_api_keys_and_tokens_are_secrets(text: str) -> None:
    assert DataLabel.API_KEY in detect_labels(text)


@pytest.mark.parametrize(
    "text",
    [
        "token: aaaaaaaaaaaaaaaaaaaaaaaa",  # no entropy
        "the api_key is documented in the wiki",
        "secret = configurationvalue",  # letters only
        "AKIAIOSFODNN7EXAMPL",  # one short
    ],
)
def test_low_entropy_or_malformed_tokens_are_not_secrets(text: str) -> None:
    assert DataLabel.API_KEY not in detect_labels(text)


def test_private_key_header() -> None:
    pem = "-----BEGIN RSA PRIVATE KEY-----\nMIIEow...\n-----END RSA PRIVATE KEY-----"
    assert detect_labels(pem) == {DataLabel.PRIVATE_KEY}
    assert detect_labels("-----BEGIN PUBLIC KEY-----") == frozenset()


def test_passwords_but_not_placeholders() -> None:
    assert DataLabel.PASSWORD in detect_labels("password: Tr0ub4dor&3")
    assert DataLabel.PASSWORD in detect_labels({"db": {"password": "s3cretPass"}})
    assert DataLabel.PASSWORD not in detect_labels("password: ********")
    assert DataLabel.PASSWORD not in detect_labels("password=<redacted>")


def test_emails() -> None:
    assert detect_labels("mail Bob.Smith+q3@Corp.Example now") == {DataLabel.EMAIL}
    assert detect_labels("user@localhost and @handles") == frozenset()


@pytest.mark.parametrize(
    "text", ["call +1 415 555 0100", "+49 (30) 1234-5678", "(415) 555-0100", "415-555-0100"]
)
def test_phones(text: str) -> None:
    assert DataLabel.PHONE in detect_labels(text)


@pytest.mark.parametrize("text", ["invoice 4155550100", "2026-11-25", "+12", "v1.2.3"])
def test_bare_numbers_are_not_phones(text: str) -> None:
    assert DataLabel.PHONE not in detect_labels(text)


def test_json_is_scanned_with_its_keys() -> None:
    output = {
        "customers": [{"email": "ann@x.example", "iban": "DE89370400440532013000"}],
        "count": 1,
        "ok": True,
        "none": None,
    }
    assert detect_labels(output) == {DataLabel.EMAIL, DataLabel.IBAN}
    assert "customers\nemail: ann@x.example" in flatten_text(output)


def test_scanning_stops_at_the_budget() -> None:
    assert detect_labels("x" * MAX_SCAN_CHARS + " bob@corp.example") == frozenset()
    assert detect_labels("x" * 10 + " bob@corp.example", max_chars=20) == frozenset()
    padded = {"a": "x" * MAX_SCAN_CHARS, "b": "bob@corp.example"}
    assert detect_labels(padded) == frozenset()


def test_hostile_inputs_are_fast_and_total() -> None:
    for text in ("a" * MAX_SCAN_CHARS, "1 " * 30_000, "+1" * 30_000, "a@" * 30_000):
        assert isinstance(detect_labels(text), frozenset)
    assert detect_labels(10**5000) == frozenset()
    assert detect_labels(float("nan")) == frozenset()
    deep: object = "bob@corp.example"
    for _ in range(100):
        deep = [deep]
    assert detect_labels(deep) == frozenset()  # deeper than MAX_DEPTH: not walked


def test_odd_values_are_skipped() -> None:
    assert detect_labels({"a": object(), 1: "bob@corp.example"}) == {DataLabel.EMAIL}
    assert flatten_text({1: "x"}) == "x"
    assert not is_valid_iban("DE89 3704 0044 0532 0130 0!")
    assert DataLabel.PHONE not in detect_labels("+1 234 567")  # seven digits
    assert DataLabel.PHONE in detect_labels("+1 234 567 or +1 415 555 0100")
    nested: object = {"to": "bob@corp.example"}
    for _ in range(40):
        nested = {"x": nested}
    assert detect_labels(nested) == frozenset()

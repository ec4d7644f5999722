"""Property tests: detectors are total on any JSON, and their checksums catch typos."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from lictor.core.risk.detect import DataLabel, detect_labels, is_luhn_valid, is_valid_iban

LABELS = {label.value for label in DataLabel}


def at_most(examples: int) -> settings:
    """Cap the profile's example count: generating JSON dominates the run time."""
    return settings(max_examples=min(settings().max_examples, examples))


json_values: st.SearchStrategy[Any] = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(), inner, max_size=5),
    max_leaves=12,
)


@at_most(120)
@given(json_values)
def test_any_json_gives_known_labels(value: Any) -> None:
    labels = detect_labels(value)
    assert isinstance(labels, frozenset)
    assert labels <= LABELS


@at_most(200)
@given(st.text(alphabet=st.sampled_from("0123456789 -+()@.:=aAkKzZ_\n"), max_size=300))
def test_any_text_in_a_tricky_alphabet_never_raises(text: str) -> None:
    assert detect_labels(text) <= LABELS


def _luhn_complete(body: str) -> str:
    for check in "0123456789":
        if is_luhn_valid(body + check):
            return body + check
    raise AssertionError("some check digit always completes a Luhn number")


@at_most(200)
@given(st.text(alphabet="0123456789", min_size=1, max_size=30))
def test_exactly_one_check_digit_completes_any_number(body: str) -> None:
    assert sum(is_luhn_valid(body + c) for c in "0123456789") == 1


@at_most(200)
@given(
    st.text(alphabet="0123456789", min_size=12, max_size=30),
    st.integers(0, 10_000),
    st.integers(1, 9),
)
def test_luhn_catches_every_single_digit_change(body: str, where: int, shift: int) -> None:
    number = _luhn_complete(body)
    i = where % len(number)
    digit = str((int(number[i]) + shift) % 10)
    assert not is_luhn_valid(number[:i] + digit + number[i + 1 :])


def _german_iban(bban: str) -> str:
    check = 98 - int(bban + "131400") % 97  # D=13, E=14, then "00"
    return f"DE{check:02d}{bban}"


@at_most(200)
@given(st.text(alphabet="0123456789", min_size=18, max_size=18))
def test_computed_iban_is_valid_and_detected(bban: str) -> None:
    iban = _german_iban(bban)
    assert is_valid_iban(iban)
    spaced = " ".join(iban[i : i + 4] for i in range(0, len(iban), 4))
    assert DataLabel.IBAN in detect_labels(f"IBAN: {spaced}.")


@at_most(200)
@given(
    st.text(alphabet="0123456789", min_size=18, max_size=18),
    st.integers(2, 21),
    st.integers(1, 9),
)
def test_iban_checksum_catches_every_single_digit_change(bban: str, i: int, shift: int) -> None:
    iban = _german_iban(bban)
    digit = str((int(iban[i]) + shift) % 10)
    assert not is_valid_iban(iban[:i] + digit + iban[i + 1 :])

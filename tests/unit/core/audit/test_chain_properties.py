"""Property tests: any sealed chain verifies; any change to record i fails at i."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from lictor.core.audit import (
    ChainVerifier,
    Checkpoint,
    SealedRecord,
    canonical_json,
    issue_checkpoint,
    leaf_data,
    seal_many,
    verify_chain,
    verify_with_checkpoint,
)
from lictor.errors import AuditIntegrityError

scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8)
)
json_values = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=6), children, max_size=4)
    ),
    max_leaves=8,
)
payloads = st.dictionaries(st.text(max_size=6), json_values, max_size=4)
# Rich payloads where content matters (round trips, payload edits); small ones where only
# the chain's shape does, which keeps generation cheap.
rich_chains = st.lists(payloads, min_size=1, max_size=3).map(lambda p: seal_many(None, p))
small_payloads = st.dictionaries(st.sampled_from("abc"), st.integers(0, 9), max_size=2)
chains = st.lists(small_payloads, min_size=1, max_size=8).map(lambda p: seal_many(None, p))


class FakeSigner:
    key_id = "fake-key"

    def sign(self, message: bytes) -> bytes:
        return message[-16:]

    def check(self, message: bytes, signature: bytes) -> bool:
        return message[-16:] == signature


def failure_index(records: list[SealedRecord]) -> int | None:
    try:
        verify_chain(records)
    except AuditIntegrityError as exc:
        return exc.index
    return -1  # verified: never equal to an expected index


def mutate(value: Any, data: st.DataObject) -> Any:
    """Return a copy of a JSON value with one change somewhere inside it."""
    if isinstance(value, dict) and value and data.draw(st.booleans()):
        key = data.draw(st.sampled_from(sorted(value)))
        action = data.draw(st.sampled_from(["change", "delete", "rename"]))
        rest = {k: v for k, v in value.items() if k != key}
        if action == "change":
            return {**rest, key: mutate(value[key], data)}
        if action == "delete":
            return rest
        return {**rest, key + "x": value[key]}
    if isinstance(value, list) and value and data.draw(st.booleans()):
        i = data.draw(st.integers(0, len(value) - 1))
        return [*value[:i], mutate(value[i], data), *value[i + 1 :]]
    if isinstance(value, dict):
        return {**value, data.draw(st.text(max_size=6)): data.draw(json_values)}
    if isinstance(value, list):
        return [*value, data.draw(json_values)]
    return data.draw(json_values)


def at_most(examples: int) -> settings:
    """The profile's example count, capped for a test that is slow under ``ci``."""
    return settings(max_examples=min(settings().max_examples, examples))


@at_most(300)
@given(rich_chains)
def test_any_sealed_chain_verifies_from_records_json_and_canonical_bytes_alike(
    records: list[SealedRecord],
) -> None:
    summary = verify_chain(records)
    assert summary.size == len(records)
    parsed = [SealedRecord.from_json(r.to_json()) for r in records]
    assert verify_chain(parsed) == summary
    from_bytes = ChainVerifier()
    for r in records:
        from_bytes.add_canonical(r.seq, r.prev_hash, canonical_json(r.payload), r.record_hash)
    assert from_bytes.summary() == summary


@at_most(400)
@given(rich_chains, st.data())
def test_changing_the_payload_of_record_i_anywhere_fails_at_i(
    records: list[SealedRecord], data: st.DataObject
) -> None:
    i = data.draw(st.integers(0, len(records) - 1), label="i")
    payload = mutate(dict(records[i].payload), data)
    assume(canonical_json(payload) != canonical_json(records[i].payload))
    records[i] = dataclasses.replace(records[i], payload=payload)
    assert failure_index(records) == i


@at_most(300)
@given(chains, st.data())
def test_changing_seq_prev_hash_or_record_hash_of_record_i_fails_at_i(
    records: list[SealedRecord], data: st.DataObject
) -> None:
    i = data.draw(st.integers(0, len(records) - 1), label="i")
    field = data.draw(st.sampled_from(["seq", "prev_hash", "record_hash"]), label="field")
    old = getattr(records[i], field)
    new: Any = data.draw(
        st.integers()
        if field == "seq"
        else st.text(alphabet="0123456789abcdefABCDEF", min_size=63, max_size=65),
        label="new",
    )
    assume(new != old)
    records[i] = dataclasses.replace(records[i], **{field: new})
    assert failure_index(records) == i


@given(
    st.lists(small_payloads, min_size=2, max_size=8).map(lambda p: seal_many(None, p)), st.data()
)
def test_deleting_or_swapping_records_fails_at_the_first_affected_position(
    records: list[SealedRecord], data: st.DataObject
) -> None:
    i = data.draw(st.integers(0, len(records) - 2), label="i")
    deleted = records[:i] + records[i + 1 :]
    assert failure_index(deleted) == i
    swapped = [*records[:i], records[i + 1], records[i], *records[i + 2 :]]
    assert failure_index(swapped) == i


@at_most(300)
@given(chains, st.data())
def test_any_truncation_fails_against_a_checkpoint_of_the_full_trail(
    records: list[SealedRecord], data: st.DataObject
) -> None:
    signer = FakeSigner()
    checkpoint = issue_checkpoint(
        verify_chain(records), issued_at="2026-11-25T14:03:22Z", signer=signer
    )
    assert Checkpoint.from_json(checkpoint.to_json()) == checkpoint
    kept = data.draw(st.integers(0, len(records) - 1), label="kept")
    with pytest.raises(AuditIntegrityError) as info:
        verify_with_checkpoint(records[:kept], checkpoint, signer.check)
    assert info.value.index == kept


def shuffled(value: Any, data: st.DataObject) -> Any:
    """The same JSON value with every object's keys in a random insertion order."""
    if isinstance(value, dict):
        keys = data.draw(st.permutations(list(value)))
        return {k: shuffled(value[k], data) for k in keys}
    if isinstance(value, list):
        return [shuffled(item, data) for item in value]
    return value


@at_most(300)
@given(json_values, st.data())
def test_canonical_json_does_not_depend_on_key_order(value: Any, data: st.DataObject) -> None:
    assert canonical_json(shuffled(value, data)) == canonical_json(value)


@given(json_values)
def test_canonical_json_reads_back_to_the_same_canonical_bytes(value: Any) -> None:
    text = canonical_json(value)
    assert canonical_json(json.loads(text)) == text
    assert text == text.strip()


@given(st.dictionaries(st.text(max_size=4), st.integers(), max_size=8))
def test_canonical_json_orders_members_by_utf16_code_units(value: dict[str, int]) -> None:
    order = list(json.loads(canonical_json(value)))
    assert order == sorted(value, key=lambda k: k.encode("utf-16-be", "surrogatepass"))


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_canonical_float_reads_back_exactly_and_uses_exponents_only_where_ecmascript_does(
    number: float,
) -> None:
    text = canonical_json(number).decode()
    assert float(text) == number
    magnitude = abs(number)
    # ECMA-262 Number::toString: plain digits for 1e-6 <= |x| < 1e21, exponent outside.
    assert ("e" in text) == (magnitude != 0 and not 1e-6 <= magnitude < 1e21)
    assert not text.endswith(".0")


@at_most(200)
@given(st.integers(0, 2**40), st.text(max_size=70), payloads)
def test_leaf_data_is_canonical_json_of_seq_prev_and_payload(
    seq: int, prev_hash: str, payload: dict[str, Any]
) -> None:
    expected = canonical_json({"seq": seq, "prev": prev_hash, "payload": payload})
    assert leaf_data(seq, prev_hash, payload) == expected

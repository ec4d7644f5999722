"""Example tests for the audit chain, its checkpoints, and canonical JSON."""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import itertools
import json
import math
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from lictor.core.audit import (
    CHECKPOINT_DOMAIN,
    GENESIS_HASH,
    ChainVerifier,
    Checkpoint,
    SealedRecord,
    canonical_json,
    checkpoint_message,
    inclusion_proof,
    issue_checkpoint,
    leaf_data,
    leaf_hash,
    record_hash_of,
    root_hash,
    seal,
    seal_many,
    verify_against_checkpoint,
    verify_chain,
    verify_checkpoint_signature,
    verify_inclusion,
    verify_with_checkpoint,
)
from lictor.errors import AuditIntegrityError

ISSUED_AT = "2026-11-25T14:03:22.418Z"


class FakeSigner:
    """HMAC stands in for Ed25519 here, so the core's tests need no crypto library."""

    key_id = "fake-key"

    def __init__(self, secret: bytes = b"secret") -> None:
        self._secret = secret

    def sign(self, message: bytes) -> bytes:
        return hmac.new(self._secret, message, hashlib.sha256).digest()

    def check(self, message: bytes, signature: bytes) -> bool:
        return hmac.compare_digest(self.sign(message), signature)


def entries(n: int) -> list[dict[str, Any]]:
    return [
        {
            "decision_id": f"d{i}",
            "agent_id": "mail-assistant",
            "outcome": "allow" if i % 3 else "deny",
            "request": {"tool": "send_email", "args": {"to": ["emma@corp.example"], "n": i}},
            "risk": {"score": 0.25, "signals": []},
        }
        for i in range(n)
    ]


def trail(n: int) -> list[SealedRecord]:
    return seal_many(None, entries(n))


def checkpoint_for(records: list[SealedRecord], signer: FakeSigner) -> Checkpoint:
    return issue_checkpoint(verify_chain(records), issued_at=ISSUED_AT, signer=signer)


def fails_at(records: list[SealedRecord]) -> int | None:
    with pytest.raises(AuditIntegrityError) as info:
        verify_chain(records)
    return info.value.index


# --- sealing and verifying -------------------------------------------------------------


def test_sealed_chain_verifies_and_summary_commits_to_merkle_root() -> None:
    records = trail(10)
    summary = verify_chain(records)
    assert summary.size == 10
    assert summary.head_hash == records[-1].record_hash
    assert summary.merkle_root == root_hash([bytes.fromhex(r.record_hash) for r in records]).hex()


def test_first_record_links_to_genesis_and_each_record_to_the_one_before() -> None:
    records = trail(4)
    assert records[0].seq == 0
    assert records[0].prev_hash == GENESIS_HASH == "0" * 64
    for before, after in itertools.pairwise(records):
        assert after.seq == before.seq + 1
        assert after.prev_hash == before.record_hash


def test_record_hash_is_the_merkle_leaf_hash_of_its_leaf_data() -> None:
    record = seal(None, {"a": 1})
    data = leaf_data(record.seq, record.prev_hash, record.payload)
    assert data == b'{"payload":{"a":1},"prev":"' + GENESIS_HASH.encode() + b'","seq":0}'
    assert record.record_hash == leaf_hash(data).hex()
    assert record.record_hash == record_hash_of(0, GENESIS_HASH, {"a": 1})


def test_records_prove_inclusion_in_the_summary_root() -> None:
    records = trail(9)
    leaves = [bytes.fromhex(r.record_hash) for r in records]
    root = bytes.fromhex(verify_chain(records).merkle_root)
    proof = inclusion_proof(4, leaves)
    assert verify_inclusion(leaves[4], 4, 9, proof, root)


def test_seal_stores_a_copy_so_later_changes_to_the_entry_cannot_alter_it() -> None:
    entry: dict[str, Any] = {"args": {"to": ["a@example.com"]}, "when": (1, 2)}
    record = seal(None, entry)
    entry["args"]["to"].append("attacker@example.com")
    assert record.payload == {"args": {"to": ["a@example.com"]}, "when": [1, 2]}
    verify_chain([record])


def test_seal_rejects_payload_that_is_not_json() -> None:
    with pytest.raises(ValueError, match="not a JSON number"):
        seal(None, {"risk": math.nan})
    with pytest.raises(TypeError):
        seal(None, {"when": object()})
    not_an_object: Any = [1, 2]
    with pytest.raises(TypeError, match="JSON object"):
        seal(None, not_an_object)


def test_seal_many_continues_after_the_given_head() -> None:
    first = trail(3)
    more = seal_many(first[-1], entries(2))
    assert [r.seq for r in more] == [3, 4]
    verify_chain([*first, *more])


def test_empty_trail_summary_has_genesis_head_and_empty_root() -> None:
    summary = verify_chain([])
    assert summary.size == 0
    assert summary.head_hash == GENESIS_HASH
    assert summary.merkle_root == hashlib.sha256(b"").hexdigest()


def test_verify_chain_consumes_a_one_pass_iterator() -> None:
    records = trail(20)

    def stream() -> Iterator[SealedRecord]:
        yield from records

    assert verify_chain(stream()).size == 20


def test_a_segment_verifies_from_a_given_start() -> None:
    records = trail(8)
    summary = verify_chain(records[5:], start_prev_hash=records[4].record_hash, start_seq=5)
    assert summary.size == 3
    assert summary.first_seq == 5
    assert summary.head_hash == records[-1].record_hash
    with pytest.raises(AuditIntegrityError) as info:
        verify_chain(records[5:], start_seq=5)
    assert info.value.index == 5


def test_chain_verifier_reports_a_summary_at_any_point() -> None:
    records = trail(5)
    verifier = ChainVerifier()
    for record in records[:3]:
        verifier.add(record)
    assert verifier.size == 3
    assert verifier.summary() == verify_chain(records[:3])


def test_canonical_payload_bytes_verify_without_parsing() -> None:
    records = trail(6)
    fast, slow = ChainVerifier(), ChainVerifier()
    for r in records:
        fast.add_canonical(r.seq, r.prev_hash, canonical_json(r.payload), r.record_hash)
        slow.add(r)
    assert fast.summary() == slow.summary() == verify_chain(records)


@pytest.mark.parametrize(
    "change",
    [
        lambda p: p.replace(b'"allow"', b'"deny"'),
        lambda p: p.replace(b":", b": "),  # same value, not canonical
        lambda p: p + b" ",
        lambda p: p[:-1] + b',"x":1}',
    ],
)
def test_changed_canonical_payload_bytes_fail_at_that_record(
    change: Callable[[bytes], bytes],
) -> None:
    first, second = trail(2)
    assert second.payload["outcome"] == "allow"
    verifier = ChainVerifier()
    verifier.add(first)
    payload = change(canonical_json(second.payload))
    assert payload != canonical_json(second.payload)
    with pytest.raises(AuditIntegrityError, match="does not match its contents") as info:
        verifier.add_canonical(1, first.record_hash, payload, second.record_hash)
    assert info.value.index == 1


def test_canonical_payload_bytes_still_need_the_right_seq_and_prev_hash() -> None:
    records = trail(2)
    payload = canonical_json(records[1].payload)
    verifier = ChainVerifier()
    verifier.add(records[0])
    with pytest.raises(AuditIntegrityError, match="seq") as info:
        verifier.add_canonical(2, records[1].prev_hash, payload, records[1].record_hash)
    assert info.value.index == 1
    with pytest.raises(AuditIntegrityError, match="prev_hash"):
        verifier.add_canonical(1, GENESIS_HASH, payload, records[1].record_hash)


# --- tampering -------------------------------------------------------------------------


def with_payload(record: SealedRecord, payload: dict[str, Any]) -> SealedRecord:
    return dataclasses.replace(record, payload=payload)


TAMPERINGS: dict[str, Callable[[SealedRecord], SealedRecord]] = {
    "seq": lambda r: dataclasses.replace(r, seq=r.seq + 100),
    "seq_as_float": lambda r: dataclasses.replace(r, seq=float(r.seq)),  # type: ignore[arg-type]  # 0.0 == 0
    "prev_hash": lambda r: dataclasses.replace(r, prev_hash="f" * 64),
    "record_hash": lambda r: dataclasses.replace(r, record_hash="f" * 64),
    "record_hash_uppercase": lambda r: dataclasses.replace(r, record_hash=r.record_hash.upper()),
    "top_level_value": lambda r: with_payload(r, {**r.payload, "outcome": "review"}),
    "nested_value": lambda r: with_payload(
        r,
        {**r.payload, "request": {**r.payload["request"], "args": {"to": ["x@evil"], "n": 0}}},
    ),
    "list_item": lambda r: with_payload(
        r, {**r.payload, "request": {"tool": "send_email", "args": {"to": [], "n": r.seq}}}
    ),
    "number_type_kept_value_changed": lambda r: with_payload(
        r, {**r.payload, "risk": {"score": 0.26, "signals": []}}
    ),
    "added_key": lambda r: with_payload(r, {**r.payload, "note": "ok"}),
    "removed_key": lambda r: with_payload(r, {k: v for k, v in r.payload.items() if k != "risk"}),
    "renamed_key": lambda r: with_payload(
        r, {("Outcome" if k == "outcome" else k): v for k, v in r.payload.items()}
    ),
    "not_json_any_more": lambda r: with_payload(r, {**r.payload, "risk": math.inf}),
}


@pytest.mark.parametrize("field", sorted(TAMPERINGS))
@pytest.mark.parametrize("i", [0, 3, 6])
def test_changing_any_field_of_a_record_fails_at_that_record(field: str, i: int) -> None:
    records = trail(7)
    records[i] = TAMPERINGS[field](records[i])
    assert fails_at(records) == i


@pytest.mark.parametrize("i", [0, 3, 6])
def test_deleting_a_record_fails_at_its_position(i: int) -> None:
    records = trail(7)
    del records[i]
    if i == 6:
        # Dropping the last record is truncation: only a checkpoint can tell.
        verify_chain(records)
    else:
        assert fails_at(records) == i


@pytest.mark.parametrize("i", [0, 3, 5])
def test_swapping_adjacent_records_fails_at_the_first_of_them(i: int) -> None:
    records = trail(7)
    records[i], records[i + 1] = records[i + 1], records[i]
    assert fails_at(records) == i


def test_inserting_a_record_fails_at_its_position() -> None:
    records = trail(5)
    records.insert(2, seal(records[1], {"forged": True}))
    assert fails_at(records) == 3


def test_resealing_a_changed_record_breaks_the_link_of_the_next() -> None:
    records = trail(5)
    records[2] = seal(records[1], {"outcome": "allow"})
    assert fails_at(records) == 3


def test_integrity_error_messages_say_which_check_failed() -> None:
    records = trail(3)
    with pytest.raises(AuditIntegrityError, match="seq"):
        verify_chain([records[0], records[2]])
    with pytest.raises(AuditIntegrityError, match="prev_hash"):
        verify_chain([records[0], dataclasses.replace(records[1], prev_hash="f" * 64)])
    with pytest.raises(AuditIntegrityError, match="does not match its contents"):
        verify_chain([with_payload(records[0], {})])


# --- checkpoints -----------------------------------------------------------------------


def test_full_trail_verifies_against_its_signed_checkpoint() -> None:
    signer = FakeSigner()
    records = trail(10)
    checkpoint = checkpoint_for(records, signer)
    assert checkpoint.key_id == "fake-key"
    assert checkpoint.tree_size == 10
    assert checkpoint.head_hash == records[-1].record_hash
    assert verify_with_checkpoint(records, checkpoint, signer.check).size == 10
    verify_against_checkpoint(verify_chain(records), checkpoint, signer.check)


def test_records_appended_after_a_checkpoint_still_verify_against_it() -> None:
    signer = FakeSigner()
    records = trail(10)
    checkpoint = checkpoint_for(records[:6], signer)
    assert verify_with_checkpoint(records, checkpoint, signer.check).size == 10


@pytest.mark.parametrize("kept", [0, 1, 5, 9])
def test_truncated_trail_fails_at_first_missing_record(kept: int) -> None:
    signer = FakeSigner()
    records = trail(10)
    checkpoint = checkpoint_for(records, signer)
    with pytest.raises(AuditIntegrityError) as info:
        verify_with_checkpoint(records[:kept], checkpoint, signer.check)
    assert info.value.index == kept
    with pytest.raises(AuditIntegrityError) as info:
        verify_against_checkpoint(verify_chain(records[:kept]), checkpoint, signer.check)
    assert info.value.index == kept


def test_deleting_or_swapping_inside_a_checkpointed_trail_fails_at_that_record() -> None:
    signer = FakeSigner()
    records = trail(10)
    checkpoint = checkpoint_for(records, signer)
    deleted = records[:4] + records[5:]
    with pytest.raises(AuditIntegrityError) as info:
        verify_with_checkpoint(deleted, checkpoint, signer.check)
    assert info.value.index == 4
    swapped = [*records[:4], records[5], records[4], *records[6:]]
    with pytest.raises(AuditIntegrityError) as info:
        verify_with_checkpoint(swapped, checkpoint, signer.check)
    assert info.value.index == 4


def test_rewritten_and_resealed_history_fails_the_checkpoint() -> None:
    signer = FakeSigner()
    payloads = entries(6)
    checkpoint = checkpoint_for(seal_many(None, payloads), signer)
    payloads[2] = {**payloads[2], "outcome": "review"}
    forged = seal_many(None, payloads)
    verify_chain(forged)  # internally consistent ...
    with pytest.raises(AuditIntegrityError, match="rewritten") as info:
        verify_with_checkpoint(forged, checkpoint, signer.check)  # ... but not what was signed
    assert info.value.index is None


def test_checkpoint_of_the_empty_trail() -> None:
    signer = FakeSigner()
    checkpoint = checkpoint_for([], signer)
    assert checkpoint.tree_size == 0
    assert checkpoint.head_hash == GENESIS_HASH
    assert verify_with_checkpoint(trail(2), checkpoint, signer.check).size == 2


@pytest.mark.parametrize(
    "change",
    [
        {"tree_size": 3},
        {"root_hash": "0" * 64},
        {"head_hash": "0" * 64},
        {"issued_at": "2030-01-01T00:00:00Z"},
        {"key_id": "other"},
    ],
)
def test_a_checkpoint_field_changed_after_signing_fails_its_signature(
    change: dict[str, Any],
) -> None:
    signer = FakeSigner()
    checkpoint = dataclasses.replace(checkpoint_for(trail(5), signer), **change)
    with pytest.raises(AuditIntegrityError) as info:
        verify_checkpoint_signature(checkpoint, signer.check)
    assert info.value.index is None


def test_checkpoint_from_another_key_or_unsigned_or_garbled_is_refused() -> None:
    records = trail(3)
    checkpoint = checkpoint_for(records, FakeSigner(b"other key"))
    check = FakeSigner().check
    with pytest.raises(AuditIntegrityError, match="does not verify"):
        verify_with_checkpoint(records, checkpoint, check)
    with pytest.raises(AuditIntegrityError, match="not signed"):
        verify_checkpoint_signature(dataclasses.replace(checkpoint, signature=""), check)
    with pytest.raises(AuditIntegrityError, match="not hex"):
        verify_checkpoint_signature(dataclasses.replace(checkpoint, signature="zz"), check)


def test_checkpoint_message_is_domain_separated_and_excludes_the_signature() -> None:
    checkpoint = checkpoint_for(trail(2), FakeSigner())
    message = checkpoint_message(checkpoint)
    assert message.startswith(CHECKPOINT_DOMAIN)
    assert CHECKPOINT_DOMAIN == b"lictor-checkpoint-v1\n"
    body = json.loads(message[len(CHECKPOINT_DOMAIN) :])
    assert body == {k: v for k, v in checkpoint.to_dict().items() if k != "signature"}
    assert checkpoint_message(dataclasses.replace(checkpoint, signature="")) == message


def test_issue_checkpoint_refuses_a_segment_or_a_time_without_offset() -> None:
    records = trail(4)
    segment = verify_chain(records[2:], start_prev_hash=records[1].record_hash, start_seq=2)
    with pytest.raises(ValueError, match="seq 0"):
        issue_checkpoint(segment, issued_at=ISSUED_AT, signer=FakeSigner())
    with pytest.raises(ValueError, match="RFC 3339"):
        issue_checkpoint(verify_chain(records), issued_at="2026-11-25 14:03", signer=FakeSigner())
    with pytest.raises(ValueError, match="RFC 3339"):
        issue_checkpoint(
            verify_chain(records), issued_at="2026-11-25T14:03:22", signer=FakeSigner()
        )


def test_verify_against_checkpoint_wants_the_summary_at_the_checkpoint_size() -> None:
    signer = FakeSigner()
    records = trail(6)
    checkpoint = checkpoint_for(records[:3], signer)
    with pytest.raises(ValueError, match="checkpoint's size"):
        verify_against_checkpoint(verify_chain(records), checkpoint, signer.check)
    segment = verify_chain(records[1:3], start_prev_hash=records[0].record_hash, start_seq=1)
    with pytest.raises(ValueError, match="seq 0"):
        verify_against_checkpoint(segment, checkpoint, signer.check)


# --- JSON forms ------------------------------------------------------------------------


def test_record_survives_a_json_round_trip_and_still_verifies() -> None:
    records = trail(5)
    parsed = [SealedRecord.from_json(r.to_json()) for r in records]
    assert parsed == records
    verify_chain(parsed)
    assert SealedRecord.from_json(records[0].to_json().encode()) == records[0]


def test_checkpoint_survives_a_json_round_trip_and_still_verifies() -> None:
    signer = FakeSigner()
    checkpoint = checkpoint_for(trail(3), signer)
    parsed = Checkpoint.from_json(checkpoint.to_json())
    assert parsed == checkpoint
    verify_checkpoint_signature(parsed, signer.check)


@pytest.mark.parametrize(
    "text",
    [
        "[]",
        "not json",
        '{"seq": 0, "prev_hash": "", "payload": {}}',
        '{"seq": 0, "prev_hash": "", "payload": {}, "record_hash": "", "extra": 1}',
        '{"seq": "0", "prev_hash": "", "payload": {}, "record_hash": ""}',
        '{"seq": true, "prev_hash": "", "payload": {}, "record_hash": ""}',
        '{"seq": 0, "prev_hash": 1, "payload": {}, "record_hash": ""}',
        '{"seq": 0, "prev_hash": "", "payload": [], "record_hash": ""}',
        '{"seq": 0, "prev_hash": "", "payload": {"x": NaN}, "record_hash": ""}',
        # Parsers disagree on which duplicate wins, so a duplicate is never accepted.
        '{"seq": 0, "prev_hash": "", "payload": {"a": 1, "a": 2}, "record_hash": ""}',
    ],
)
def test_malformed_record_json_is_an_integrity_error(text: str) -> None:
    with pytest.raises(AuditIntegrityError):
        SealedRecord.from_json(text)


def test_malformed_record_json_reports_its_seq_when_it_has_one() -> None:
    with pytest.raises(AuditIntegrityError) as info:
        SealedRecord.from_json('{"seq": 7, "prev_hash": "", "payload": {}}')
    assert info.value.index == 7


@pytest.mark.parametrize(
    "change",
    [
        {"tree_size": -1},
        {"tree_size": "3"},
        {"tree_size": True},
        {"root_hash": "ABC"},
        {"head_hash": "0" * 63},
        {"issued_at": "yesterday"},
        {"issued_at": "2026-11-25T14:03:22"},
        {"issued_at": "2026-13-25T14:03:22Z"},
        {"key_id": 5},
        {"signature": None},
        {"extra": 1},
    ],
)
def test_malformed_checkpoint_json_is_an_integrity_error(change: dict[str, Any]) -> None:
    data = {**checkpoint_for(trail(1), FakeSigner()).to_dict(), **change}
    with pytest.raises(AuditIntegrityError):
        Checkpoint.from_json(json.dumps(data))


def test_checkpoint_json_must_be_an_object() -> None:
    with pytest.raises(AuditIntegrityError):
        Checkpoint.from_json("[1]")


# --- canonical JSON --------------------------------------------------------------------


def test_canonical_json_ignores_key_order() -> None:
    assert canonical_json({"b": 1, "a": {"d": 2, "c": 3}}) == canonical_json(
        {"a": {"c": 3, "d": 2}, "b": 1}
    )
    assert canonical_json({"b": 1, "a": {"d": 2, "c": 3}}) == b'{"a":{"c":3,"d":2},"b":1}'


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_canonical_json_rejects_nan_and_infinity(bad: float) -> None:
    with pytest.raises(ValueError, match="not a JSON number"):
        canonical_json({"x": [bad]})


@pytest.mark.parametrize("key", [1, 1.5, None, True, ("a",)])
def test_canonical_json_rejects_keys_that_are_not_strings(key: object) -> None:
    with pytest.raises(ValueError, match="keys must be str"):
        canonical_json({"ok": 1, key: 2})


def test_canonical_json_rejects_lone_surrogates_and_non_json_types() -> None:
    with pytest.raises(ValueError, match="Unicode"):
        canonical_json({"x": "\ud800"})
    with pytest.raises(TypeError, match="set"):
        canonical_json({"x": {1, 2}})
    with pytest.raises(TypeError, match="bytes"):
        canonical_json(b"raw")


def test_canonical_json_rejects_a_value_that_contains_itself() -> None:
    loop: list[object] = []
    loop.append(loop)
    with pytest.raises(ValueError, match="nests too deeply"):
        canonical_json(loop)


def test_canonical_json_has_no_whitespace_and_keeps_unicode_as_utf8() -> None:
    value = {"name": "Zoë €", "list": [1, True, False, None, 'a\nb\u0001"\\']}
    assert canonical_json(value) == (
        '{"list":[1,true,false,null,"a\\nb\\u0001\\"\\\\"],"name":"Zoë €"}'.encode()
    )


def test_canonical_json_sorts_keys_by_utf16_code_units_as_rfc8785_does() -> None:
    # RFC 8785 §3.2.3's example: U+1F600 (a surrogate pair in UTF-16) sorts before
    # U+FB33, although its code point is larger.
    keys = ["\u20ac", "\r", "\ufb33", "1", "\U0001f600", "\u0080", "\u00f6"]
    text = canonical_json(dict.fromkeys(keys, 0)).decode()
    assert list(json.loads(text)) == [
        "\r",
        "1",
        "\u0080",
        "\u00f6",
        "\u20ac",
        "\U0001f600",
        "\ufb33",
    ]


@pytest.mark.parametrize(
    ("number", "text"),
    [
        # ECMAScript Number::toString, as RFC 8785 §3.2.2.3 and its Appendix B require.
        (0.0, "0"),
        (-0.0, "0"),
        (1.0, "1"),
        (-1.5, "-1.5"),
        (1e16, "10000000000000000"),
        (1e20, "100000000000000000000"),
        (1e21, "1e+21"),
        (1.5e300, "1.5e+300"),
        (1e-6, "0.000001"),
        (1.5e-5, "0.000015"),
        (1e-7, "1e-7"),
        (-1.25e-10, "-1.25e-10"),
        (333333333.3333333, "333333333.3333333"),
        (0.1 + 0.2, "0.30000000000000004"),
        (5e-324, "5e-324"),
        (1.7976931348623157e308, "1.7976931348623157e+308"),
        (123.456, "123.456"),
        (2**53 + 2, "9007199254740994"),
    ],
)
def test_canonical_json_prints_floats_like_ecmascript(number: float, text: str) -> None:
    assert canonical_json(float(number)) == text.encode()


def test_canonical_json_prints_integers_exactly_even_beyond_double_precision() -> None:
    assert canonical_json(2**64 + 1) == b"18446744073709551617"


def test_canonical_json_accepts_any_mapping_and_tuples_and_subclasses() -> None:
    from collections import OrderedDict
    from enum import IntEnum, StrEnum
    from types import MappingProxyType

    class Color(StrEnum):
        RED = "red"

    class Level(IntEnum):
        HIGH = 3

    class Ratio(float):
        def __repr__(self) -> str:
            return "Ratio"

    value = MappingProxyType(OrderedDict([("b", (Color.RED, Level.HIGH, Ratio(0.5))), ("a", 1)]))
    assert canonical_json(value) == b'{"a":1,"b":["red",3,0.5]}'

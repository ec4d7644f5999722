"""The audit chain: seal records into a hash chain, verify it, and check signed checkpoints.

Invariants, in the order :class:`ChainVerifier` checks them:

1. Record *i* has ``seq == i``, so a deleted, inserted or reordered record shows up at
   the first position where the numbering breaks.
2. Record *i*'s ``prev_hash`` is record *i-1*'s ``record_hash`` (``GENESIS_HASH`` for
   record 0), so records cannot be cut out and re-joined.
3. ``record_hash`` is the RFC 9162 leaf hash of the canonical JSON of ``seq``,
   ``prev_hash`` and the whole payload, so no field can change unnoticed. Because the
   chain hash *is* the Merkle leaf hash, the same hashes give inclusion and consistency
   proofs (:mod:`lictor.core.audit.merkle`).
4. A signed :class:`Checkpoint` fixes the tree size and root at some moment; a trail
   shorter than it was truncated, and a trail whose root differs was rewritten.

This module is pure: time (``issued_at``) comes from the caller, and signing and
signature checks are injected, so the core never imports a crypto library.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Final, NoReturn, Protocol

from lictor.core.audit.canonical import canonical_json
from lictor.core.audit.merkle import MerkleAccumulator, leaf_hash
from lictor.errors import AuditIntegrityError

__all__ = [
    "CHECKPOINT_DOMAIN",
    "GENESIS_HASH",
    "ChainSummary",
    "ChainVerifier",
    "Checkpoint",
    "CheckpointSigning",
    "SealedRecord",
    "SignatureCheck",
    "checkpoint_message",
    "issue_checkpoint",
    "leaf_data",
    "record_hash_of",
    "seal",
    "seal_many",
    "verify_against_checkpoint",
    "verify_chain",
    "verify_checkpoint_signature",
    "verify_with_checkpoint",
]

GENESIS_HASH: Final = "0" * 64
"""The ``prev_hash`` of the first record: there is nothing before it."""

CHECKPOINT_DOMAIN: Final = b"lictor-checkpoint-v1\n"
"""Prefix of every signed checkpoint message.

Domain separation: a signature made over a checkpoint can never be replayed as a
signature over any other kind of message the same key might sign, and vice versa.
"""

SignatureCheck = Callable[[bytes, bytes], bool]
"""``check(message, signature) -> bool``: True only for a valid signature by a trusted key."""

_HEX_DIGITS: Final = frozenset("0123456789abcdef")
_SHA256_HEX_LENGTH: Final = 64
_RECORD_FIELDS: Final = frozenset({"seq", "prev_hash", "payload", "record_hash"})
_CHECKPOINT_FIELDS: Final = frozenset(
    {"tree_size", "root_hash", "head_hash", "issued_at", "key_id", "signature"}
)


@dataclass(frozen=True, slots=True)
class SealedRecord:
    """One audit entry, sealed into the chain.

    Attributes:
        seq: 0-based position in the trail.
        prev_hash: Hex ``record_hash`` of the record before (``GENESIS_HASH`` for seq 0).
        payload: The whole audit entry as a JSON object; every field is under the hash.
        record_hash: Hex SHA-256 leaf hash over ``seq``, ``prev_hash`` and ``payload``.
    """

    seq: int
    prev_hash: str
    payload: Mapping[str, Any]
    record_hash: str

    def to_dict(self) -> dict[str, Any]:
        """Return the record as a JSON-ready mapping (the export and storage form)."""
        return {
            "seq": self.seq,
            "prev_hash": self.prev_hash,
            "payload": self.payload,
            "record_hash": self.record_hash,
        }

    def to_json(self) -> str:
        """Return the record as one line of canonical JSON (a JSONL export line)."""
        return canonical_json(self.to_dict()).decode("utf-8")

    @classmethod
    def from_dict(cls, data: object) -> SealedRecord:
        """Build a record from its :meth:`to_dict` form, checking the shape only.

        The hashes are *not* checked here; that is :func:`verify_chain`'s job, so it can
        report the position of the first bad record.

        Raises:
            AuditIntegrityError: The data is not a well-formed record: a field is missing,
                extra (it would not be covered by the hash) or of the wrong type.
        """
        if not isinstance(data, Mapping):
            _malformed("audit record is not a JSON object", None)
        seq = data.get("seq")
        index = seq if type(seq) is int else None  # not bool, which is an int subclass
        if data.keys() != _RECORD_FIELDS:
            _malformed(
                f"audit record fields are {sorted(map(str, data))}, not {sorted(_RECORD_FIELDS)}",
                index,
            )
        if index is None:
            _malformed("audit record 'seq' is not an integer", None)
        prev_hash = data["prev_hash"]
        record_hash = data["record_hash"]
        payload = data["payload"]
        if not isinstance(prev_hash, str) or not isinstance(record_hash, str):
            _malformed("audit record hashes must be strings", index)
        if not isinstance(payload, Mapping):
            _malformed("audit record 'payload' is not a JSON object", index)
        return cls(seq=index, prev_hash=prev_hash, payload=payload, record_hash=record_hash)

    @classmethod
    def from_json(cls, text: str | bytes) -> SealedRecord:
        """Parse one record from JSON text, rejecting duplicate keys and NaN.

        Duplicate keys are refused because JSON parsers disagree on which one wins: a
        tool that shows the first while we verified the last would show unverified data.

        Raises:
            AuditIntegrityError: The text is not a well-formed record.
        """
        return cls.from_dict(_parse_strict(text, "audit record"))


def leaf_data(seq: int, prev_hash: str, payload: Mapping[str, Any]) -> bytes:
    """Return the bytes a record's hash covers: canonical JSON of seq, prev and payload.

    Raises:
        ValueError: The payload is not canonical-JSON-able (see ``canonical_json``).
        TypeError: The payload holds a value that is not a JSON type.
    """
    # The same bytes as canonical_json({"seq": ..., "prev": ..., "payload": ...}), built
    # without a throw-away dict: the three names are ASCII and already in sorted order.
    # Verification does this once per record, so it is worth the shortcut.
    return b"".join(
        (
            b'{"payload":',
            canonical_json(payload),
            b',"prev":',
            canonical_json(prev_hash),
            b',"seq":',
            canonical_json(seq),
            b"}",
        )
    )


def record_hash_of(seq: int, prev_hash: str, payload: Mapping[str, Any]) -> str:
    """Return the hex record hash, which is also the record's Merkle leaf hash.

    Raises:
        ValueError: The payload is not canonical-JSON-able.
        TypeError: The payload holds a value that is not a JSON type.
    """
    return leaf_hash(leaf_data(seq, prev_hash, payload)).hex()


def seal(prev: SealedRecord | None, payload: Mapping[str, Any]) -> SealedRecord:
    """Seal ``payload`` as the record after ``prev`` (or as the first record).

    The stored payload is a deep copy read back from its canonical JSON, so it is exactly
    what a database or export will return later, and later changes to the caller's dict
    cannot alter a sealed record.

    Args:
        prev: The current head of the chain, or None for an empty trail.
        payload: The audit entry; a JSON object.

    Returns:
        The new head of the chain.

    Raises:
        ValueError: The payload is not canonical-JSON-able (NaN, non-str keys ...).
        TypeError: The payload holds a value that is not a JSON type.
    """
    return seal_canonical(prev, payload)[0]


def seal_canonical(
    prev: SealedRecord | None, payload: Mapping[str, Any]
) -> tuple[SealedRecord, bytes]:
    """Like :func:`seal`, and also return the payload's canonical bytes.

    The canonical encoding is the costly part of sealing; a store that keeps the payload
    as these exact bytes need not encode it a second time (and can later verify with
    :meth:`ChainVerifier.add_canonical`).

    Raises:
        ValueError: The payload is not canonical-JSON-able.
        TypeError: The payload holds a value that is not a JSON type.
    """
    payload_json, stored = encode_payload(payload)
    return seal_encoded(prev, payload_json, stored), payload_json


def encode_payload(payload: Mapping[str, Any]) -> tuple[bytes, dict[str, Any]]:
    """Return a payload's canonical bytes and the plain copy read back from them.

    This is the part of sealing that does not depend on the chain's head, so a store can
    do it before it takes the lock that serialises appends.

    Raises:
        ValueError: The payload is not canonical-JSON-able.
        TypeError: The payload holds a value that is not a JSON type, or is no object.
    """
    payload_json = canonical_json(payload)
    stored = json.loads(payload_json)
    if not isinstance(stored, dict):
        raise TypeError(f"an audit payload must be a JSON object, not {type(payload).__name__}")
    return payload_json, stored


def seal_encoded(
    prev: SealedRecord | None, payload_json: bytes, stored: Mapping[str, Any]
) -> SealedRecord:
    """Seal a payload already encoded by :func:`encode_payload` after ``prev``.

    ``stored`` must be ``json.loads(payload_json)``; only the hash is computed here.
    """
    if prev is None:
        return seal_after(None, payload_json, stored)
    return seal_after((prev.seq, prev.record_hash), payload_json, stored)


def seal_after(
    link: tuple[int, str] | None, payload_json: bytes, stored: Mapping[str, Any]
) -> SealedRecord:
    """Like :func:`seal_encoded`, given only the head's ``(seq, record_hash)``.

    Sealing needs nothing else of the head, so a store can read just those two columns
    inside its write lock instead of the head's whole payload.
    """
    seq = 0 if link is None else link[0] + 1
    prev_hash = GENESIS_HASH if link is None else link[1]
    data = b"".join(
        (
            b'{"payload":',
            payload_json,
            b',"prev":',
            canonical_json(prev_hash),
            b',"seq":',
            str(seq).encode("ascii"),
            b"}",
        )
    )
    return SealedRecord(
        seq=seq, prev_hash=prev_hash, payload=stored, record_hash=leaf_hash(data).hex()
    )


def seal_many(
    prev: SealedRecord | None, payloads: Iterable[Mapping[str, Any]]
) -> list[SealedRecord]:
    """Seal several payloads in order after ``prev``; see :func:`seal`."""
    return [record for record, _ in seal_many_canonical(prev, payloads)]


def seal_many_canonical(
    prev: SealedRecord | None, payloads: Iterable[Mapping[str, Any]]
) -> list[tuple[SealedRecord, bytes]]:
    """Seal several payloads; return each record with its payload's canonical bytes."""
    sealed: list[tuple[SealedRecord, bytes]] = []
    for payload in payloads:
        record, payload_json = seal_canonical(prev, payload)
        sealed.append((record, payload_json))
        prev = record
    return sealed


@dataclass(frozen=True, slots=True)
class ChainSummary:
    """What a verified (part of a) trail commits to.

    Attributes:
        size: Number of records verified.
        head_hash: Hex ``record_hash`` of the last record (the start hash if none).
        merkle_root: Hex RFC 9162 root over the verified records' leaf hashes. It is the
            log's tree root only when verification started at seq ``first_seq == 0``.
        first_seq: The seq verification started at; 0 for a whole trail.
    """

    size: int
    head_hash: str
    merkle_root: str
    first_seq: int = 0


class ChainVerifier:
    """Streaming verifier: feed records one at a time, read a summary at any point.

    Memory is O(log n) (the Merkle frontier), so a million records can be checked
    straight from a database cursor or a JSONL file. :func:`verify_chain` is the
    one-call form; use this class to snapshot the state at a checkpoint's size.
    """

    __slots__ = ("_accumulator", "_first_seq", "_head", "_next_seq")

    def __init__(self, *, start_prev_hash: str = GENESIS_HASH, start_seq: int = 0) -> None:
        self._first_seq = start_seq
        self._next_seq = start_seq
        self._head = start_prev_hash
        self._accumulator = MerkleAccumulator()

    @property
    def size(self) -> int:
        """Number of records verified so far."""
        return self._accumulator.size

    def add(self, record: SealedRecord) -> None:
        """Verify the next record and extend the summary with it.

        Raises:
            AuditIntegrityError: The record breaks the chain. ``index`` is the seq the
                record should have had, i.e. its position in the trail.
        """
        expected = self._check_position(record.seq, record.prev_hash)
        try:
            data = leaf_data(expected, record.prev_hash, record.payload)
        except (TypeError, ValueError) as exc:
            raise AuditIntegrityError(
                f"record {expected} payload is not canonical JSON ({exc}); it cannot have "
                "been sealed as stored",
                index=expected,
            ) from exc
        self._extend(expected, data, record.record_hash)

    def add_canonical(
        self, seq: int, prev_hash: str, payload_json: bytes, record_hash: str
    ) -> None:
        """Verify the next record from its stored canonical payload bytes, unparsed.

        A store that keeps each payload as the exact bytes of ``canonical_json(payload)``
        can verify with one hash per record, skipping JSON parsing and re-encoding (most
        of the cost of :meth:`add`). This is sound because the payload is the only
        variable part of the leaf data: bytes that hash to ``record_hash`` between the
        fixed prefix and the checked ``prev``/``seq`` suffix are exactly the sealed
        bytes. Parse the payload for display from these same bytes.

        Raises:
            AuditIntegrityError: As for :meth:`add`. Non-canonical bytes (other spacing,
                key order or escapes) fail too, as a hash mismatch.
        """
        expected = self._check_position(seq, prev_hash)
        data = b"".join(
            (
                b'{"payload":',
                payload_json,
                b',"prev":',
                canonical_json(prev_hash),
                b',"seq":',
                str(expected).encode("ascii"),
                b"}",
            )
        )
        self._extend(expected, data, record_hash)

    def _check_position(self, seq: int, prev_hash: str) -> int:
        expected = self._next_seq
        if seq != expected or type(seq) is not int:  # True == 1.0 == 1, but not a seq
            raise AuditIntegrityError(
                f"record at position {expected} has seq {seq!r}: a record was "
                "deleted, inserted or reordered here",
                index=expected,
            )
        if prev_hash != self._head:
            raise AuditIntegrityError(
                f"record {expected} prev_hash {prev_hash!r} does not match the "
                f"previous record's hash {self._head!r}: the chain is broken here",
                index=expected,
            )
        return expected

    def _extend(self, expected: int, data: bytes, record_hash: str) -> None:
        digest = leaf_hash(data)
        if digest.hex() != record_hash:
            raise AuditIntegrityError(
                f"record {expected} record_hash {record_hash!r} does not match its "
                f"contents (recomputed {digest.hex()!r}): the record was altered",
                index=expected,
            )
        self._accumulator.append(digest)
        self._head = record_hash
        self._next_seq = expected + 1

    def summary(self) -> ChainSummary:
        """Return what the records verified so far commit to."""
        return ChainSummary(
            size=self._accumulator.size,
            head_hash=self._head,
            merkle_root=self._accumulator.root().hex(),
            first_seq=self._first_seq,
        )


def verify_chain(
    records: Iterable[SealedRecord],
    *,
    start_prev_hash: str = GENESIS_HASH,
    start_seq: int = 0,
) -> ChainSummary:
    """Verify a trail (or a segment of one) record by record, streaming.

    Without a signed checkpoint this proves the records are internally consistent, not
    that none were cut off the end: use :func:`verify_with_checkpoint` for that.

    Args:
        records: The records in order; any iterable, consumed once.
        start_prev_hash: ``record_hash`` of the record before the first one given.
        start_seq: seq of the first record given.

    Returns:
        Size, head hash and Merkle root of the verified records.

    Raises:
        AuditIntegrityError: A record is bad; ``index`` is the position (seq) of the first.
    """
    verifier = ChainVerifier(start_prev_hash=start_prev_hash, start_seq=start_seq)
    for record in records:
        verifier.add(record)
    return verifier.summary()


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """A signed statement "the trail had ``tree_size`` records with this root".

    Publish or store checkpoints away from the trail: anyone who can rewrite the trail
    and all its checkpoints *and* holds the signing key can rewrite history.

    Attributes:
        tree_size: Number of records covered.
        root_hash: Hex RFC 9162 Merkle root of those records.
        head_hash: Hex ``record_hash`` of record ``tree_size - 1`` (``GENESIS_HASH`` if 0).
        issued_at: RFC 3339 timestamp with offset, supplied by the caller.
        key_id: Identifies the signing key.
        signature: Hex signature over :func:`checkpoint_message`; empty before signing.
    """

    tree_size: int
    root_hash: str
    head_hash: str
    issued_at: str
    key_id: str
    signature: str = ""

    def to_dict(self) -> dict[str, Any]:
        """Return the checkpoint as a JSON-ready mapping."""
        return {
            "tree_size": self.tree_size,
            "root_hash": self.root_hash,
            "head_hash": self.head_hash,
            "issued_at": self.issued_at,
            "key_id": self.key_id,
            "signature": self.signature,
        }

    def to_json(self) -> str:
        """Return the checkpoint as canonical JSON text."""
        return canonical_json(self.to_dict()).decode("utf-8")

    @classmethod
    def from_dict(cls, data: object) -> Checkpoint:
        """Build a checkpoint from its :meth:`to_dict` form, checking types and formats.

        Raises:
            AuditIntegrityError: The data is not a well-formed checkpoint.
        """
        if not isinstance(data, Mapping) or set(data) != _CHECKPOINT_FIELDS:
            _malformed(
                f"checkpoint must be an object with fields {sorted(_CHECKPOINT_FIELDS)}", None
            )
        tree_size = data["tree_size"]
        if not isinstance(tree_size, int) or isinstance(tree_size, bool) or tree_size < 0:
            _malformed("checkpoint 'tree_size' must be a non-negative integer", None)
        fields = {name: data[name] for name in _CHECKPOINT_FIELDS - {"tree_size"}}
        for name, value in fields.items():
            if not isinstance(value, str):
                _malformed(f"checkpoint {name!r} must be a string", None)
        for name in ("root_hash", "head_hash"):
            if not _is_sha256_hex(fields[name]):
                _malformed(f"checkpoint {name!r} must be 64 lowercase hex digits", None)
        if not _is_rfc3339(fields["issued_at"]):
            _malformed("checkpoint 'issued_at' must be an RFC 3339 time with an offset", None)
        return cls(
            tree_size=tree_size,
            root_hash=fields["root_hash"],
            head_hash=fields["head_hash"],
            issued_at=fields["issued_at"],
            key_id=fields["key_id"],
            signature=fields["signature"],
        )

    @classmethod
    def from_json(cls, text: str | bytes) -> Checkpoint:
        """Parse a checkpoint from JSON text, rejecting duplicate keys and NaN.

        Raises:
            AuditIntegrityError: The text is not a well-formed checkpoint.
        """
        return cls.from_dict(_parse_strict(text, "checkpoint"))


class CheckpointSigning(Protocol):
    """A key that signs checkpoints. ``lictor.identity.keys.CheckpointSigner`` is one."""

    @property
    def key_id(self) -> str:
        """Identifies the key; goes into the signed message."""
        ...

    def sign(self, message: bytes) -> bytes:
        """Return a signature over ``message``."""
        ...


def checkpoint_message(checkpoint: Checkpoint) -> bytes:
    """Return the exact bytes that get signed.

    That is :data:`CHECKPOINT_DOMAIN` followed by the canonical JSON of every field but
    the signature, so a verifier rebuilds the message from the checkpoint alone.
    """
    fields = checkpoint.to_dict()
    del fields["signature"]
    return CHECKPOINT_DOMAIN + canonical_json(fields)


def issue_checkpoint(
    summary: ChainSummary, *, issued_at: str, signer: CheckpointSigning
) -> Checkpoint:
    """Sign a checkpoint over a whole-trail summary.

    Args:
        summary: From :func:`verify_chain` over the trail from seq 0.
        issued_at: RFC 3339 time with offset, from the caller's clock.
        signer: The checkpoint key.

    Returns:
        The signed checkpoint.

    Raises:
        ValueError: ``summary`` covers a segment, not the trail from seq 0, or
            ``issued_at`` is not RFC 3339 with an offset.
    """
    _require_whole_trail(summary)
    if not _is_rfc3339(issued_at):
        raise ValueError(f"issued_at {issued_at!r} is not an RFC 3339 time with an offset")
    unsigned = Checkpoint(
        tree_size=summary.size,
        root_hash=summary.merkle_root,
        head_hash=summary.head_hash,
        issued_at=issued_at,
        key_id=signer.key_id,
    )
    return replace(unsigned, signature=signer.sign(checkpoint_message(unsigned)).hex())


def verify_checkpoint_signature(checkpoint: Checkpoint, verify_signature: SignatureCheck) -> None:
    """Check a checkpoint's signature.

    Args:
        checkpoint: The checkpoint to trust.
        verify_signature: ``check(message, signature)`` for the expected key.

    Raises:
        AuditIntegrityError: Unsigned, malformed or invalid signature (``index`` None:
            no record is at fault, the checkpoint is).
    """
    if not checkpoint.signature:
        raise AuditIntegrityError("checkpoint is not signed", index=None)
    try:
        signature = bytes.fromhex(checkpoint.signature)
    except ValueError as exc:
        raise AuditIntegrityError("checkpoint signature is not hex", index=None) from exc
    if not verify_signature(checkpoint_message(checkpoint), signature):
        raise AuditIntegrityError(
            f"checkpoint signature does not verify for key {checkpoint.key_id!r}: the "
            "checkpoint is forged, altered, or signed by another key",
            index=None,
        )


def verify_against_checkpoint(
    summary: ChainSummary, checkpoint: Checkpoint, verify_signature: SignatureCheck
) -> None:
    """Check a whole-trail summary taken at (or before) the checkpoint's size.

    Args:
        summary: Summary of the trail from seq 0, with ``size <= checkpoint.tree_size``;
            a longer trail must be snapshotted at the checkpoint size (see
            :func:`verify_with_checkpoint`).
        checkpoint: A signed checkpoint.
        verify_signature: ``check(message, signature)`` for the expected key.

    Raises:
        AuditIntegrityError: Bad signature (``index`` None); the trail is shorter than the
            checkpoint, i.e. truncated (``index`` is the first missing seq); or its root
            differs, i.e. history was rewritten and re-sealed (``index`` None: the root
            alone cannot say where).
        ValueError: ``summary`` is a segment or is longer than the checkpoint.
    """
    _require_whole_trail(summary)
    if summary.size > checkpoint.tree_size:
        raise ValueError(
            f"summary covers {summary.size} records; take it at the checkpoint's size "
            f"{checkpoint.tree_size}"
        )
    verify_checkpoint_signature(checkpoint, verify_signature)
    _compare(summary, checkpoint)


def verify_with_checkpoint(
    records: Iterable[SealedRecord], checkpoint: Checkpoint, verify_signature: SignatureCheck
) -> ChainSummary:
    """Verify a whole trail and that it still contains everything a checkpoint signed.

    This is the full tamper check: edits, deletions and reorders fail the chain;
    truncation and wholesale re-sealing fail the checkpoint. Records after the
    checkpoint are verified too. Streaming, like :func:`verify_chain`.

    Args:
        records: The whole trail from seq 0, in order.
        checkpoint: A signed checkpoint for an earlier (or the current) size.
        verify_signature: ``check(message, signature)`` for the expected key.

    Returns:
        The summary of the whole trail.

    Raises:
        AuditIntegrityError: See :func:`verify_chain` and :func:`verify_against_checkpoint`.
    """
    verify_checkpoint_signature(checkpoint, verify_signature)
    verifier = ChainVerifier()
    checked = checkpoint.tree_size == 0
    if checked:
        _compare(verifier.summary(), checkpoint)
    for record in records:
        verifier.add(record)
        if not checked and verifier.size == checkpoint.tree_size:
            _compare(verifier.summary(), checkpoint)
            checked = True
    summary = verifier.summary()
    if not checked:
        _compare(summary, checkpoint)  # the trail ended before the checkpoint's size
    return summary


def _compare(summary: ChainSummary, checkpoint: Checkpoint) -> None:
    """Compare a whole-trail summary of at most ``tree_size`` records with a checkpoint."""
    if summary.size < checkpoint.tree_size:
        raise AuditIntegrityError(
            f"trail has {summary.size} records but a signed checkpoint covers "
            f"{checkpoint.tree_size}: records {summary.size}..{checkpoint.tree_size - 1} "
            "are missing (truncated)",
            index=summary.size,
        )
    if summary.merkle_root != checkpoint.root_hash or summary.head_hash != checkpoint.head_hash:
        raise AuditIntegrityError(
            f"the first {checkpoint.tree_size} records do not match the signed checkpoint "
            f"(root {summary.merkle_root!r}, signed {checkpoint.root_hash!r}): history was "
            "rewritten and re-sealed",
            index=None,
        )


def _require_whole_trail(summary: ChainSummary) -> None:
    if summary.first_seq != 0:
        raise ValueError(
            f"summary starts at seq {summary.first_seq}; checkpoints cover the trail from seq 0"
        )


def _malformed(message: str, index: int | None) -> NoReturn:
    raise AuditIntegrityError(message, index=index)


def _reject_constant(name: str) -> NoReturn:
    raise ValueError(f"{name} is not valid JSON")


def _unique_object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        duplicates = sorted({key for key, _ in pairs if sum(k == key for k, _ in pairs) > 1})
        raise ValueError(f"duplicate keys {duplicates}")
    return result


# Built once: json.loads with hooks would build a new decoder for every line it reads.
_STRICT_DECODER: Final = json.JSONDecoder(
    object_pairs_hook=_unique_object, parse_constant=_reject_constant
)


def _parse_strict(text: str | bytes, what: str) -> object:
    try:
        # RFC 8259 §8.1: JSON exchanged between systems is UTF-8.
        return _STRICT_DECODER.decode(text.decode("utf-8") if isinstance(text, bytes) else text)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError and UnicodeDecodeError too
        raise AuditIntegrityError(f"{what} is not valid JSON: {exc}", index=None) from exc


def _is_sha256_hex(value: str) -> bool:
    return len(value) == _SHA256_HEX_LENGTH and _HEX_DIGITS.issuperset(value)


def _is_rfc3339(value: str) -> bool:
    # RFC 3339 §5.6 requires a full date, a time and an offset ("Z" or ±hh:mm).
    if len(value) < len("2000-01-01T00:00:00Z") or value[10] not in "Tt":
        return False
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return False
    return parsed.tzinfo is not None

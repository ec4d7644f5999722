"""The hash-chained audit trail in SQL: :class:`SqlAuditStore` implements ``AuditStore``.

Rule 1: an append reads the head and inserts after it inside one transaction that holds
the database's write lock (see :meth:`Database.writing`), so the chain never forks, even
with several processes or replicas appending at once.

Rule 2: what is verified is what is stored. A record is read back from ``payload`` (the
canonical JSON the hash covers); the extracted columns only choose which rows to read,
and every query result is re-checked against its payload.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Final

from sqlalchemy import Row, func, insert, select
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError
from sqlalchemy.sql.elements import ColumnElement

from lictor.core.audit.chain import Checkpoint, SealedRecord, encode_payload, seal_after
from lictor.core.decisions import parse_time
from lictor.errors import AuditIntegrityError, Conflict, StoreError
from lictor.service.memory import matches_query
from lictor.service.ports import AuditPage, AuditQuery
from lictor.store.database import AUDIT_CHAIN_LOCK, Database
from lictor.store.schema import audit_checkpoints, audit_records

__all__ = ["STREAM_BATCH", "SqlAuditStore", "sortable_time"]

STREAM_BATCH: Final = 2000
"""Rows per query when :meth:`SqlAuditStore.records` streams.

Each batch is its own short read, so a slow consumer (a verifier, an export) holds
neither a transaction nor more than one batch of records.
"""

_RECORD_COLUMNS: Final = (
    audit_records.c.seq,
    audit_records.c.prev_hash,
    audit_records.c.payload,
    audit_records.c.record_hash,
)

# raw_decode skips json.loads' two whitespace regex scans per record (stored payloads are
# canonical: no whitespace around them), a tenth of the time to stream a trail.
_raw_decode = json.JSONDecoder().raw_decode


class SqlAuditStore:
    """The durable audit trail on SQLite or PostgreSQL.

    Built by :func:`lictor.store.open_store`; thread-safe. Appends from every thread and
    every node sharing the database form one chain.
    """

    def __init__(self, database: Database) -> None:
        self._db = database

    def append_batch(self, payloads: Sequence[Mapping[str, Any]]) -> list[SealedRecord]:
        """Seal payloads after the current head and commit them in one transaction.

        Returns only after the commit, i.e. once the records are durable (one fsync for
        the whole batch on SQLite). On failure nothing of the batch is stored.

        Raises:
            StoreError: The database failed, or the store is closed.
            Conflict: A ``decision`` payload reuses a decision id already recorded (or
                twice in the batch); the whole batch is refused.
            ValueError: A payload is not canonical-JSON-able (NaN, non-str keys ...).
            TypeError: A payload holds a value that is not a JSON type.
        """
        if not payloads:
            return []
        # Encoding is most of the cost and does not depend on the head: do it before
        # taking the lock that serialises appends across threads and replicas.
        encoded = [encode_payload(payload) for payload in payloads]
        ids = _decision_ids(encoded)
        try:
            with self._db.writing(lock=AUDIT_CHAIN_LOCK) as connection:
                link = _head_link(connection)
                sealed: list[SealedRecord] = []
                rows: list[dict[str, Any]] = []
                for payload_json, stored in encoded:
                    record = seal_after(link, payload_json, stored)
                    link = (record.seq, record.record_hash)
                    sealed.append(record)
                    rows.append(_row(record, payload_json))
                _insert(connection, rows)
        except StoreError as exc:
            # The partial unique index refused a decision id recorded before. Asking
            # which one only after the refusal keeps a query out of every group commit;
            # the whole batch was rolled back either way.
            if ids and isinstance(exc.__cause__, IntegrityError):
                with self._db.reading() as connection:
                    _refuse_recorded_decisions(connection, ids)
            raise
        return sealed

    def head(self) -> SealedRecord | None:
        """Return the last record, or None for an empty trail.

        Raises:
            StoreError: The database failed, or the store is closed.
        """
        with self._db.reading() as connection:
            return _head(connection)

    def size(self) -> int:
        """Return the length of the trail: the head's seq + 1.

        That is the number of records in an intact trail, read from the primary key
        instead of counting rows. If rows were deleted, verification reports the gap.

        Raises:
            StoreError: The database failed, or the store is closed.
        """
        with self._db.reading() as connection:
            return _next_seq(connection)

    def records(self, start: int = 0, end: int | None = None) -> Iterator[SealedRecord]:
        """Yield records with ``start <= seq < end`` in seq order, in batches.

        Without ``end`` the trail is read up to the head as it is when iteration starts;
        records appended meanwhile are left for the next call. Batches are fetched by
        seq range (keyset paging), so memory stays at one batch whatever the trail's
        length, and a missing seq is passed over for the verifier to report.

        Raises:
            StoreError: The database failed, or the store is closed.
            AuditIntegrityError: A stored payload is not a JSON object (``index`` is its
                seq): a row was edited outside Lictor.
        """
        for row in self._rows(start, end):
            yield _record(row)

    def canonical_records(
        self, start: int = 0, end: int | None = None
    ) -> Iterator[tuple[int, str, bytes, str]]:
        """Yield ``(seq, prev_hash, payload bytes, record_hash)`` without parsing JSON.

        The payload column holds the exact canonical bytes that were hashed, so a
        verifier can check each record with one hash (``ChainVerifier.add_canonical``):
        the fast path of ``lictor audit verify``. Any change to the stored text — even
        re-spacing that keeps the JSON value — fails the hash.

        Raises:
            StoreError: The database failed, or the store is closed.
        """
        for number, prev_hash, text, record_hash in self._rows(start, end):
            yield number, prev_hash, text.encode("utf-8", "surrogatepass"), record_hash

    def _rows(self, start: int, end: int | None) -> Iterator[Row[int, str, str, str]]:
        """Yield raw rows in ``[start, end)`` by seq range, one short read per batch."""
        if end is None:
            with self._db.reading() as connection:
                end = _next_seq(connection)
        after = start - 1
        seq = audit_records.c.seq
        while after + 1 < end:
            statement = (
                select(*_RECORD_COLUMNS)
                .where(seq > after, seq < end)
                .order_by(seq)
                .limit(STREAM_BATCH)
            )
            with self._db.reading() as connection:
                rows = connection.execute(statement).all()
            if not rows:
                return
            yield from rows
            if len(rows) < STREAM_BATCH:
                return
            after = rows[-1][0]

    def find_decision(self, decision_id: str) -> SealedRecord | None:
        """Return the ``decision`` record with this id, or None.

        Raises:
            StoreError: The database failed, or the store is closed.
        """
        found = self.query(AuditQuery(kind="decision", decision_id=decision_id, limit=1))
        return found.records[0] if found.records else None

    def query(self, query: AuditQuery) -> AuditPage:
        """Return one page of records matching every given filter, in seq order.

        The same semantics as :func:`lictor.service.memory.matches_query`, evaluated on
        the indexed columns and then confirmed on each payload, so a row whose columns
        were edited to match is not returned. A payload without a parseable ``at`` never
        matches a time filter.

        Raises:
            StoreError: The database failed, or the store is closed.
            ValueError: ``since`` or ``until`` is a naive datetime.
        """
        limit = max(query.limit, 0)
        conditions = _conditions(query)
        wanted = limit + 1  # one more than a page tells whether another page follows
        found: list[SealedRecord] = []
        after = query.after_seq
        seq = audit_records.c.seq
        while len(found) < wanted:
            fetch = wanted - len(found)
            statement = (
                select(*_RECORD_COLUMNS).where(seq > after, *conditions).order_by(seq).limit(fetch)
            )
            with self._db.reading() as connection:
                rows = connection.execute(statement).all()
            for row in rows:
                record = _record(row)
                if _payload_matches(record.payload, query):
                    found.append(record)
            if len(rows) < fetch:
                break
            after = rows[-1][0]
        page = tuple(found[:limit])
        more = len(found) > limit
        return AuditPage(page, page[-1].seq if more and page else None)

    def add_checkpoint(self, checkpoint: Checkpoint) -> None:
        """Store a signed checkpoint.

        Raises:
            StoreError: The database failed, or the store is closed.
        """
        with self._db.writing() as connection:
            connection.execute(
                insert(audit_checkpoints).values(
                    tree_size=checkpoint.tree_size,
                    root_hash=checkpoint.root_hash,
                    head_hash=checkpoint.head_hash,
                    issued_at=checkpoint.issued_at,
                    key_id=checkpoint.key_id,
                    signature=checkpoint.signature,
                )
            )

    def checkpoints(self) -> list[Checkpoint]:
        """Return all checkpoints, oldest first.

        Raises:
            StoreError: The database failed, or the store is closed.
        """
        table = audit_checkpoints.c
        statement = select(
            table.tree_size,
            table.root_hash,
            table.head_hash,
            table.issued_at,
            table.key_id,
            table.signature,
        ).order_by(table.id)
        with self._db.reading() as connection:
            rows = connection.execute(statement).all()
        return [
            Checkpoint(
                tree_size=row.tree_size,
                root_hash=row.root_hash,
                head_hash=row.head_hash,
                issued_at=row.issued_at,
                key_id=row.key_id,
                signature=row.signature,
            )
            for row in rows
        ]


def sortable_time(value: object) -> str | None:
    """Return the ``at`` column for a payload's ``at`` field, or None if it has no time.

    RFC 3339 in UTC with microseconds and a 4-digit year: equal instants give equal text
    and text order is time order, so time ranges are plain string comparisons. Offsets
    other than ``Z`` are converted, which is what :func:`matches_query` does too.
    """
    if not isinstance(value, str):
        return None
    try:
        moment = parse_time(value)
    except (ValueError, OverflowError):
        return None
    return _format_sortable(moment)


def _format_sortable(moment: datetime) -> str:
    return moment.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def _head(connection: Connection) -> SealedRecord | None:
    statement = select(*_RECORD_COLUMNS).order_by(audit_records.c.seq.desc()).limit(1)
    row = connection.execute(statement).first()
    return _record(row) if row is not None else None


def _head_link(connection: Connection) -> tuple[int, str] | None:
    """Return the head's ``(seq, record_hash)``: all that sealing the next record needs."""
    statement = (
        select(audit_records.c.seq, audit_records.c.record_hash)
        .order_by(audit_records.c.seq.desc())
        .limit(1)
    )
    row = connection.execute(statement).first()
    return (int(row[0]), str(row[1])) if row is not None else None


_SQLITE_MAX_PARAMETERS: Final = 999
"""Bound parameters per statement: SQLite's limit before 3.32, the lowest we may meet."""


@functools.lru_cache(maxsize=64)
def _sqlite_insert(columns: tuple[str, ...], rows: int) -> str:
    """Return an INSERT of ``rows`` rows; every column is checked to be the table's."""
    known = {column.name for column in audit_records.columns}
    unknown = [name for name in columns if name not in known]
    if unknown:
        raise ValueError(f"not columns of {audit_records.name}: {unknown}")
    names = ", ".join(columns)
    row = "(" + ", ".join("?" for _ in columns) + ")"
    values = ", ".join(row for _ in range(rows))
    return f"INSERT INTO {audit_records.name} ({names}) VALUES {values}"  # noqa: S608 - names checked above


def _insert(connection: Connection, rows: list[dict[str, Any]]) -> None:
    """Insert a batch of rows with as few statements as possible.

    On SQLite the rows go straight to the driver as multi-row ``INSERT ... VALUES``
    statements. Every statement the driver steps gives up the GIL and must win it back
    from the thread serving HTTP; ``executemany`` steps once per row, so under load a
    group commit spent most of its time waiting for the GIL between rows. The columns
    are plain text and integers: there is nothing for SQLAlchemy to convert.
    """
    if connection.dialect.name != "sqlite":
        connection.execute(insert(audit_records), rows)
        return
    columns = tuple(rows[0])  # every row comes from _row: the same keys, in order
    per_statement = max(1, _SQLITE_MAX_PARAMETERS // len(columns))
    for start in range(0, len(rows), per_statement):
        chunk = rows[start : start + per_statement]
        values = [value for row in chunk for value in row.values()]
        connection.exec_driver_sql(_sqlite_insert(columns, len(chunk)), tuple(values))


def _next_seq(connection: Connection) -> int:
    last = connection.execute(select(func.max(audit_records.c.seq))).scalar()
    return 0 if last is None else int(last) + 1


def _record(row: Row[int, str, str, str]) -> SealedRecord:
    seq, prev_hash, text, record_hash = row
    try:
        payload, end = _raw_decode(text)
    except ValueError as exc:
        raise AuditIntegrityError(
            f"record {seq} payload is not valid JSON ({exc}): it was edited outside Lictor",
            index=seq,
        ) from exc
    if end != len(text) or not isinstance(payload, dict):
        raise AuditIntegrityError(
            f"record {seq} payload is not one JSON object as Lictor writes it: it was edited "
            "outside Lictor",
            index=seq,
        )
    return SealedRecord(seq=seq, prev_hash=prev_hash, payload=payload, record_hash=record_hash)


def _text(value: object) -> str | None:
    # matches_query compares with ==, so only a str field can equal a str filter.
    return value if isinstance(value, str) else None


def _row(record: SealedRecord, payload_json: bytes) -> dict[str, Any]:
    payload = record.payload
    principal = payload.get("principal")
    return {
        "seq": record.seq,
        "record_hash": record.record_hash,
        "prev_hash": record.prev_hash,
        "payload": payload_json.decode("utf-8"),
        "kind": _text(payload.get("kind")),
        "decision_id": _text(payload.get("decision_id")),
        "agent_id": _text(payload.get("agent_id")),
        "principal_id": _text(principal.get("id")) if isinstance(principal, Mapping) else None,
        "tool": _text(payload.get("tool")),
        "outcome": _text(payload.get("outcome")),
        "session_id": _text(payload.get("session_id")),
        "at": sortable_time(payload.get("at")),
    }


def _decision_ids(encoded: Sequence[tuple[bytes, Mapping[str, Any]]]) -> list[str]:
    """Return the batch's decision ids; raise Conflict if one appears twice in it."""
    ids: list[str] = []
    seen: set[str] = set()
    for _, payload in encoded:
        decision_id = payload.get("decision_id")
        if payload.get("kind") != "decision" or not isinstance(decision_id, str):
            continue
        if not decision_id:
            continue
        if decision_id in seen:
            raise Conflict("decision", decision_id, f"decision {decision_id!r} twice in a batch")
        seen.add(decision_id)
        ids.append(decision_id)
    return ids


def _refuse_recorded_decisions(connection: Connection, ids: list[str]) -> None:
    """Raise Conflict if a decision record exists already for one of ``ids``.

    Called after the partial unique index refused a batch: its IntegrityError cannot be
    told apart from other failures without parsing driver messages, this query can.
    """
    table = audit_records.c
    existing = connection.execute(
        select(table.decision_id)
        .where(table.kind == "decision", table.decision_id.in_(ids))
        .limit(1)
    ).scalar()
    if existing is not None:
        raise Conflict("decision", existing, f"decision {existing!r} is already recorded")


def _conditions(query: AuditQuery) -> list[ColumnElement[bool]]:
    table = audit_records.c
    equal = (
        (table.agent_id, query.agent_id),
        (table.principal_id, query.principal_id),
        (table.tool, query.tool),
        (table.outcome, query.outcome),
        (table.session_id, query.session_id),
        (table.decision_id, query.decision_id),
        (table.kind, query.kind),
    )
    conditions = [column == value for column, value in equal if value is not None]
    if query.since is not None:
        conditions.append(table.at >= _bound(query.since))
    if query.until is not None:
        conditions.append(table.at < _bound(query.until))
    return conditions


def _bound(moment: datetime) -> str:
    if moment.tzinfo is None:
        raise ValueError("naive datetime in an audit query: Lictor timestamps are aware UTC")
    return _format_sortable(moment)


def _payload_matches(payload: Mapping[str, Any], query: AuditQuery) -> bool:
    try:
        return matches_query(payload, query)
    except (ValueError, OverflowError):
        return False  # an ``at`` that does not parse: it has no time to match

"""The ``AuditStore`` contract, run on memory, SQLite and PostgreSQL."""

from __future__ import annotations

import random
import threading
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

import lictor.store.audit
from contract.backends import Backend
from lictor.core.audit.chain import GENESIS_HASH, Checkpoint, SealedRecord, verify_chain
from lictor.errors import Conflict
from lictor.service.memory import matches_query
from lictor.service.ports import AuditQuery, AuditStore

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
AGENTS = ("mail-assistant", "planner", "payments")
TOOLS = ("send_email", "read_file", "transfer")
OUTCOMES = ("allow", "deny", "review")


def entry(i: int, **fields: Any) -> dict[str, Any]:
    """A decision entry shaped like ``lictor.service.records.decision_entry``."""
    base: dict[str, Any] = {
        "v": 1,
        "kind": "decision",
        "decision_id": f"dec-{i:05d}",
        "at": (T0 + timedelta(seconds=i)).strftime("%Y-%m-%dT%H:%M:%S.000Z"),
        "agent_id": AGENTS[i % 3],
        "principal": {"id": f"user{i % 4}@corp.example", "groups": ["sales"]},
        "session_id": f"run-{i // 5}",
        "tool": TOOLS[(i // 3) % 3],
        "outcome": OUTCOMES[(i // 2) % 3],
        "arguments": {"n": i, "text": "grüße ☃", "ratio": i / 7},
    }
    base.update(fields)
    return base


def result(i: int) -> dict[str, Any]:
    return {"v": 1, "kind": "result", "decision_id": f"dec-{i:05d}", "status": "ok"}


def fill(audit: AuditStore, count: int, batch: int = 10) -> list[SealedRecord]:
    sealed: list[SealedRecord] = []
    for lo in range(0, count, batch):
        sealed += audit.append_batch([entry(i) for i in range(lo, min(count, lo + batch))])
    return sealed


# --- append, head, size, records ---------------------------------------------------------


def test_an_empty_trail_has_no_head_and_size_zero(audit: AuditStore) -> None:
    assert audit.head() is None
    assert audit.size() == 0
    assert list(audit.records()) == []
    assert audit.append_batch([]) == []
    assert audit.size() == 0


def test_batches_are_sealed_one_after_another(audit: AuditStore) -> None:
    first = audit.append_batch([entry(0), entry(1)])
    second = audit.append_batch([entry(2)])

    assert [r.seq for r in first + second] == [0, 1, 2]
    assert first[0].prev_hash == GENESIS_HASH
    assert second[0].prev_hash == first[1].record_hash
    assert audit.head() == second[0]
    assert audit.size() == 3
    assert list(audit.records()) == first + second
    assert verify_chain(audit.records()).size == 3


def test_stored_payload_reads_back_exactly(audit: AuditStore) -> None:
    tricky = entry(
        0,
        arguments={"float": 1.5, "whole": 2.0, "big": 2**70, "nested": [{"b": None, "a": True}]},
        context={"emoji": "🦀", "quote": 'a "b" \\ c', "newline": "x\ny"},
    )
    (sealed,) = audit.append_batch([tricky])

    (stored,) = audit.records()
    assert stored == sealed
    assert stored.payload["arguments"]["big"] == 2**70
    assert stored.payload["context"]["emoji"] == "🦀"


def test_the_chain_continues_after_a_restart(backend: Backend) -> None:
    first = backend.open()
    before = fill(first.audit, 5)
    first.close()

    again = backend.open()
    after = again.audit.append_batch([entry(5)])

    assert after[0].seq == 5
    assert after[0].prev_hash == before[-1].record_hash
    assert list(again.audit.records()) == [*before, *after]
    assert verify_chain(again.audit.records()).size == 6


def test_records_yields_the_half_open_range(audit: AuditStore) -> None:
    sealed = fill(audit, 12)

    assert list(audit.records(3, 7)) == sealed[3:7]
    assert list(audit.records(10)) == sealed[10:]
    assert list(audit.records(0, 100)) == sealed
    assert list(audit.records(12)) == []
    assert list(audit.records(5, 5)) == []


def test_records_streams_past_one_batch(audit: AuditStore, monkeypatch: pytest.MonkeyPatch) -> None:
    batch = 7  # small batches: the same paths as 2,000-row ones, without sealing thousands
    monkeypatch.setattr(lictor.store.audit, "STREAM_BATCH", batch)
    count = batch * 3 + 2
    audit.append_batch([entry(i) for i in range(count)])

    assert [record.seq for record in audit.records()] == list(range(count))
    assert [r.seq for r in audit.records(batch - 1, batch * 2 + 1)] == list(
        range(batch - 1, batch * 2 + 1)
    )
    assert [r.seq for r in audit.records(0, batch)] == list(range(batch))
    assert verify_chain(audit.records()).size == count


def test_records_stops_at_the_head_when_iteration_started(audit: AuditStore) -> None:
    fill(audit, 3)
    stream = audit.records()
    first = next(stream)

    audit.append_batch([entry(3)])

    assert [first.seq, *(r.seq for r in stream)] == [0, 1, 2]


def test_a_bad_payload_fails_the_batch_and_writes_nothing(audit: AuditStore) -> None:
    fill(audit, 2)

    with pytest.raises(ValueError, match=r"NaN|not a JSON number"):
        audit.append_batch([entry(2), entry(3, arguments={"x": float("nan")})])

    assert audit.size() == 2
    assert audit.append_batch([entry(2)])[0].seq == 2


# --- find_decision -----------------------------------------------------------------------


def test_find_decision_returns_the_decision_not_its_result(audit: AuditStore) -> None:
    audit.append_batch([entry(0), result(0), entry(1)])

    found = audit.find_decision("dec-00000")

    assert found is not None
    assert found.seq == 0
    assert found.payload["kind"] == "decision"
    assert audit.find_decision("dec-00001") is not None
    assert audit.find_decision("dec-99999") is None


@pytest.mark.parametrize("same_batch", [True, False], ids=["same-batch", "later-batch"])
def test_a_second_decision_with_the_same_id_is_refused(
    backend: Backend, audit: AuditStore, same_batch: bool
) -> None:
    if not same_batch:
        audit.append_batch([entry(0)])

    with pytest.raises(Conflict) as caught:
        audit.append_batch([entry(1), entry(0, tool="other"), *([entry(0)] if same_batch else [])])

    assert caught.value.id == "dec-00000"
    assert audit.size() == (0 if same_batch else 1)


# --- query -------------------------------------------------------------------------------

FILTERS: list[tuple[str, str]] = [
    ("agent_id", "planner"),
    ("principal_id", "user2@corp.example"),
    ("tool", "transfer"),
    ("outcome", "review"),
    ("session_id", "run-3"),
    ("decision_id", "dec-00007"),
    ("kind", "result"),
]


@pytest.mark.parametrize(("field", "value"), FILTERS, ids=[f for f, _ in FILTERS])
def test_query_filters_on_each_field(audit: AuditStore, field: str, value: str) -> None:
    payloads = [entry(i) for i in range(30)] + [result(7), result(8)]
    sealed = audit.append_batch(payloads)
    query = AuditQuery(**{field: value}, limit=1000)  # type: ignore[arg-type]  # field names are AuditQuery's

    page = audit.query(query)

    expected = [r for r in sealed if matches_query(r.payload, query)]
    assert expected, "the fixture should match something"
    assert list(page.records) == expected
    assert page.next_after_seq is None


def test_query_combines_filters(audit: AuditStore) -> None:
    sealed = fill(audit, 60)
    query = AuditQuery(agent_id="payments", outcome="deny", limit=1000)

    page = audit.query(query)

    assert list(page.records) == [r for r in sealed if matches_query(r.payload, query)]
    assert all(r.payload["agent_id"] == "payments" for r in page.records)


def test_query_time_range_includes_since_and_excludes_until(audit: AuditStore) -> None:
    sealed = fill(audit, 10)

    page = audit.query(AuditQuery(since=T0 + timedelta(seconds=2), until=T0 + timedelta(seconds=5)))

    assert [r.seq for r in page.records] == [2, 3, 4]
    assert list(audit.query(AuditQuery(since=T0 + timedelta(seconds=8))).records) == sealed[8:]
    assert list(audit.query(AuditQuery(until=T0 + timedelta(seconds=1))).records) == sealed[:1]


def test_query_time_range_compares_instants_not_text(audit: AuditStore) -> None:
    audit.append_batch(
        [
            entry(0, at="2026-03-01T13:00:00+01:00"),  # 12:00Z
            entry(1, at="2026-03-01T12:00:00.5Z"),
            entry(2, at="2026-03-01T12:00:01.000001Z"),
            entry(3, at=None),
            entry(4, at=12345),
        ]
    )
    since = datetime(2026, 3, 1, 7, 0, tzinfo=timezone(timedelta(hours=-5)))  # 12:00Z

    seqs = [r.seq for r in audit.query(AuditQuery(since=since)).records]
    before = [r.seq for r in audit.query(AuditQuery(until=T0 + timedelta(seconds=1))).records]

    assert seqs == [0, 1, 2]
    assert before == [0, 1]


def test_query_pages_through_every_match_once(audit: AuditStore) -> None:
    sealed = fill(audit, 45, batch=7)
    query = AuditQuery(agent_id="mail-assistant", limit=4)
    expected = [r for r in sealed if matches_query(r.payload, query)]

    seen: list[SealedRecord] = []
    pages = 0
    while True:
        page = audit.query(query)
        pages += 1
        assert len(page.records) <= 4
        seen += page.records
        if page.next_after_seq is None:
            break
        assert page.next_after_seq == page.records[-1].seq
        query = replace(query, after_seq=page.next_after_seq)

    assert seen == expected
    assert pages == 4  # 15 matches: 4 + 4 + 4 + 3


def test_query_last_page_has_no_cursor_even_when_full(audit: AuditStore) -> None:
    fill(audit, 6)

    full = audit.query(AuditQuery(limit=6))
    cut = audit.query(AuditQuery(limit=5))
    empty = audit.query(AuditQuery(limit=0))
    past = audit.query(AuditQuery(after_seq=5))

    assert (len(full.records), full.next_after_seq) == (6, None)
    assert (len(cut.records), cut.next_after_seq) == (5, 4)
    assert (empty.records, empty.next_after_seq) == ((), None)
    assert (past.records, past.next_after_seq) == ((), None)


def test_query_agrees_with_the_reference_filter(audit: AuditStore) -> None:
    payloads = [entry(i) for i in range(80)] + [result(i) for i in range(0, 80, 9)]
    random.Random(7).shuffle(payloads)  # noqa: S311 - reproducible test data, not secrets
    sealed = audit.append_batch(payloads)
    rng = random.Random(42)  # noqa: S311 - reproducible test data, not secrets

    for _ in range(40):
        fields: dict[str, Any] = {}
        if rng.random() < 0.5:
            fields["agent_id"] = rng.choice(AGENTS)
        if rng.random() < 0.4:
            fields["tool"] = rng.choice(TOOLS)
        if rng.random() < 0.4:
            fields["outcome"] = rng.choice(OUTCOMES)
        if rng.random() < 0.3:
            fields["kind"] = rng.choice(("decision", "result"))
        if rng.random() < 0.3:
            fields["since"] = T0 + timedelta(seconds=rng.randrange(80))
        if rng.random() < 0.3:
            fields["until"] = T0 + timedelta(seconds=rng.randrange(80))
        query = AuditQuery(**fields, after_seq=rng.randrange(-1, 50), limit=rng.randrange(1, 20))
        expected = [r for r in sealed[query.after_seq + 1 :] if matches_query(r.payload, query)]

        page = audit.query(query)

        assert list(page.records) == expected[: query.limit], query
        more = len(expected) > query.limit
        assert page.next_after_seq == (expected[query.limit - 1].seq if more else None), query


# --- checkpoints -------------------------------------------------------------------------


def test_checkpoints_round_trip_oldest_first(audit: AuditStore) -> None:
    assert audit.checkpoints() == []
    first = Checkpoint(
        tree_size=3,
        root_hash="a" * 64,
        head_hash="b" * 64,
        issued_at="2026-03-01T12:00:00.000Z",
        key_id="0123456789abcdef",
        signature="cd" * 64,
    )
    second = replace(first, tree_size=2**40, issued_at="2026-03-01T11:00:00.000Z")

    audit.add_checkpoint(first)
    audit.add_checkpoint(second)

    assert audit.checkpoints() == [first, second]


# --- concurrency -------------------------------------------------------------------------


def append_concurrently(stores: list[AuditStore], threads: int, batches: int) -> None:
    """Append from ``threads`` threads, spread over ``stores``, all starting together."""
    start = threading.Barrier(threads)
    errors: list[BaseException] = []

    def work(worker: int) -> None:
        store = stores[worker % len(stores)]
        try:
            start.wait()
            for batch in range(batches):
                base = (worker * batches + batch) * 3
                store.append_batch([entry(base + k) for k in range(3)])
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            errors.append(exc)

    workers = [threading.Thread(target=work, args=(n,)) for n in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=60)
    assert not errors, errors
    assert not any(worker.is_alive() for worker in workers)


def test_concurrent_appends_from_threads_form_one_chain(audit: AuditStore) -> None:
    append_concurrently([audit], threads=6, batches=6)

    assert verify_chain(audit.records()).size == 6 * 6 * 3
    ids = {r.payload["decision_id"] for r in audit.records()}
    assert len(ids) == 6 * 6 * 3


def test_two_replicas_appending_at_once_form_one_chain(backend: Backend) -> None:
    one, two = backend.open(), backend.open()

    append_concurrently([one.audit, two.audit], threads=6, batches=6)

    assert verify_chain(one.audit.records()).size == 6 * 6 * 3
    assert list(two.audit.records()) == list(one.audit.records())

"""The group-commit writer as an event loop sees it: one wake-up per commit, no lost waiter."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Mapping, Sequence
from typing import Any

import pytest

from lictor.core.audit.chain import SealedRecord
from lictor.errors import StoreError
from lictor.service.audit_writer import AuditWriter
from lictor.service.memory import MemoryAuditStore, SystemClock


def entry(i: int) -> dict[str, Any]:
    return {"v": 1, "kind": "decision", "decision_id": f"d-{i:04d}", "outcome": "allow"}


class GatedStore(MemoryAuditStore):
    """Holds the first commit until released, so later entries queue into one batch."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = threading.Event()
        self.batches: list[int] = []

    def append_batch(self, payloads: Sequence[Mapping[str, Any]]) -> list[SealedRecord]:
        self.gate.wait(5)
        self.batches.append(len(payloads))
        return super().append_batch(payloads)


class BrokenStore(MemoryAuditStore):
    def append_batch(self, payloads: Sequence[Mapping[str, Any]]) -> list[SealedRecord]:
        raise StoreError("disk full")


async def _submit_all(writer: AuditWriter, count: int) -> list[SealedRecord]:
    return list(await asyncio.gather(*(writer.submit_async(entry(i)) for i in range(count))))


def test_waiters_on_a_loop_get_their_own_records_and_share_commits() -> None:
    store = GatedStore()
    writer = AuditWriter(store, SystemClock()).start()
    try:

        async def run() -> list[SealedRecord]:
            waiting = asyncio.ensure_future(_submit_all(writer, 64))
            await asyncio.sleep(0.05)  # all 64 queued behind the held first commit
            store.gate.set()
            return await waiting

        records = asyncio.run(run())
    finally:
        writer.close()

    assert [r.payload["decision_id"] for r in records] == [f"d-{i:04d}" for i in range(64)]
    assert [r.seq for r in records] == list(range(64))
    assert len(store.batches) < 64  # the queued entries went in together


def test_a_waiter_that_gave_up_does_not_stop_the_writer() -> None:
    store = GatedStore()
    writer = AuditWriter(store, SystemClock()).start()
    try:

        async def run() -> SealedRecord:
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(writer.submit_async(entry(1)), 0.05)
            store.gate.set()
            return await writer.submit_async(entry(2))

        record = asyncio.run(run())
    finally:
        writer.close()

    assert record.payload["decision_id"] == "d-0002"
    assert record.seq == 1  # the abandoned entry was still committed first


def test_a_failed_commit_fails_every_waiter_of_the_batch() -> None:
    writer = AuditWriter(BrokenStore(), SystemClock()).start()
    try:

        async def run() -> list[BaseException | SealedRecord]:
            return list(
                await asyncio.gather(
                    *(writer.submit_async(entry(i)) for i in range(5)), return_exceptions=True
                )
            )

        outcomes = asyncio.run(run())
    finally:
        writer.close()

    assert all(isinstance(o, StoreError) for o in outcomes)


def test_submitting_to_a_writer_that_is_not_running_fails_at_once() -> None:
    writer = AuditWriter(MemoryAuditStore(), SystemClock())

    async def run() -> None:
        await writer.submit_async(entry(1))

    with pytest.raises(StoreError, match="not running"):
        asyncio.run(run())

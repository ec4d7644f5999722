"""Decision ids: unique, time-ordered, and never repeated by a forked worker."""

from __future__ import annotations

import multiprocessing
from datetime import UTC, datetime, timedelta

from lictor.service.ids import new_ulid

T0 = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)


def _ids_in_child(count: int) -> list[str]:
    return [new_ulid(T0) for _ in range(count)]


def test_ids_are_unique_across_pool_refills_and_well_formed() -> None:
    ids = [new_ulid(T0) for _ in range(5_000)]  # ~12 refills of the random pool

    assert len(set(ids)) == len(ids)
    assert all(len(i) == 26 and set(i) <= set("0123456789ABCDEFGHJKMNPQRSTVWXYZ") for i in ids)
    assert len({i[10:] for i in ids}) == len(ids)  # the random part alone differs


def test_ids_sort_by_their_millisecond() -> None:
    earlier, later = new_ulid(T0), new_ulid(T0 + timedelta(milliseconds=1))

    assert earlier < later
    assert earlier[:10] != later[:10]


def test_a_forked_worker_draws_its_own_random_bytes() -> None:
    new_ulid(T0)  # the parent's pool now holds unused bytes a child would inherit
    context = multiprocessing.get_context("fork")
    with context.Pool(1) as pool:
        child = pool.apply(_ids_in_child, (50,))
    parent = [new_ulid(T0) for _ in range(50)]

    assert not set(child) & set(parent)

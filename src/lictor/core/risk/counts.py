"""Bounded frequency tables: the space-saving algorithm behind every baseline category.

A :class:`TopCounts` holds at most ``capacity`` keys with a count each. Rules:

1. **Bounded.** ``len(table) <= capacity`` always, whatever the stream.
2. **Frequent keys survive.** Space-saving (Metwally, Agrawal, El Abbadi, "Efficient
   computation of frequent and top-k elements in data streams", ICDT 2005): when the
   table is full, a new key replaces the key with the smallest count and inherits that
   count plus one. Any key seen more than ``total / capacity`` times is in the table, so
   a flood of one-off destinations cannot push out the ones an agent really uses.
3. **Overestimates, never underestimates.** A stored count is at least the key's true
   count since it entered the table.
4. **Deterministic.** Ties for eviction break on the smallest key, so the table does not
   depend on dict order and a JSON round trip changes nothing.
5. **Copy-on-write.** ``add`` returns a new table; a table is never changed in place.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from operator import itemgetter
from typing import Generic, TypeVar

__all__ = ["TopCounts"]

K = TypeVar("K", str, tuple[str, str])

_COUNT_THEN_KEY = itemgetter(1, 0)


def _by_count_then_key(item: tuple[K, int]) -> tuple[int, K]:
    return (-item[1], item[0])


# No ``slots``: with them, ``TopCounts[str](n)`` fails (a slotted frozen dataclass cannot
# take the ``__orig_class__`` that a subscripted generic call sets).
@dataclass(frozen=True)
class TopCounts(Generic[K]):
    """At most ``capacity`` keys with approximate counts; ``total`` counts every add."""

    capacity: int
    counts: Mapping[K, int] = field(default_factory=dict)
    total: int = 0

    def __contains__(self, key: object) -> bool:
        return key in self.counts

    def __len__(self) -> int:
        return len(self.counts)

    def __iter__(self) -> Iterator[K]:
        return iter(self.counts)

    def get(self, key: K) -> int:
        """Return the stored count of ``key`` (0 if absent)."""
        return self.counts.get(key, 0)

    def add(self, keys: Iterable[K]) -> tuple[TopCounts[K], tuple[K, ...]]:
        """Count each key once; return the new table and the keys evicted to make room.

        A key listed twice counts twice. With ``capacity == 0`` nothing is stored.
        """
        counts = dict(self.counts)
        evicted: list[K] = []
        added = 0
        for key in keys:
            added += 1
            if key in counts:
                counts[key] += 1
            elif len(counts) < self.capacity:
                counts[key] = 1
            elif self.capacity > 0:
                victim, floor = min(counts.items(), key=_COUNT_THEN_KEY)
                del counts[victim]
                counts[key] = floor + 1
                evicted.append(victim)
        if not added:
            return self, ()
        return TopCounts(self.capacity, counts, self.total + added), tuple(evicted)

    def top(self, n: int) -> list[tuple[K, int]]:
        """Return the ``n`` keys with the highest counts, ties by key.

        Kept per table and ``n`` (a table never changes): scoring asks the same table for
        the same few keys on every call that meets a new data class, and sorting the whole
        table each time would cost more than the rest of the score.
        """
        memo: dict[int, tuple[tuple[K, int], ...]] | None = self.__dict__.get("_top")
        if memo is None:
            memo = {}
            self.__dict__["_top"] = memo  # not a field: equality and repr ignore it
        found = memo.get(n)
        if found is None:
            found = tuple(sorted(self.counts.items(), key=_by_count_then_key)[:n])
            memo[n] = found
        return list(found)

    @classmethod
    def from_items(cls, capacity: int, items: Iterable[tuple[K, int]], total: int) -> TopCounts[K]:
        """Build a table from stored counts, keeping the ``capacity`` largest.

        Used when loading a baseline saved under a larger capacity: the smallest counts
        go first, exactly as the stream would have evicted them.
        """
        ranked = sorted(items, key=lambda kv: (-kv[1], kv[0]))[: max(capacity, 0)]
        return cls(capacity, dict(ranked), total)

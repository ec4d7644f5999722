from __future__ import annotations

from lictor.core.risk.counts import TopCounts


def test_counts_until_full_then_replaces_the_smallest_count() -> None:
    table: TopCounts[str] = TopCounts(2)
    table, evicted = table.add(["a", "a", "b"])
    assert dict(table.counts) == {"a": 2, "b": 1}
    assert evicted == ()
    table, evicted = table.add(["c"])
    # "b" had the smallest count; "c" inherits it plus one (space-saving).
    assert dict(table.counts) == {"a": 2, "c": 2}
    assert evicted == ("b",)
    assert table.total == 4
    assert "c" in table
    assert "b" not in table
    assert table.get("b") == 0
    assert len(table) == 2
    assert sorted(table) == ["a", "c"]


def test_ties_evict_the_smallest_key_whatever_the_insertion_order() -> None:
    one, _ = TopCounts[str](2).add(["y", "x", "z"])
    two, _ = TopCounts[str](2).add(["x", "y", "z"])
    assert set(one.counts) == set(two.counts) == {"y", "z"}


def test_an_empty_add_returns_the_same_table() -> None:
    table: TopCounts[str] = TopCounts(3)
    assert table.add([]) == (table, ())


def test_capacity_zero_stores_nothing_but_counts_the_total() -> None:
    table, evicted = TopCounts[str](0).add(["a", "b"])
    assert len(table) == 0
    assert table.total == 2
    assert evicted == ()


def test_top_and_from_items_keep_the_largest() -> None:
    table = TopCounts.from_items(2, [("a", 1), ("b", 5), ("c", 3)], total=9)
    assert dict(table.counts) == {"b": 5, "c": 3}
    assert table.top(1) == [("b", 5)]
    assert table.total == 9


def test_pairs_are_keys_too() -> None:
    table, _ = TopCounts[tuple[str, str]](4).add([("send", "bob"), ("send", "bob")])
    assert table.get(("send", "bob")) == 2

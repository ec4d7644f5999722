from __future__ import annotations

from lictor.core.risk.counts import TopCounts


def test_top_is_the_same_when_asked_again_and_a_caller_cannot_change_it() -> None:
    table, _ = TopCounts[str](8).add(["b", "a", "b", "c", "c", "c"])
    first = table.top(2)
    assert first == [("c", 3), ("b", 2)]
    first.append(("x", 99))
    assert table.top(2) == [("c", 3), ("b", 2)]
    assert table.top(5) == [("c", 3), ("b", 2), ("a", 1)]
    assert table.top(-1) == [("c", 3), ("b", 2)]  # a slice, as before
    newer, _ = table.add(["a", "a", "a"])
    assert newer.top(2) == [("a", 4), ("c", 3)]
    assert table.top(2) == [("c", 3), ("b", 2)]
    assert newer != table
    assert newer == TopCounts(8, {"a": 4, "b": 2, "c": 3}, 9)

"""Window declarations: durations, specs read from conditions, scopes and amounts."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lictor.core.requests import parse_request
from lictor.core.risk.windows import (
    MAX_WINDOW_SECONDS,
    WindowScope,
    WindowSpec,
    amount_of,
    find_window_specs,
    parse_duration,
    scope_key,
)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("30s", 30), ("15m", 900), ("1h", 3600), ("24h", 86_400), ("7d", 604_800), ("1h30m", 5400),
     ("2w", 1_209_600), (" 1H ", 3600)],
)  # fmt: skip
def test_durations_parse_to_seconds(text: str, seconds: int) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "h", "1", "0s", "1y", "1h 30m", "-1h", "1.5h", "367d"])
def test_bad_durations_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(text)


@given(st.text(max_size=20))
def test_any_text_is_a_duration_in_range_or_a_value_error(text: str) -> None:
    try:
        seconds = parse_duration(text)
    except ValueError:
        return
    assert 0 < seconds <= MAX_WINDOW_SECONDS


@given(st.integers(1, 9999), st.sampled_from(["s", "m", "h", "d"]))
def test_a_number_and_a_unit_parse_to_their_product(n: int, unit: str) -> None:
    factor = {"s": 1, "m": 60, "h": 3600, "d": 86_400}[unit]
    if n * factor > MAX_WINDOW_SECONDS:
        with pytest.raises(ValueError, match="between"):
            parse_duration(f"{n}{unit}")
    else:
        assert parse_duration(f"{n}{unit}") == n * factor


def test_specs_are_read_from_conditions_in_first_use_order_without_duplicates() -> None:
    specs = find_window_specs(
        [
            None,
            "window_count('delete_*', '1h', 'agent') >= 5",
            'window_sum("send_money", "amount", "24h", "principal") > 20000.0',
            "window_count('delete_*', '1h', 'agent') > 0 || window_count('x', '1d', 'session') > 1",
        ]
    )
    assert specs == (
        WindowSpec("delete_*", "1h", WindowScope.AGENT),
        WindowSpec("send_money", "24h", WindowScope.PRINCIPAL, "amount"),
        WindowSpec("x", "1d", WindowScope.SESSION),
    )


def test_counts_and_sums_of_the_same_tools_are_separate_series() -> None:
    count = WindowSpec("pay", "1h", WindowScope.AGENT)
    total = WindowSpec("pay", "1h", WindowScope.AGENT, "amount")
    longer = WindowSpec("pay", "1d", WindowScope.AGENT)
    assert count.series != total.series
    assert count.series == longer.series


@pytest.mark.parametrize(
    "condition",
    ["window_count('x', '1h', 'team') > 1", "window_count('x', 'later', 'agent') > 1",
     "window_sum('', 'amount', '1h', 'agent') > 1"],
)  # fmt: skip
def test_invalid_literal_windows_are_refused(condition: str) -> None:
    with pytest.raises(ValueError, match=r"window|duration"):
        find_window_specs([condition])


def test_non_literal_calls_are_not_specs() -> None:
    assert find_window_specs(["window_count(tool, '1h', 'agent') > 1"]) == ()


def test_globs_match_tool_names() -> None:
    spec = WindowSpec("delete_*", "1h", WindowScope.AGENT)
    assert spec.matches("delete_file")
    assert not spec.matches("undelete_file")


def test_scope_keys_come_from_the_request() -> None:
    request = parse_request(
        {"agent_id": "a", "tool": "t", "principal": {"id": "p"}, "session_id": "s"}
    )
    bare = parse_request({"agent_id": "a", "tool": "t"})
    assert [scope_key(s, request) for s in WindowScope] == ["a", "p", "s"]
    assert [scope_key(s, bare) for s in WindowScope] == ["a", "", ""]


@pytest.mark.parametrize(
    ("value", "amount"),
    [(1500, 1500.0), (12.5, 12.5), ("1,500.50", 1500.5), (True, 0.0), ("lots", 0.0),
     (None, 0.0), (float("nan"), 0.0), ([1], 0.0)],
)  # fmt: skip
def test_amounts_are_numbers_or_numeric_strings(value: object, amount: float) -> None:
    assert amount_of({"amount": value}, "amount") == amount
    assert amount_of({"amount": value}, "") == 0.0

"""Properties of inventory records: parsing is total, the wire form round-trips, merges add up."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from lictor.core.agents import (
    BOOKKEEPING_FIELDS,
    MAX_SHADOW_TOOLS,
    Agent,
    AgentStatus,
    ShadowSighting,
    parse_agent,
)
from lictor.core.requests import AgentId
from lictor.errors import PolicyError

T0 = datetime(2026, 1, 1, tzinfo=UTC)

json_values: st.SearchStrategy[Any] = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner),
    max_leaves=12,
)
times = st.datetimes(
    min_value=datetime(2000, 1, 1),  # noqa: DTZ001 - hypothesis bounds are naive by design
    max_value=datetime(2100, 1, 1),  # noqa: DTZ001 - the generated values are aware (UTC)
    timezones=st.just(UTC),
).map(lambda t: t.replace(microsecond=t.microsecond // 1000 * 1000))
sightings = st.builds(
    lambda first, extra, source, agent, tools, count: ShadowSighting(
        first, first + timedelta(seconds=extra), source, agent, tuple(tools), count
    ),
    times,
    st.integers(0, 10**6),
    st.none() | st.text(min_size=1, max_size=20),
    st.none() | st.text(min_size=1, max_size=20),
    st.lists(st.text(min_size=1, max_size=10), unique=True, max_size=5),
    st.integers(1, 10**6),
)


def at_most(examples: int) -> settings:
    """The profile's example count, capped for a test that is slow under ``ci``."""
    return settings(max_examples=min(settings().max_examples, examples))


@at_most(300)
@given(st.dictionaries(st.sampled_from(BOOKKEEPING_FIELDS), json_values))
def test_any_bookkeeping_values_give_an_agent_or_a_policy_error(extra: dict[str, Any]) -> None:
    result: Agent | str
    try:
        result = parse_agent({"id": "a", **extra})
    except PolicyError as exc:
        result = exc.pointer
    if isinstance(result, str):
        assert result.startswith("/")
    else:
        assert result.id == "a"


@given(
    times | st.none(),
    st.integers(0, 2**40),
    sightings | st.none(),
    st.sampled_from(list(AgentStatus)),
)
def test_the_wire_form_parses_back_to_the_same_record(
    at: datetime | None, version: int, shadow: ShadowSighting | None, status: AgentStatus
) -> None:
    agent = Agent(
        id=AgentId("a"),
        status=status,
        created_by="x",
        created_at=at,
        updated_at=at,
        version=version,
        shadow=shadow,
        tokens_valid_after=at,
    )
    assert parse_agent(agent.to_json()) == agent


@given(sightings, sightings)
def test_merging_sightings_adds_counts_and_keeps_the_span(
    a: ShadowSighting, b: ShadowSighting
) -> None:
    merged = a.merge(b)
    assert merged.count == a.count + b.count
    assert merged.first_seen_at == min(a.first_seen_at, b.first_seen_at)
    assert merged.last_seen_at == max(a.last_seen_at, b.last_seen_at)
    assert set(merged.tools) <= set(a.tools) | set(b.tools)
    assert len(merged.tools) <= MAX_SHADOW_TOOLS
    assert set(a.tools) <= set(merged.tools)

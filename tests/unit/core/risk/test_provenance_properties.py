"""Property tests: provenance is total on any JSON and finds what it was shown."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from lictor.core.risk.arguments import find_amounts, find_destinations, requested_items
from lictor.core.risk.provenance import ProvenanceIndex, ToolOutput, trace_provenance


def at_most(examples: int) -> settings:
    """Cap the profile's example count: generating JSON dominates the run time."""
    return settings(max_examples=min(settings().max_examples, examples))


KEYS = st.sampled_from(["to", "url", "iban", "amount", "phone", "channel", "x", "id", "limit"])
scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=30)
    | st.sampled_from(
        ["bob@corp.example", "https://evil.example/a", "DE89 3704 0044 0532 0130 00", "+1 415"]
    )
)
json_values: st.SearchStrategy[Any] = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(KEYS | st.text(), inner, max_size=4)
    ),
    max_leaves=8,
)
arguments = st.dictionaries(KEYS | st.text(max_size=10), json_values, max_size=5)


@at_most(80)
@given(arguments, st.text(max_size=60), json_values, st.lists(json_values, max_size=3))
def test_any_json_traces_without_raising(
    args: dict[str, Any], task: str, trusted: Any, outputs: list[Any]
) -> None:
    provenance = trace_provenance(
        args,
        task=task,
        trusted=trusted,
        outputs=[ToolOutput("t", f"d{i}", o) for i, o in enumerate(outputs)],
    )
    cel = provenance.to_cel()
    for sources in cel.values():
        assert sources
        assert all(
            s in ("task", "trusted", "unknown") or s.startswith("tool_output:") for s in sources
        )
    requested_items(args)
    assert len(find_destinations(args)) + len(find_amounts(args)) >= len(cel)


TOKEN = st.text(alphabet=st.sampled_from("abcXYZ019@._-/:#"), min_size=1, max_size=20).filter(
    lambda t: any(c.isalnum() for c in t)
)


@at_most(200)
@given(TOKEN, st.text(alphabet="abc ,;\n", max_size=20), st.text(alphabet="abc ,;\n", max_size=20))
def test_a_token_shown_in_an_output_is_traced_to_it(token: str, before: str, after: str) -> None:
    index = ProvenanceIndex().with_output("web", "d-1", f"{before} {token} {after}")
    assert [o.label for o in index.trace_value(token)] == ["tool_output:web"]


@at_most(200)
@given(st.integers(-(10**9), 10**9), st.text(alphabet="abc ", max_size=10))
def test_a_number_shown_in_an_output_is_traced_to_it(number: int, words: str) -> None:
    index = ProvenanceIndex().with_output("invoice", "d-1", {"total": number, "note": words})
    assert [o.label for o in index.trace_value(number)] == ["tool_output:invoice"]

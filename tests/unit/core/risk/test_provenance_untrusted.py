"""The fast untrusted-destination check agrees with a full trace."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lictor.core.risk.arguments import read_arguments
from lictor.core.risk.context import CallContext
from lictor.core.risk.provenance import ProvenanceIndex

VALUES = [
    "bob@corp.example",
    "eve@evil.example",
    "DE89370400440532013000",
    "DE89 3704 0044 0532 0130 00",
    "https://evil.example/x",
    "evil.example",
    "+49 30 1234567",
    "general channel",
]
texts = st.lists(st.sampled_from([*VALUES, "hello", "pay now", "see"]), max_size=6).map(" ".join)


@given(
    texts,
    st.lists(texts, max_size=4),
    texts,
    st.dictionaries(
        st.sampled_from(["to", "recipient", "iban", "url", "channel", "phone", "note"]),
        st.sampled_from(VALUES),
        max_size=4,
    ),
)
def test_untrusted_equals_the_untrusted_part_of_a_full_trace(
    trusted: str, outputs: list[str], task: str, arguments: dict[str, str]
) -> None:
    index = ProvenanceIndex().with_trusted(trusted)
    for i, output in enumerate(outputs):
        index = index.with_output("read", f"d{i}", output)
    reading = read_arguments(arguments)
    full = index.trace(arguments, task=task, reading=reading).untrusted_destinations()
    fast = index.untrusted(reading, task=task).values
    assert fast == full


def test_call_context_answers_provenance_and_declared_windows_only() -> None:
    index = ProvenanceIndex().with_output("read_mail", "d1", "pay GB33BUKB20201555555555")
    context = CallContext(index, "mail bob@corp.example", {("pay", "", "1h", "agent"): (3, 0.0)})
    assert context.provenance("bob@corp.example") == ["task"]
    assert context.provenance("GB33 BUKB 2020 1555 5555 55") == ["tool_output:read_mail"]
    assert context.provenance("nobody@x.example") == ["unknown"]
    assert context.window_count("pay", "1h", "agent") == 3
    with pytest.raises(ValueError, match="not declared"):
        context.window_sum("pay", "amount", "1h", "agent")

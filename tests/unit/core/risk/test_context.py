from __future__ import annotations

import pytest

from lictor.core.risk.context import CallContext


def test_a_context_without_an_index_refuses_provenance_instead_of_answering_unknown() -> None:
    # The service leaves the index out only for policies that cannot call provenance();
    # should one call it anyway, the condition errors (and denies), never reads "unknown".
    context = CallContext(None, "pay bob@corp.example")
    with pytest.raises(ValueError, match="not traced"):
        context.provenance("bob@corp.example")

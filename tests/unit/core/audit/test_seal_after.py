"""``seal_after`` needs only the head's seq and hash, and seals exactly as ``seal`` does."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from lictor.core.audit.chain import GENESIS_HASH, encode_payload, seal, seal_after, verify_chain

payloads = st.dictionaries(
    st.text(max_size=5), st.one_of(st.integers(), st.text(max_size=5), st.none()), max_size=4
)


def at_most(examples: int) -> settings:
    """The profile's example count, capped for a test that is slow under ``ci``."""
    return settings(max_examples=min(settings().max_examples, examples))


@at_most(300)
@given(st.lists(payloads, min_size=1, max_size=6))
def test_sealing_from_the_head_link_equals_sealing_from_the_head_record(
    batch: list[dict[str, object]],
) -> None:
    by_record = []
    head = None
    for payload in batch:
        head = seal(head, payload)
        by_record.append(head)

    by_link = []
    link: tuple[int, str] | None = None
    for payload in batch:
        record = seal_after(link, *encode_payload(payload))
        link = (record.seq, record.record_hash)
        by_link.append(record)

    assert by_link == by_record
    assert by_link[0].prev_hash == GENESIS_HASH
    verify_chain(by_link)

"""Property tests: proofs verify for every tree, and fail once anything is changed."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from lictor.core.audit.merkle import (
    MerkleAccumulator,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    root_hash,
    verify_consistency,
    verify_inclusion,
)

# Distinct leaves: with duplicates, "the wrong leaf" could be an identical one.
leaf_lists = st.lists(st.binary(max_size=16), min_size=1, max_size=70, unique=True).map(
    lambda items: [leaf_hash(item) for item in items]
)


def flip(digest: bytes, position: int) -> bytes:
    position %= len(digest)
    return digest[:position] + bytes([digest[position] ^ 0x80]) + digest[position + 1 :]


@given(leaf_lists)
def test_accumulator_root_equals_root_hash_after_every_append(hashes: list[bytes]) -> None:
    accumulator = MerkleAccumulator()
    for n, leaf in enumerate(hashes, start=1):
        accumulator.append(leaf)
        assert accumulator.root() == root_hash(hashes[:n])


def at_most(examples: int) -> settings:
    """The profile's example count, capped for a test that is slow under ``ci``."""
    return settings(max_examples=min(settings().max_examples, examples))


@at_most(300)
@given(leaf_lists, st.data())
def test_inclusion_proof_verifies_and_binds_leaf_index_and_root(
    hashes: list[bytes], data: st.DataObject
) -> None:
    n = len(hashes)
    index = data.draw(st.integers(0, n - 1), label="index")
    root = root_hash(hashes)
    proof = inclusion_proof(index, hashes)
    assert verify_inclusion(hashes[index], index, n, proof, root)

    byte = data.draw(st.integers(0, 31), label="byte")
    other_leaf = flip(hashes[index], byte)
    assert not verify_inclusion(other_leaf, index, n, proof, root)
    if n > 1:
        other_index = data.draw(st.integers(0, n - 1).filter(lambda i: i != index))
        assert not verify_inclusion(hashes[index], other_index, n, proof, root)
    assert not verify_inclusion(hashes[index], index, n, proof, flip(root, byte))


@given(leaf_lists, st.data())
def test_any_flipped_byte_in_an_inclusion_proof_fails(
    hashes: list[bytes], data: st.DataObject
) -> None:
    n = len(hashes)
    index = data.draw(st.integers(0, n - 1), label="index")
    proof = inclusion_proof(index, hashes)
    if not proof:
        return
    j = data.draw(st.integers(0, len(proof) - 1), label="element")
    byte = data.draw(st.integers(0, 31), label="byte")
    tampered = [*proof[:j], flip(proof[j], byte), *proof[j + 1 :]]
    assert not verify_inclusion(hashes[index], index, n, tampered, root_hash(hashes))


@given(leaf_lists, st.data())
def test_consistency_proof_verifies_and_any_flipped_byte_fails(
    hashes: list[bytes], data: st.DataObject
) -> None:
    n = len(hashes)
    m = data.draw(st.integers(0, n), label="old_size")
    old_root, new_root = root_hash(hashes[:m]), root_hash(hashes)
    proof = consistency_proof(m, hashes)
    assert verify_consistency(m, n, old_root, new_root, proof)
    if proof:
        j = data.draw(st.integers(0, len(proof) - 1), label="element")
        byte = data.draw(st.integers(0, 31), label="byte")
        tampered = [*proof[:j], flip(proof[j], byte), *proof[j + 1 :]]
        assert not verify_consistency(m, n, old_root, new_root, tampered)


@given(leaf_lists, st.data())
def test_consistency_fails_when_an_old_leaf_was_changed(
    hashes: list[bytes], data: st.DataObject
) -> None:
    # The attack consistency proofs exist for: rewrite history, then keep appending.
    n = len(hashes)
    m = data.draw(st.integers(1, n), label="old_size")
    changed = data.draw(st.integers(0, m - 1), label="changed")
    rewritten = [*hashes[:changed], flip(hashes[changed], 0), *hashes[changed + 1 :]]
    old_root = root_hash(hashes[:m])
    assert not verify_consistency(
        m, n, old_root, root_hash(rewritten), consistency_proof(m, rewritten)
    )

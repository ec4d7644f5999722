"""Example and known-answer tests for the RFC 9162 Merkle tree."""

from __future__ import annotations

import hashlib
from collections.abc import Callable

import pytest

from lictor.core.audit.merkle import (
    EMPTY_ROOT,
    MerkleAccumulator,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    node_hash,
    root_hash,
    verify_consistency,
    verify_inclusion,
)

# The leaves and expected values of the RFC 6962 reference test vectors (the
# certificate-transparency project's merkle_tree_test), which RFC 9162 §2.1 keeps.
VECTOR_LEAVES = [
    b"",
    b"\x00",
    b"\x10",
    b"\x20\x21",
    b"\x30\x31",
    b"\x40\x41\x42\x43",
    bytes(range(0x50, 0x58)),
    bytes(range(0x60, 0x70)),
]
VECTOR_ROOTS = [
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]
VECTOR_HASHES = [leaf_hash(leaf) for leaf in VECTOR_LEAVES]


def leaves(n: int) -> list[bytes]:
    return [leaf_hash(i.to_bytes(4, "big")) for i in range(n)]


def reference_mth(hashes: list[bytes]) -> bytes:
    """MTH exactly as RFC 9162 §2.1.1 writes it, with list slices."""
    if not hashes:
        return hashlib.sha256(b"").digest()
    if len(hashes) == 1:
        return hashes[0]
    k = 1
    while k * 2 < len(hashes):
        k *= 2
    return node_hash(reference_mth(hashes[:k]), reference_mth(hashes[k:]))


def test_empty_tree_root_is_sha256_of_the_empty_string() -> None:
    expected = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    assert root_hash([]).hex() == expected
    assert EMPTY_ROOT.hex() == expected
    assert MerkleAccumulator().root().hex() == expected


def test_leaf_hash_prefixes_zero_byte_and_node_hash_prefixes_one_byte() -> None:
    assert leaf_hash(b"abc") == hashlib.sha256(b"\x00abc").digest()
    left, right = b"L" * 32, b"R" * 32
    assert node_hash(left, right) == hashlib.sha256(b"\x01" + left + right).digest()


def test_leaf_and_node_hashes_of_the_same_bytes_differ() -> None:
    left, right = b"L" * 32, b"R" * 32
    assert leaf_hash(left + right) != node_hash(left, right)


def test_one_leaf_tree_root_is_the_leaf_hash() -> None:
    only = leaf_hash(b"only")
    assert root_hash([only]) == only


@pytest.mark.parametrize(
    ("n", "shape"),
    [
        # The split is at the largest power of two below n, so the right side is the
        # short one; these are the trees of RFC 9162 §2.1.5's examples.
        (3, lambda d: node_hash(node_hash(d[0], d[1]), d[2])),
        (
            5,
            lambda d: node_hash(
                node_hash(node_hash(d[0], d[1]), node_hash(d[2], d[3])),
                d[4],
            ),
        ),
        (
            7,
            lambda d: node_hash(
                node_hash(node_hash(d[0], d[1]), node_hash(d[2], d[3])),
                node_hash(node_hash(d[4], d[5]), d[6]),
            ),
        ),
    ],
)
def test_root_splits_at_largest_power_of_two_below_size(
    n: int, shape: Callable[[list[bytes]], bytes]
) -> None:
    d = leaves(n)
    assert root_hash(d) == shape(d)
    assert root_hash(d) == reference_mth(d)


@pytest.mark.parametrize("n", range(1, 9))
def test_root_matches_rfc6962_reference_vector(n: int) -> None:
    assert root_hash(VECTOR_HASHES[:n]).hex() == VECTOR_ROOTS[n - 1]


def test_accumulator_matches_root_hash_at_every_size_from_0_to_70() -> None:
    d = leaves(70)
    accumulator = MerkleAccumulator()
    assert accumulator.size == 0
    assert accumulator.root() == root_hash([])
    for n in range(1, 71):
        accumulator.append(d[n - 1])
        assert accumulator.size == n
        assert accumulator.root() == root_hash(d[:n]) == reference_mth(d[:n])


def test_inclusion_proofs_match_rfc6962_reference_vectors() -> None:
    assert [p.hex() for p in inclusion_proof(0, VECTOR_HASHES)] == [
        "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
        "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
        "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
    ]
    assert [p.hex() for p in inclusion_proof(5, VECTOR_HASHES)] == [
        "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    ]


def test_consistency_proofs_match_rfc6962_reference_vectors() -> None:
    assert [p.hex() for p in consistency_proof(1, VECTOR_HASHES)] == [
        "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
        "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
        "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
    ]
    assert [p.hex() for p in consistency_proof(6, VECTOR_HASHES)] == [
        "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
        "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    ]
    assert [p.hex() for p in consistency_proof(2, VECTOR_HASHES[:5])] == [
        "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
        "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
    ]


def test_every_inclusion_proof_verifies_in_trees_up_to_33_leaves() -> None:
    for n in range(1, 34):
        d = leaves(n)
        root = root_hash(d)
        for i in range(n):
            assert verify_inclusion(d[i], i, n, inclusion_proof(i, d), root)


def test_inclusion_proof_fails_for_wrong_leaf_index_or_root() -> None:
    d = leaves(13)
    root = root_hash(d)
    for i in range(13):
        proof = inclusion_proof(i, d)
        assert not verify_inclusion(leaf_hash(b"other"), i, 13, proof, root)
        assert not verify_inclusion(d[i], (i + 1) % 13, 13, proof, root)
        assert not verify_inclusion(d[i], i, 13, proof, leaf_hash(b"root"))


def test_inclusion_proof_fails_with_an_extra_or_missing_hash() -> None:
    d = leaves(11)
    root = root_hash(d)
    for i in range(11):
        proof = inclusion_proof(i, d)
        assert not verify_inclusion(d[i], i, 11, [*proof, d[0]], root)
        assert not verify_inclusion(d[i], i, 11, proof[:-1], root)


def test_single_leaf_tree_has_empty_inclusion_proof() -> None:
    only = leaf_hash(b"x")
    assert inclusion_proof(0, [only]) == []
    assert verify_inclusion(only, 0, 1, [], only)


@pytest.mark.parametrize(("index", "size"), [(-1, 4), (4, 4), (0, 0)])
def test_inclusion_rejects_index_outside_the_tree(index: int, size: int) -> None:
    d = leaves(size)
    with pytest.raises(ValueError, match="outside"):
        inclusion_proof(index, d)
    assert not verify_inclusion(leaf_hash(b"x"), index, size, [], root_hash(d))


def test_consistency_proofs_verify_for_all_sizes_up_to_40() -> None:
    d = leaves(40)
    roots = [root_hash(d[:n]) for n in range(41)]
    for n in range(41):
        for m in range(n + 1):
            proof = consistency_proof(m, d[:n])
            assert verify_consistency(m, n, roots[m], roots[n], proof), (m, n)


def test_tampered_consistency_proofs_fail_for_all_sizes_up_to_40() -> None:
    d = leaves(40)
    roots = [root_hash(d[:n]) for n in range(41)]
    for n in range(2, 41):
        for m in range(1, n):
            proof = consistency_proof(m, d[:n])
            for j in range(len(proof)):
                flipped = bytes([proof[j][0] ^ 1]) + proof[j][1:]
                tampered = [*proof[:j], flipped, *proof[j + 1 :]]
                assert not verify_consistency(m, n, roots[m], roots[n], tampered), (m, n, j)
            assert not verify_consistency(m, n, roots[m], roots[n], proof[:-1])
            assert not verify_consistency(m, n, roots[m], roots[n], [*proof, roots[0]])
            assert not verify_consistency(m, n, roots[m - 1], roots[n], proof)
            assert not verify_consistency(m, n, roots[m], roots[n - 1], proof)


def test_consistency_from_the_empty_tree_needs_no_proof() -> None:
    d = leaves(5)
    assert consistency_proof(0, d) == []
    assert verify_consistency(0, 5, EMPTY_ROOT, root_hash(d), [])
    assert not verify_consistency(0, 5, root_hash(d[:1]), root_hash(d), [])
    assert not verify_consistency(0, 5, EMPTY_ROOT, root_hash(d), [d[0]])


def test_a_tree_is_consistent_only_with_its_own_root_at_equal_size() -> None:
    d = leaves(6)
    assert consistency_proof(6, d) == []
    assert verify_consistency(6, 6, root_hash(d), root_hash(d), [])
    assert not verify_consistency(6, 6, root_hash(d[:5]), root_hash(d), [])
    assert not verify_consistency(6, 6, root_hash(d), root_hash(d), [d[0]])


def test_consistency_rejects_impossible_sizes() -> None:
    d = leaves(4)
    with pytest.raises(ValueError, match="not within"):
        consistency_proof(5, d)
    with pytest.raises(ValueError, match="not within"):
        consistency_proof(-1, d)
    assert not verify_consistency(5, 4, root_hash(d), root_hash(d), [])
    assert not verify_consistency(-1, 4, EMPTY_ROOT, root_hash(d), [])
    assert not verify_consistency(2, 4, root_hash(d[:2]), root_hash(d), [])

"""Merkle tree hashing, inclusion and consistency proofs as in RFC 9162 §2.1.

Rule 1: leaves and interior nodes are hashed with different one-byte prefixes (0x00 and
0x01, RFC 9162 §2.1.1), so a leaf can never be passed off as a node (second preimage).
Rule 2: every function here takes *leaf hashes*, never raw records; callers hash a record
once with :func:`leaf_hash` and reuse it as both its chain hash and its Merkle leaf.

This module is pure: no I/O and no state beyond :class:`MerkleAccumulator`'s frontier.
The code follows the RFC's prose algorithms, not any other implementation.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Final

__all__ = [
    "EMPTY_ROOT",
    "HASH_SIZE",
    "MerkleAccumulator",
    "consistency_proof",
    "inclusion_proof",
    "leaf_hash",
    "node_hash",
    "root_hash",
    "verify_consistency",
    "verify_inclusion",
]

HASH_SIZE: Final = 32
"""Bytes in a SHA-256 digest, the size of every hash in the tree."""

EMPTY_ROOT: Final = hashlib.sha256(b"").digest()
"""MTH({}) = SHA-256 of the empty string (RFC 9162 §2.1.1)."""

_LEAF_PREFIX: Final = b"\x00"
_NODE_PREFIX: Final = b"\x01"
_sha256 = hashlib.sha256


def leaf_hash(data: bytes) -> bytes:
    """Return the hash of one leaf: ``SHA-256(0x00 || data)`` (RFC 9162 §2.1.1)."""
    return _sha256(_LEAF_PREFIX + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """Return the hash of an interior node: ``SHA-256(0x01 || left || right)``."""
    return _sha256(_NODE_PREFIX + left + right).digest()


def _split_point(n: int) -> int:
    """Return k, the largest power of two strictly smaller than ``n`` (needs n > 1)."""
    return 1 << ((n - 1).bit_length() - 1)


def _subtree_root(leaf_hashes: Sequence[bytes], start: int, end: int) -> bytes:
    """Return MTH(D[start:end]) by the recursive definition, without copying slices."""
    n = end - start
    if n == 0:
        return EMPTY_ROOT
    if n == 1:
        return leaf_hashes[start]
    k = _split_point(n)
    return node_hash(
        _subtree_root(leaf_hashes, start, start + k),
        _subtree_root(leaf_hashes, start + k, end),
    )


def root_hash(leaf_hashes: Sequence[bytes]) -> bytes:
    """Return the Merkle Tree Hash (MTH) of a list of leaf hashes (RFC 9162 §2.1.1).

    The tree splits at the largest power of two below n, so it is *not* a padded
    balanced tree; appending leaves never changes the roots of complete left subtrees,
    which is what makes consistency proofs possible.

    Args:
        leaf_hashes: Leaf hashes (from :func:`leaf_hash`), in log order.

    Returns:
        The 32-byte root; SHA-256 of the empty string for an empty tree.
    """
    return _subtree_root(leaf_hashes, 0, len(leaf_hashes))


class MerkleAccumulator:
    """Computes the RFC 9162 root incrementally, holding O(log n) hashes.

    We keep the "frontier": the roots of the complete subtrees that make up the tree so
    far, one per set bit of ``size``, largest first. Appending a leaf merges equal-sized
    subtrees like a binary counter carrying, so each append costs one node hash on
    average. That lets a verifier stream a million records without holding them.
    """

    __slots__ = ("_frontier", "_size")

    def __init__(self) -> None:
        self._frontier: list[bytes] = []
        self._size = 0

    @property
    def size(self) -> int:
        """Number of leaves appended so far."""
        return self._size

    def append(self, leaf: bytes) -> None:
        """Add the next leaf hash (already hashed with :func:`leaf_hash`)."""
        frontier = self._frontier
        carry = self._size
        merged = leaf
        # Each trailing 1-bit of the old size is a complete subtree of the same height as
        # ``merged``: combine them, exactly like carrying in binary addition.
        while carry & 1:
            merged = _sha256(_NODE_PREFIX + frontier.pop() + merged).digest()
            carry >>= 1
        frontier.append(merged)
        self._size += 1

    def root(self) -> bytes:
        """Return MTH of the leaves appended so far; equal to :func:`root_hash` of them."""
        frontier = self._frontier
        if not frontier:
            return EMPTY_ROOT
        # MTH puts the largest complete subtree on the left and recurses on the right,
        # so fold from the smallest (rightmost) subtree leftwards.
        result = frontier[-1]
        for left in reversed(frontier[:-1]):
            result = node_hash(left, result)
        return result


def _path(index: int, leaf_hashes: Sequence[bytes], start: int, end: int) -> list[bytes]:
    """PATH(m, D[start:end]) from RFC 9162 §2.1.3.1, leaf-to-root order."""
    n = end - start
    if n <= 1:
        return []
    k = _split_point(n)
    if index < k:
        proof = _path(index, leaf_hashes, start, start + k)
        proof.append(_subtree_root(leaf_hashes, start + k, end))
    else:
        proof = _path(index - k, leaf_hashes, start + k, end)
        proof.append(_subtree_root(leaf_hashes, start, start + k))
    return proof


def inclusion_proof(index: int, leaf_hashes: Sequence[bytes]) -> list[bytes]:
    """Return the audit path proving that leaf ``index`` is in the tree (RFC 9162 §2.1.3.1).

    Args:
        index: 0-based position of the leaf.
        leaf_hashes: All leaf hashes of the tree the proof is for.

    Returns:
        Sibling subtree hashes, from the leaf up to the root.

    Raises:
        ValueError: ``index`` is not a position in the tree.
    """
    if not 0 <= index < len(leaf_hashes):
        raise ValueError(f"leaf index {index} is outside a tree of size {len(leaf_hashes)}")
    return _path(index, leaf_hashes, 0, len(leaf_hashes))


def verify_inclusion(
    leaf: bytes, index: int, tree_size: int, proof: Sequence[bytes], root: bytes
) -> bool:
    """Check an inclusion proof with the algorithm of RFC 9162 §2.1.3.2.

    Args:
        leaf: The leaf hash claimed to be at ``index``.
        index: Its 0-based position.
        tree_size: Size of the tree ``root`` belongs to.
        proof: The audit path from :func:`inclusion_proof`.
        root: The trusted root (for example from a signed checkpoint).

    Returns:
        True only if the proof recomputes ``root`` and uses exactly the needed hashes.
    """
    if not 0 <= index < tree_size:
        return False
    fn = index
    sn = tree_size - 1
    r = leaf
    for p in proof:
        if sn == 0:
            # More hashes than the path has levels: a padded proof is not a proof.
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                # fn is the last node of its level with no right sibling: climb until it
                # is a right child (or the root of the left subtree).
                while not (fn & 1 or fn == 0):
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == root


def _subproof(
    m: int, leaf_hashes: Sequence[bytes], start: int, end: int, *, whole: bool
) -> list[bytes]:
    """SUBPROOF(m, D[start:end], b) from RFC 9162 §2.1.4.1."""
    n = end - start
    if m == n:
        # The old tree is a complete subtree here. The verifier already knows its hash
        # when it is the whole old tree (b = true); otherwise it must be supplied.
        return [] if whole else [_subtree_root(leaf_hashes, start, end)]
    k = _split_point(n)
    if m <= k:
        proof = _subproof(m, leaf_hashes, start, start + k, whole=whole)
        proof.append(_subtree_root(leaf_hashes, start + k, end))
    else:
        proof = _subproof(m - k, leaf_hashes, start + k, end, whole=False)
        proof.append(_subtree_root(leaf_hashes, start, start + k))
    return proof


def consistency_proof(old_size: int, leaf_hashes: Sequence[bytes]) -> list[bytes]:
    """Return the proof that the first ``old_size`` leaves are a prefix of the tree.

    RFC 9162 §2.1.4.1. For ``old_size`` 0 or equal to the tree size the proof is empty:
    every tree extends the empty tree, and a tree is consistent with itself.

    Args:
        old_size: Size of the earlier tree.
        leaf_hashes: All leaf hashes of the later tree.

    Returns:
        The list of subtree hashes the verifier needs.

    Raises:
        ValueError: ``old_size`` is negative or larger than the tree.
    """
    new_size = len(leaf_hashes)
    if not 0 <= old_size <= new_size:
        raise ValueError(f"old size {old_size} is not within 0..{new_size}")
    if old_size in (0, new_size):
        return []
    return _subproof(old_size, leaf_hashes, 0, new_size, whole=True)


def verify_consistency(
    old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]
) -> bool:
    """Check that the tree of ``new_root`` extends the tree of ``old_root`` (RFC 9162 §2.1.4.2).

    This is what proves an audit log was only appended to between two checkpoints:
    nothing before ``old_size`` was edited, removed or reordered.

    Args:
        old_size: Size of the earlier tree.
        new_size: Size of the later tree.
        old_root: Trusted root of the earlier tree.
        new_root: Trusted root of the later tree.
        proof: The proof from :func:`consistency_proof`.

    Returns:
        True only if the proof is valid for exactly these sizes and roots.
    """
    if not 0 <= old_size <= new_size:
        return False
    if old_size == 0:
        return not proof and old_root == EMPTY_ROOT
    if old_size == new_size:
        return not proof and old_root == new_root
    if not proof:
        return False
    path = list(proof)
    if old_size & (old_size - 1) == 0:
        # A power-of-two old tree is itself a complete subtree of the new one, so the
        # proof leaves its hash out; the verifier supplies it.
        path.insert(0, old_root)
    fn = old_size - 1
    sn = new_size - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            if not fn & 1:
                while not (fn & 1 or fn == 0):
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    return fr == old_root and sr == new_root and sn == 0

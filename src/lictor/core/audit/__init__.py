"""The tamper-evident audit trail: canonical JSON, a hash chain, and RFC 9162 Merkle proofs.

Any edit, deletion, reordering or truncation of the trail is detected: the chain catches
the first three at the record where they happen, a signed :class:`Checkpoint` catches
truncation and wholesale rewriting. Everything here is pure; storage, clocks and keys
live at the edges (``lictor.identity.keys`` signs checkpoints).
"""

from lictor.core.audit.canonical import canonical_json
from lictor.core.audit.chain import (
    CHECKPOINT_DOMAIN,
    GENESIS_HASH,
    ChainSummary,
    ChainVerifier,
    Checkpoint,
    CheckpointSigning,
    SealedRecord,
    SignatureCheck,
    checkpoint_message,
    issue_checkpoint,
    leaf_data,
    record_hash_of,
    seal,
    seal_many,
    verify_against_checkpoint,
    verify_chain,
    verify_checkpoint_signature,
    verify_with_checkpoint,
)
from lictor.core.audit.merkle import (
    EMPTY_ROOT,
    HASH_SIZE,
    MerkleAccumulator,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    node_hash,
    root_hash,
    verify_consistency,
    verify_inclusion,
)

__all__ = [
    "CHECKPOINT_DOMAIN",
    "EMPTY_ROOT",
    "GENESIS_HASH",
    "HASH_SIZE",
    "ChainSummary",
    "ChainVerifier",
    "Checkpoint",
    "CheckpointSigning",
    "MerkleAccumulator",
    "SealedRecord",
    "SignatureCheck",
    "canonical_json",
    "checkpoint_message",
    "consistency_proof",
    "inclusion_proof",
    "issue_checkpoint",
    "leaf_data",
    "leaf_hash",
    "node_hash",
    "record_hash_of",
    "root_hash",
    "seal",
    "seal_many",
    "verify_against_checkpoint",
    "verify_chain",
    "verify_checkpoint_signature",
    "verify_consistency",
    "verify_inclusion",
    "verify_with_checkpoint",
]

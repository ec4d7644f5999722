"""Tests for the Ed25519 checkpoint key: file permissions, signing, verifying."""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from lictor.core.audit import issue_checkpoint, seal_many, verify_chain, verify_with_checkpoint
from lictor.errors import AuditIntegrityError, ConfigError
from lictor.identity.keys import (
    CheckpointSigner,
    generate_key_file,
    key_id_from_public_pem,
    load_signer,
    verifier_from_public_pem,
)

posix_only = pytest.mark.skipif(os.name != "posix", reason="file modes are POSIX")


@posix_only
def test_generated_key_file_has_mode_0600(tmp_path: Path) -> None:
    path = tmp_path / "checkpoint.pem"
    generate_key_file(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")


@posix_only
def test_generated_key_file_is_0600_even_under_a_permissive_umask(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        generate_key_file(tmp_path / "checkpoint.pem")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "checkpoint.pem").stat().st_mode) == 0o600


def test_generating_again_refuses_to_overwrite_the_key(tmp_path: Path) -> None:
    path = tmp_path / "checkpoint.pem"
    generate_key_file(path)
    before = path.read_bytes()
    with pytest.raises(ConfigError, match="already exists"):
        generate_key_file(path)
    assert path.read_bytes() == before


@posix_only
def test_generating_refuses_to_follow_a_planted_symlink(tmp_path: Path) -> None:
    target = tmp_path / "elsewhere"
    (tmp_path / "checkpoint.pem").symlink_to(target)
    with pytest.raises(ConfigError):
        generate_key_file(tmp_path / "checkpoint.pem")
    assert not target.exists()


def test_generating_into_a_missing_directory_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot create"):
        generate_key_file(tmp_path / "missing" / "checkpoint.pem")


def test_loaded_key_is_the_generated_key(tmp_path: Path) -> None:
    path = tmp_path / "checkpoint.pem"
    generated = generate_key_file(path)
    loaded = load_signer(str(path))
    assert loaded.key_id == generated.key_id
    assert loaded.public_key_pem() == generated.public_key_pem()


@posix_only
@pytest.mark.parametrize("mode", [0o640, 0o604, 0o660, 0o644, 0o620, 0o601])
def test_key_file_accessible_to_group_or_others_is_refused(tmp_path: Path, mode: int) -> None:
    path = tmp_path / "checkpoint.pem"
    generate_key_file(path)
    path.chmod(mode)
    with pytest.raises(ConfigError, match="chmod 600"):
        load_signer(path)


@posix_only
def test_owner_only_read_mode_0400_is_accepted(tmp_path: Path) -> None:
    path = tmp_path / "checkpoint.pem"
    generate_key_file(path)
    path.chmod(0o400)
    load_signer(path)


def test_missing_key_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot open"):
        load_signer(tmp_path / "absent.pem")


def write_private(path: Path, data: bytes) -> Path:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as file:
        file.write(data)
    return path


def test_key_file_without_a_pem_key_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="unencrypted PEM"):
        load_signer(write_private(tmp_path / "k.pem", b"not a key"))


def test_key_file_with_another_algorithm_is_a_config_error(tmp_path: Path) -> None:
    pem = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    with pytest.raises(ConfigError, match="not an Ed25519 key"):
        load_signer(write_private(tmp_path / "k.pem", pem))


def test_signature_verifies_and_a_flipped_byte_fails(tmp_path: Path) -> None:
    signer = generate_key_file(tmp_path / "checkpoint.pem")
    check = verifier_from_public_pem(signer.public_key_pem())
    message = b"lictor-checkpoint-v1\n{}"
    signature = signer.sign(message)
    assert len(signature) == 64
    assert check(message, signature)
    for i in (0, 31, 63):
        flipped = signature[:i] + bytes([signature[i] ^ 1]) + signature[i + 1 :]
        assert not check(message, flipped)
    assert not check(message + b" ", signature)
    assert not check(message, b"")


def test_another_keys_verifier_rejects_the_signature(tmp_path: Path) -> None:
    signer = generate_key_file(tmp_path / "a.pem")
    other = generate_key_file(tmp_path / "b.pem")
    assert signer.key_id != other.key_id
    assert not verifier_from_public_pem(other.public_key_pem())(b"m", signer.sign(b"m"))


def test_key_id_is_16_hex_of_sha256_of_the_raw_public_key(tmp_path: Path) -> None:
    signer = generate_key_file(tmp_path / "checkpoint.pem")
    public = serialization.load_pem_public_key(signer.public_key_pem().encode())
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    assert signer.key_id == hashlib.sha256(raw).hexdigest()[:16]
    assert key_id_from_public_pem(signer.public_key_pem()) == signer.key_id
    assert key_id_from_public_pem(signer.public_key_pem().encode()) == signer.key_id


def test_verifier_rejects_a_public_key_that_is_not_ed25519() -> None:
    pem = (
        ec.generate_private_key(ec.SECP256R1())
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    with pytest.raises(ConfigError, match="Ed25519"):
        verifier_from_public_pem(pem)
    with pytest.raises(ConfigError, match="not a PEM public key"):
        verifier_from_public_pem("garbage")


def test_signer_repr_shows_the_key_id_not_the_key(tmp_path: Path) -> None:
    signer = generate_key_file(tmp_path / "checkpoint.pem")
    assert repr(signer) == f"CheckpointSigner(key_id={signer.key_id!r})"


def test_signer_signs_checkpoints_the_core_verifies(tmp_path: Path) -> None:
    signer: CheckpointSigner = generate_key_file(tmp_path / "checkpoint.pem")
    records = seal_many(None, [{"n": i} for i in range(5)])
    checkpoint = issue_checkpoint(
        verify_chain(records), issued_at="2026-11-25T14:03:22Z", signer=signer
    )
    check = verifier_from_public_pem(signer.public_key_pem())
    assert checkpoint.key_id == signer.key_id
    assert verify_with_checkpoint(records, checkpoint, check).size == 5
    with pytest.raises(AuditIntegrityError) as info:
        verify_with_checkpoint(records[:3], checkpoint, check)
    assert info.value.index == 3

"""Ed25519 keys that sign and verify audit checkpoints.

The private key lives in a PEM file only its owner can read; we create it with mode 0600
atomically and refuse to load it once others can read it, as OpenSSH does for its keys.
The core never sees a key object: it gets :meth:`CheckpointSigner.sign` and the callable
from :func:`verifier_from_public_pem`.
"""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Callable
from typing import Final

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from lictor.errors import ConfigError

__all__ = [
    "CheckpointSigner",
    "generate_key_file",
    "key_id_from_public_pem",
    "load_signer",
    "verifier_from_public_pem",
]

_KEY_FILE_MODE: Final = 0o600
_KEY_ID_HEX_DIGITS: Final = 16


def _key_id(public_key: Ed25519PublicKey) -> str:
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:_KEY_ID_HEX_DIGITS]


class CheckpointSigner:
    """An Ed25519 private key that signs checkpoint messages.

    Build it with :func:`load_signer` or :func:`generate_key_file`; the constructor only
    wraps a key object and does no I/O.
    """

    __slots__ = ("_key", "_key_id")

    def __init__(self, private_key: Ed25519PrivateKey) -> None:
        self._key = private_key
        self._key_id = _key_id(private_key.public_key())

    def __repr__(self) -> str:
        return f"CheckpointSigner(key_id={self._key_id!r})"  # never the key itself

    @property
    def key_id(self) -> str:
        """First 16 hex digits of SHA-256 of the raw public key: names the key in checkpoints."""
        return self._key_id

    def sign(self, message: bytes) -> bytes:
        """Return the 64-byte Ed25519 signature of ``message``."""
        return self._key.sign(message)

    def public_key_pem(self) -> str:
        """Return the public key as PEM (SubjectPublicKeyInfo), safe to publish."""
        pem = self._key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return pem.decode("ascii")


def generate_key_file(path: str | os.PathLike[str]) -> CheckpointSigner:
    """Create a new Ed25519 private key file, readable and writable by its owner only.

    The file is created with ``O_CREAT | O_EXCL`` and mode 0600 in one step, so it is
    never briefly world-readable and an existing key (or a symlink planted in its place)
    is never overwritten.

    **Whoever reads this file can forge checkpoints.** Keep it off shared disks and out
    of backups that others can read.

    Args:
        path: Where to write the PEM (PKCS#8, unencrypted).

    Returns:
        A signer for the new key.

    Raises:
        ConfigError: The file exists already or cannot be created.
    """
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(path, flags, _KEY_FILE_MODE)
    except FileExistsError as exc:
        raise ConfigError(
            f"key file {os.fspath(path)} already exists; refusing to overwrite it. Move it "
            "away first if you really mean to replace the checkpoint key."
        ) from exc
    except OSError as exc:
        raise ConfigError(f"cannot create key file {os.fspath(path)}: {exc.strerror}") from exc
    with os.fdopen(fd, "wb") as file:
        # The umask can only remove bits from 0600; fchmod makes the mode exact anyway.
        if hasattr(os, "fchmod"):
            os.fchmod(file.fileno(), _KEY_FILE_MODE)
        file.write(pem)
    return CheckpointSigner(key)


def read_private_file(path: str | os.PathLike[str]) -> bytes:
    """Read a secret file (a private key) that only its owner can access.

    The permission check runs on the opened file (``fstat``), so the file cannot be
    swapped between the check and the read; a symlink is not followed.

    Raises:
        ConfigError: missing or unreadable, or group or others have any access to it.
    """
    name = os.fspath(path)
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except OSError as exc:
        raise ConfigError(f"cannot open key file {name}: {exc.strerror}") from exc
    with os.fdopen(fd, "rb") as file:
        mode = stat.S_IMODE(os.fstat(file.fileno()).st_mode)
        if os.name == "posix" and mode & 0o077:
            raise ConfigError(
                f"key file {name} has mode {mode:04o}, so other users may read or change "
                f"it; restrict it to its owner with: chmod 600 {name}"
            )
        return file.read()


def load_signer(path: str | os.PathLike[str]) -> CheckpointSigner:
    """Load the checkpoint signing key from a PEM file that only its owner can access.

    The permission check runs on the opened file (``fstat``), so the file cannot be
    swapped between the check and the read.

    Args:
        path: The PEM file written by :func:`generate_key_file` (or ``openssl genpkey
            -algorithm ed25519``).

    Returns:
        The signer.

    Raises:
        ConfigError: The file is missing or unreadable, group or others have any access
            to it, or it does not hold an unencrypted Ed25519 private key.
    """
    name = os.fspath(path)
    data = read_private_file(path)
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise ConfigError(
            f"key file {name} does not hold an unencrypted PEM private key: {exc}"
        ) from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise ConfigError(
            f"key file {name} holds a {type(key).__name__}, not an Ed25519 key; create one "
            "with `lictor` or `openssl genpkey -algorithm ed25519`"
        )
    return CheckpointSigner(key)


def _load_public_key(pem: str | bytes) -> Ed25519PublicKey:
    data = pem.encode("ascii") if isinstance(pem, str) else pem
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, UnsupportedAlgorithm, UnicodeEncodeError) as exc:
        raise ConfigError(f"not a PEM public key: {exc}") from exc
    if not isinstance(key, Ed25519PublicKey):
        raise ConfigError(f"checkpoint keys are Ed25519, not {type(key).__name__}")
    return key


def key_id_from_public_pem(pem: str | bytes) -> str:
    """Return the key id of a public key, to match it with a checkpoint's ``key_id``.

    Raises:
        ConfigError: ``pem`` is not an Ed25519 public key in PEM form.
    """
    return _key_id(_load_public_key(pem))


def verifier_from_public_pem(pem: str | bytes) -> Callable[[bytes, bytes], bool]:
    """Return ``check(message, signature) -> bool`` for one Ed25519 public key.

    This is the ``verify_signature`` callable the core's checkpoint functions take.

    Args:
        pem: The public key, as from :meth:`CheckpointSigner.public_key_pem`.

    Returns:
        A function that is True only for a valid signature of ``message`` by this key.

    Raises:
        ConfigError: ``pem`` is not an Ed25519 public key in PEM form.
    """
    key = _load_public_key(pem)

    def check(message: bytes, signature: bytes) -> bool:
        try:
            key.verify(signature, message)
        except InvalidSignature:
            return False
        return True

    return check

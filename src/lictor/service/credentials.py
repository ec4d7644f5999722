"""Bearer credentials for agents and for people operating Lictor.

A token reads ``lct_<id>_<secret>``: the id finds the record, the secret (32 random
bytes, URL-safe base64) is checked against its stored SHA-256 in constant time. A slow
password hash is unnecessary for 256-bit random secrets, and SHA-256 keeps the check on
the hot path cheap. The secret is shown once, at creation, and never stored.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

from lictor.errors import AuthError, NotFound
from lictor.service.ports import Clock, Credential, CredentialKind, CredentialStore, Role

PREFIX = "lct"


@dataclass(frozen=True, slots=True)
class IssuedCredential:
    """A new credential and its token. The token is shown once; keep it secret."""

    credential: Credential
    token: str


def hash_secret(secret: str) -> str:
    """Return the hex SHA-256 of a token secret."""
    return hashlib.sha256(secret.encode()).hexdigest()


class Credentials:
    """Issue, authenticate, rotate and revoke credentials."""

    def __init__(self, store: CredentialStore, clock: Clock) -> None:
        self.store = store
        self._clock = clock

    def issue(
        self, kind: CredentialKind, subject: str, role: Role, description: str = ""
    ) -> IssuedCredential:
        """Create a credential for ``subject`` and return it with its token."""
        if kind is CredentialKind.AGENT and role is not Role.AGENT:
            raise ValueError("agent credentials always have the agent role")
        if kind is CredentialKind.ADMIN and role is Role.AGENT:
            raise ValueError("people get the admin, reviewer or auditor role")
        credential_id = secrets.token_hex(8)
        secret = secrets.token_urlsafe(32)
        credential = Credential(
            id=credential_id,
            kind=kind,
            subject=subject,
            role=role,
            created_at=self._clock.now(),
            description=description,
        )
        self.store.add(credential, hash_secret(secret))
        return IssuedCredential(credential, f"{PREFIX}_{credential_id}_{secret}")

    def authenticate(self, token: str) -> Credential:
        """Return the active credential for a token.

        Raises:
            AuthError: malformed, unknown, wrong secret or revoked — the message does
                not say which, so a caller cannot probe for valid ids.
        """
        parts = token.split("_", 2)
        if len(parts) != 3 or parts[0] != PREFIX or not parts[1] or not parts[2]:
            raise AuthError("invalid credential")
        found = self.store.get(parts[1])
        if found is None:
            hmac.compare_digest(hash_secret(parts[2]), hash_secret(""))  # same work either way
            raise AuthError("invalid credential")
        credential, secret_hash = found
        if not hmac.compare_digest(hash_secret(parts[2]), secret_hash):
            raise AuthError("invalid credential")
        if not credential.is_active:
            raise AuthError("invalid credential")
        return credential

    def revoke(self, credential_id: str) -> Credential:
        """Revoke a credential at once.

        Raises:
            NotFound: no such credential.
        """
        return self.store.revoke(credential_id, self._clock.now())

    def rotate(self, credential_id: str) -> IssuedCredential:
        """Issue a replacement with the same subject and role, then revoke the old one.

        Raises:
            NotFound: no such credential.
        """
        found = self.store.get(credential_id)
        if found is None:
            raise NotFound("credential", credential_id)
        old, _ = found
        new = self.issue(old.kind, old.subject, old.role, old.description)
        self.revoke(credential_id)
        return new

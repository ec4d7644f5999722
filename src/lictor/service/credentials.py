"""Bearer credentials for agents and for people operating Lictor.

A token reads ``lct_<id>_<secret>``: the id finds the record, the secret (32 random
bytes, URL-safe base64) is checked against its stored SHA-256 in constant time. A slow
password hash is unnecessary for 256-bit random secrets, and SHA-256 keeps the check on
the hot path cheap. The secret is shown once, at creation, and never stored.

Rotation may keep the old token working for an overlap window (its ``expires_at``), so
agents can be redeployed with the new one without an outage. Use is recorded in memory
and written in batches at most every ``flush_seconds`` (:class:`UsageRecorder`): a
``last_used_at`` that lags by that much costs nothing on the hot path.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from lictor.errors import AuthError, LictorError, NotFound
from lictor.service.ports import Clock, Credential, CredentialKind, CredentialStore, Role

PREFIX = "lct"

log = logging.getLogger("lictor.credentials")


class UsageRecorder:
    """Collects ``credential id -> last use`` in memory and writes it in batches.

    :meth:`seen` is a dict update (safe on an event loop). :meth:`flush` writes what was
    collected in one transaction; :meth:`flush_if_due` does so at most once per
    ``flush_seconds``. A failed write keeps the times for the next flush: last use is
    bookkeeping, so it never fails a request.
    """

    def __init__(
        self,
        store: CredentialStore,
        *,
        flush_seconds: float = 30.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._store = store
        self._flush_seconds = flush_seconds
        self._monotonic = monotonic
        self._pending: dict[str, datetime] = {}
        self._lock = threading.Lock()
        self._last_flush = monotonic()

    def seen(self, credential_id: str, at: datetime) -> None:
        """Note one use (only the latest time per credential is kept)."""
        with self._lock:
            previous = self._pending.get(credential_id)
            if previous is None or at > previous:
                self._pending[credential_id] = at

    def flush_if_due(self) -> None:
        """Flush when ``flush_seconds`` passed since the last flush (blocking I/O)."""
        if self._monotonic() - self._last_flush >= self._flush_seconds:
            self.flush()

    def flush(self) -> None:
        """Write every collected time now (blocking I/O); never raises a store error."""
        with self._lock:
            batch, self._pending = self._pending, {}
            self._last_flush = self._monotonic()
        if not batch:
            return
        try:
            self._store.record_use(batch)
        except LictorError:
            log.warning("could not record credential use; retrying at the next flush")
            for credential_id, at in batch.items():
                self.seen(credential_id, at)


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

    def __init__(
        self, store: CredentialStore, clock: Clock, *, usage: UsageRecorder | None = None
    ) -> None:
        self.store = store
        self._clock = clock
        self.usage = usage

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
        now = self._clock.now()
        if not credential.is_valid_at(now):
            raise AuthError("invalid credential")
        if self.usage is not None:
            self.usage.seen(credential.id, now)
            self.usage.flush_if_due()
        return credential

    def note_use(self, credential: Credential) -> None:
        """Record a use of an already authenticated credential (in memory, no I/O)."""
        if self.usage is not None:
            self.usage.seen(credential.id, self._clock.now())

    def is_still_valid(self, credential: Credential) -> bool:
        """Return whether a cached credential has not passed its ``expires_at`` yet."""
        return credential.is_valid_at(self._clock.now())

    def revoke(self, credential_id: str) -> Credential:
        """Revoke a credential at once.

        Raises:
            NotFound: no such credential.
        """
        return self.store.revoke(credential_id, self._clock.now())

    def rotate(self, credential_id: str, overlap: timedelta = timedelta(0)) -> IssuedCredential:
        """Issue a replacement with the same subject and role; retire the old one.

        With ``overlap`` 0 the old credential is revoked at once; otherwise it keeps
        working until ``now + overlap`` (its ``expires_at``) and then stops, with no
        further action, on every replica.

        Raises:
            NotFound: no such credential.
            AuthError: the credential is already revoked or expired (rotate its successor).
        """
        found = self.store.get(credential_id)
        if found is None:
            raise NotFound("credential", credential_id)
        old, _ = found
        now = self._clock.now()
        if not old.is_valid_at(now):
            raise AuthError(f"credential {credential_id} is no longer valid; nothing to rotate")
        if overlap < timedelta(0):
            raise ValueError("the overlap cannot be negative")
        new = self.issue(old.kind, old.subject, old.role, old.description)
        if overlap:
            self.store.expire(credential_id, now + overlap)
        else:
            self.revoke(credential_id)
        return new

"""Dashboard sessions: the bearer token in a hardened cookie, and CSRF tokens.

The cookie holds the person's own bearer token, ``HttpOnly`` (no script can read it),
``Secure``, ``SameSite=Strict`` and scoped to ``/ui``. Every page authenticates it
through the same :class:`~lictor.server.auth.Authenticator` as the API, so a revoked
token stops working in the dashboard exactly when it stops working on the API, on
every replica, with no session table to keep in sync.

The CSRF token of a form is an HMAC of a fixed label keyed by the session token: a page
from another origin can neither read the cookie nor compute the HMAC, and the server
needs no state to check it. ``SameSite=Strict`` and an ``Origin`` check come on top.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from typing import Final
from urllib.parse import urlsplit

__all__ = [
    "COOKIE_NAME",
    "SESSION_SECONDS",
    "csrf_token",
    "csrf_valid",
    "same_origin",
    "session_cookie",
]

COOKIE_NAME: Final = "lictor_session"
SESSION_SECONDS: Final = 8 * 3600
_CSRF_LABEL: Final = b"lictor-dashboard-csrf-v1"


def csrf_token(session_token: str) -> str:
    """Return the CSRF token that forms of this session must carry."""
    key = session_token.encode("utf-8", "surrogatepass")
    return hmac.new(key, _CSRF_LABEL, hashlib.sha256).hexdigest()


def csrf_valid(session_token: str, submitted: str | None) -> bool:
    """Check a submitted CSRF token in constant time."""
    if not submitted:
        return False
    return hmac.compare_digest(csrf_token(session_token), submitted)


def same_origin(headers: Mapping[str, str], host: str | None) -> bool:
    """Whether a state-changing request came from our own pages.

    Browsers send ``Origin`` on every POST; when present it must name this host. A
    request without it (an old client, a test tool) is judged by the CSRF token alone.
    """
    origin = headers.get("origin")
    if origin is None:
        return True
    if origin == "null" or host is None:
        return False
    return urlsplit(origin).netloc == host


def session_cookie(token: str, *, max_age: int = SESSION_SECONDS) -> str:
    """The ``Set-Cookie`` value that starts a session (empty token and age 0 end it)."""
    return f"{COOKIE_NAME}={token}; Path=/ui; Max-Age={max_age}; HttpOnly; Secure; SameSite=Strict"

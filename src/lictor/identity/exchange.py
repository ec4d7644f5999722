"""Assemble the token exchange from plain configuration: keys, trusted IdPs, HTTP client.

The server's composition root calls :func:`open_exchange` once at start-up; nothing here
runs per request. The returned ``httpx.Client`` fetches IdP key sets and must be closed
with the server.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import httpx

from lictor.identity.jwks import KeySource, RemoteJWKS
from lictor.identity.tokens import JWTVerifier, SigningKey, generate_signing_key_file
from lictor.identity.tokens import load_signing_key as _load
from lictor.service.delegation import ExchangePolicy, TokenExchange
from lictor.service.ports import AgentDirectory, Clock

__all__ = ["ensure_token_key", "open_exchange"]

JWKS_TIMEOUT_SECONDS = 5.0


def ensure_token_key(path: str | os.PathLike[str]) -> tuple[SigningKey, bool]:
    """Load the token-signing key, creating it (mode 0600) when absent; say whether it is new.

    Raises:
        ConfigError: the file is unreadable, readable by others, or not a signing key.
    """
    if Path(path).exists():
        return _load(path), False
    return generate_signing_key_file(path), True


def open_exchange(
    policy: ExchangePolicy,
    key: SigningKey,
    *,
    jwks_urls: Mapping[str, str | None],
    agents: AgentDirectory,
    clock: Clock,
    client: httpx.Client | None = None,
) -> tuple[TokenExchange, httpx.Client]:
    """Return the exchange and the HTTP client its IdP key sets use (close it at shutdown).

    ``jwks_urls`` maps each trusted issuer to its JWKS URL, or None to find it through
    the issuer's OpenID discovery document. Lictor's own issuer verifies against
    ``key`` (and its retired keys), never over the network.

    Raises:
        ConfigError: an issuer or JWKS URL is not HTTPS (loopback excepted).
    """
    http = client if client is not None else httpx.Client(timeout=JWKS_TIMEOUT_SECONDS)
    sources: dict[str, KeySource] = {policy.issuer: key}
    for trusted in policy.trusted_issuers:
        sources[trusted.issuer] = RemoteJWKS(
            trusted.issuer, client=http, clock=clock, jwks_uri=jwks_urls.get(trusted.issuer)
        )
    exchange = TokenExchange(
        policy, verifier=JWTVerifier(sources), signer=key, agents=agents, clock=clock
    )
    return exchange, http

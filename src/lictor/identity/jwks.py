"""Public keys of token issuers: a trusted IdP's JWKS fetched over HTTP, or a fixed set.

:class:`RemoteJWKS` is the one place Lictor talks to an identity provider. Rules:

1. Only configured issuers are ever fetched. The ``iss`` of an incoming token picks
   among them; a token can never make Lictor fetch a URL of its choosing (SSRF).
2. Keys are cached for ``ttl_seconds``. A token whose ``kid`` is not cached triggers one
   refresh (the IdP rotated its keys), at most once per ``min_refresh_seconds``, so a
   flood of random ``kid`` values cannot turn Lictor into a load generator against the IdP.
3. Fail closed: when the IdP cannot be reached and no key is cached, every token of that
   issuer is refused. Cached keys stay usable for ``max_stale_seconds`` past their TTL
   while the IdP is down, so a short IdP outage does not stop every agent.
4. Everything is bounded: response size, number of keys, and one cache per issuer.

HTTPS is required, except to loopback addresses (tests and local IdPs).
"""

from __future__ import annotations

import base64
import ipaddress
import json
import logging
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final, Protocol
from urllib.parse import urlsplit

import httpx
from joserfc.errors import JoseError
from joserfc.jwk import ECKey, Key, OKPKey, RSAKey

from lictor.errors import ConfigError
from lictor.service.delegation import TokenProblem, TokenRejected
from lictor.service.ports import Clock

__all__ = [
    "DEFAULT_MAX_KEYS",
    "DEFAULT_TTL_SECONDS",
    "KeySource",
    "RemoteJWKS",
    "StaticKeySet",
    "check_fetch_url",
    "is_compatible",
    "parse_jwks",
]

log = logging.getLogger("lictor.identity.jwks")

DEFAULT_TTL_SECONDS: Final = 300
DEFAULT_MIN_REFRESH_SECONDS: Final = 30
DEFAULT_MAX_STALE_SECONDS: Final = 3600
DEFAULT_MAX_KEYS: Final = 64
DEFAULT_MAX_BYTES: Final = 256 * 1024
_MIN_RSA_BITS: Final = 2048

#: The key type (and curves) each allowed JWS algorithm needs (RFC 7518 §3, RFC 8037 §3.1).
_KEY_TYPES: Final[Mapping[str, tuple[str, frozenset[str]]]] = {
    "RS256": ("RSA", frozenset()),
    "ES256": ("EC", frozenset({"P-256"})),
    "EdDSA": ("OKP", frozenset({"Ed25519", "Ed448"})),
    "Ed25519": ("OKP", frozenset({"Ed25519"})),
}


class KeySource(Protocol):
    """Finds the public key that should have signed a token."""

    def find(self, kid: str | None, alg: str) -> Key:
        """Return the key with this ``kid`` usable with ``alg``.

        Raises:
            TokenRejected: no such key (``unknown_key``), or the keys cannot be had
                (``issuer_unreachable``).
        """
        ...


def is_compatible(key: Key, alg: str) -> bool:
    """Return whether ``key`` may verify ``alg``: right type and curve, ``use``/``alg`` agree."""
    wanted = _KEY_TYPES.get(alg)
    if wanted is None or key.key_type != wanted[0]:
        return False
    if wanted[1] and (not isinstance(key, ECKey | OKPKey) or key.curve_name not in wanted[1]):
        return False
    use = key.get("use")
    key_alg = key.get("alg")
    return use in (None, "sig") and key_alg in (None, alg)


def _select(keys: Sequence[Key], kid: str | None, alg: str, who: str) -> Key:
    """Pick the one key for (kid, alg); ambiguity is refused, not guessed."""
    if kid is None:
        usable = [k for k in keys if is_compatible(k, alg)]
        if len(usable) == 1:
            return usable[0]
        raise TokenRejected(
            TokenProblem.UNKNOWN_KEY,
            f"token has no 'kid' and {who} has {len(usable)} {alg} keys; cannot tell which",
        )
    for key in keys:
        if key.kid == kid and is_compatible(key, alg):
            return key
    raise TokenRejected(
        TokenProblem.UNKNOWN_KEY, f"unknown key: {who} has no {alg} key with kid {kid!r}"
    )


def parse_jwks(document: object, *, source: str, max_keys: int = DEFAULT_MAX_KEYS) -> list[Key]:
    """Import the public signing keys of a JWKS document (RFC 7517 §5).

    Encryption keys, symmetric keys, entries with private parts and RSA keys under
    2048 bits are skipped with a warning: none of them may verify an IdP's token.

    Raises:
        ValueError: not a JWKS, or more than ``max_keys`` entries.
    """
    if not isinstance(document, Mapping) or not isinstance(document.get("keys"), list):
        raise ValueError(f"{source} is not a JWKS: expected an object with a 'keys' list")
    entries: list[Any] = document["keys"]
    if len(entries) > max_keys:
        raise ValueError(f"{source} lists {len(entries)} keys, more than the limit of {max_keys}")
    keys: list[Key] = []
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict):
            log.warning("%s: key %d is not an object; skipped", source, i)
            continue
        kty = entry.get("kty")
        if kty not in ("RSA", "EC", "OKP") or entry.get("use") not in (None, "sig"):
            continue  # symmetric or encryption keys never verify a signature
        if "d" in entry:
            log.warning("%s: key %d includes private key material; skipped", source, i)
            continue
        if kty == "RSA" and _rsa_bits(entry.get("n")) < _MIN_RSA_BITS:
            log.warning("%s: RSA key %d is shorter than %d bits; skipped", source, i, _MIN_RSA_BITS)
            continue
        try:
            key: Key
            if kty == "RSA":
                key = RSAKey.import_key(entry)
            elif kty == "EC":
                key = ECKey.import_key(entry)
            else:
                key = OKPKey.import_key(entry)
        except (JoseError, ValueError, TypeError) as exc:
            log.warning("%s: key %d cannot be imported (%s); skipped", source, i, exc)
            continue
        keys.append(key)
    return keys


def _rsa_bits(n: object) -> int:
    if not isinstance(n, str):
        return 0
    try:
        raw = base64.urlsafe_b64decode(n + "=" * (-len(n) % 4))
    except ValueError:
        return 0
    return int.from_bytes(raw, "big").bit_length()


class StaticKeySet:
    """A fixed set of public keys: an IdP configured offline, or Lictor's own keys."""

    def __init__(self, keys: Sequence[Key], *, name: str = "key set") -> None:
        self._keys = tuple(keys)
        self._name = name

    @classmethod
    def from_jwks(cls, document: object, *, name: str = "JWKS") -> StaticKeySet:
        """Build from a JWKS document.

        Raises:
            ConfigError: the document is not a usable JWKS.
        """
        try:
            return cls(parse_jwks(document, source=name), name=name)
        except ValueError as exc:
            raise ConfigError(str(exc)) from exc

    def find(self, kid: str | None, alg: str) -> Key:
        """Return the key for (kid, alg), or raise ``unknown_key``."""
        return _select(self._keys, kid, alg, self._name)


class _Unavailable(Exception):
    """The keys could not be fetched; the message says why."""


@dataclass(slots=True)
class _Cache:
    keys: tuple[Key, ...]
    fetched_at: datetime


def check_fetch_url(url: str, what: str) -> str:
    """Accept ``https://`` URLs, and ``http://`` only to a loopback address.

    Raises:
        ConfigError: any other URL.
    """
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.scheme == "https" and host:
        return url
    if parts.scheme == "http" and _is_loopback(host):
        return url
    raise ConfigError(
        f"{what} {url!r} must be an https:// URL (plain http only to a loopback address); "
        "keys fetched over plain HTTP could be swapped by anyone on the path"
    )


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class RemoteJWKS:
    """One trusted issuer's signing keys, fetched over HTTPS and cached.

    The JWKS URL comes from ``jwks_uri`` when given, else from the issuer's OpenID
    Connect discovery document (``<issuer>/.well-known/openid-configuration``), whose
    ``issuer`` must equal ours exactly (OIDC Discovery §4.3). The constructor does no
    I/O; the first :meth:`find` fetches. Thread-safe: one fetch at a time per issuer,
    so concurrent misses do not stampede the IdP.
    """

    def __init__(
        self,
        issuer: str,
        *,
        client: httpx.Client,
        clock: Clock,
        jwks_uri: str | None = None,
        ttl_seconds: float = DEFAULT_TTL_SECONDS,
        min_refresh_seconds: float = DEFAULT_MIN_REFRESH_SECONDS,
        max_stale_seconds: float = DEFAULT_MAX_STALE_SECONDS,
        max_keys: int = DEFAULT_MAX_KEYS,
        max_bytes: int = DEFAULT_MAX_BYTES,
    ) -> None:
        check_fetch_url(issuer, "issuer")
        if jwks_uri is not None:
            check_fetch_url(jwks_uri, "jwks_uri")
        if ttl_seconds <= 0 or min_refresh_seconds < 0 or max_stale_seconds < 0:
            raise ConfigError("JWKS cache times must be positive")
        self.issuer = issuer
        self._client = client
        self._clock = clock
        self._jwks_uri = jwks_uri
        self._ttl = timedelta(seconds=ttl_seconds)
        self._min_refresh = timedelta(seconds=min_refresh_seconds)
        self._max_stale = timedelta(seconds=max_stale_seconds)
        self._max_keys = max_keys
        self._max_bytes = max_bytes
        self._cache: _Cache | None = None
        self._last_attempt: datetime | None = None
        self._failure: str | None = None  # why the last fetch failed; None after a success
        self._lock = threading.Lock()

    def find(self, kid: str | None, alg: str) -> Key:
        """Return the issuer's key for (kid, alg), fetching or refreshing as needed.

        Raises:
            TokenRejected: ``unknown_key`` when even fresh keys lack it;
                ``issuer_unreachable`` when keys are needed and cannot be fetched.
        """
        with self._lock:
            now = self._clock.now()
            cache = self._cache
            if cache is None or now >= cache.fetched_at + self._ttl:
                cache = self._refresh_or_stale(now)
            try:
                return _select(cache.keys, kid, alg, self.issuer)
            except TokenRejected as exc:
                if self._may_refresh(now):
                    pass
                elif self._failure is not None:
                    raise TokenRejected(
                        TokenProblem.ISSUER_UNREACHABLE,
                        f"unknown key {kid!r} and issuer {self.issuer} is unreachable to "
                        f"refresh its keys: {self._failure}",
                    ) from exc
                else:
                    raise
            # An unknown kid usually means the IdP rotated: look once more.
            try:
                cache = self._refresh(now)
            except _Unavailable as exc:
                raise TokenRejected(
                    TokenProblem.ISSUER_UNREACHABLE,
                    f"unknown key {kid!r}, and issuer {self.issuer} is unreachable to "
                    f"refresh its keys: {exc}",
                ) from exc
            return _select(cache.keys, kid, alg, self.issuer)

    def refresh(self) -> None:
        """Fetch the keys now (for warming the cache at startup).

        Raises:
            TokenRejected: ``issuer_unreachable``.
        """
        with self._lock:
            try:
                self._refresh(self._clock.now())
            except _Unavailable as exc:
                raise TokenRejected(
                    TokenProblem.ISSUER_UNREACHABLE, f"issuer {self.issuer}: {exc}"
                ) from exc

    def _may_refresh(self, now: datetime) -> bool:
        return self._last_attempt is None or now >= self._last_attempt + self._min_refresh

    def _refresh_or_stale(self, now: datetime) -> _Cache:
        """Refresh an expired (or empty) cache; on failure fall back to stale keys."""
        stale = self._cache
        if self._may_refresh(now) or stale is None:
            try:
                return self._refresh(now)
            except _Unavailable as exc:
                if stale is None:
                    raise TokenRejected(
                        TokenProblem.ISSUER_UNREACHABLE,
                        f"issuer {self.issuer} is unreachable and no key of it is cached, "
                        f"so its tokens are refused: {exc}",
                    ) from exc
                reason = str(exc)
        else:
            reason = "refresh rate-limited"
        if now >= stale.fetched_at + self._ttl + self._max_stale:
            raise TokenRejected(
                TokenProblem.ISSUER_UNREACHABLE,
                f"issuer {self.issuer} has been unreachable too long; its cached keys from "
                f"{stale.fetched_at.isoformat()} are no longer trusted ({reason})",
            )
        log.warning("issuer %s: using cached keys past their TTL (%s)", self.issuer, reason)
        return stale

    def _refresh(self, now: datetime) -> _Cache:
        self._last_attempt = now
        try:
            uri = self._jwks_uri or self._discover()
            keys = _parse_or_fail(self._get_json(uri), uri, self._max_keys)
        except _Unavailable as exc:
            self._failure = str(exc)
            raise
        self._failure = None
        self._cache = _Cache(tuple(keys), now)
        return self._cache

    def _discover(self) -> str:
        url = self.issuer.rstrip("/") + "/.well-known/openid-configuration"
        doc = self._get_json(url)
        if not isinstance(doc, Mapping):
            raise _Unavailable(f"{url} is not a JSON object")
        if doc.get("issuer") != self.issuer:
            raise _Unavailable(
                f"{url} names issuer {doc.get('issuer')!r}, not {self.issuer!r} "
                "(OpenID Connect Discovery §4.3 requires them to be equal)"
            )
        jwks_uri = doc.get("jwks_uri")
        if not isinstance(jwks_uri, str):
            raise _Unavailable(f"{url} has no jwks_uri")
        try:
            return check_fetch_url(jwks_uri, "jwks_uri")
        except ConfigError as exc:
            raise _Unavailable(str(exc)) from exc

    def _get_json(self, url: str) -> Any:
        try:
            with self._client.stream(
                "GET", url, headers={"Accept": "application/json"}, follow_redirects=False
            ) as response:
                if response.status_code != 200:
                    raise _Unavailable(f"GET {url} answered HTTP {response.status_code}")
                body = bytearray()
                for chunk in response.iter_bytes():
                    body += chunk
                    if len(body) > self._max_bytes:
                        raise _Unavailable(f"{url} sent more than {self._max_bytes} bytes")
        except httpx.HTTPError as exc:
            raise _Unavailable(f"GET {url} failed: {type(exc).__name__}: {exc}") from exc
        try:
            return json.loads(body)
        except ValueError as exc:
            raise _Unavailable(f"{url} did not return JSON: {exc}") from exc


def _parse_or_fail(document: object, source: str, max_keys: int) -> list[Key]:
    """Like :func:`parse_jwks`, but a bad document means the keys are unavailable."""
    try:
        return parse_jwks(document, source=source, max_keys=max_keys)
    except ValueError as exc:
        raise _Unavailable(str(exc)) from exc

"""JWTs at the edge: verify tokens from trusted issuers and sign Lictor's own, with joserfc.

No cryptography is written here; joserfc does it. What is here are the rules around it:

1. The ``alg`` allow-list is RS256, ES256 and EdDSA (also under its RFC 9864 name
   ``Ed25519``). ``alg: none`` and every ``HS*`` are refused by name before any key is
   looked up: an HMAC "signature" keyed with an issuer's *public* key is the classic JWT
   forgery, and refusing the name means no code path can be confused into trying it.
2. The unverified ``iss`` only chooses which trusted key set to check against; an
   unknown ``iss`` is refused before any key is fetched. Claims are read from the
   payload joserfc verified, never from the unverified peek.
3. Sizes are bounded and duplicate JSON member names are refused (RFC 7515 §5.2 lets a
   parser pick either; two parsers picking differently is how confusion starts).

Time, audience and delegation rules live in :mod:`lictor.service.delegation`.
"""

from __future__ import annotations

import base64
import json
import os
import re
from collections.abc import Collection, Mapping, Sequence
from typing import Any, Final

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ec import SECP256R1, EllipticCurvePrivateKey
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from joserfc import jws, jwt
from joserfc.errors import BadSignatureError, JoseError
from joserfc.jwa import EdDSAAlgorithm, JWSAlgModel
from joserfc.jwk import ECKey, Key, OKPKey
from joserfc.jws import JWSRegistry

from lictor.errors import ConfigError
from lictor.identity.jwks import KeySource, StaticKeySet
from lictor.identity.keys import read_private_file
from lictor.service.delegation import TokenProblem, TokenRejected, VerifiedJWT

__all__ = [
    "ALLOWED_ALGORITHMS",
    "MAX_TOKEN_BYTES",
    "JWTVerifier",
    "SigningKey",
    "generate_signing_key_file",
    "load_signing_key",
]

#: Algorithms a token may be signed with. Never add ``none`` or ``HS*`` (see above).
ALLOWED_ALGORITHMS: Final = frozenset({"RS256", "ES256", "EdDSA", "Ed25519"})
#: Longer tokens are refused unparsed; real ID and access tokens are a few KiB.
MAX_TOKEN_BYTES: Final = 16 * 1024

_SEGMENT = re.compile(r"[A-Za-z0-9_-]*")
_KEY_FILE_MODE: Final = 0o600


class _EdDSA(EdDSAAlgorithm):
    """joserfc's EdDSA without its RFC 9864 deprecation warning.

    RFC 9864 deprecates the *name* ``EdDSA`` in favour of ``Ed25519``; the signature is
    the same. IdPs still sign with ``EdDSA``, so we accept it on purpose and do not want
    a warning per token.
    """

    security_warning = None  # type: ignore[assignment]  # joserfc types it str; None = no warning


class _Registry(JWSRegistry):
    """Only the allowed algorithms exist here, so nothing else can be selected."""

    algorithms: dict[str, JWSAlgModel] = {
        name: alg for name, alg in JWSRegistry.algorithms.items() if name in ALLOWED_ALGORITHMS
    } | {"EdDSA": _EdDSA()}
    recommended: list[str] = []  # noqa: RUF012 - joserfc's class-level table


def _registry(alg: str, *, strict_header: bool) -> _Registry:
    # Non-strict headers for IdP tokens: Entra ID and others add private header
    # parameters. ``crit`` is still enforced by joserfc (RFC 7515 §4.1.11).
    return _Registry(algorithms=[alg], strict_check_header=strict_header)


def _b64_json(segment: str, what: str) -> dict[str, Any]:
    if not _SEGMENT.fullmatch(segment):
        raise TokenRejected(TokenProblem.MALFORMED, f"token {what} is not base64url")
    try:
        raw = base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
    except ValueError as exc:
        raise TokenRejected(TokenProblem.MALFORMED, f"token {what} is not base64url") from exc
    return _json_object(raw, what)


def _json_object(raw: bytes, what: str) -> dict[str, Any]:
    try:
        value = json.loads(raw, object_pairs_hook=_no_duplicates)
    except (ValueError, UnicodeDecodeError) as exc:
        raise TokenRejected(TokenProblem.MALFORMED, f"token {what} is not JSON: {exc}") from exc
    if not isinstance(value, dict):
        raise TokenRejected(TokenProblem.MALFORMED, f"token {what} is not a JSON object")
    return value


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise ValueError(f"duplicate member {key!r}")
        result[key] = value
    return result


def _peek(token: object, max_bytes: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """Split a compact JWS and decode header and payload, without trusting either."""
    if not isinstance(token, str) or not token:
        raise TokenRejected(TokenProblem.MALFORMED, "no token")
    if len(token) > max_bytes:
        raise TokenRejected(TokenProblem.MALFORMED, f"token is longer than {max_bytes} bytes")
    parts = token.split(".")
    if len(parts) == 5:
        raise TokenRejected(TokenProblem.MALFORMED, "encrypted tokens (JWE) are not accepted")
    if len(parts) != 3:
        raise TokenRejected(TokenProblem.MALFORMED, "not a JWT: expected three dot-separated parts")
    return _b64_json(parts[0], "header"), _b64_json(parts[1], "payload")


def _check_alg(header: Mapping[str, Any], allowed: Collection[str]) -> str:
    alg = header.get("alg")
    if not isinstance(alg, str) or not alg:
        raise TokenRejected(TokenProblem.MALFORMED, "token header has no 'alg'")
    if alg.lower() == "none":
        raise TokenRejected(
            TokenProblem.ALG_NONE, "unsigned token ('alg: none') refused: tokens must be signed"
        )
    if alg.upper().startswith("HS"):
        raise TokenRejected(
            TokenProblem.ALG_NOT_ALLOWED,
            f"algorithm {alg} refused: issuers sign with public-key algorithms, and an HMAC "
            "keyed with a public key can be forged by anyone",
        )
    if alg not in allowed:
        raise TokenRejected(
            TokenProblem.ALG_NOT_ALLOWED,
            f"algorithm {alg!r} is not allowed (allowed: {', '.join(sorted(allowed))})",
        )
    return alg


class JWTVerifier:
    """Verifies JWT signatures against the key set of the issuer the token names.

    Implements :class:`lictor.service.delegation.TokenVerifier`. ``issuers`` maps each
    trusted ``iss`` (the IdPs, and Lictor's own issuer) to its keys.
    """

    def __init__(
        self,
        issuers: Mapping[str, KeySource],
        *,
        algorithms: Collection[str] = ALLOWED_ALGORITHMS,
        max_token_bytes: int = MAX_TOKEN_BYTES,
    ) -> None:
        extra = set(algorithms) - ALLOWED_ALGORITHMS
        if extra:
            raise ConfigError(
                f"algorithms {', '.join(sorted(extra))} cannot be allowed; choose among "
                f"{', '.join(sorted(ALLOWED_ALGORITHMS))}"
            )
        if not algorithms:
            raise ConfigError("allow at least one token algorithm")
        self._issuers = dict(issuers)
        self._algorithms = frozenset(algorithms)
        self._max_bytes = max_token_bytes

    def verify(self, token: str) -> VerifiedJWT:
        """Check the token's signature with its issuer's key; return its claims.

        Raises:
            TokenRejected: malformed, ``alg`` none or not allowed, unknown issuer or
                key, bad signature, or the issuer's keys cannot be fetched.
        """
        header, unverified = _peek(token, self._max_bytes)
        alg = _check_alg(header, self._algorithms)
        kid = header.get("kid")
        if kid is not None and not isinstance(kid, str):
            raise TokenRejected(TokenProblem.MALFORMED, "token header 'kid' is not a string")
        issuer = unverified.get("iss")
        if not isinstance(issuer, str) or not issuer:
            raise TokenRejected(TokenProblem.MALFORMED, "token has no 'iss' claim")
        source = self._issuers.get(issuer)
        if source is None:
            raise TokenRejected(
                TokenProblem.UNKNOWN_ISSUER, f"issuer {issuer!r} is not a trusted issuer"
            )
        key = source.find(kid, alg)
        try:
            verified = jws.deserialize_compact(
                token, key, registry=_registry(alg, strict_header=False)
            )
        except BadSignatureError as exc:
            raise TokenRejected(
                TokenProblem.BAD_SIGNATURE,
                f"bad signature: the token does not verify with {issuer}'s key {kid!r}",
            ) from exc
        except JoseError as exc:
            raise TokenRejected(TokenProblem.MALFORMED, f"token refused: {exc}") from exc
        claims = _json_object(verified.payload or b"", "payload")
        return VerifiedJWT(issuer=issuer, key_id=kid, algorithm=alg, claims=claims)


class SigningKey:
    """Lictor's private token-signing key: ES256 (P-256) or EdDSA (Ed25519).

    The key id is the RFC 7638 thumbprint, so it is stable for a key and names it in
    :meth:`jwks`. ``retired`` public keys stay in the JWKS (and verify) while tokens
    they signed can still be live: rotate by starting with a new key and the old one's
    public half as retired, for at least one token lifetime.

    Ed25519 keys sign with ``alg: EdDSA``, the name today's JOSE libraries understand
    (RFC 8037); our verifier accepts the RFC 9864 name ``Ed25519`` too.
    """

    __slots__ = ("_algorithm", "_key", "_key_id", "_keys", "_public")

    def __init__(self, key: ECKey | OKPKey, *, retired: Sequence[Key] = ()) -> None:
        if not key.is_private:
            raise ConfigError("a signing key needs its private half")
        if isinstance(key, ECKey) and key.curve_name == "P-256":
            self._algorithm = "ES256"
        elif isinstance(key, OKPKey) and key.curve_name == "Ed25519":
            self._algorithm = "EdDSA"
        else:
            raise ConfigError(
                f"token signing keys are EC P-256 or Ed25519, not {key.key_type} "
                f"{getattr(key, 'curve_name', '')}".rstrip()
            )
        self._key_id = key.thumbprint()
        self._key = key
        public = [_public(key, self._algorithm, self._key_id)]
        for old in retired:
            alg = "ES256" if isinstance(old, ECKey) else "EdDSA"
            public.append(_public(old, alg, old.kid or old.thumbprint()))
        self._public = tuple(public)
        self._keys = StaticKeySet(public, name="Lictor")

    def __repr__(self) -> str:
        return f"SigningKey(algorithm={self._algorithm!r}, key_id={self._key_id!r})"

    @classmethod
    def generate(cls, algorithm: str = "ES256") -> SigningKey:
        """Make a new key in memory (tests, ``lictor dev``).

        Raises:
            ConfigError: ``algorithm`` is not ES256 or EdDSA.
        """
        if algorithm == "ES256":
            return cls(ECKey.generate_key("P-256"))
        if algorithm in ("EdDSA", "Ed25519"):
            return cls(OKPKey.generate_key("Ed25519"))
        raise ConfigError(f"token signing algorithm must be ES256 or EdDSA, not {algorithm!r}")

    @classmethod
    def from_pem(cls, pem: bytes | str, *, retired: Sequence[Key] = ()) -> SigningKey:
        """Load from an unencrypted PKCS#8 PEM (EC P-256 or Ed25519).

        Raises:
            ConfigError: not such a key.
        """
        data = pem.encode("ascii") if isinstance(pem, str) else pem
        try:
            raw = serialization.load_pem_private_key(data, password=None)
        except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
            raise ConfigError(f"not an unencrypted PEM private key: {exc}") from exc
        if isinstance(raw, EllipticCurvePrivateKey) and isinstance(raw.curve, SECP256R1):
            return cls(ECKey.import_key(data), retired=retired)
        if isinstance(raw, Ed25519PrivateKey):
            return cls(OKPKey.import_key(data), retired=retired)
        raise ConfigError(f"token signing keys are EC P-256 or Ed25519, not {type(raw).__name__}")

    @property
    def key_id(self) -> str:
        """The ``kid`` of tokens this key signs (RFC 7638 thumbprint)."""
        return self._key_id

    @property
    def algorithm(self) -> str:
        """The JWS ``alg`` of tokens this key signs."""
        return self._algorithm

    def sign(self, claims: Mapping[str, Any]) -> str:
        """Return a compact JWS of ``claims`` (implements the service's ``TokenSigner``)."""
        header = {"alg": self._algorithm, "kid": self._key_id, "typ": "JWT"}
        return jwt.encode(
            header, dict(claims), self._key, registry=_registry(self._algorithm, strict_header=True)
        )

    def find(self, kid: str | None, alg: str) -> Key:
        """Return one of our public keys (a :class:`~lictor.identity.jwks.KeySource`)."""
        return self._keys.find(kid, alg)

    def jwks(self) -> dict[str, list[dict[str, Any]]]:
        """Return the public JWKS to serve at ``/.well-known/jwks.json``.

        The current key comes first, then the retired ones; never private material.
        """
        return {"keys": [dict(k.as_dict(private=False)) for k in self._public]}

    def private_pem(self) -> bytes:
        """Return the private key as PKCS#8 PEM, to store in a 0600 file."""
        return self._key.as_pem(private=True)

    def public_pem(self) -> bytes:
        """Return the public key as PEM (to keep as a retired key after rotation)."""
        return self._key.as_pem(private=False)


def _public_dict(key: Key, alg: str, kid: str) -> dict[str, Any]:
    data = dict(key.as_dict(private=False))
    data.update({"kid": kid, "alg": alg, "use": "sig"})
    return data


def _public(key: Key, alg: str, kid: str) -> Key:
    data = _public_dict(key, alg, kid)
    return OKPKey.import_key(data) if data["kty"] == "OKP" else ECKey.import_key(data)


def generate_signing_key_file(path: str | os.PathLike[str], algorithm: str = "ES256") -> SigningKey:
    """Create a new token-signing key file, readable and writable by its owner only.

    Created with ``O_CREAT | O_EXCL`` and mode 0600 in one step, like the checkpoint
    key (:mod:`lictor.identity.keys`). **Whoever reads this file can mint delegation
    tokens for any person.**

    Raises:
        ConfigError: the file exists or cannot be created.
    """
    key = SigningKey.generate(algorithm)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    name = os.fspath(path)
    try:
        fd = os.open(path, flags, _KEY_FILE_MODE)
    except FileExistsError as exc:
        raise ConfigError(f"key file {name} already exists; refusing to overwrite it") from exc
    except OSError as exc:
        raise ConfigError(f"cannot create key file {name}: {exc.strerror}") from exc
    with os.fdopen(fd, "wb") as file:
        if hasattr(os, "fchmod"):
            os.fchmod(file.fileno(), _KEY_FILE_MODE)
        file.write(key.private_pem())
    return key


def load_signing_key(path: str | os.PathLike[str], *, retired: Sequence[Key] = ()) -> SigningKey:
    """Load the token-signing key from a PEM file only its owner can access.

    Raises:
        ConfigError: missing, readable by others, or not an EC P-256 / Ed25519 key.
    """
    return SigningKey.from_pem(read_private_file(path), retired=retired)

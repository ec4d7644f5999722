"""The JWKS cache: discovery, TTL, refresh on an unknown kid, rate limits, failing closed.

The IdP here is an in-process ``httpx.MockTransport``; tests/integration/identity runs the
same paths against a real HTTP server on loopback.
"""

from __future__ import annotations

import base64
import json
import logging
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from joserfc.jwk import ECKey, OctKey, RSAKey

from lictor.errors import ConfigError
from lictor.identity.jwks import RemoteJWKS, StaticKeySet, check_fetch_url, parse_jwks
from lictor.service.delegation import TokenProblem, TokenRejected
from lictor.service.memory import FixedClock

ISSUER = "https://idp.example"
NOW = datetime(2026, 11, 25, 14, 0, tzinfo=UTC)


def public(key: ECKey | RSAKey) -> dict[str, Any]:
    return dict(key.as_dict(private=False))


class FakeIdP:
    """Serves discovery and JWKS; counts requests; can fail or lie on demand."""

    def __init__(self) -> None:
        self.keys: list[dict[str, Any]] = []
        self.hits: Counter[str] = Counter()
        self.down = False
        self.status = 200
        self.discovery_issuer = ISSUER
        self.jwks_body: bytes | None = None

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.hits[request.url.path] += 1
        if self.down:
            raise httpx.ConnectError("connection refused", request=request)
        if request.url.path == "/.well-known/openid-configuration":
            return httpx.Response(
                200, json={"issuer": self.discovery_issuer, "jwks_uri": f"{ISSUER}/keys"}
            )
        if request.url.path == "/keys":
            if self.jwks_body is not None:
                return httpx.Response(self.status, content=self.jwks_body)
            return httpx.Response(self.status, json={"keys": self.keys})
        return httpx.Response(404)


@pytest.fixture
def idp() -> FakeIdP:
    return FakeIdP()


@pytest.fixture
def client(idp: FakeIdP) -> Iterator[httpx.Client]:
    with httpx.Client(transport=httpx.MockTransport(idp.handle)) as http:
        yield http


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(NOW)


def ec(kid: str) -> ECKey:
    return ECKey.generate_key("P-256", parameters={"kid": kid})


def remote(client: httpx.Client, clock: FixedClock, **options: Any) -> RemoteJWKS:
    return RemoteJWKS(ISSUER, client=client, clock=clock, **options)


def test_keys_are_discovered_and_cached_for_the_ttl(
    idp: FakeIdP, client: httpx.Client, clock: FixedClock
) -> None:
    key = ec("k1")
    idp.keys = [public(key)]
    jwks = remote(client, clock, ttl_seconds=300)
    assert jwks.find("k1", "ES256").kid == "k1"
    assert jwks.find("k1", "ES256").kid == "k1"
    assert idp.hits == {"/.well-known/openid-configuration": 1, "/keys": 1}
    clock.advance(300)
    jwks.find("k1", "ES256")
    assert idp.hits["/keys"] == 2


def test_unknown_kid_triggers_one_refresh_for_rotation(
    idp: FakeIdP, client: httpx.Client, clock: FixedClock
) -> None:
    idp.keys = [public(ec("k1"))]
    jwks = remote(client, clock, min_refresh_seconds=30)
    jwks.find("k1", "ES256")
    clock.advance(31)
    idp.keys = [public(ec("k1")), public(ec("k2"))]  # the IdP rotated
    assert jwks.find("k2", "ES256").kid == "k2"
    assert idp.hits["/keys"] == 2


def test_unknown_kid_refreshes_are_rate_limited(
    idp: FakeIdP, client: httpx.Client, clock: FixedClock
) -> None:
    idp.keys = [public(ec("k1"))]
    jwks = remote(client, clock, min_refresh_seconds=30)
    jwks.find("k1", "ES256")
    for i in range(20):
        with pytest.raises(TokenRejected) as info:
            jwks.find(f"random-{i}", "ES256")
        assert info.value.problem is TokenProblem.UNKNOWN_KEY
    assert idp.hits["/keys"] == 1
    clock.advance(30)
    with pytest.raises(TokenRejected):
        jwks.find("random", "ES256")
    assert idp.hits["/keys"] == 2


def test_unreachable_issuer_without_cached_keys_fails_closed(
    idp: FakeIdP, client: httpx.Client, clock: FixedClock
) -> None:
    idp.down = True
    with pytest.raises(TokenRejected) as info:
        remote(client, clock).find("k1", "ES256")
    assert info.value.problem is TokenProblem.ISSUER_UNREACHABLE


def test_unreachable_issuer_with_cached_keys_uses_them_for_a_while(
    idp: FakeIdP, client: httpx.Client, clock: FixedClock, caplog: pytest.LogCaptureFixture
) -> None:
    idp.keys = [public(ec("k1"))]
    jwks = remote(client, clock, ttl_seconds=300, max_stale_seconds=600)
    jwks.find("k1", "ES256")
    idp.down = True
    clock.advance(400)
    with caplog.at_level(logging.WARNING, "lictor.identity.jwks"):
        assert jwks.find("k1", "ES256").kid == "k1"
    assert "cached keys past their TTL" in caplog.text
    with pytest.raises(TokenRejected) as info:
        jwks.find("k2", "ES256")  # unknown and cannot look: refused
    assert info.value.problem is TokenProblem.ISSUER_UNREACHABLE
    clock.advance(600)
    with pytest.raises(TokenRejected) as info:
        jwks.find("k1", "ES256")  # too stale to trust
    assert info.value.problem is TokenProblem.ISSUER_UNREACHABLE


def test_refresh_warms_the_cache(idp: FakeIdP, client: httpx.Client, clock: FixedClock) -> None:
    idp.keys = [public(ec("k1"))]
    jwks = remote(client, clock)
    jwks.refresh()
    idp.down = True
    assert jwks.find("k1", "ES256").kid == "k1"
    with pytest.raises(TokenRejected):
        jwks.refresh()


@pytest.mark.parametrize(
    "breakage",
    [
        {"status": 500},
        {"jwks_body": b"<html>"},
        {"jwks_body": b'{"no": "keys"}'},
        {"jwks_body": b"x" * 300_000},
        {"discovery_issuer": "https://other.example"},
    ],
)
def test_bad_idp_answers_mean_no_keys(
    idp: FakeIdP, client: httpx.Client, clock: FixedClock, breakage: dict[str, Any]
) -> None:
    idp.keys = [public(ec("k1"))]
    for name, value in breakage.items():
        setattr(idp, name, value)
    with pytest.raises(TokenRejected) as info:
        remote(client, clock).find("k1", "ES256")
    assert info.value.problem is TokenProblem.ISSUER_UNREACHABLE


def test_configured_jwks_uri_skips_discovery(
    idp: FakeIdP, client: httpx.Client, clock: FixedClock
) -> None:
    idp.keys = [public(ec("k1"))]
    jwks = remote(client, clock, jwks_uri=f"{ISSUER}/keys")
    assert jwks.find("k1", "ES256").kid == "k1"
    assert idp.hits == {"/keys": 1}


def test_too_many_keys_is_refused(idp: FakeIdP, client: httpx.Client, clock: FixedClock) -> None:
    idp.keys = [public(ec(f"k{i}")) for i in range(5)]
    with pytest.raises(TokenRejected) as info:
        remote(client, clock, max_keys=4).find("k1", "ES256")
    assert info.value.problem is TokenProblem.ISSUER_UNREACHABLE


def test_token_without_kid_needs_exactly_one_candidate(
    idp: FakeIdP, client: httpx.Client, clock: FixedClock
) -> None:
    idp.keys = [public(ec("k1"))]
    assert remote(client, clock).find(None, "ES256").kid == "k1"
    idp.keys = [public(ec("k1")), public(ec("k2"))]
    with pytest.raises(TokenRejected) as info:
        remote(client, clock).find(None, "ES256")
    assert info.value.problem is TokenProblem.UNKNOWN_KEY


@pytest.mark.parametrize(
    "url", ["http://idp.example", "ftp://idp.example", "https://", "http://10.0.0.1"]
)
def test_plain_http_is_only_allowed_to_loopback(url: str) -> None:
    with pytest.raises(ConfigError):
        check_fetch_url(url, "issuer")


@pytest.mark.parametrize("url", ["http://127.0.0.1:8080", "http://localhost", "http://[::1]:1"])
def test_loopback_http_is_allowed(url: str) -> None:
    assert check_fetch_url(url, "issuer") == url


def test_remote_jwks_validates_its_configuration(client: httpx.Client, clock: FixedClock) -> None:
    with pytest.raises(ConfigError):
        RemoteJWKS("http://idp.example", client=client, clock=clock)
    with pytest.raises(ConfigError):
        RemoteJWKS(ISSUER, client=client, clock=clock, jwks_uri="http://idp.example/keys")
    with pytest.raises(ConfigError):
        RemoteJWKS(ISSUER, client=client, clock=clock, ttl_seconds=0)


def test_parse_jwks_keeps_only_public_signing_keys(caplog: pytest.LogCaptureFixture) -> None:
    good = ec("good")
    modulus = base64.urlsafe_b64encode(b"\xff" * 128).rstrip(b"=").decode()  # 1024 bits
    weak = {"kty": "RSA", "kid": "weak", "n": modulus, "e": "AQAB"}
    entries: list[Any] = [
        public(good),
        {**public(ec("enc")), "use": "enc"},
        dict(OctKey.generate_key(256, parameters={"kid": "hmac"}).as_dict(private=True)),
        dict(ec("leaked").as_dict(private=True)),
        weak,
        {"kty": "EC", "kid": "broken", "crv": "P-256", "x": "AA", "y": "AA"},
        "not a key",
    ]
    with caplog.at_level(logging.WARNING, "lictor.identity.jwks"):
        keys = parse_jwks({"keys": entries}, source="test")
    assert [k.kid for k in keys] == ["good"]
    assert "private key material" in caplog.text
    assert "shorter than 2048" in caplog.text


@pytest.mark.parametrize("document", [[], {"keys": {}}, None, "x"])
def test_parse_jwks_refuses_non_jwks(document: object) -> None:
    with pytest.raises(ValueError, match="not a JWKS"):
        parse_jwks(document, source="test")


def test_static_key_set_from_bad_jwks_is_a_config_error() -> None:
    with pytest.raises(ConfigError):
        StaticKeySet.from_jwks({"nope": []})


def test_key_alg_and_use_must_agree_with_the_token() -> None:
    key = dict(public(ec("k1")), alg="ES256", use="sig")
    keys = StaticKeySet.from_jwks(json.loads(json.dumps({"keys": [key]})))
    assert keys.find("k1", "ES256").kid == "k1"
    with pytest.raises(TokenRejected):
        keys.find("k1", "EdDSA")
    with pytest.raises(TokenRejected):
        keys.find("k1", "RS256")

"""JWT verification and signing: the algorithm allow-list, key lookup, forgeries, key files."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import stat
import warnings
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.asymmetric import rsa as rsa_primitives
from joserfc import jwt
from joserfc.jwk import ECKey, OKPKey, RSAKey

from lictor.errors import ConfigError
from lictor.identity.jwks import StaticKeySet
from lictor.identity.tokens import (
    MAX_TOKEN_BYTES,
    JWTVerifier,
    SigningKey,
    generate_signing_key_file,
    load_signing_key,
)
from lictor.service.delegation import TokenProblem, TokenRejected

ISS = "https://idp.example"
posix_only = pytest.mark.skipif(os.name != "posix", reason="file modes are POSIX")


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def segment(value: Any) -> str:
    return b64(json.dumps(value).encode())


@pytest.fixture(scope="module")
def rsa() -> RSAKey:
    return RSAKey.generate_key(2048, parameters={"kid": "rsa-1", "alg": "RS256", "use": "sig"})


@pytest.fixture
def verifier(rsa: RSAKey) -> JWTVerifier:
    keys = StaticKeySet.from_jwks({"keys": [rsa.as_dict(private=False)]}, name=ISS)
    return JWTVerifier({ISS: keys})


def rs256(key: RSAKey, claims: dict[str, Any], header: dict[str, Any] | None = None) -> str:
    return jwt.encode({"alg": "RS256", "kid": key.kid, **(header or {})}, claims, key)


def test_valid_rs256_token_verifies(verifier: JWTVerifier, rsa: RSAKey) -> None:
    verified = verifier.verify(rs256(rsa, {"iss": ISS, "sub": "emma"}))
    assert verified.issuer == ISS
    assert verified.key_id == "rsa-1"
    assert verified.algorithm == "RS256"
    assert verified.claims == {"iss": ISS, "sub": "emma"}


def test_alg_none_is_refused(verifier: JWTVerifier) -> None:
    token = f"{segment({'alg': 'none'})}.{segment({'iss': ISS, 'sub': 'x'})}."
    with pytest.raises(TokenRejected) as info:
        verifier.verify(token)
    assert info.value.problem is TokenProblem.ALG_NONE


@pytest.mark.parametrize("alg", ["None", "NONE"])
def test_alg_none_in_any_case_is_refused(verifier: JWTVerifier, alg: str) -> None:
    token = f"{segment({'alg': alg})}.{segment({'iss': ISS})}."
    with pytest.raises(TokenRejected) as info:
        verifier.verify(token)
    assert info.value.problem is TokenProblem.ALG_NONE


def test_hs256_signed_with_the_public_key_is_refused(verifier: JWTVerifier, rsa: RSAKey) -> None:
    # The classic algorithm-confusion forgery: HMAC keyed with the issuer's public PEM.
    secret = rsa.as_pem(private=False)
    signing_input = f"{segment({'alg': 'HS256', 'kid': 'rsa-1'})}.{segment({'iss': ISS})}"
    mac = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    with pytest.raises(TokenRejected) as info:
        verifier.verify(f"{signing_input}.{b64(mac)}")
    assert info.value.problem is TokenProblem.ALG_NOT_ALLOWED


@pytest.mark.parametrize("alg", ["RS512", "PS256", "ES512", "HS512", "XYZ"])
def test_algorithms_outside_the_allow_list_are_refused(verifier: JWTVerifier, alg: str) -> None:
    token = f"{segment({'alg': alg, 'kid': 'rsa-1'})}.{segment({'iss': ISS})}.c2ln"
    with pytest.raises(TokenRejected) as info:
        verifier.verify(token)
    assert info.value.problem is TokenProblem.ALG_NOT_ALLOWED


def test_a_narrower_allow_list_is_honoured(rsa: RSAKey) -> None:
    keys = StaticKeySet.from_jwks({"keys": [rsa.as_dict(private=False)]})
    only_es = JWTVerifier({ISS: keys}, algorithms={"ES256"})
    with pytest.raises(TokenRejected) as info:
        only_es.verify(rs256(rsa, {"iss": ISS}))
    assert info.value.problem is TokenProblem.ALG_NOT_ALLOWED


@pytest.mark.parametrize("algorithms", [{"HS256"}, {"none"}, set()])
def test_unsafe_allow_lists_are_config_errors(algorithms: set[str]) -> None:
    with pytest.raises(ConfigError):
        JWTVerifier({}, algorithms=algorithms)


def test_unknown_issuer_is_refused(verifier: JWTVerifier, rsa: RSAKey) -> None:
    with pytest.raises(TokenRejected) as info:
        verifier.verify(rs256(rsa, {"iss": "https://evil.example"}))
    assert info.value.problem is TokenProblem.UNKNOWN_ISSUER


def test_unknown_kid_is_refused(verifier: JWTVerifier) -> None:
    other = RSAKey.generate_key(2048, parameters={"kid": "rsa-2"})
    with pytest.raises(TokenRejected) as info:
        verifier.verify(rs256(other, {"iss": ISS}))
    assert info.value.problem is TokenProblem.UNKNOWN_KEY


def test_wrong_key_with_a_known_kid_is_a_bad_signature(verifier: JWTVerifier) -> None:
    impostor = RSAKey.generate_key(2048, parameters={"kid": "rsa-1"})
    with pytest.raises(TokenRejected) as info:
        verifier.verify(rs256(impostor, {"iss": ISS}))
    assert info.value.problem is TokenProblem.BAD_SIGNATURE


def test_tampered_payload_is_a_bad_signature(verifier: JWTVerifier, rsa: RSAKey) -> None:
    header, _, signature = rs256(rsa, {"iss": ISS, "scope": "tool:read"}).split(".")
    tampered = f"{header}.{segment({'iss': ISS, 'scope': 'tool:*'})}.{signature}"
    with pytest.raises(TokenRejected) as info:
        verifier.verify(tampered)
    assert info.value.problem is TokenProblem.BAD_SIGNATURE


@pytest.mark.parametrize(
    "token",
    [
        "",
        "abc",
        "a.b",
        "a.b.c.d.e",  # JWE
        "!!.!!.!!",
        f"{segment([1])}.{segment({'iss': ISS})}.x",
        f"{segment({'alg': 'RS256'})}.{b64(b'not json')}.x",
        f"{segment({'alg': 'RS256'})}.{segment({'sub': 'no issuer'})}.x",
        f"{segment({'alg': 'RS256', 'kid': 7})}.{segment({'iss': ISS})}.x",
        f"{segment({})}.{segment({'iss': ISS})}.x",
        b64(b'{"alg":"RS256","alg":"none"}') + "." + segment({"iss": ISS}) + ".x",
    ],
)
def test_malformed_tokens_are_refused(verifier: JWTVerifier, token: str) -> None:
    with pytest.raises(TokenRejected) as info:
        verifier.verify(token)
    assert info.value.problem is TokenProblem.MALFORMED


def test_oversized_token_is_refused_unparsed(verifier: JWTVerifier) -> None:
    with pytest.raises(TokenRejected) as info:
        verifier.verify("a" * (MAX_TOKEN_BYTES + 1))
    assert info.value.problem is TokenProblem.MALFORMED


def test_unknown_critical_header_is_refused(verifier: JWTVerifier, rsa: RSAKey) -> None:
    # joserfc will not even make such a token, so sign it by hand.
    header = {"alg": "RS256", "kid": "rsa-1", "crit": ["exp-magic"], "exp-magic": 1}
    signing_input = f"{segment(header)}.{segment({'iss': ISS})}"
    private = rsa.private_key
    assert isinstance(private, rsa_primitives.RSAPrivateKey)
    signature = private.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
    token = f"{signing_input}.{b64(signature)}"
    with pytest.raises(TokenRejected) as info:
        verifier.verify(token)
    assert info.value.problem is TokenProblem.MALFORMED


def test_eddsa_and_ed25519_verify_without_warnings() -> None:
    key = OKPKey.generate_key("Ed25519", parameters={"kid": "ed"})
    verifier = JWTVerifier({ISS: StaticKeySet([OKPKey.import_key(key.as_dict(private=False))])})
    for alg in ("EdDSA", "Ed25519"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # joserfc warns when *making* EdDSA tokens
            token = jwt.encode({"alg": alg, "kid": "ed"}, {"iss": ISS}, key, algorithms=[alg])
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            assert verifier.verify(token).algorithm == alg


def test_es256_with_a_p384_key_is_not_found() -> None:
    key = ECKey.generate_key("P-384", parameters={"kid": "ec"})
    verifier = JWTVerifier({ISS: StaticKeySet([ECKey.import_key(key.as_dict(private=False))])})
    token = f"{segment({'alg': 'ES256', 'kid': 'ec'})}.{segment({'iss': ISS})}.c2ln"
    with pytest.raises(TokenRejected) as info:
        verifier.verify(token)
    assert info.value.problem is TokenProblem.UNKNOWN_KEY


# --- Lictor's own key -------------------------------------------------------------------------


@pytest.mark.parametrize("algorithm", ["ES256", "EdDSA"])
def test_signing_key_signs_what_its_jwks_verifies(algorithm: str) -> None:
    key = SigningKey.generate(algorithm)
    token = key.sign({"iss": "https://lictor", "sub": "emma"})
    header = json.loads(base64.urlsafe_b64decode(token.split(".")[0] + "=="))
    assert header == {"typ": "JWT", "alg": algorithm, "kid": key.key_id}
    published = StaticKeySet.from_jwks(key.jwks())
    assert JWTVerifier({"https://lictor": published}).verify(token).claims["sub"] == "emma"
    assert JWTVerifier({"https://lictor": key}).verify(token).key_id == key.key_id


def test_jwks_never_contains_private_material() -> None:
    key = SigningKey.generate("ES256")
    (entry,) = key.jwks()["keys"]
    assert "d" not in entry
    assert entry["kid"] == key.key_id
    assert entry["use"] == "sig"
    assert entry["alg"] == "ES256"
    assert "SigningKey(algorithm='ES256'" in repr(key)


def test_retired_key_still_verifies_after_rotation() -> None:
    old = SigningKey.generate("ES256")
    token = old.sign({"iss": "https://lictor"})
    old_public = ECKey.import_key(old.public_pem(), parameters={"kid": old.key_id})
    new = SigningKey.from_pem(SigningKey.generate("ES256").private_pem(), retired=[old_public])
    assert [k["kid"] for k in new.jwks()["keys"]] == [new.key_id, old.key_id]
    assert JWTVerifier({"https://lictor": new}).verify(token).key_id == old.key_id


def test_signing_key_rejects_unsuitable_keys() -> None:
    with pytest.raises(ConfigError):
        SigningKey.generate("RS256")
    with pytest.raises(ConfigError):
        SigningKey(ECKey.generate_key("P-384"))
    with pytest.raises(ConfigError):
        SigningKey(ECKey.import_key(ECKey.generate_key("P-256").as_dict(private=False)))
    with pytest.raises(ConfigError):
        SigningKey.from_pem(RSAKey.generate_key(2048).as_pem(private=True))
    with pytest.raises(ConfigError):
        SigningKey.from_pem("not a pem")


@posix_only
def test_key_file_is_created_0600_and_loads(tmp_path: Path) -> None:
    path = tmp_path / "token-key.pem"
    made = generate_signing_key_file(path, "EdDSA")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_signing_key(path).key_id == made.key_id
    with pytest.raises(ConfigError):
        generate_signing_key_file(path)


@posix_only
def test_key_file_readable_by_others_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "token-key.pem"
    generate_signing_key_file(path)
    path.chmod(0o644)
    with pytest.raises(ConfigError, match="chmod 600"):
        load_signing_key(path)
    with pytest.raises(ConfigError):
        load_signing_key(tmp_path / "missing.pem")

"""Service tokens and request proofs: what is accepted and every way a request is refused."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import time

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from shared.auth import (
    AUTHORIZATION,
    Caller,
    Credentials,
    ProofKey,
    ReplayCache,
    TokenIssuer,
    TokenVerifier,
    authorization,
    check_allowed,
    read_authorization,
)
from shared.errors import Forbidden, Unauthenticated
from shared.trust import Principal, TrustDirectory

HEALTH = Principal("health_mgmt", "112224")
ADDRESS = Principal("integrated_address", "112224")
JUKI = Principal("juki_cs", "112224")
TARGET = "renkei.112224.integrated_address.ping"
BODY = b'{"nonce": "n"}'


class Parties:
    def __init__(self) -> None:
        names = (HEALTH, ADDRESS, JUKI)
        self.signing = {str(p): Ed25519PrivateKey.generate() for p in names}
        self.agreement = {str(p): X25519PrivateKey.generate() for p in names}
        self.directory = TrustDirectory(
            {n: k.public_key() for n, k in self.signing.items()},
            {n: k.public_key() for n, k in self.agreement.items()},
        )

    def credentials(self, principal: Principal, lifetime: int = 60) -> Credentials:
        issuer = TokenIssuer(principal, self.signing[str(principal)], lifetime)
        return Credentials(issuer, self.agreement[str(principal)], self.directory)

    def verifier(self, principal: Principal = ADDRESS) -> TokenVerifier:
        return TokenVerifier(principal, self.directory, self.agreement[str(principal)])


@pytest.fixture
def parties() -> Parties:
    return Parties()


def split(headers: dict) -> tuple[str, str]:
    """The token and the proof a request carries."""
    assert set(headers) == {AUTHORIZATION}
    token, proof = read_authorization(headers[AUTHORIZATION])
    assert token and proof
    return token, proof


def forge(key, header=None, **overrides) -> str:
    now = int(time.time())
    claims = {"iss": str(HEALTH), "sub": str(HEALTH), "aud": str(ADDRESS), "iat": now, "exp": now + 60, "jti": "j1"}
    claims.update(overrides)
    claims = {k: v for k, v in claims.items() if v is not None}
    return jwt.encode(claims, key, algorithm="EdDSA", headers={"kid": str(HEALTH), **(header or {})})


def test_a_request_names_its_caller(parties):
    token, proof = split(parties.credentials(HEALTH).headers(ADDRESS, TARGET, BODY))
    assert parties.verifier().verify(token, proof, TARGET, BODY).principal == HEALTH


def test_the_token_is_reused_and_each_request_gets_its_own_proof(parties):
    credentials, verifier = parties.credentials(HEALTH), parties.verifier()
    first, second = split(credentials.headers(ADDRESS, TARGET, BODY)), split(credentials.headers(ADDRESS, TARGET, BODY))
    assert first[0] == second[0]
    assert first[1] != second[1]
    verifier.verify(*first, TARGET, BODY)
    verifier.verify(*second, TARGET, BODY)


def test_a_token_near_its_expiry_is_renewed(parties, monkeypatch):
    credentials = parties.credentials(HEALTH, lifetime=10)
    first, _ = split(credentials.headers(ADDRESS, TARGET, BODY))
    real = time.time
    monkeypatch.setattr(time, "time", lambda: real() + 9)
    renewed, _ = split(credentials.headers(ADDRESS, TARGET, BODY))
    assert renewed != first
    unverified = {"verify_signature": False}
    assert jwt.decode(renewed, options=unverified)["jti"] != jwt.decode(first, options=unverified)["jti"]


def test_the_authorization_header_carries_the_token_and_the_proof(parties):
    credentials, verifier = parties.credentials(HEALTH), parties.verifier()
    value = credentials.headers(ADDRESS, TARGET, BODY)[AUTHORIZATION]
    scheme, token, proof = value.split(" ")
    assert scheme == "Renkei" and authorization(token, proof) == value
    assert verifier.verify_authorization(value, TARGET, BODY).principal == HEALTH


@pytest.mark.parametrize("value", [None, "", "Bearer rks_a-staff-session", "Renkei", "Renkei  a.b.c"])
def test_an_authorization_without_a_service_token_is_refused(parties, value):
    with pytest.raises(Unauthenticated, match="no service token"):
        parties.verifier().verify_authorization(value, TARGET, BODY)


def test_the_old_bearer_form_carries_no_service_token(parties):
    token, proof = split(parties.credentials(HEALTH).headers(ADDRESS, TARGET, BODY))
    with pytest.raises(Unauthenticated, match="no service token"):
        parties.verifier().verify_authorization(f"Bearer {token} {proof}", TARGET, BODY)


def test_a_token_without_its_proof_is_refused(parties):
    token, _ = split(parties.credentials(HEALTH).headers(ADDRESS, TARGET, BODY))
    with pytest.raises(Unauthenticated, match="no request proof"):
        parties.verifier().verify_authorization(f"Renkei {token}", TARGET, BODY)


@pytest.mark.parametrize("key_size", [32, 16, 64, 100])  # channel keys are 32 bytes; HMAC takes any
def test_the_proof_mac_is_hmac_sha256_of_the_request(key_size):
    key = os.urandom(key_size)
    token_id, request_id, issued_at, target, body = "tok", os.urandom(12).hex(), str(int(time.time())), TARGET, BODY
    message = b"|".join(
        (token_id.encode(), request_id.encode(), issued_at.encode(), target.encode(), hashlib.sha256(body).digest())
    )
    expected = base64.urlsafe_b64encode(hmac.digest(key, message, "sha256")).decode().rstrip("=")
    proof_key = ProofKey(key)
    assert proof_key.mac(token_id, request_id, issued_at, target, body) == expected
    assert proof_key.mac(token_id, request_id, issued_at, target, body) == expected  # the kept states are not consumed
    assert proof_key.mac(token_id, request_id, issued_at, target, b"{}") != expected


def test_a_cached_token_still_binds_each_proof_to_itself(parties):
    credentials, verifier = parties.credentials(HEALTH), parties.verifier()
    token, proof = split(credentials.headers(ADDRESS, TARGET, BODY))
    verifier.verify(token, proof, TARGET, BODY)  # the token is now cached
    other = forge(parties.signing[str(HEALTH)], jti="another")  # a valid token of the same caller
    _, next_proof = split(credentials.headers(ADDRESS, TARGET, BODY))
    with pytest.raises(Unauthenticated, match="does not match"):
        verifier.verify(other, next_proof, TARGET, BODY)
    verifier.verify(token, next_proof, TARGET, BODY)


def test_a_proof_that_is_not_ascii_is_refused_as_a_mismatch(parties):
    token, proof = split(parties.credentials(HEALTH).headers(ADDRESS, TARGET, BODY))
    request_id, issued_at, _ = proof.split(".")
    with pytest.raises(Unauthenticated, match="does not match"):
        parties.verifier().verify(token, f"{request_id}.{issued_at}.é", TARGET, BODY)


def test_a_replayed_request_is_refused(parties):
    verifier = parties.verifier()
    token, proof = split(parties.credentials(HEALTH).headers(ADDRESS, TARGET, BODY))
    verifier.verify(token, proof, TARGET, BODY)
    with pytest.raises(Unauthenticated, match="replayed jti"):
        verifier.verify(token, proof, TARGET, BODY)


def test_a_captured_token_is_useless_without_the_callers_key(parties):
    token, _ = split(parties.credentials(HEALTH).headers(ADDRESS, TARGET, BODY))
    # The thief proves with its own agreement key: the receiver derives another secret.
    _, thief_proof = split(parties.credentials(JUKI).headers(ADDRESS, TARGET, BODY))
    with pytest.raises(Unauthenticated, match="does not match"):
        parties.verifier().verify(token, thief_proof, TARGET, BODY)


@pytest.mark.parametrize(("target", "body"), [("renkei.112224.integrated_address.lookup", BODY), (TARGET, b'{"nonce": "m"}')])
def test_a_request_changed_in_flight_is_refused(parties, target, body):
    token, proof = split(parties.credentials(HEALTH).headers(ADDRESS, TARGET, BODY))
    with pytest.raises(Unauthenticated, match="does not match"):
        parties.verifier().verify(token, proof, target, body)


@pytest.mark.parametrize("proof", [None, "", "abc", "a.b.c", "a.1.c.d"])
def test_a_missing_or_malformed_proof_is_refused(parties, proof):
    token, _ = split(parties.credentials(HEALTH).headers(ADDRESS, TARGET, BODY))
    with pytest.raises(Unauthenticated, match="proof"):
        parties.verifier().verify(token, proof, TARGET, BODY)


def test_a_stale_proof_is_refused(parties, monkeypatch):
    token, proof = split(parties.credentials(HEALTH).headers(ADDRESS, TARGET, BODY))
    real = time.time
    monkeypatch.setattr(time, "time", lambda: real() + 61)
    with pytest.raises(Unauthenticated, match="stale|expired"):
        parties.verifier().verify(token, proof, TARGET, BODY)


def test_no_token_is_refused(parties):
    with pytest.raises(Unauthenticated, match="no service token"):
        parties.verifier().verify_token("")


def test_expired_token_is_refused(parties):
    past = int(time.time()) - 120
    with pytest.raises(Unauthenticated, match="expired"):
        parties.verifier().verify_token(forge(parties.signing[str(HEALTH)], iat=past - 60, exp=past))


def test_a_cached_token_is_refused_once_it_expires(parties, monkeypatch):
    verifier = parties.verifier()
    token = forge(parties.signing[str(HEALTH)])
    verifier.verify_token(token)
    real = time.time
    monkeypatch.setattr(time, "time", lambda: real() + 120)
    with pytest.raises(Unauthenticated, match="expired"):
        verifier.verify_token(token)


def test_token_for_another_audience_is_refused(parties):
    with pytest.raises(Unauthenticated, match="not addressed"):
        parties.verifier().verify_token(forge(parties.signing[str(HEALTH)], aud=str(JUKI)))


def test_alg_none_is_refused(parties):
    now = int(time.time())
    claims = {"iss": str(HEALTH), "sub": str(HEALTH), "aud": str(ADDRESS), "iat": now, "exp": now + 60, "jti": "x"}
    token = jwt.encode(claims, None, algorithm="none", headers={"kid": str(HEALTH)})
    with pytest.raises(Unauthenticated, match="algorithm 'none'"):
        parties.verifier().verify_token(token)


def test_hmac_token_is_refused(parties):
    now = int(time.time())
    claims = {"iss": str(HEALTH), "sub": str(HEALTH), "aud": str(ADDRESS), "iat": now, "exp": now + 60, "jti": "y"}
    token = jwt.encode(claims, "public-key-bytes-as-secret-000000", algorithm="HS256", headers={"kid": str(HEALTH)})
    with pytest.raises(Unauthenticated, match="algorithm 'HS256'"):
        parties.verifier().verify_token(token)


def test_token_signed_by_another_key_is_refused(parties):
    with pytest.raises(Unauthenticated, match="invalid token"):
        parties.verifier().verify_token(forge(Ed25519PrivateKey.generate()))


def test_unknown_issuer_is_refused(parties):
    with pytest.raises(Unauthenticated, match="unknown issuer"):
        parties.verifier().verify_token(forge(parties.signing[str(HEALTH)], header={"kid": "intruder@112224"}))


@pytest.mark.parametrize("missing", ["iss", "sub", "aud", "exp", "iat", "jti"])
def test_token_missing_a_required_claim_is_refused(parties, missing):
    with pytest.raises(Unauthenticated):
        parties.verifier().verify_token(forge(parties.signing[str(HEALTH)], **{missing: None}))


def test_token_living_longer_than_five_minutes_is_refused(parties):
    now = int(time.time())
    with pytest.raises(Unauthenticated, match="lifetime"):
        parties.verifier().verify_token(forge(parties.signing[str(HEALTH)], iat=now, exp=now + 301))


def test_token_whose_subject_is_not_its_issuer_is_refused(parties):
    with pytest.raises(Unauthenticated, match="subject"):
        parties.verifier().verify_token(forge(parties.signing[str(HEALTH)], sub="someone-else"))


def test_issuer_refuses_lifetimes_over_five_minutes(parties):
    with pytest.raises(ValueError):
        TokenIssuer(HEALTH, parties.signing[str(HEALTH)], lifetime_seconds=301)


def test_replay_cache_forgets_expired_ids():
    now = [1000.0]
    cache = ReplayCache(clock=lambda: now[0])
    assert cache.first_sighting("a", expires_at=1010)
    assert not cache.first_sighting("a", expires_at=1010)
    now[0] = 2000.0  # long after expiry: the proof itself would be refused as stale
    assert cache.first_sighting("b", expires_at=2010)
    assert "a" not in cache._seen


def test_allowlist_refuses_a_service_not_on_it():
    with pytest.raises(Forbidden, match="may not call"):
        check_allowed(Caller(Principal("provision_network"), "j"), {"health_mgmt"}, "112224", "integrated_address.ping")


def test_allowlist_refuses_the_same_service_of_another_city():
    with pytest.raises(Forbidden, match="another city"):
        check_allowed(Caller(Principal("health_mgmt", "112216"), "j"), {"health_mgmt"}, "112224", "integrated_address.ping")


def test_allowlist_admits_a_listed_service_of_the_same_city():
    check_allowed(Caller(HEALTH, "j"), {"health_mgmt"}, "112224", "integrated_address.ping")

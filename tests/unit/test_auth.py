"""Service tokens and request proofs: what is accepted and every way a request is refused."""

from __future__ import annotations

import time

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from shared.auth import PROOF, Caller, Credentials, ReplayCache, TokenIssuer, TokenVerifier, check_allowed
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
    return headers["Authorization"].removeprefix("Bearer "), headers[PROOF]


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
    first, second = credentials.headers(ADDRESS, TARGET, BODY), credentials.headers(ADDRESS, TARGET, BODY)
    assert first["Authorization"] == second["Authorization"]
    assert first[PROOF] != second[PROOF]
    verifier.verify(*split(first), TARGET, BODY)
    verifier.verify(*split(second), TARGET, BODY)


def test_a_token_near_its_expiry_is_renewed(parties, monkeypatch):
    credentials = parties.credentials(HEALTH, lifetime=10)
    first = credentials.headers(ADDRESS, TARGET, BODY)["Authorization"]
    real = time.time
    monkeypatch.setattr(time, "time", lambda: real() + 9)
    assert credentials.headers(ADDRESS, TARGET, BODY)["Authorization"] != first


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

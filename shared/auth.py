"""Service authentication: who is calling, proven on every request.

Two parts travel with each bus request and inter-service HTTP call:

- ``Authorization: Bearer <token>`` — a service token: an EdDSA JWT (``iss``, ``sub``,
  ``aud``, ``exp``, ``iat``, ``jti`` required; at most five minutes of life) naming the
  caller and the one service it is for. The caller reuses it for that audience until it
  nears expiry, so its Ed25519 signature is checked once, not on every request.
- ``Renkei-Proof: <jti>.<iat>.<mac>`` — a per-request proof of possession: an HMAC-SHA256,
  keyed by a secret that only the caller and the receiver can derive (X25519 between their
  keys from the trust directory), over the token's id, the request's own single-use id,
  its time, its target (subject, or method and path) and the SHA-256 of its body.

So a captured request replayed is refused (its ``jti`` was seen), a captured token is of no
use without the caller's key (the proof would not verify), and nothing of a request can be
changed in flight (subject and body are under the MAC). See docs/protocols/service-auth.md.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import threading
import time
import uuid
from collections.abc import Callable, Collection
from dataclasses import dataclass

import jwt
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from shared.errors import Forbidden, Unauthenticated
from shared.trust import Principal, TrustDirectory

ALGORITHM = "EdDSA"
MAX_LIFETIME_SECONDS = 300
REQUIRED_CLAIMS = ["iss", "sub", "aud", "exp", "iat", "jti"]
LEEWAY_SECONDS = 5
PROOF_WINDOW_SECONDS = 60
AUTHORIZATION = "Authorization"
PROOF = "Renkei-Proof"


@dataclass(frozen=True)
class Caller:
    """Who a verified request says is calling."""

    principal: Principal
    token_id: str


def channel_key(own: X25519PrivateKey, peer, caller: Principal, receiver: Principal) -> bytes:
    """The proof key of requests from ``caller`` to ``receiver``; either side can derive it."""
    shared_secret = own.exchange(peer)
    info = f"renkei/request-proof/v1|{caller}|{receiver}".encode()
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(shared_secret)


def _mac(key: bytes, token_id: str, request_id: str, issued_at: str, target: str, body: bytes) -> str:
    message = b"|".join(
        (token_id.encode(), request_id.encode(), issued_at.encode(), target.encode(), hashlib.sha256(body).digest())
    )
    return base64.urlsafe_b64encode(hmac.digest(key, message, "sha256")).decode().rstrip("=")


class TokenIssuer:
    """Issues this principal's service tokens."""

    def __init__(self, principal: Principal, key: Ed25519PrivateKey, lifetime_seconds: int = 60) -> None:
        if not 0 < lifetime_seconds <= MAX_LIFETIME_SECONDS:
            raise ValueError(f"a token lives at most {MAX_LIFETIME_SECONDS} s")
        self.principal = principal
        self.lifetime = lifetime_seconds
        self._key = key
        self._header = {"kid": str(principal)}

    def issue(self, audience: Principal | str) -> tuple[str, str, int]:
        """A fresh token for ``audience``: (token, its jti, its expiry)."""
        now = int(time.time())
        jti = uuid.uuid4().hex
        claims = {
            "iss": str(self.principal),
            "sub": str(self.principal),
            "aud": str(audience),
            "iat": now,
            "exp": now + self.lifetime,
            "jti": jti,
        }
        return jwt.encode(claims, self._key, algorithm=ALGORITHM, headers=self._header), jti, now + self.lifetime


class Credentials:
    """The caller's side: a token per audience, renewed before it expires, and a proof per request."""

    def __init__(self, issuer: TokenIssuer, agreement: X25519PrivateKey, directory: TrustDirectory) -> None:
        self.principal = issuer.principal
        self._issuer = issuer
        self._agreement = agreement
        self._directory = directory
        self._tokens: dict[str, tuple[str, str, int]] = {}
        self._keys: dict[str, bytes] = {}
        self._renew_before = max(1, issuer.lifetime // 5)

    def _token(self, audience: str) -> tuple[str, str, int]:
        token = self._tokens.get(audience)
        if token is None or token[2] - time.time() < self._renew_before:
            token = self._tokens[audience] = self._issuer.issue(audience)
        return token

    def _key(self, audience: str) -> bytes:
        key = self._keys.get(audience)
        if key is None:
            peer = self._directory.agreement_key(audience)
            key = self._keys[audience] = channel_key(self._agreement, peer, self.principal, Principal.parse(audience))
        return key

    def headers(self, audience: Principal | str, target: str, body: bytes) -> dict[str, str]:
        """The two headers that authenticate one request to ``audience``."""
        audience = str(audience)
        token, token_id, _ = self._token(audience)
        request_id, issued_at = secrets.token_hex(12), str(int(time.time()))
        mac = _mac(self._key(audience), token_id, request_id, issued_at, target, body)
        return {AUTHORIZATION: f"Bearer {token}", PROOF: f"{request_id}.{issued_at}.{mac}"}


class ReplayCache:
    """Single-use ids seen and not yet expired; a second sighting is a replay."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._seen: dict[str, float] = {}
        self._lock = threading.Lock()
        self._clock = clock
        self._next_sweep = 0.0

    def first_sighting(self, key: str, expires_at: float) -> bool:
        now = self._clock()
        with self._lock:
            if now >= self._next_sweep:
                self._seen = {k: v for k, v in self._seen.items() if v > now}
                self._next_sweep = now + 10
            if key in self._seen:
                return False
            self._seen[key] = expires_at
            return True


class TokenVerifier:
    """The receiver's side: checks tokens addressed to this principal and the proof of each request."""

    def __init__(
        self,
        principal: Principal,
        directory: TrustDirectory,
        agreement: X25519PrivateKey | None = None,
        replay_cache: ReplayCache | None = None,
    ) -> None:
        self.principal = principal
        self._directory = directory
        self._agreement = agreement
        self._replays = replay_cache or ReplayCache()
        self._verified: dict[str, dict] = {}
        self._keys: dict[str, bytes] = {}
        self._lock = threading.Lock()

    def verify_token(self, token: str | None) -> dict:
        """The claims of a valid token for this principal (its signature is checked once)."""
        if not token:
            raise Unauthenticated("no service token")
        claims = self._verified.get(token)
        if claims is None:
            claims = self._verify_signature(token)
            with self._lock:
                now = time.time()
                if len(self._verified) > 10_000:
                    self._verified = {t: c for t, c in self._verified.items() if c["exp"] + LEEWAY_SECONDS > now}
                self._verified[token] = claims
        elif claims["exp"] + LEEWAY_SECONDS < time.time():
            raise Unauthenticated("token expired")
        return claims

    def _verify_signature(self, token: str) -> dict:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise Unauthenticated(f"malformed token: {exc}") from None
        if header.get("alg") != ALGORITHM:
            raise Unauthenticated(f"token algorithm {header.get('alg')!r} is not accepted; only {ALGORITHM}")
        issuer = str(header.get("kid", ""))
        try:
            key = self._directory.public_key(issuer)
        except KeyError:
            raise Unauthenticated(f"unknown issuer {issuer!r}") from None
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=[ALGORITHM],
                audience=str(self.principal),
                issuer=issuer,
                leeway=LEEWAY_SECONDS,
                options={"require": REQUIRED_CLAIMS},
            )
        except jwt.ExpiredSignatureError:
            raise Unauthenticated("token expired") from None
        except jwt.InvalidAudienceError:
            raise Unauthenticated(f"token is not addressed to {self.principal}") from None
        except jwt.PyJWTError as exc:
            raise Unauthenticated(f"invalid token: {exc}") from None
        if claims["sub"] != issuer:
            raise Unauthenticated("a service token's subject must be its issuer")
        if claims["exp"] - claims["iat"] > MAX_LIFETIME_SECONDS:
            raise Unauthenticated(f"token lifetime exceeds {MAX_LIFETIME_SECONDS} s")
        return claims

    def _key(self, caller: str) -> bytes:
        key = self._keys.get(caller)
        if key is None:
            if self._agreement is None:
                raise Unauthenticated("this service takes no request proofs")
            try:
                peer = self._directory.agreement_key(caller)
            except KeyError:
                raise Unauthenticated(f"no agreement key for {caller}") from None
            key = self._keys[caller] = channel_key(self._agreement, peer, Principal.parse(caller), self.principal)
        return key

    def verify(self, token: str | None, proof: str | None, target: str, body: bytes) -> Caller:
        """The caller of one request, or ``Unauthenticated`` saying what failed."""
        claims = self.verify_token(token)
        if not proof:
            raise Unauthenticated("no request proof")
        try:
            request_id, issued_at, mac = proof.split(".")
            age = time.time() - int(issued_at)
        except ValueError:
            raise Unauthenticated("malformed request proof") from None
        if abs(age) > PROOF_WINDOW_SECONDS:
            raise Unauthenticated("request proof is stale")
        expected = _mac(self._key(claims["iss"]), claims["jti"], request_id, issued_at, target, body)
        if not hmac.compare_digest(expected, mac):
            raise Unauthenticated("request proof does not match the request (wrong key, target or body)")
        if not self._replays.first_sighting(f"{claims['iss']}|{request_id}", int(issued_at) + PROOF_WINDOW_SECONDS):
            raise Unauthenticated("request already seen (replayed jti)")
        return Caller(Principal.parse(claims["iss"]), request_id)


def check_allowed(caller: Caller, allowed_services: Collection[str], own_city: str | None, operation: str) -> None:
    """Refuse a caller whose service is not on the operation's allowlist, or who is from another city."""
    principal = caller.principal
    if principal.service not in allowed_services:
        raise Forbidden(f"{principal} may not call {operation}")
    if own_city and principal.city not in (own_city, None):
        raise Forbidden(f"{principal} belongs to another city and may not call {operation}")

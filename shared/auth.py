"""Service authentication: who is calling, proven on every request.

Two parts travel with each bus request and inter-service HTTP call, in one header,
``Authorization: Renkei <token> <proof>``:

- ``<token>`` — a service token: an EdDSA JWT (``iss``, ``sub``, ``aud``, ``exp``, ``iat``,
  ``jti`` required; at most five minutes of life) naming the caller and the one service it
  is for. The caller reuses it for that audience until it nears expiry, so its Ed25519
  signature is checked once, not on every request.
- ``<proof>`` = ``<jti>.<iat>.<mac>`` — a per-request proof of possession: an HMAC-SHA256,
  keyed by a secret that only the caller and the receiver can derive (X25519 between their
  keys from the trust directory), over the token's id, the request's own single-use id,
  its time, its target (subject, or method and path) and the SHA-256 of its body.

So a captured request replayed is refused (its ``jti`` was seen), a captured token is of no
use without the caller's key (the proof would not verify), and nothing of a request can be
changed in flight (subject and body are under the MAC). See docs/protocols/service-auth.md.
"""

from __future__ import annotations

import binascii
import hashlib
import hmac
import os
import secrets
import threading
import time
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
SCHEME = "Renkei"


def authorization(token: str, proof: str) -> str:
    """The ``Authorization`` value that carries a service token and one request's proof."""
    return f"{SCHEME} {token} {proof}"


def read_authorization(value: str | None) -> tuple[str | None, str | None]:
    """The (token, proof) of an ``Authorization`` value; None for a part that is absent.

    A value of another scheme (a staff session's ``Bearer``, say) carries no service token.
    """
    scheme, _, credentials = (value or "").partition(" ")
    if scheme != SCHEME:
        return None, None
    token, _, proof = credentials.partition(" ")
    return token or None, proof or None


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


_IPAD = bytes(b ^ 0x36 for b in range(256))  # XOR tables of HMAC's inner and outer pads
_OPAD = bytes(b ^ 0x5C for b in range(256))
_BASE64URL = bytes.maketrans(b"+/", b"-_")


class ProofKey:
    """HMAC-SHA256 (RFC 2104) under one channel key, its padded key blocks hashed once.

    Every request of a channel is MACed under the same key, so the two SHA-256 states that
    absorbed ``key XOR ipad`` and ``key XOR opad`` are kept and copied per message: the
    same MAC as ``hmac.digest(key, message, "sha256")``, without setting up an HMAC context
    each time.
    """

    __slots__ = ("_inner", "_outer")

    def __init__(self, key: bytes) -> None:
        if len(key) > 64:
            key = hashlib.sha256(key).digest()
        key = key.ljust(64, b"\0")
        self._inner = hashlib.sha256(key.translate(_IPAD))
        self._outer = hashlib.sha256(key.translate(_OPAD))

    def mac(self, token_id: str, request_id: str, issued_at: str, target: str, body: bytes) -> str:
        """The proof MAC of one request, base64url without padding."""
        inner = self._inner.copy()
        inner.update(f"{token_id}|{request_id}|{issued_at}|{target}|".encode())
        inner.update(hashlib.sha256(body).digest())
        outer = self._outer.copy()
        outer.update(inner.digest())
        return binascii.b2a_base64(outer.digest(), newline=False).rstrip(b"=").translate(_BASE64URL).decode()


class TokenIssuer:
    """Issues this principal's service tokens."""

    def __init__(self, principal: Principal, key: Ed25519PrivateKey, lifetime_seconds: int = 60) -> None:
        if not 0 < lifetime_seconds <= MAX_LIFETIME_SECONDS:
            raise ValueError(f"a token lives at most {MAX_LIFETIME_SECONDS} s")
        self.principal = principal
        self.lifetime = lifetime_seconds
        self._key = key
        self._header = {"kid": str(principal), "typ": None}  # no ``typ``: it says nothing the receiver checks

    def issue(self, audience: Principal | str) -> tuple[str, str, int]:
        """A fresh token for ``audience``: (token, its jti, its expiry)."""
        now = int(time.time())
        jti = secrets.token_urlsafe(12)  # 96 random bits
        claims = {
            "iss": str(self.principal),
            "sub": str(self.principal),
            "aud": str(audience),
            "iat": now,
            "exp": now + self.lifetime,
            "jti": jti,
        }
        return jwt.encode(claims, self._key, algorithm=ALGORITHM, headers=self._header), jti, now + self.lifetime


class _Channel:
    """The caller's state for one audience: its current token and the proof key."""

    __slots__ = ("prefix", "proof_key", "renew_at", "token_id")

    def __init__(self, token: tuple[str, str, int], renew_at: float, proof_key: ProofKey) -> None:
        self.prefix = authorization(token[0], "")  # the proof of each request follows
        self.token_id = token[1]
        self.renew_at = renew_at
        self.proof_key = proof_key


class Credentials:
    """The caller's side: a token per audience, renewed before it expires, and a proof per request."""

    def __init__(self, issuer: TokenIssuer, agreement: X25519PrivateKey, directory: TrustDirectory) -> None:
        self.principal = issuer.principal
        self._issuer = issuer
        self._agreement = agreement
        self._directory = directory
        self._channels: dict[str, _Channel] = {}
        self._renew_before = max(1, issuer.lifetime // 5)

    def _channel(self, audience: str) -> _Channel:
        """A new channel to ``audience``, or the same one with a renewed token."""
        channel = self._channels.get(audience)
        if channel is None:
            peer = self._directory.agreement_key(audience)
            proof_key = ProofKey(channel_key(self._agreement, peer, self.principal, Principal.parse(audience)))
        else:
            proof_key = channel.proof_key
        token = self._issuer.issue(audience)
        channel = self._channels[audience] = _Channel(token, token[2] - self._renew_before, proof_key)
        return channel

    def headers(self, audience: Principal | str, target: str, body: bytes) -> dict[str, str]:
        """The header that authenticates one request to ``audience``: its token and its proof."""
        now, audience = time.time(), str(audience)
        channel = self._channels.get(audience)
        if channel is None or now >= channel.renew_at:
            channel = self._channel(audience)
        request_id, issued_at = os.urandom(12).hex(), str(int(now))  # the proof's jti: 96 random bits
        mac = channel.proof_key.mac(channel.token_id, request_id, issued_at, target, body)
        return {AUTHORIZATION: f"{channel.prefix}{request_id}.{issued_at}.{mac}"}


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


class _VerifiedToken:
    """A token whose signature and claims were checked, as the receiver keeps it until ``exp``."""

    __slots__ = ("claims", "expires_at", "issuer", "principal", "proof_key", "replay_prefix", "token_id")

    def __init__(self, claims: dict) -> None:
        self.claims = claims
        self.expires_at = claims["exp"] + LEEWAY_SECONDS
        self.issuer = claims["iss"]
        self.principal = Principal.parse(self.issuer)
        self.token_id = claims["jti"]
        self.replay_prefix = f"{self.issuer}|"
        self.proof_key: ProofKey | None = None


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
        self._verified: dict[str, _VerifiedToken] = {}
        self._keys: dict[str, ProofKey] = {}
        self._lock = threading.Lock()

    def verify_token(self, token: str | None) -> dict:
        """The claims of a valid token for this principal (its signature is checked once)."""
        return self._token(token).claims

    def _token(self, token: str | None) -> _VerifiedToken:
        """The checked token, from the cache while it has not expired, else verified now."""
        if not token:
            raise Unauthenticated("no service token")
        verified = self._verified.get(token)
        if verified is None:
            verified = _VerifiedToken(self._verify_signature(token))
            with self._lock:
                now = time.time()
                if len(self._verified) > 10_000:
                    self._verified = {t: v for t, v in self._verified.items() if v.expires_at > now}
                self._verified[token] = verified
        elif verified.expires_at < time.time():
            raise Unauthenticated("token expired")
        return verified

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
        if not isinstance(claims["jti"], str):
            raise Unauthenticated("invalid token: jti must be a string")
        return claims

    def _key(self, caller: str) -> ProofKey:
        key = self._keys.get(caller)
        if key is None:
            if self._agreement is None:
                raise Unauthenticated("this service takes no request proofs")
            try:
                peer = self._directory.agreement_key(caller)
            except KeyError:
                raise Unauthenticated(f"no agreement key for {caller}") from None
            key = self._keys[caller] = ProofKey(channel_key(self._agreement, peer, Principal.parse(caller), self.principal))
        return key

    def verify_authorization(self, value: str | None, target: str, body: bytes) -> Caller:
        """The caller of one request from its ``Authorization`` value (see ``verify``)."""
        token, proof = read_authorization(value)
        return self.verify(token, proof, target, body)

    def verify(self, token: str | None, proof: str | None, target: str, body: bytes) -> Caller:
        """The caller of one request, or ``Unauthenticated`` saying what failed."""
        verified = self._token(token)
        if not proof:
            raise Unauthenticated("no request proof")
        parts = proof.split(".")
        if len(parts) != 3:
            raise Unauthenticated("malformed request proof")
        request_id, issued_at, mac = parts
        try:
            sent_at = int(issued_at)
        except ValueError:
            raise Unauthenticated("malformed request proof") from None
        if abs(time.time() - sent_at) > PROOF_WINDOW_SECONDS:
            raise Unauthenticated("request proof is stale")
        key = verified.proof_key
        if key is None:
            key = verified.proof_key = self._key(verified.issuer)
        expected = key.mac(verified.token_id, request_id, issued_at, target, body)
        if not hmac.compare_digest(expected.encode(), mac.encode()):
            raise Unauthenticated("request proof does not match the request (wrong key, target or body)")
        if not self._replays.first_sighting(verified.replay_prefix + request_id, sent_at + PROOF_WINDOW_SECONDS):
            raise Unauthenticated("request already seen (replayed jti)")
        return Caller(verified.principal, request_id)


def check_allowed(caller: Caller, allowed_services: Collection[str], own_city: str | None, operation: str) -> None:
    """Refuse a caller whose service is not on the operation's allowlist, or who is from another city."""
    principal = caller.principal
    if principal.service not in allowed_services:
        raise Forbidden(f"{principal} may not call {operation}")
    if own_city and principal.city not in (own_city, None):
        raise Forbidden(f"{principal} belongs to another city and may not call {operation}")

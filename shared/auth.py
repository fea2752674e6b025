"""Service tokens: short-lived EdDSA JWTs that say which service is calling which.

Every bus request and inter-service HTTP call carries one. The receiver accepts it only if
it is signed with the issuer's key from the trust directory, names the receiver as its
audience, has not expired, lives at most five minutes, and has not been seen before
(each ``jti`` is accepted once: a captured token cannot be replayed).
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from shared.errors import Forbidden, Unauthenticated
from shared.trust import Principal, TrustDirectory

ALGORITHM = "EdDSA"
MAX_LIFETIME_SECONDS = 300
REQUIRED_CLAIMS = ["iss", "sub", "aud", "exp", "iat", "jti"]
LEEWAY_SECONDS = 5


@dataclass(frozen=True)
class Caller:
    """Who a verified token says is calling."""

    principal: Principal
    token_id: str


class TokenIssuer:
    """Issues this principal's tokens."""

    def __init__(self, principal: Principal, key: Ed25519PrivateKey, lifetime_seconds: int = 60) -> None:
        if not 0 < lifetime_seconds <= MAX_LIFETIME_SECONDS:
            raise ValueError(f"a token lives at most {MAX_LIFETIME_SECONDS} s")
        self.principal = principal
        self._key = key
        self._lifetime = lifetime_seconds
        self._header = {"kid": str(principal)}

    def issue(self, audience: Principal | str) -> str:
        now = int(time.time())
        claims = {
            "iss": str(self.principal),
            "sub": str(self.principal),
            "aud": str(audience),
            "iat": now,
            "exp": now + self._lifetime,
            "jti": uuid.uuid4().hex,
        }
        return jwt.encode(claims, self._key, algorithm=ALGORITHM, headers=self._header)


class ReplayCache:
    """The token ids seen and not yet expired; a second sighting is a replay."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._seen: dict[str, float] = {}
        self._lock = threading.Lock()
        self._clock = clock
        self._next_sweep = 0.0

    def first_sighting(self, token_id: str, expires_at: float) -> bool:
        now = self._clock()
        with self._lock:
            if now >= self._next_sweep:
                self._seen = {k: v for k, v in self._seen.items() if v + LEEWAY_SECONDS > now}
                self._next_sweep = now + 10
            if token_id in self._seen:
                return False
            self._seen[token_id] = expires_at
            return True


class TokenVerifier:
    """Verifies tokens addressed to this principal."""

    def __init__(self, principal: Principal, directory: TrustDirectory, replay_cache: ReplayCache | None = None) -> None:
        self.principal = principal
        self._directory = directory
        self._replays = replay_cache or ReplayCache()

    def verify(self, token: str | None) -> Caller:
        if not token:
            raise Unauthenticated("no service token")
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
        if not self._replays.first_sighting(claims["jti"], float(claims["exp"])):
            raise Unauthenticated("token already used (replayed jti)")
        return Caller(Principal.parse(issuer), claims["jti"])


def check_allowed(caller: Caller, allowed_services: Iterable[str], own_city: str | None, operation: str) -> None:
    """Refuse a caller whose service is not on the operation's allowlist, or who is from another city."""
    principal = caller.principal
    if principal.service not in set(allowed_services):
        raise Forbidden(f"{principal} may not call {operation}")
    if own_city and principal.city not in (own_city, None):
        raise Forbidden(f"{principal} belongs to another city and may not call {operation}")

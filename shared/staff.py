"""Staff sign-in (職員認証): personal accounts, password and second factor, roles, sessions.

Guarantees:
- every account is one person's (M11): a personal user id, never a generic one, and the
  kind of person — city staff or contractor (M12);
- sign-in needs the password (argon2) and a TOTP code (standing in for the biometric
  factor of the assessment); five failures in a row lock the account for 15 minutes;
- a session ends at logout, after ``staff_idle_minutes`` without use (M09), and after
  ``staff_session_hours`` at most; only a hash of its token is stored;
- each route names the permission it needs, and each service maps its roles to
  permissions (M06); sign-ins, refusals and sign-outs go to the operation log (M19);
- a contractor signs in only inside a maintenance window the city approved beforehand for
  them, with its purpose and times (M13); the session ends when the window does, or at
  once when the window is revoked. Only a city staff member approves a window.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

import pyotp
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select

from shared.db import Database
from shared.errors import Conflict, Forbidden, InvalidRequest, Unauthenticated
from shared.http import Audited
from shared.models import MaintenanceWindow, StaffAccount, StaffSession, as_utc, utcnow
from shared.oplog import Actor

TOKEN_PREFIX = "rks_"
MAX_FAILURES = 5
LOCKOUT = timedelta(minutes=15)
GENERIC_USER_IDS = frozenset({"admin", "administrator", "root", "user", "guest", "shared", "staff", "test", "operator", "common"})
STAFF_KINDS = ("staff", "contractor")
CONTRACTOR = "contractor"
#: The longest maintenance window one approval may open.
MAX_WINDOW = timedelta(hours=24)

_hasher = PasswordHasher()


@dataclass(frozen=True)
class SignedIn:
    """The staff member behind a request."""

    user_id: str
    display_name: str
    kind: str
    roles: frozenset[str]


@dataclass(frozen=True)
class NewAccount:
    user_id: str
    totp_secret: str
    provisioning_uri: str


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class StaffDirectory:
    """The accounts and sessions of one service's staff."""

    def __init__(self, db: Database, issuer: str, idle: timedelta, lifetime: timedelta) -> None:
        self._db = db
        self._issuer = issuer
        self._idle = idle
        self._lifetime = lifetime

    def create_account(
        self, user_id: str, display_name: str, password: str, roles: list[str], kind: str = "staff", known_roles=None
    ) -> NewAccount:
        if not user_id or user_id.lower() in GENERIC_USER_IDS:
            raise InvalidRequest(f"{user_id!r} is not a personal user id: accounts are never shared (M11)")
        if kind not in STAFF_KINDS:
            raise InvalidRequest(f"kind must be one of {', '.join(STAFF_KINDS)}")
        if len(password) < 12:
            raise InvalidRequest("a password has at least 12 characters")
        unknown = set(roles) - set(known_roles) if known_roles is not None else set()
        if unknown or not roles:
            raise InvalidRequest(f"unknown roles: {', '.join(sorted(unknown))}" if unknown else "give at least one role")
        secret = pyotp.random_base32()
        with self._db.session() as session:
            if session.scalar(select(StaffAccount).where(StaffAccount.user_id == user_id)) is not None:
                raise Conflict(f"{user_id} already has an account")
            session.add(
                StaffAccount(
                    user_id=user_id,
                    display_name=display_name,
                    kind=kind,
                    password_hash=_hasher.hash(password),
                    totp_secret=secret,
                    roles=",".join(sorted(set(roles))),
                )
            )
        uri = pyotp.TOTP(secret).provisioning_uri(name=user_id, issuer_name=self._issuer)
        return NewAccount(user_id, secret, uri)

    def sign_in(self, user_id: str, password: str, totp_code: str) -> tuple[str, datetime]:
        """A new session token and its absolute expiry, or ``Unauthenticated``."""
        now = utcnow()
        with self._db.session() as session:
            account = session.scalar(select(StaffAccount).where(StaffAccount.user_id == user_id))
            if account is None or not account.active:
                _hasher.hash(password)  # spend the same time as for a real account
                raise Unauthenticated("unknown user or wrong password or code")
            if account.locked_until and as_utc(account.locked_until) > now:
                raise Unauthenticated("account locked after repeated failures; try later")
            if not (self._password_ok(account.password_hash, password) and pyotp.TOTP(account.totp_secret).verify(totp_code, valid_window=1)):
                account.failures += 1
                if account.failures >= MAX_FAILURES:
                    account.locked_until, account.failures = now + LOCKOUT, 0
                failed = True
            else:
                failed = False
                account.failures = 0
                window = _open_window(session, user_id, now) if account.kind == CONTRACTOR else None
                if account.kind == CONTRACTOR and window is None:
                    raise Unauthenticated("no maintenance window approved for this contractor now (M13)")
                token = TOKEN_PREFIX + secrets.token_urlsafe(32)
                expires = now + self._lifetime if window is None else min(now + self._lifetime, as_utc(window.ends_at))
                session.add(
                    StaffSession(
                        token_hash=_token_hash(token), user_id=user_id, created_at=now, last_seen_at=now, expires_at=expires,
                        window_id=window.id if window is not None else None,
                    )
                )
        if failed:  # the failure count is committed before the refusal
            raise Unauthenticated("unknown user or wrong password or code")
        return token, expires

    @staticmethod
    def _password_ok(stored: str, given: str) -> bool:
        try:
            return _hasher.verify(stored, given)
        except (VerificationError, InvalidHashError):
            return False

    def resolve(self, token: str) -> SignedIn:
        """The staff member of a live session; touching it keeps it alive."""
        now = utcnow()
        with self._db.session() as session:
            found = session.get(StaffSession, _token_hash(token))
            if found is None or found.ended_at is not None:
                raise Unauthenticated("no such session; sign in again")
            if as_utc(found.expires_at) <= now:
                found.ended_at, found.end_reason = now, "expired"
                raise_after = "session expired; sign in again"
            elif as_utc(found.last_seen_at) + self._idle <= now:
                found.ended_at, found.end_reason = now, "idle"
                raise_after = "session ended after inactivity; sign in again"
            elif found.window_id is not None and not _window_open(session.get(MaintenanceWindow, found.window_id), now):
                found.ended_at, found.end_reason = now, "window_closed"
                raise_after = "the maintenance window has ended or was revoked"
            else:
                raise_after = None
                found.last_seen_at = now
                account = session.scalar(select(StaffAccount).where(StaffAccount.user_id == found.user_id))
                if account is None or not account.active:
                    raise Unauthenticated("account disabled")
                signed_in = SignedIn(account.user_id, account.display_name, account.kind, frozenset(account.roles.split(",")))
        if raise_after:
            raise Unauthenticated(raise_after)
        return signed_in

    def sign_out(self, token: str) -> str:
        with self._db.session() as session:
            found = session.get(StaffSession, _token_hash(token))
            if found is None or found.ended_at is not None:
                raise Unauthenticated("no such session")
            found.ended_at, found.end_reason = utcnow(), "logout"
            return found.user_id


    # -- maintenance windows (M13) -------------------------------------------------------

    def approve_window(self, user_id: str, purpose: str, starts_at: datetime, ends_at: datetime, approved_by: str) -> int:
        """Record the city's approval (承諾) of a contractor's work: who, why, from when to when."""
        starts_at, ends_at = as_utc(starts_at), as_utc(ends_at)
        if not purpose.strip():
            raise InvalidRequest("a maintenance window needs its purpose (作業目的)")
        if not starts_at < ends_at <= starts_at + MAX_WINDOW:
            raise InvalidRequest(f"a maintenance window ends after it starts and lasts at most {MAX_WINDOW}")
        if ends_at <= utcnow():
            raise InvalidRequest("the maintenance window is already over")
        with self._db.session() as session:
            worker = session.scalar(select(StaffAccount).where(StaffAccount.user_id == user_id))
            if worker is None or worker.kind != CONTRACTOR:
                raise InvalidRequest(f"{user_id!r} is not a contractor's account: windows are for contractors")
            approver = session.scalar(select(StaffAccount).where(StaffAccount.user_id == approved_by))
            if approver is None or not approver.active or approver.kind == CONTRACTOR or approver.user_id == user_id:
                raise Forbidden(f"{approved_by!r} may not approve maintenance: only an active member of the city's staff may")
            window = MaintenanceWindow(
                user_id=user_id, purpose=purpose.strip(), starts_at=starts_at, ends_at=ends_at, approved_by=approved_by, approved_at=utcnow()
            )
            session.add(window)
            session.flush()
            return window.id

    def revoke_window(self, window_id: int, revoked_by: str) -> None:
        """End a window before its time; the sessions in it end at their next request."""
        with self._db.session() as session:
            window = session.get(MaintenanceWindow, window_id)
            if window is None:
                raise InvalidRequest(f"no maintenance window {window_id}")
            if window.revoked_at is None:
                window.revoked_by, window.revoked_at = revoked_by, utcnow()

    def windows(self, user_id: str | None = None) -> list[MaintenanceWindow]:
        with self._db.session() as session:
            query = select(MaintenanceWindow).order_by(MaintenanceWindow.starts_at, MaintenanceWindow.id)
            if user_id is not None:
                query = query.where(MaintenanceWindow.user_id == user_id)
            found = list(session.scalars(query))
            session.expunge_all()
            return found


def _window_open(window: MaintenanceWindow | None, now: datetime) -> bool:
    return window is not None and window.revoked_at is None and as_utc(window.starts_at) <= now < as_utc(window.ends_at)


def _open_window(session, user_id: str, now: datetime) -> MaintenanceWindow | None:
    """The contractor's approved window that is open now (the one ending last, if several)."""
    candidates = session.scalars(
        select(MaintenanceWindow).where(MaintenanceWindow.user_id == user_id, MaintenanceWindow.revoked_at.is_(None))
    )
    open_now = [w for w in candidates if _window_open(w, now)]
    return max(open_now, key=lambda w: as_utc(w.ends_at), default=None)


def granted(roles: Mapping[str, frozenset[str]], held: frozenset[str]) -> frozenset[str]:
    """Every permission the roles ``held`` give, under a service's role table ``roles``."""
    return frozenset().union(*(roles.get(role, frozenset()) for role in held))


def _bearer(request: Request) -> str:
    header = request.headers.get("Authorization", "")
    token = header.removeprefix("Bearer ").strip()
    if not token.startswith(TOKEN_PREFIX):
        raise Unauthenticated("sign in first: no staff session")
    return token


class StaffMember:
    """Dependency: the signed-in staff member, who must hold ``permission`` through a role."""

    def __init__(self, permission: str) -> None:
        self.permission = permission

    def __call__(self, request: Request) -> SignedIn:
        context = request.app.state.context
        member = context.staff.resolve(_bearer(request))
        request.state.actor = Actor(member.user_id, member.kind)
        if self.permission not in granted(context.roles, member.roles):
            raise Forbidden(f"{member.user_id} lacks the permission {self.permission!r}")
        return member


class LoginRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    user_id: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=256)
    totp: str = Field(pattern=r"^\d{6}$")


class LoginReply(BaseModel):
    token: str
    expires_at: datetime


def staff_router() -> APIRouter:
    router = APIRouter(prefix="/staff", tags=["staff"])

    @router.post("/login", dependencies=[Depends(Audited("staff.login"))], summary="Sign in with password and TOTP")
    def login(body: LoginRequest, request: Request) -> LoginReply:
        request.state.actor = Actor(body.user_id, "claimed")
        token, expires = request.app.state.context.staff.sign_in(body.user_id, body.password, body.totp)
        return LoginReply(token=token, expires_at=expires)

    @router.post("/logout", dependencies=[Depends(Audited("staff.logout"))], status_code=204, summary="End the session")
    def logout(request: Request) -> None:
        user = request.app.state.context.staff.sign_out(_bearer(request))
        request.state.actor = Actor(user, "staff")

    return router

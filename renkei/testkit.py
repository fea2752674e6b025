"""Real parts for tests and benchmarks: a nats-server of their own on a free port, a data
folder prepared as the stack prepares it, a fresh database, identities of principals."""

from __future__ import annotations

import json
import os
import subprocess
import time
import uuid
from contextlib import contextmanager
from pathlib import Path

import httpx
from sqlalchemy import create_engine, text

from renkei.processes import free_port
from renkei.stack import nats_server_binary, principals_for
from shared import nats_config
from shared.contracts import REGISTRY, Registry
from shared.trust import Principal, TrustDirectory

TEST_DATABASE_URL = os.environ.get("RENKEI_TEST_DATABASE_URL")


class NatsServer:
    """A nats-server process with JetStream, configured as the stack configures it (or without auth)."""

    def __init__(self, folder: Path, config: dict) -> None:
        self.folder = folder
        self.base_config = config
        self.config_path = folder / "nats.conf"
        self.process: subprocess.Popen | None = None
        self._choose_ports()

    def _choose_ports(self) -> None:
        self.port = free_port()
        self.monitor_port = free_port()
        config = {**self.base_config, "host": "127.0.0.1", "port": self.port, "http": f"127.0.0.1:{self.monitor_port}"}
        config.setdefault("jetstream", {"store_dir": str(self.folder / "jetstream"), "sync_interval": "always"})
        self.config_path.write_text(json.dumps(config))

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def start(self) -> NatsServer:
        # Another process may bind a free port before the server does; then try other ports.
        for _ in range(3):
            if self._start_once():
                return self
            if "address already in use" not in self._log_tail():
                break
            self._choose_ports()
        raise RuntimeError(f"nats-server did not start: {self._log_tail()}")

    def _start_once(self) -> bool:
        log = open(self.folder / "nats.log", "ab")
        self.process = subprocess.Popen([nats_server_binary(), "-c", str(self.config_path)], stdout=log, stderr=log)
        log.close()
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and self.process.poll() is None:
            try:
                if httpx.get(f"http://127.0.0.1:{self.monitor_port}/healthz", timeout=0.5).status_code == 200:
                    return True
            except httpx.HTTPError:
                time.sleep(0.05)
        self.kill()
        return False

    def _log_tail(self) -> str:
        return (self.folder / "nats.log").read_text()[-2000:]

    def kill(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)


class SecuredStackFiles:
    """A data folder as ``renkei up`` prepares it: keys, trust directory and NATS users."""

    def __init__(self, data_dir: Path, cities: list[str], registry: Registry = REGISTRY) -> None:
        self.data_dir = data_dir
        self.principals = principals_for(cities)
        self.directory = TrustDirectory.create(data_dir, self.principals)
        self.credentials = nats_config.load_or_create_credentials(data_dir / "nats" / "credentials.json", self.principals)
        self.registry = registry

    def nats_config(self) -> dict:
        users = [
            {
                "user": nats_config.nats_user(p),
                "password": self.credentials[nats_config.nats_user(p)],
                "permissions": nats_config.permissions(p, self.registry),
            }
            for p in self.principals
        ]
        return {"authorization": {"users": users}}

    def login(self, principal: Principal) -> tuple[str, str]:
        user = nats_config.nats_user(principal)
        return user, self.credentials[user]


@contextmanager
def database_url_for_test(tmp_path: Path):
    """A fresh database: a SQLite file, or a PostgreSQL database of its own when configured."""
    if not TEST_DATABASE_URL:
        yield f"sqlite:///{tmp_path / 'test.sqlite3'}"
        return
    name = f"renkei_t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(_psycopg(TEST_DATABASE_URL), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    base, _, _ = _psycopg(TEST_DATABASE_URL).rpartition("/")
    try:
        yield f"{base}/{name}"
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def _psycopg(url: str) -> str:
    return "postgresql+psycopg://" + url.split("://", 1)[1]


def identity(data_dir: Path, directory: TrustDirectory, principal: Principal):
    """A principal's credentials (caller side) and verifier (receiver side), from its key files."""
    from shared.auth import Credentials, TokenIssuer, TokenVerifier
    from shared.trust import agreement_key, signing_key

    agreement = agreement_key(data_dir, principal)
    credentials = Credentials(TokenIssuer(principal, signing_key(data_dir, principal)), agreement, directory)
    return credentials, TokenVerifier(principal, directory, agreement)


def make_bus(data_dir: Path, directory: TrustDirectory, principal: Principal):
    from shared.bus import Bus

    return Bus(principal, *identity(data_dir, directory, principal))


def staff_headers(client, roles: list[str], user_id: str | None = None, kind: str = "staff") -> dict[str, str]:
    """Create a staff account with ``roles`` in the app behind ``client``, sign it in, and
    return the headers that carry its session."""
    import secrets

    import pyotp

    context = client.app.state.context
    user_id = user_id or f"clerk-{uuid.uuid4().hex[:8]}"
    password = secrets.token_urlsafe(18)
    account = context.staff.create_account(user_id, f"Test {user_id}", password, list(roles), kind)
    if kind == "contractor":  # a contractor works only inside a window a member of staff approved (M13)
        from datetime import UTC, datetime, timedelta

        approver = f"approver-{uuid.uuid4().hex[:8]}"
        context.staff.create_account(approver, f"Test {approver}", secrets.token_urlsafe(18), list(roles))
        now = datetime.now(UTC)
        context.staff.approve_window(user_id, "maintenance under test", now - timedelta(minutes=1), now + timedelta(hours=1), approver)
    reply = client.post(
        "/staff/login", json={"user_id": user_id, "password": password, "totp": pyotp.TOTP(account.totp_secret).now()}
    )
    reply.raise_for_status()
    return {"Authorization": f"Bearer {reply.json()['token']}"}

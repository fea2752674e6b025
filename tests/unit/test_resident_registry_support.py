"""Parts the resident registry's tests share (no tests here): the register's database, a
person's items as the counter enters them, counts of what the register holds, and a
consumer of its change feed as the Juki CS runs it."""

from __future__ import annotations

import asyncio
import random
import time
from contextlib import contextmanager
from datetime import date
from pathlib import Path

import nats
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from services.resident_registry.app import MIGRATIONS, SPEC
from services.resident_registry.config import Settings
from services.resident_registry.models import Base, ResidentChange, ResidentEntry
from shared import migrate
from shared.bus import inbox_prefix
from shared.contracts.residents import RESIDENT_CHANGED, ResidentChanged
from shared.db import Database, schema_name
from shared.events import EventConsumer
from shared.ids import generate_my_number, generate_resident_code
from shared.models import KernelBase, OutboxMessage
from shared.service import build_app
from shared.trust import Principal

CITY = "112224"
REGISTRY_PRINCIPAL = Principal("resident_registry", CITY)
JUKI = Principal("juki_cs", CITY)


def open_register(database_url: str) -> Database:
    """The registry's database as the service opens it (its own schema on PostgreSQL), migrated."""
    schema = None if database_url.startswith("sqlite") else schema_name("resident_registry", CITY)
    db = Database(database_url, schema)
    migrate.upgrade(db, MIGRATIONS, [KernelBase.metadata, Base.metadata])
    return db


def counts(db: Database) -> dict[str, int]:
    """How many residents, changes and outbox events the register holds."""
    with db.session() as session:
        return {
            "residents": session.scalar(select(func.count()).select_from(ResidentEntry)),
            "changes": session.scalar(select(func.count()).select_from(ResidentChange)),
            "events": session.scalar(select(func.count()).select_from(OutboxMessage)),
        }


def outbox_events(db: Database) -> list[ResidentChanged]:
    with db.session() as session:
        payloads = session.scalars(select(OutboxMessage.payload).order_by(OutboxMessage.id)).all()
    return [ResidentChanged.model_validate_json(payload) for payload in payloads]


def person(rng: random.Random | None = None, **overrides) -> dict:
    """A new person's items, as JSON the counter receives."""
    rng = rng or random.Random()
    items = {
        "resident_code": generate_resident_code(rng),
        "my_number": generate_my_number(rng),
        "family_name": "越谷",
        "given_name": "花子",
        "family_name_kana": "コシガヤ",
        "given_name_kana": "ハナコ",
        "sex": "female",
        "birth_date": "1990-04-01",
        "address": "埼玉県越谷市越ヶ谷一丁目1番1号",
        "town": "越ヶ谷",
        "household_id": "112224-0000001",
        "relation": "head",
    }
    items.update(overrides)
    return items


def birth(day: date = date(2024, 5, 1), **overrides) -> dict:
    items = person(**overrides)
    del items["resident_code"], items["my_number"]
    items.update(kind="birth", effective_date=day.isoformat(), birth_date=day.isoformat(), relation="child")
    return items


def settings_for(files, server, database_url: str) -> Settings:
    user, password = files.login(REGISTRY_PRINCIPAL)
    pg = None if database_url.startswith("sqlite") else database_url
    return Settings(city=CITY, data_dir=files.data_dir, nats_url=server.url, nats_user=user, nats_password=password, database_url=pg)


@contextmanager
def running_registry(files, server, database_url: str):
    """The registry service in process, on the real nats-server and database."""
    with TestClient(build_app(SPEC, settings_for(files, server, database_url))) as client:
        yield client


def consume_changes(files, server, inbox_dir: Path, expected: int, timeout: float = 60) -> list[ResidentChanged]:
    """Read the change feed as the Juki CS does (its NATS user, its durable consumer, its inbox)
    until ``expected`` events came or ``timeout`` passed; returns what it applied."""
    inbox = Database(f"sqlite:///{inbox_dir / 'juki_inbox.sqlite3'}")
    migrate.upgrade(inbox, None, [KernelBase.metadata])
    applied: list[ResidentChanged] = []

    async def scenario() -> None:
        user, password = files.login(JUKI)
        nc = await nats.connect(server.url, user=user, password=password, inbox_prefix=inbox_prefix(user))
        consumer = EventConsumer(
            inbox, nc.jetstream(), "juki_cs", RESIDENT_CHANGED, CITY, lambda session, event: applied.append(event)
        )
        deadline = time.monotonic() + timeout
        try:
            while len(applied) < expected and time.monotonic() < deadline:
                await consumer.process_batch(timeout=0.5)
            await consumer.process_batch(timeout=0.5)  # anything beyond what was expected shows up too
        finally:
            await nc.close()

    try:
        asyncio.run(scenario())
    finally:
        inbox.dispose()
    return applied

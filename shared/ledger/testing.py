"""Throwaway ledger databases and sample records, for the ledger's tests and benchmarks and
for services that test their own record keeping.

PostgreSQL is used when ``RENKEI_TEST_DATABASE_URL`` is set: each database is a schema of
its own, dropped afterwards, so that runs in parallel never meet.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import Engine, create_engine, text

from shared.db import make_engine
from shared.ledger.models import metadata
from shared.ledger.records import ProvisionRecord

TEST_DATABASE_URL_ENV = "RENKEI_TEST_DATABASE_URL"
BACKENDS = ("sqlite", "postgresql")


def postgresql_url() -> str | None:
    return os.environ.get(TEST_DATABASE_URL_ENV) or None


@contextmanager
def ledger_database(backend: str, folder: Path) -> Iterator[Engine]:
    """An engine on a new, empty database with the ledger tables, removed on exit."""
    if backend == "sqlite":
        engine = make_engine(f"sqlite:///{Path(folder) / f'ledger-{uuid.uuid4().hex[:8]}.sqlite3'}")
        schema = None
    elif backend == "postgresql":
        url = postgresql_url()
        if url is None:
            raise RuntimeError(f"{TEST_DATABASE_URL_ENV} is not set")
        schema = f"ledger_test_{uuid.uuid4().hex[:12]}"
        engine = make_engine(url, schema)
    else:
        raise ValueError(f"unknown backend {backend!r}")
    try:
        metadata.create_all(engine)
        yield engine
    finally:
        engine.dispose()
        if schema is not None:
            drop_schema(postgresql_url(), schema)


def drop_schema(url: str, schema: str) -> None:
    admin = create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
    try:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
    finally:
        admin.dispose()


_KINDS = ("query", "provision", "answer_received", "provision")
_START = datetime(2024, 4, 1, 9, 0, tzinfo=UTC)


def sample_record(tenant: str = "112224", n: int = 0, **overrides) -> ProvisionRecord:
    """A valid record that differs with ``n`` in its serial number, person, item and outcome."""
    requested = _START + timedelta(minutes=n)
    kind = _KINDS[n % len(_KINDS)]
    fields = {
        "tenant": tenant,
        "kind": kind,
        "requester": "112216" if kind != "query" else tenant if tenant != "hub" else "112224",
        "provider": tenant if tenant != "hub" else "112216",
        "affair_code": f"JM{14 + n % 3:014d}",
        "procedure_code": f"JT{25 + n % 5:014d}",
        "item_code": f"TM{123 + n % 7:014d}",
        "serial_number": f"{n:016d}",
        "requested_at": requested,
        "provided_at": None,
        "outcome": "refused",
        "refusal_reason": "照会許可用照合リストに該当しない",
        "non_disclosure": n % 11 == 5,
        "person_key": f"IA{n % 97:013d}",
    }
    if n % 3 == 0:
        fields.update(outcome="provided", refusal_reason=None, provided_at=requested + timedelta(seconds=3))
    elif n % 3 == 1 and kind == "query":
        fields.update(outcome="requested", refusal_reason=None)
    elif n % 3 == 1:
        fields.update(outcome="held_for_review", refusal_reason=None)
    fields.update(overrides)
    return ProvisionRecord(**fields)


def sample_records(count: int, tenant: str = "112224", start: int = 0) -> list[ProvisionRecord]:
    return [sample_record(tenant, n) for n in range(start, start + count)]

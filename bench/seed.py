"""Benchmark of seeding the resident register (``renkei seed``); prints JSON figures.

Seeds Koshigaya's synthetic population (340,000 people; 5,000 in quick mode) into a fresh
register — each person with their change and their ``ResidentChanged`` event in the
outbox — and times it beside a baseline measured in the same run: generating the same
people without storing them. A second run over the same register shows what idempotency
costs (it stores nothing). SQLite always; PostgreSQL too when a URL is given (or
``RENKEI_TEST_DATABASE_URL`` is set), in a database of its own that is dropped afterwards.

    python -m bench.seed [--quick] [--database-url URL]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import create_engine, text

from services.resident_registry.app import MIGRATIONS
from services.resident_registry.models import Base
from services.resident_registry.population import generate
from services.resident_registry.seeding import seed
from shared import migrate
from shared.db import Database, schema_name
from shared.models import KernelBase

CITY = "112224"
SEED = 1
FULL, QUICK = 340_000, 5_000
TARGET_SECONDS = 60.0  # for 340,000 people on a 2-core machine


def _baseline(people: int) -> float:
    """Seconds to generate the people without storing them."""
    started = time.perf_counter()
    for _ in generate(CITY, people, SEED):
        pass
    return time.perf_counter() - started


def _register(url: str) -> Database:
    db = Database(url, None if url.startswith("sqlite") else schema_name("resident_registry", CITY))
    migrate.upgrade(db, MIGRATIONS, [KernelBase.metadata, Base.metadata])
    return db


def _measure(url: str, people: int, baseline_seconds: float) -> dict:
    db = _register(url)
    try:
        first = seed(db, CITY, people, SEED)
        again = seed(db, CITY, people, SEED)
    finally:
        db.dispose()
    return {
        "seconds": round(first.seconds, 3),
        "people_per_s": round(people / first.seconds, 1),
        "to_baseline_ratio": round(baseline_seconds / first.seconds, 3),
        "storing_seconds": round(max(first.seconds - baseline_seconds, 0.0), 3),
        "added": first.added,
        "events": first.events,
        "births": first.births,
        "move_ins": first.move_ins,
        "rerun_seconds": round(again.seconds, 3),
        "rerun_added": again.added,
        "meets_target": people != FULL or first.seconds <= TARGET_SECONDS,
    }


@contextmanager
def _postgres_database(admin_url: str) -> Iterator[str]:
    """A PostgreSQL database of the benchmark's own, dropped afterwards."""
    name = f"renkei_bench_{uuid.uuid4().hex[:12]}"
    driver_url = "postgresql+psycopg://" + admin_url.split("://", 1)[1]
    admin = create_engine(driver_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield f"{admin_url.rpartition('/')[0]}/{name}"
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def run(quick: bool = False, database_url: str | None = None) -> dict:
    people = QUICK if quick else FULL
    database_url = database_url or os.environ.get("RENKEI_TEST_DATABASE_URL")
    next(generate(CITY, 0, SEED), None)  # load the city's tables before anything is timed
    baseline = _baseline(people)
    result = {
        "people": people,
        "city": CITY,
        "seed": SEED,
        "cpus": os.cpu_count(),
        "target_seconds_at_340000": TARGET_SECONDS,
        "baseline_generate_seconds": round(baseline, 3),
        "baseline_generate_people_per_s": round(people / baseline, 1),
    }
    with tempfile.TemporaryDirectory(prefix="renkei-bench-seed-") as folder:
        result["sqlite"] = _measure(f"sqlite:///{Path(folder) / 'resident_registry.sqlite3'}", people, baseline)
    if database_url:
        with _postgres_database(database_url) as url:
            result["postgresql"] = _measure(url, people, baseline)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="5,000 people instead of 340,000")
    parser.add_argument("--database-url", help="a PostgreSQL URL to measure too")
    args = parser.parse_args()
    print(json.dumps(run(quick=args.quick, database_url=args.database_url), indent=2))


if __name__ == "__main__":
    main()

"""Benchmark of the provision-record ledger; prints JSON figures beside their targets.

- durable appends/s of signed records (batches through ``Ledger.append_many``, each batch
  one committed transaction with its seal), beside plain unsigned inserts of the same
  canonical bytes into a table of the same database in batches of the same size;
- single appends/s (``Ledger.append``: one commit and one signature per record);
- inclusion and consistency proof times at the full size (1,000,000 records);
- full verification time of the whole log (``verify_ledger``).

``python -m bench.ledger [--quick] [--database-url URL]``; SQLite in a temporary folder by
default, a throwaway schema of the given PostgreSQL database otherwise.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import BigInteger, Column, Engine, LargeBinary, MetaData, String, Table, insert

from shared.db import make_engine
from shared.ledger import Ledger, metadata, verify_ledger
from shared.ledger.testing import drop_schema, sample_records

TENANT = "112224"
TARGET_APPENDS_PER_S = 10_000
TARGET_VERIFY_S = 60.0

FULL = {"batch": 1000, "timed_appends": 100_000, "single_appends": 2_000, "total": 1_000_000, "proofs": 200}
QUICK = {"batch": 200, "timed_appends": 2_000, "single_appends": 50, "total": 5_000, "proofs": 20}

_plain = MetaData()
plain_inserts = Table(
    "bench_plain_inserts",
    _plain,
    Column("tenant", String(8), primary_key=True),
    Column("idx", BigInteger, primary_key=True, autoincrement=False),
    Column("data", LargeBinary, nullable=False),
)


@contextmanager
def _database(folder: Path, url: str | None) -> Iterator[Engine]:
    schema = f"ledger_bench_{uuid.uuid4().hex[:12]}" if url else None
    engine = make_engine(url, schema) if url else make_engine(f"sqlite:///{folder / 'ledger.sqlite3'}")
    try:
        metadata.create_all(engine)
        _plain.create_all(engine)
        yield engine
    finally:
        engine.dispose()
        if schema:
            drop_schema(url, schema)


def _baseline(engine: Engine, payloads: list[bytes], batch: int) -> float:
    """Unsigned inserts of the same bytes, one committed transaction per batch."""
    started = time.perf_counter()
    for first in range(0, len(payloads), batch):
        rows = [{"tenant": TENANT, "idx": first + i, "data": data} for i, data in enumerate(payloads[first : first + batch])]
        with engine.begin() as conn:
            conn.execute(insert(plain_inserts), rows)
    return len(payloads) / (time.perf_counter() - started)


def _timed_batches(ledger: Ledger, count: int, batch: int) -> float:
    batches = [sample_records(min(batch, count - n), TENANT, start=ledger.tree_size() + n) for n in range(0, count, batch)]
    started = time.perf_counter()
    for records in batches:
        ledger.append_many(records)
    return count / (time.perf_counter() - started)


def _fill(ledger: Ledger, total: int, batch: int) -> float:
    """Append up to ``total`` records; the rate includes building the records."""
    started, appended = time.perf_counter(), 0
    while (size := ledger.tree_size()) < total:
        ledger.append_many(sample_records(min(batch, total - size), TENANT, start=size))
        appended += min(batch, total - size)
    return appended / (time.perf_counter() - started) if appended else 0.0


def _milliseconds(action, arguments: list) -> list[float]:
    times = []
    for args in arguments:
        started = time.perf_counter()
        action(*args)
        times.append((time.perf_counter() - started) * 1000)
    return times


def run(quick: bool = False, database_url: str | None = None) -> dict:
    sizes = QUICK if quick else FULL
    batch = sizes["batch"]
    with tempfile.TemporaryDirectory() as folder, _database(Path(folder), database_url) as engine:
        key = Ed25519PrivateKey.generate()
        ledger = Ledger(engine, TENANT, key)

        payloads = [r.canonical_bytes() for r in sample_records(sizes["timed_appends"], TENANT, start=10_000_000)]
        baseline = _baseline(engine, payloads, batch)
        appends = _timed_batches(ledger, sizes["timed_appends"], batch)

        singles = sample_records(sizes["single_appends"], TENANT, start=20_000_000)
        started = time.perf_counter()
        for record in singles:
            ledger.append(record)
        single_rate = len(singles) / (time.perf_counter() - started)

        fill_rate = _fill(ledger, sizes["total"], batch)
        checkpoint = ledger.checkpoint()
        total = checkpoint.tree_size

        rng = random.Random(9162)
        inclusion = _milliseconds(
            lambda i: ledger.inclusion_proof(i).verify(), [(rng.randrange(total),) for _ in range(sizes["proofs"])]
        )
        consistency = _milliseconds(
            lambda m: ledger.consistency_proof(m).verify(), [(rng.randrange(1, total),) for _ in range(sizes["proofs"])]
        )

        started = time.perf_counter()
        report = verify_ledger(engine, TENANT, key.public_key())
        verify_seconds = time.perf_counter() - started
        if not report.ok:
            raise RuntimeError(f"the benchmark's own ledger does not verify: {report}")

        return {
            "backend": engine.dialect.name,
            "cpu_count": os.cpu_count(),
            "batch_size": batch,
            "appends_per_s": round(appends, 1),
            "target_appends_per_s": TARGET_APPENDS_PER_S,
            "baseline_unsigned_inserts_per_s": round(baseline, 1),
            "appends_to_baseline_ratio": round(appends / baseline, 3),
            "single_appends_per_s": round(single_rate, 1),
            "fill_appends_per_s_including_record_building": round(fill_rate, 1),
            "records": total,
            "inclusion_proof_ms_median": round(statistics.median(inclusion), 3),
            "inclusion_proof_ms_max": round(max(inclusion), 3),
            "consistency_proof_ms_median": round(statistics.median(consistency), 3),
            "verify_s": round(verify_seconds, 2),
            "target_verify_s": TARGET_VERIFY_S,
            "verify_records_per_s": round(total / verify_seconds, 1),
            "verified_seals": report.seals_checked,
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes: seconds, not minutes")
    parser.add_argument("--database-url", default=None, help="PostgreSQL URL (a throwaway schema is used)")
    args = parser.parse_args()
    print(json.dumps(run(quick=args.quick, database_url=args.database_url), indent=2))


if __name__ == "__main__":
    main()

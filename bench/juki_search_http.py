"""Benchmark of the Juki CS 4-item search through HTTP, against a running juki_cs app.

The community server runs as the stack runs it — ``python -m shared.serve services.juki_cs.app``
in a process of its own, against a nats-server of its own, its SQLite database loaded
beforehand with the synthetic population of Koshigaya (bulk inserts into ``identity_info``),
so that it builds its 4-item index at start-up as it would after a restart. A signed-in
counter clerk then sends, one at a time over one keep-alive connection:

- 4-item searches (``POST /identity/searches``) written the ways people write them (old
  character forms, half-width kana, hiragana, a wildcard, the Japanese calendar, no birth
  date: the variations of ``bench.juki_search``), and
- exact-key lookups of the same people by resident code (``GET /identity/{code}``), the
  baseline, through the same HTTP stack, staff check and operation log in the same run.

    python -m bench.juki_search_http [--quick] [--people N] [--queries N]

prints the figures as JSON. Target: 4-item search p99 ≤ 20 ms at 340,000 residents.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from time import perf_counter

import httpx
import pyotp
from sqlalchemy import insert

from bench.juki_search import _VARIANTS, VARIATIONS
from renkei.processes import free_port
from renkei.testkit import NatsServer, SecuredStackFiles
from services.juki_cs.app import MIGRATIONS
from services.juki_cs.config import Settings
from services.juki_cs.matching import FourItemQuery
from services.juki_cs.models import Base, IdentityInfo
from services.resident_registry.population import Resident, generate
from shared import migrate
from shared.contracts.juki import IdentityRecord, record_digest
from shared.models import KernelBase
from shared.service import open_database
from shared.staff import StaffDirectory
from shared.trust import Principal

CITY = "112224"
CS = Principal("juki_cs", CITY)
TARGET_P99_MS = 20.0
PURPOSE = "ベンチマーク"
CHUNK = 20_000
RECORDED_AT = datetime(2024, 4, 1, tzinfo=UTC)


def _percentile(sorted_values: Sequence[float], percent: float) -> float:
    rank = max(1, math.ceil(percent / 100 * len(sorted_values)))
    return sorted_values[rank - 1]


def _rows(residents: Sequence[Resident]):
    for r in residents:
        record = IdentityRecord.model_construct(
            resident_code=r.resident_code,
            my_number=r.my_number,
            family_name=r.family_name,
            given_name=r.given_name,
            family_name_kana=r.family_name_kana,
            given_name_kana=r.given_name_kana,
            sex=r.sex,
            birth_date=r.birth_date,
            address=r.address,
            status="resident",
            updated_at=RECORDED_AT,
        )
        yield {
            "resident_code": r.resident_code,
            "my_number": r.my_number,
            "family_name": r.family_name,
            "given_name": r.given_name,
            "family_name_kana": r.family_name_kana,
            "given_name_kana": r.given_name_kana,
            "sex": r.sex,
            "birth_date": r.birth_date,
            "address": r.address,
            "status": "resident",
            "updated_at": RECORDED_AT,
            "change_id": f"seed-{r.resident_code}",
            "change_kind": "move_in",
            "digest": record_digest(record),
        }


def load(settings: Settings, residents: Sequence[Resident]) -> str:
    """Migrate the CS database, bulk-insert everyone, create a counter clerk; returns its TOTP secret."""
    db = open_database(settings)
    try:
        migrate.upgrade(db, [MIGRATIONS], [KernelBase.metadata, Base.metadata])
        rows = _rows(residents)
        while chunk := [row for _, row in zip(range(CHUNK), rows)]:
            with db.session() as session:
                session.execute(insert(IdentityInfo), chunk)
        staff = StaffDirectory(db, issuer="bench", idle=timedelta(hours=1), lifetime=timedelta(hours=8))
        return staff.create_account("bench-clerk", "Bench clerk", "bench-password-0001", ["counter_clerk"]).totp_secret
    finally:
        db.dispose()


def _query_json(query: FourItemQuery) -> dict:
    body: dict = {"purpose": PURPOSE, "limit": 5}
    for field in ("name", "name_kana", "address", "sex", "birth_date"):
        value = getattr(query, field)
        if value is not None:
            body[field] = value.isoformat() if isinstance(value, date) else value
    return body


def _start_service(env: dict[str, str], log_path: Path, url: str, timeout: float) -> subprocess.Popen:
    log = open(log_path, "ab")
    process = subprocess.Popen(
        [sys.executable, "-m", "shared.serve", "services.juki_cs.app"], env=env, stdout=log, stderr=log
    )
    log.close()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"juki_cs exited at start: {log_path.read_text(errors='replace')[-3000:]}")
        try:
            if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                return process
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    process.kill()
    raise RuntimeError(f"juki_cs not ready within {timeout:.0f} s: {log_path.read_text(errors='replace')[-3000:]}")


def _time_requests(send, requests: Sequence) -> tuple[list[float], float]:
    latencies = []
    started = perf_counter()
    for item in requests:
        before = perf_counter()
        send(item)
        latencies.append(perf_counter() - before)
    return latencies, perf_counter() - started


def _figures(latencies: list[float], elapsed: float, rate_name: str) -> dict:
    ordered = sorted(latencies)
    return {
        rate_name: len(ordered) / elapsed,
        "p50_ms": _percentile(ordered, 50) * 1e3,
        "p99_ms": _percentile(ordered, 99) * 1e3,
        "max_ms": ordered[-1] * 1e3,
    }


def run(quick: bool = False, people: int = 340_000, queries: int | None = None, seed: int = 1) -> dict:
    """Load ``people`` (5,000 when quick), start the CS, and time searches beside exact lookups."""
    people = 5_000 if quick else people
    queries = queries or (140 if quick else 2_000)
    if people < 1 or queries < 1:
        raise ValueError("people and queries must be positive")
    with tempfile.TemporaryDirectory(prefix="renkei-bench-juki-") as folder:
        root = Path(folder)
        files = SecuredStackFiles(root / "data", [CITY])
        (root / "nats").mkdir()
        nats = NatsServer(root / "nats", files.nats_config()).start()
        process = None
        try:
            user, password = files.login(CS)
            port = free_port()
            settings = Settings(city=CITY, data_dir=files.data_dir, nats_url=nats.url, nats_user=user, nats_password=password, port=port)

            started = perf_counter()
            residents = list(generate(CITY, people, seed))
            population_seconds = perf_counter() - started
            started = perf_counter()
            totp_secret = load(settings, residents)
            load_seconds = perf_counter() - started

            env = {
                **os.environ,
                "RENKEI_SERVICE": "juki_cs",
                "RENKEI_CITY": CITY,
                "RENKEI_DATA_DIR": str(files.data_dir),
                "RENKEI_HOST": "127.0.0.1",
                "RENKEI_PORT": str(port),
                "RENKEI_NATS_URL": nats.url,
                "RENKEI_NATS_USER": user,
                "RENKEI_NATS_PASSWORD": password,
                "RENKEI_LOG_LEVEL": "WARNING",
            }
            env.pop("RENKEI_DATABASE_URL", None)
            url = f"http://127.0.0.1:{port}"
            started = perf_counter()
            process = _start_service(env, root / "juki_cs.log", url, timeout=600)
            start_seconds = perf_counter() - started

            rng = random.Random(seed + 1)
            with_variants = [r for r in residents if any(char in _VARIANTS for char in r.name_kanji)] or residents
            names = list(VARIATIONS)
            cases = []
            for i in range(queries):
                variation = names[i % len(names)]
                target = rng.choice(with_variants if variation == "old_character_forms" else residents)
                cases.append((variation, _query_json(VARIATIONS[variation](target, rng)), target.resident_code))

            with httpx.Client(base_url=url, timeout=30) as client:
                login = client.post(
                    "/staff/login",
                    json={"user_id": "bench-clerk", "password": "bench-password-0001", "totp": pyotp.TOTP(totp_secret).now()},
                )
                login.raise_for_status()
                client.headers["Authorization"] = f"Bearer {login.json()['token']}"
                hits: list[bool] = []

                def search(case) -> None:
                    _, body, expected = case
                    response = client.post("/identity/searches", json=body)
                    response.raise_for_status()
                    found = response.json()["candidates"]
                    hits.append(bool(found) and found[0]["resident_code"] == expected)

                def lookup(code: str) -> None:
                    client.get(f"/identity/{code}").raise_for_status()

                for case in cases[:50]:  # warm-up: connections, caches, code paths
                    search(case)
                    lookup(case[2])
                hits.clear()
                search_latencies, search_seconds = _time_requests(search, cases)
                codes = [expected for _, _, expected in cases]
                lookup_latencies, lookup_seconds = _time_requests(lookup, codes)
        finally:
            if process is not None:
                process.terminate()
                try:
                    process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    process.kill()
            nats.kill()

    searches = _figures(search_latencies, search_seconds, "searches_per_s")
    searches["top1_rate"] = sum(hits) / len(hits)
    searches["by_variation"] = {
        name: {
            "queries": len(picked),
            "p50_ms": _percentile(picked, 50) * 1e3,
            "p99_ms": _percentile(picked, 99) * 1e3,
        }
        for name in names
        if (picked := sorted(lat for (variation, _, _), lat in zip(cases, search_latencies) if variation == name))
    }
    lookups = _figures(lookup_latencies, lookup_seconds, "lookups_per_s")
    return {
        "people": people,
        "queries": len(cases),
        "seed": seed,
        "transport": "HTTP/1.1 keep-alive, one request at a time, service in its own process",
        "population_seconds": population_seconds,
        "database_load_seconds": load_seconds,
        "service_start_seconds": start_seconds,
        "four_item_search": searches,
        "exact_key_lookup": lookups,
        "four_item_vs_exact": {
            "p50_latency_ratio": searches["p50_ms"] / lookups["p50_ms"],
            "p99_latency_ratio": searches["p99_ms"] / lookups["p99_ms"],
            "throughput_ratio": lookups["lookups_per_s"] / searches["searches_per_s"],
        },
        "target_p99_ms": TARGET_P99_MS,
        "meets_target": searches["p99_ms"] <= TARGET_P99_MS,
    }


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="5,000 residents")
    parser.add_argument("--people", type=int, default=340_000)
    parser.add_argument("--queries", type=int, default=None)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    print(json.dumps(run(quick=args.quick, people=args.people, queries=args.queries, seed=args.seed), ensure_ascii=False, indent=2))


if __name__ == "__main__":
    main()

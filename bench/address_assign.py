"""``renkei bench address-assign``: integrated address numbers assigned per second through the bus.

The integrated address system runs as its own process (``python -m shared.serve``, as the
stack runs it) against a real nats-server with the stack's users and permissions; the
caller is the health management system's identity, so every request carries its token and
proof, passes the allowlist and is validated and logged on arrival. Measured in one run:

- ``assign_new``: people seen for the first time: each request inserts a row;
- ``assign_existing``: the same people again: each request finds its number;
- ``lookup``: lookups of the same people by integrated address number (two items);
- ``direct_insert`` (baseline): the same assignment code on the same database, called in
  this process without the bus, one person after another.

The figures are checked before they are reported: every person got exactly one number.

    python -m bench.address_assign [--quick] [--postgres-url postgresql://…]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from contextlib import contextmanager
from pathlib import Path

import httpx

CITY = "112224"


async def _rate(calls, in_flight: int) -> tuple[dict, list]:
    """Run ``calls`` (coroutine factories) ``in_flight`` at a time; figures and replies in order."""
    latencies: list[float] = []
    replies: list = [None] * len(calls)
    remaining = iter(range(len(calls)))

    async def worker():
        for index in remaining:
            started = time.perf_counter()
            replies[index] = await calls[index]()
            latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(in_flight)))
    elapsed = time.perf_counter() - started
    latencies.sort()
    figures = {
        "per_s": round(len(calls) / elapsed, 1),
        "p50_ms": round(statistics.median(latencies) * 1000, 3),
        "p99_ms": round(latencies[max(0, int(len(latencies) * 0.99) - 1)] * 1000, 3),
    }
    return figures, replies


def _start_service(files, nats_url: str, database_url: str | None, folder: Path) -> tuple[subprocess.Popen, str]:
    from renkei.processes import free_port
    from shared.trust import Principal

    principal = Principal("integrated_address", CITY)
    user, password = files.login(principal)
    port = free_port()
    env = {
        **os.environ,
        "RENKEI_SERVICE": principal.service,
        "RENKEI_CITY": CITY,
        "RENKEI_DATA_DIR": str(files.data_dir),
        "RENKEI_HOST": "127.0.0.1",
        "RENKEI_PORT": str(port),
        "RENKEI_NATS_URL": nats_url,
        "RENKEI_NATS_USER": user,
        "RENKEI_NATS_PASSWORD": password,
        "RENKEI_LOG_LEVEL": "WARNING",
    }
    if database_url:
        env["RENKEI_DATABASE_URL"] = database_url
    log = open(folder / "integrated_address.log", "ab")
    process = subprocess.Popen(
        [sys.executable, "-m", "shared.serve", "services.integrated_address.app"], env=env, stdout=log, stderr=log
    )
    log.close()
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            break
        try:
            if httpx.get(f"{url}/readyz", timeout=0.5).status_code == 200:
                return process, url
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    process.kill()
    raise RuntimeError(f"the integrated address service did not become ready: {(folder / 'integrated_address.log').read_text()[-2000:]}")


def _stop(process: subprocess.Popen, folder: Path) -> None:
    """Stop the service; one that has not finished its shutdown within 15 s is killed (its
    database is a scratch one, and the figures are already taken)."""
    process.terminate()
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        print(f"the service did not stop within 15 s; killed (log: {folder / 'integrated_address.log'})", file=sys.stderr)
        process.kill()
        process.wait()


async def _through_the_bus(files, nats_url: str, people: list[str], in_flight: int) -> dict:
    from renkei.testkit import make_bus
    from shared.contracts import REGISTRY
    from shared.contracts.address import AddressLookupRequest, AssignNumberRequest
    from shared.trust import Principal

    assign = REGISTRY.operation("integrated_address", "assign")
    lookup = REGISTRY.operation("integrated_address", "lookup")
    caller = Principal("health_mgmt", CITY)
    bus = make_bus(files.data_dir, files.directory, caller)
    await bus.connect(nats_url, *files.login(caller))
    try:
        def assigning(my_number: str):
            return lambda: bus.request(assign, CITY, AssignNumberRequest(my_number=my_number), timeout=30)

        new, first = await _rate([assigning(p) for p in people], in_flight)
        existing, second = await _rate([assigning(p) for p in people], in_flight)
        numbers = [reply.integrated_address_number for reply in first]
        if not all(reply.assigned for reply in first) or any(reply.assigned for reply in second):
            raise AssertionError("a first request did not assign, or a repeated one assigned again")
        if [reply.integrated_address_number for reply in second] != numbers or len(set(numbers)) != len(people):
            raise AssertionError("a person's number changed, or two people share one")

        def looking_up(number: str):
            request = AddressLookupRequest(integrated_address_number=number, items=frozenset({"status", "birth_date"}))
            return lambda: bus.request(lookup, CITY, request, timeout=30)

        looked_up, views = await _rate([looking_up(n) for n in numbers], in_flight)
        if [view.integrated_address_number for view in views] != numbers:
            raise AssertionError("a lookup answered for someone else")
    finally:
        await bus.close()
    return {"assign_new": new, "assign_existing": existing, "lookup": looked_up}


def _direct_inserts(data_dir: Path, database_url: str | None, people: list[str]) -> dict:
    """The baseline: the service's own assignment code on the same database, without the bus."""
    from services.integrated_address import addressees
    from shared.db import Database, schema_name
    from shared.db import database_url as service_database_url

    url = service_database_url(data_dir, "integrated_address", CITY, database_url)
    db = Database(url, None if url.startswith("sqlite") else schema_name("integrated_address", CITY))
    try:
        started = time.perf_counter()
        for my_number in people:
            with db.session() as session:
                _, assigned = addressees.assign(session, CITY, my_number)
            if not assigned:
                raise AssertionError("a new person was not assigned a number")
        elapsed = time.perf_counter() - started
    finally:
        db.dispose()
    return {"per_s": round(len(people) / elapsed, 1)}


def _fresh_my_numbers(count: int, seed: int, exclude: set[str] = frozenset()) -> list[str]:
    from shared.ids import generate_my_number

    rng = random.Random(seed)
    chosen: list[str] = []
    seen = set(exclude)
    while len(chosen) < count:
        number = generate_my_number(rng)
        if number not in seen:
            seen.add(number)
            chosen.append(number)
    return chosen


@contextmanager
def _scratch_database(server_url: str | None):
    """None for SQLite; for a PostgreSQL server, a database of the benchmark's own, dropped afterwards."""
    if not server_url:
        yield None
        return
    from sqlalchemy import create_engine, text

    name = f"renkei_bench_{uuid.uuid4().hex[:12]}"
    psycopg_url = "postgresql+psycopg://" + server_url.split("://", 1)[1]
    admin = create_engine(psycopg_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield f"{server_url.rsplit('/', 1)[0]}/{name}"
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def run(quick: bool = False, people: int | None = None, in_flight: int = 16, postgres_url: str | None = None) -> dict:
    """``postgres_url``: a PostgreSQL server (any database on it) in which to create a scratch database."""
    from renkei.testkit import NatsServer, SecuredStackFiles
    from shared.observability import configure_logging

    configure_logging("bench", None, "WARNING")  # on stderr: stdout carries the figures alone

    count = people or (150 if quick else 3000)
    over_bus = _fresh_my_numbers(count, seed=1)
    direct = _fresh_my_numbers(count, seed=2, exclude=set(over_bus))
    with tempfile.TemporaryDirectory() as folder, _scratch_database(postgres_url) as database_url:
        base = Path(folder)
        files = SecuredStackFiles(base / "data", [CITY])
        (base / "nats").mkdir()
        server = NatsServer(base / "nats", files.nats_config()).start()
        try:
            service, _ = _start_service(files, server.url, database_url, base)
            try:
                bus_figures = asyncio.run(_through_the_bus(files, server.url, over_bus, in_flight))
                baseline = _direct_inserts(files.data_dir, database_url, direct)
            finally:
                _stop(service, base)
        finally:
            server.kill()
    return {
        "benchmark": "address-assign",
        "database": "postgresql" if postgres_url else "sqlite",
        "people": count,
        "in_flight": in_flight,
        **bus_figures,
        "direct_insert": baseline,
        "ratios": {
            "assign_new_vs_direct_insert": round(bus_figures["assign_new"]["per_s"] / baseline["per_s"], 3),
            "assign_new_vs_assign_existing": round(bus_figures["assign_new"]["per_s"] / bus_figures["assign_existing"]["per_s"], 3),
            "assign_new_vs_lookup": round(bus_figures["assign_new"]["per_s"] / bus_figures["lookup"]["per_s"], 3),
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--people", type=int)
    parser.add_argument("--in-flight", type=int, default=16)
    parser.add_argument("--postgres-url", help="a PostgreSQL server to run on, in a scratch database created and dropped here")
    args = parser.parse_args()
    print(json.dumps(run(args.quick, args.people, args.in_flight, args.postgres_url), indent=2))


if __name__ == "__main__":
    main()

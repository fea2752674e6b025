"""``renkei bench move-in``: move-in vaccination-history queries completed per second, end to end.

Every part runs as its own process, as the stack runs it: nats-server (the stack's users and
permissions), the hub (mutual TLS), the intermediate servers of Koshigaya (requester) and
Soka (provider). The caller plays Koshigaya's health management on the bus: it asks
(``intermediate_server.query``), waits for the ``answered`` event from JetStream, and reads
the decrypted doses (``query_result``). A query is complete when its doses are in hand; its
latency runs from the ask to then. On the way: a permit from the hub (list check, Ed25519
signature), the query relayed over mutual TLS with service tokens and proofs on every hop,
the provider's checks, its answer sealed with HPKE (ML-KEM-768 + X25519) and opened by the
requester, and a provision record on every side before anything moves on.

Measured in the same run, as the baseline, **the same hops without permits, signatures or
encryption**: the caller asks a plain requester process on a plain nats-server (no
tokens), which stores the query, posts it over the same kind of mutual-TLS HTTPS to a plain
relay process, which posts it to a plain provider process reading the same provision
database rows with the same code; the requester stores the records and announces the
answer on JetStream, and the caller reads them on the bus. No permit, no token or proof,
no record in any ledger, no operation log, no encryption beyond TLS. Its HTTPS calls go
through the services' own client (``shared.mtls_client``), batched as the intermediate
server batches them (``GroupCall``), it stores and ends its queries by group commit
(``GroupCommit``, the same transaction line) and reads results asked together in one
snapshot (``Database.read``), as the intermediate server does: neither the HTTP client nor
batching is counted as the price, or the saving, of security.

Each path's figures carry ``cpu_ms_per_query``: the CPU each of its processes spent per query
during the measured run, so that a change can be seen where it lands.

    python -m bench.move_in [--quick] [--postgres-url postgresql://…]
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
from fastapi import FastAPI, Request

from shared.contracts import REGISTRY

KOSHIGAYA, SOKA = "112224", "112216"
CITIES = [KOSHIGAYA, SOKA]
DOSES = 3
PLAIN_STREAM = "PLAIN_ANSWERS"


# --- the stack as processes ---------------------------------------------------------------


class NetworkStack:
    """nats-server, the hub and one intermediate server per city, each its own process (with
    ``health``, Koshigaya's integrated address system and health management too)."""

    def __init__(self, folder: Path, database_url: str | None = None, settings: dict[str, str] | None = None, health: bool = False) -> None:
        from renkei.testkit import NatsServer, SecuredStackFiles
        from shared.pki import ensure_pki
        from shared.trust import Principal

        self.folder = folder
        self.database_url = database_url
        self.files = SecuredStackFiles(folder / "data", CITIES, registry=REGISTRY)
        ensure_pki(self.files.data_dir, self.files.principals)
        nats_folder = folder / "nats"
        nats_folder.mkdir(parents=True, exist_ok=True)
        self.nats = NatsServer(nats_folder, self.files.nats_config())
        self.processes: list[tuple[str, subprocess.Popen]] = []
        self.urls: dict[str, str] = {}
        self.settings = settings or {}
        self.health = health  # also Koshigaya's integrated address system and health management
        self._principal = Principal

    def _spawn(self, principal, module: str, port: int, extra: dict[str, str]) -> subprocess.Popen:
        from shared.nats_config import nats_user

        user = nats_user(principal)
        env = {
            **os.environ,
            "RENKEI_SERVICE": principal.service,
            "RENKEI_CITY": principal.city or "",
            "RENKEI_DATA_DIR": str(self.files.data_dir),
            "RENKEI_HOST": "127.0.0.1",
            "RENKEI_PORT": str(port),
            "RENKEI_NATS_URL": self.nats.url,
            "RENKEI_NATS_USER": user,
            "RENKEI_NATS_PASSWORD": self.files.credentials[user],
            "RENKEI_LOG_LEVEL": "WARNING",
            **self.settings,
            **extra,
        }
        if self.database_url:
            env["RENKEI_DATABASE_URL"] = self.database_url
        log = open(self.folder / f"{principal}.log", "ab")
        process = subprocess.Popen([sys.executable, "-m", "shared.serve", module], env=env, stdout=log, stderr=log)
        log.close()
        self.processes.append((str(principal), process))
        return process

    def start(self) -> NetworkStack:
        from renkei.processes import free_port

        self.nats.start()
        hub_port = free_port()
        self.urls["hub"] = f"https://127.0.0.1:{hub_port}"
        self._spawn(self._principal("provision_network"), "services.provision_network.app", hub_port, {"RENKEI_TLS_CLIENT_AUTH": "1"})
        for city in CITIES:
            port = free_port()
            self.urls[city] = f"http://127.0.0.1:{port}"
            self._spawn(self._principal("intermediate_server", city), "services.intermediate_server.app", port, {"RENKEI_HUB_URL": self.urls["hub"]})
        if self.health:
            for service in ("integrated_address", "health_mgmt"):
                port = free_port()
                self.urls[service] = f"http://127.0.0.1:{port}"
                self._spawn(self._principal(service, KOSHIGAYA), f"services.{service}.app", port, {"RENKEI_JOB_IDLE_SECONDS": "0.5"})
        self._wait_ready()
        return self

    def _wait_ready(self, timeout: float = 90) -> None:
        from shared.pki import tls_files

        verify = tls_files(self.files.data_dir, self._principal("ops_console")).client_context()
        deadline = time.monotonic() + timeout
        pending = dict(self.urls)
        with httpx.Client(verify=verify, timeout=2) as client:
            while pending:
                for name, process in self.processes:
                    if process.poll() is not None:
                        raise RuntimeError(f"{name} exited at start: {self.log_tail(name)}")
                for key, url in list(pending.items()):
                    try:
                        if client.get(f"{url}/readyz").status_code == 200:
                            del pending[key]
                    except httpx.HTTPError:
                        pass
                if pending and time.monotonic() > deadline:
                    raise RuntimeError(f"not ready within {timeout:.0f} s: {', '.join(pending)}")
                time.sleep(0.1)
        asyncio.run(self._wait_registered(deadline))

    async def _wait_registered(self, deadline: float) -> None:
        """Until both servers have registered with the hub and hold its list."""
        from shared.contracts import network as net

        registry = REGISTRY
        async with self.bus(self._principal("ops_console")) as bus:
            for city in CITIES:
                while True:
                    status = await bus.request(registry.operation("intermediate_server", "system_status"), city, net.SystemStatusRequest())
                    if any(b.name == "registration" and b.last_success_at for b in status.batches):
                        break
                    if time.monotonic() > deadline:
                        raise RuntimeError(f"the intermediate server of {city} did not register with the hub")
                    await asyncio.sleep(0.1)

    def log_tail(self, name: str, lines: int = 20) -> str:
        try:
            return "\n" + "\n".join((self.folder / f"{name}.log").read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def bus(self, principal):
        """An async context manager: a connected bus under ``principal``'s identity."""
        from contextlib import asynccontextmanager

        from renkei.testkit import make_bus

        @asynccontextmanager
        async def connected():
            bus = make_bus(self.files.data_dir, self.files.directory, principal)
            await bus.connect(self.nats.url, *self.files.login(principal))
            try:
                yield bus
            finally:
                await bus.close()

        return connected()

    def stop(self) -> None:
        for _, process in self.processes:
            if process.poll() is None:
                process.terminate()
        for name, process in self.processes:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                print(f"{name} did not stop within 15 s; killed", file=sys.stderr)
                process.kill()
                process.wait()
        self.nats.kill()

    def __enter__(self) -> NetworkStack:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc) -> None:
        self.stop()


# --- what the business systems do: people, copies, queries ---------------------------------


class Person:
    def __init__(self, rng: random.Random) -> None:
        from shared.ids import generate_resident_code, integrated_address_number

        self.resident_code = generate_resident_code(rng)
        self.numbers = {city: integrated_address_number(city, f"{rng.randrange(10**9):09d}") for city in CITIES}


def people(count: int, seed: int = 1) -> list[Person]:
    rng = random.Random(seed)
    return [Person(rng) for _ in range(count)]


def doses(index: int) -> list[dict]:
    kinds = ["measles", "rubella", "bcg", "dpt_ipv", "hib", "varicella"]
    return [
        {"record_type": kinds[(index + n) % len(kinds)], "inoculation_date": f"20{10 + n:02d}-0{1 + n}-15", "dose_number": 1, "lot_number": f"L{index:06d}N{n}", "manufacturer": "KM バイオロジクス"}
        for n in range(DOSES)
    ]


async def announce(stack: NetworkStack, city: str, persons: list[Person]) -> None:
    """``number_assigned`` for each person, published as the integrated address system's relay does."""
    from shared.contracts import network as net
    from shared.events import MSG_ID_HEADER, ensure_stream

    async with stack.bus(stack._principal("integrated_address", city)) as bus:
        js = bus.jetstream()
        await ensure_stream(js, "integrated_address", city)
        for person in persons:
            payload = net.NumberAssigned(integrated_address_number=person.numbers[city], resident_code=person.resident_code)
            await js.publish_async(
                net.NUMBER_ASSIGNED.subject(city), payload.model_dump_json().encode(), stream=net.NUMBER_ASSIGNED.stream(city), headers={MSG_ID_HEADER: uuid.uuid4().hex}
            )
        await js.publish_async_completed()


async def register_copies(stack: NetworkStack, persons: list[Person], offset: int = 0) -> None:
    from shared.contracts import network as net

    register = REGISTRY.operation("intermediate_server", "register_copies")
    async with stack.bus(stack._principal("health_mgmt", SOKA)) as bus:
        for start in range(0, len(persons), 500):
            chunk = persons[start : start + 500]
            request = net.CopyImport(
                item_code=net.VACCINATION_RECORDS,
                people=[net.PersonCopy(integrated_address_number=p.numbers[SOKA], records=doses(offset + start + i)) for i, p in enumerate(chunk)],
            )
            await bus.request(register, SOKA, request, timeout=60)


async def wait_for_symbols(stack: NetworkStack, expected: dict[str, int], timeout: float = 120) -> None:
    """Until each city's server has linked the symbols of everyone announced to it."""
    from sqlalchemy import func, select

    from services.intermediate_server.models import SymbolLink
    from shared.db import Database, database_url, schema_name

    deadline = time.monotonic() + timeout
    for city, count in expected.items():
        url = database_url(stack.files.data_dir, "intermediate_server", city, stack.database_url)
        db = Database(url, None if url.startswith("sqlite") else schema_name("intermediate_server", city))
        try:
            while True:
                with db.session() as session:
                    linked = session.scalar(select(func.count()).select_from(SymbolLink).where(SymbolLink.tenant == city)) or 0
                if linked >= count:
                    break
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{city}: {linked} of {count} symbols after {timeout:.0f} s")
                await asyncio.sleep(0.2)
        finally:
            db.dispose()


def consent():
    from datetime import UTC, datetime

    from shared.contracts import network as net

    return net.Consent(obtained_at=datetime.now(UTC), method="at_counter", recorded_by="clerk-bench", reference=None)


def vaccination_query(person: Person):
    from shared.contracts import network as net

    return net.QueryRequest(
        integrated_address_number=person.numbers[KOSHIGAYA],
        provider=SOKA,
        affair_code=net.VACCINATION_AFFAIR,
        procedure_code=net.MOVE_IN_HISTORY_PROCEDURE,
        item_code=net.VACCINATION_RECORDS,
        consent=consent(),
    )


class Completions:
    """Queries asked and not yet complete, each completed by the event that announces it."""

    def __init__(self) -> None:
        self.waiting: dict[str, asyncio.Future] = {}
        self.early: dict[str, str] = {}

    def expect(self, query_id: str) -> asyncio.Future:
        future = asyncio.get_running_loop().create_future()
        if query_id in self.early:
            future.set_result(self.early.pop(query_id))
        else:
            self.waiting[query_id] = future
        return future

    def arrived(self, query_id: str, status: str) -> None:
        future = self.waiting.pop(query_id, None)
        if future is None:
            self.early[query_id] = status
        elif not future.done():
            future.set_result(status)


async def _pull(js, subject: str, stream: str, durable: str, on_message, stop: asyncio.Event) -> None:
    from nats.errors import TimeoutError as NatsTimeout
    from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

    subscription = await js.pull_subscribe(
        subject, durable=durable, stream=stream, config=ConsumerConfig(ack_policy=AckPolicy.EXPLICIT, deliver_policy=DeliverPolicy.NEW, ack_wait=30)
    )
    try:
        while not stop.is_set():
            try:
                # A short wait: a lingering pull returns only when its batch is full or its time is up.
                messages = await subscription.fetch(64, timeout=0.02)
            except (NatsTimeout, TimeoutError):
                continue
            for msg in messages:
                on_message(msg.data)
                await msg.ack()
    finally:
        await subscription.unsubscribe()


def _figures(latencies: list[float], elapsed: float, count: int) -> dict:
    latencies = sorted(latencies) or [0.0]
    return {
        "per_s": round(count / elapsed, 1),
        "p50_ms": round(statistics.median(latencies) * 1000, 2),
        "p99_ms": round(latencies[max(0, int(len(latencies) * 0.99) - 1)] * 1000, 2),
        "completed": count,
    }


async def _drive(ask, read, persons: list[Person], in_flight: int, completions: Completions) -> dict:
    """Ask for every person, ``in_flight`` at a time; each is complete once its doses are read."""
    latencies: list[float] = []
    failures: list[str] = []
    remaining = iter(persons)

    async def worker() -> None:
        for person in remaining:
            started = time.perf_counter()
            query_id = await ask(person)
            status = await asyncio.wait_for(completions.expect(query_id), timeout=60)
            records, reason = await read(query_id)
            if status == "answered" and len(records) == DOSES:
                latencies.append(time.perf_counter() - started)
            else:  # counted apart: a failed query is not a completed one
                failures.append(f"{status}: {reason or f'{len(records)} doses'}")

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(in_flight)))
    figures = _figures(latencies, time.perf_counter() - started, len(latencies))
    figures["failed"] = len(failures)
    if failures:
        figures["failures"] = sorted(set(failures))[:5]
    return figures


async def secure_queries(stack: NetworkStack, persons: list[Person], in_flight: int) -> dict:
    from shared.contracts import network as net

    registry = REGISTRY
    query, result = registry.operation("intermediate_server", "query"), registry.operation("intermediate_server", "query_result")
    completions = Completions()
    stop = asyncio.Event()

    def on_event(data: bytes) -> None:
        event = net.QueryAnswered.model_validate_json(data)
        completions.arrived(event.query_id, event.status)

    async with stack.bus(stack._principal("health_mgmt", KOSHIGAYA)) as bus:

        async def ask(person: Person) -> str:
            return (await bus.request(query, KOSHIGAYA, vaccination_query(person), timeout=30)).query_id

        async def read(query_id: str) -> tuple[list[dict], str | None]:
            found = await bus.request(result, KOSHIGAYA, net.QueryResultRequest(query_id=query_id), timeout=30)
            return found.records or [], found.refusal_reason

        answered = net.QUERY_ANSWERED
        consumer = asyncio.create_task(
            _pull(bus.jetstream(), answered.subject(KOSHIGAYA), answered.stream(KOSHIGAYA), "health_mgmt__answered", on_event, stop)
        )
        await asyncio.sleep(0.2)
        try:
            return await _drive(ask, read, persons, in_flight, completions)
        finally:
            stop.set()
            await asyncio.gather(consumer, return_exceptions=True)


# --- the baseline: the same hops, nothing of the security ----------------------------------


def _plain_provider_app(data_dir: Path, database_url: str | None):
    from services.intermediate_server import copies
    from shared.db import Database, schema_name
    from shared.db import database_url as service_url

    url = service_url(data_dir, "intermediate_server", SOKA, database_url)
    db = Database(url, None if url.startswith("sqlite") else schema_name("intermediate_server", SOKA))
    app = FastAPI()

    @app.post("/plain/provide/batch")
    async def provide(request: Request) -> dict:
        asked = json.loads(await request.body())["queries"]

        def read() -> dict[str, list[dict]]:  # one statement per batch, as the intermediate server reads
            with db.reading() as session:
                return copies.records_of_many(session, SOKA, asked[0]["item_code"], {body["integrated_address_number"] for body in asked})

        found = await db.read(read)
        return {"results": [{"query_id": body["query_id"], "records": found[body["integrated_address_number"]]} for body in asked]}

    return app


def _plain_relay_app(data_dir: Path, provider_url: str):
    from shared.mtls_client import MutualTlsClient
    from shared.pki import tls_files
    from shared.trust import Principal

    client = MutualTlsClient(tls_files(data_dir, Principal("provision_network")).client_context, timeout=30)
    app = FastAPI()

    @app.post("/plain/queries/batch")
    async def relay(request: Request) -> dict:
        response = await client.post(f"{provider_url}/plain/provide/batch", await request.body(), {"Content-Type": "application/json"})
        if response.status_code != 200:
            raise RuntimeError(f"the provider answered {response.status_code}")
        return response.json()

    return app


async def _plain_requester(data_dir: Path, database_url: str | None, nats_url: str, relay_url: str) -> None:
    """Serves ``plain.query`` and ``plain.result`` on a plain nats-server; stores in its own table."""
    import nats
    from sqlalchemy import Column, MetaData, String, Table, Text, insert, select, update

    from shared.contracts.network import MAX_BATCH
    from shared.db import Database, schema_name
    from shared.group_commit import GroupCall, GroupCommit
    from shared.mtls_client import MutualTlsClient
    from shared.pki import tls_files
    from shared.trust import Principal

    url = database_url or f"sqlite:///{data_dir / 'plain_requester.sqlite3'}"
    db = Database(url, None if url.startswith("sqlite") else schema_name("plain_requester", KOSHIGAYA))
    metadata = MetaData()
    table = Table("plain_queries", metadata, Column("query_id", String(32), primary_key=True), Column("body", Text), Column("records", Text), Column("status", String(16)))
    metadata.create_all(db.engine)
    client = MutualTlsClient(tls_files(data_dir, Principal("intermediate_server", KOSHIGAYA)).client_context, timeout=30)
    nc = await nats.connect(nats_url)
    js = nc.jetstream()
    tasks: set[asyncio.Task] = set()

    def store_many(session, rows: list[dict]) -> list[None]:
        session.execute(insert(table), rows)
        return [None] * len(rows)

    def finish_many(session, answers: list[tuple[str, list]]) -> list[None]:
        for query_id, records in answers:
            session.execute(update(table).where(table.c.query_id == query_id).values(records=json.dumps(records, ensure_ascii=False), status="answered"))
        return [None] * len(answers)

    def fetch_many(query_ids: list[str]) -> list[dict]:
        with db.reading() as session:
            rows = {row.query_id: row for row in session.execute(select(table.c.query_id, table.c.records, table.c.status).where(table.c.query_id.in_(query_ids)))}
        return [{"status": rows[q].status, "records": json.loads(rows[q].records or "[]")} for q in query_ids]

    async def read_many(query_ids: list[str]) -> list[dict]:
        return await db.read(fetch_many, query_ids)

    async def relay_many(bodies: list[dict]) -> list[list]:
        payload = json.dumps({"queries": bodies}).encode()
        response = await client.post(f"{relay_url}/plain/queries/batch", payload, {"Content-Type": "application/json"})
        if response.status_code != 200:
            raise RuntimeError(f"the relay answered {response.status_code}")
        return [result["records"] for result in response.json()["results"]]

    # Batched as the intermediate server batches: the same calls and transactions per query.
    stores, finishes = GroupCommit(db.engine, store_many), GroupCommit(db.engine, finish_many)
    relayed, reads = GroupCall(relay_many, MAX_BATCH), GroupCall(read_many)

    async def dispatch(query_id: str, body: dict) -> None:
        records = await relayed.submit({**body, "query_id": query_id})
        await finishes.submit((query_id, records))
        await js.publish("plain.events.answered", json.dumps({"query_id": query_id, "status": "answered"}).encode(), stream=PLAIN_STREAM)

    async def on_query(msg) -> None:
        body = json.loads(msg.data)
        query_id = uuid.uuid4().hex
        await stores.submit({"query_id": query_id, "body": msg.data.decode(), "status": "pending"})
        task = asyncio.create_task(dispatch(query_id, body))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
        await msg.respond(json.dumps({"query_id": query_id}).encode())

    async def on_result(msg) -> None:
        await msg.respond(json.dumps(await reads.submit(json.loads(msg.data)["query_id"])).encode())

    for _ in range(8):  # as the kernel's bus: several subscriptions in one queue group
        await nc.subscribe("plain.query", queue="plain", cb=on_query)
        await nc.subscribe("plain.result", queue="plain", cb=on_result)
    await asyncio.Event().wait()


def _run_role(role: str, port: int, data_dir: Path, database_url: str | None, peer_url: str, nats_url: str) -> None:
    import ssl

    import uvicorn

    from shared.pki import tls_files
    from shared.trust import Principal

    if role == "requester":
        asyncio.run(_plain_requester(data_dir, database_url, nats_url, peer_url))
        return
    principal = Principal("intermediate_server", SOKA) if role == "provider" else Principal("provision_network")
    app = _plain_provider_app(data_dir, database_url) if role == "provider" else _plain_relay_app(data_dir, peer_url)
    files = tls_files(data_dir, principal)
    uvicorn.run(
        app, host="127.0.0.1", port=port, log_config=None, access_log=False, ssl_certfile=str(files.certificate), ssl_keyfile=str(files.private_key),
        ssl_ca_certs=str(files.ca_certificate), ssl_cert_reqs=ssl.CERT_REQUIRED,
    )


@contextmanager
def plain_hops(stack: NetworkStack):
    """The baseline's processes: a plain nats-server, requester, relay and provider."""
    from renkei.processes import free_port
    from renkei.testkit import NatsServer
    from shared.pki import tls_files
    from shared.trust import Principal

    folder = stack.folder / "plain"
    folder.mkdir(exist_ok=True)
    nats_server = NatsServer(folder, {}).start()
    processes: list[subprocess.Popen] = []
    ports = {role: free_port() for role in ("provider", "relay")}
    urls = {role: f"https://127.0.0.1:{port}" for role, port in ports.items()}
    plan = [("provider", ports["provider"], ""), ("relay", ports["relay"], urls["provider"]), ("requester", 0, urls["relay"])]
    try:
        for role, port, peer in plan:
            log = open(folder / f"{role}.log", "ab")
            argv = [sys.executable, "-m", "bench.move_in", "--role", role, "--port", str(port), "--data", str(stack.files.data_dir), "--peer", peer, "--nats-url", nats_server.url]
            if stack.database_url:
                argv += ["--database-url", stack.database_url]
            processes.append(subprocess.Popen(argv, stdout=log, stderr=log))
            log.close()
        verify = tls_files(stack.files.data_dir, Principal("ops_console")).client_context()
        deadline = time.monotonic() + 60
        with httpx.Client(verify=verify, timeout=1) as client:
            for url in urls.values():
                while True:
                    try:
                        client.get(f"{url}/docs")
                        break
                    except httpx.HTTPError:
                        if time.monotonic() > deadline or any(p.poll() is not None for p in processes):
                            raise RuntimeError(f"the baseline did not start: {(folder / 'relay.log').read_text()[-1500:]}") from None
                        time.sleep(0.1)
        yield nats_server, {role: process.pid for (role, _, _), process in zip(plan, processes, strict=True)}
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
        nats_server.kill()


async def plain_queries(nats_url: str, persons: list[Person], in_flight: int) -> dict:
    import nats
    from nats.js.api import StorageType, StreamConfig

    nc = await nats.connect(nats_url)
    js = nc.jetstream()
    await js.add_stream(StreamConfig(name=PLAIN_STREAM, subjects=["plain.events.>"], storage=StorageType.FILE))
    completions = Completions()
    stop = asyncio.Event()

    def on_event(data: bytes) -> None:
        event = json.loads(data)
        completions.arrived(event["query_id"], event["status"])

    async def ask(person: Person) -> str:
        body = {"integrated_address_number": person.numbers[SOKA], "item_code": "TM01400000000001"}
        for _ in range(50):  # the requester process may still be subscribing
            try:
                reply = await nc.request("plain.query", json.dumps(body).encode(), timeout=30)
                return json.loads(reply.data)["query_id"]
            except nats.errors.NoRespondersError:
                await asyncio.sleep(0.1)
        raise RuntimeError("the plain requester does not answer")

    async def read(query_id: str) -> tuple[list[dict], str | None]:
        reply = await nc.request("plain.result", json.dumps({"query_id": query_id}).encode(), timeout=30)
        return json.loads(reply.data)["records"], None

    consumer = asyncio.create_task(_pull(js, "plain.events.answered", PLAIN_STREAM, "plain_caller", on_event, stop))
    await asyncio.sleep(0.2)
    try:
        return await _drive(ask, read, persons, in_flight, completions)
    finally:
        stop.set()
        await asyncio.gather(consumer, return_exceptions=True)
        await nc.close()


# --- the run -------------------------------------------------------------------------------


def _cpu_seconds(pid: int) -> float | None:
    """The user and system CPU time a process has used so far (Linux ``/proc``; None elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _with_cpu(pids: dict[str, int], run) -> dict:
    """``run``'s figures with the CPU each process (and this caller) spent per query meanwhile:
    where the time goes, beside how much of it there is."""
    before = {name: _cpu_seconds(pid) for name, pid in pids.items()}
    caller = time.process_time()
    figures = run()
    spent = {name: (after - before[name]) for name, pid in pids.items() if before[name] is not None and (after := _cpu_seconds(pid)) is not None}
    spent["caller"] = time.process_time() - caller
    queries = max(figures["completed"] + figures["failed"], 1)
    per_query = {name: round(seconds / queries * 1000, 2) for name, seconds in spent.items()}
    figures["cpu_ms_per_query"] = {**per_query, "total": round(sum(spent.values()) / queries * 1000, 2)}
    return figures


@contextmanager
def _scratch_database(server_url: str | None):
    if not server_url:
        yield None
        return
    from sqlalchemy import create_engine, text

    name = f"renkei_bench_{uuid.uuid4().hex[:12]}"
    admin = create_engine("postgresql+psycopg://" + server_url.split("://", 1)[1], isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield server_url.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def run(quick: bool = False, postgres_url: str | None = None, queries: int | None = None, in_flight: int | None = None) -> dict:
    """The figures of one run: secured queries and the plain baseline, each on its own people."""
    count, warm, concurrency = (200, 40, 32) if quick else (3000, 200, 64)
    count, in_flight = queries or count, in_flight or concurrency
    warm = min(warm, max(count // 5, 1))
    persons = people(2 * (count + warm), seed=7)
    secure_people, plain_people = persons[: count + warm], persons[count + warm :]
    with (
        tempfile.TemporaryDirectory(prefix="renkei-bench-move-in-") as folder,
        _scratch_database(postgres_url) as database_url,
        NetworkStack(Path(folder), database_url) as stack,
    ):
        asyncio.run(announce(stack, SOKA, persons))
        asyncio.run(announce(stack, KOSHIGAYA, persons))
        asyncio.run(wait_for_symbols(stack, {SOKA: len(persons), KOSHIGAYA: len(persons)}))
        asyncio.run(register_copies(stack, persons))
        asyncio.run(secure_queries(stack, secure_people[:warm], in_flight))
        pids = {name: process.pid for name, process in stack.processes}
        secured = _with_cpu(
            {"requester": pids[f"intermediate_server@{KOSHIGAYA}"], "hub": pids["provision_network"], "provider": pids[f"intermediate_server@{SOKA}"], "nats": stack.nats.process.pid},
            lambda: asyncio.run(secure_queries(stack, secure_people[warm:], in_flight)),
        )
        with plain_hops(stack) as (plain_nats, plain_pids):
            asyncio.run(plain_queries(plain_nats.url, plain_people[:warm], in_flight))
            plain = _with_cpu(
                {"requester": plain_pids["requester"], "relay": plain_pids["relay"], "provider": plain_pids["provider"], "nats": plain_nats.process.pid},
                lambda: asyncio.run(plain_queries(plain_nats.url, plain_people[warm:], in_flight)),
            )
    return {
        "benchmark": "move_in",
        "database": "postgresql" if postgres_url else "sqlite",
        "queries": count,
        "in_flight": in_flight,
        "doses_per_answer": DOSES,
        "secured": secured,
        "baseline_without_permits_signatures_encryption": plain,
        "ratio": round(secured["per_s"] / plain["per_s"], 3),
        "targets": {"secured_per_s": 300, "ratio": 0.5},
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a few hundred queries: seconds, for smoke tests")
    parser.add_argument("--postgres-url", help="run the services on PostgreSQL (a scratch database on this server)")
    parser.add_argument("--queries", type=int, help="queries per path (3,000; 200 with --quick)")
    parser.add_argument("--in-flight", type=int, help="queries asked at once (64; 32 with --quick)")
    parser.add_argument("--role", choices=["requester", "relay", "provider"], help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--data", help=argparse.SUPPRESS)
    parser.add_argument("--peer", default="", help=argparse.SUPPRESS)
    parser.add_argument("--nats-url", default="", help=argparse.SUPPRESS)
    parser.add_argument("--database-url", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.role:
        _run_role(args.role, args.port, Path(args.data), args.database_url, args.peer, args.nats_url)
        return
    # The figures alone go to standard output; whatever the clients log goes to standard error.
    import structlog

    structlog.configure(logger_factory=structlog.PrintLoggerFactory(sys.stderr), wrapper_class=structlog.make_filtering_bound_logger(30))
    print(json.dumps(run(quick=args.quick, postgres_url=args.postgres_url, queries=args.queries, in_flight=args.in_flight), indent=2))


if __name__ == "__main__":
    main()

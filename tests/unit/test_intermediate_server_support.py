"""Helpers shared by the network tests (it holds no test of its own).

Real parts only: a nats-server with the stack's users and permissions (derived from a
registry that includes the network's contracts), the hub on a real socket with mutual TLS,
each city's intermediate server as its app with its network listener on a real socket,
the business systems' calls made over the bus under their own identities, and
``number_assigned`` events published to JetStream under the integrated address system's
own NATS login, as its relay does.
"""

from __future__ import annotations

import asyncio
import random
import threading
import time
import uuid
from collections.abc import Callable
from contextlib import contextmanager
from datetime import UTC, date, datetime
from pathlib import Path

import httpx
import uvicorn
from fastapi.testclient import TestClient

from renkei.processes import free_port
from renkei.testkit import NatsServer, SecuredStackFiles, make_bus
from services.intermediate_server.app import create_app as create_intermediate
from services.intermediate_server.config import Settings as IntermediateSettings
from services.intermediate_server.runtime import runtime_of
from services.provision_network.app import create_app as create_hub
from services.provision_network.config import Settings as HubSettings
from shared.contracts import REGISTRY
from shared.contracts import network as net
from shared.events import MSG_ID_HEADER, ensure_stream
from shared.ids import generate_resident_code, integrated_address_number
from shared.pki import ensure_pki, tls_files
from shared.trust import Principal

KOSHIGAYA = "112224"
SOKA = "112216"
CITIES = [KOSHIGAYA, SOKA]
HUB = Principal("provision_network")
HEALTH = {city: Principal("health_mgmt", city) for city in CITIES}
OPS = Principal("ops_console")


OP = REGISTRY.operations


def operation(owner: str, name: str):
    return REGISTRY.operation(owner, name)


def postgres_or_none(database_url: str) -> str | None:
    return None if database_url.startswith("sqlite") else database_url


def network_files(tmp_path: Path) -> SecuredStackFiles:
    files = SecuredStackFiles(tmp_path / "data", CITIES, registry=REGISTRY)
    ensure_pki(files.data_dir, files.principals)
    return files


@contextmanager
def nats_for(files: SecuredStackFiles, tmp_path: Path):
    folder = tmp_path / f"nats-{uuid.uuid4().hex[:6]}"
    folder.mkdir()
    server = NatsServer(folder, files.nats_config()).start()
    try:
        yield server
    finally:
        server.kill()


# --- the hub -----------------------------------------------------------------------------


class HubThread:
    """The hub on a real socket with mutual TLS, in a thread of this process."""

    def __init__(self, settings: HubSettings, **overrides) -> None:
        self.settings = settings
        self.app = create_hub(settings)
        files = tls_files(settings.data_dir, settings.principal)
        import ssl

        options = {
            "ssl_certfile": str(files.certificate),
            "ssl_keyfile": str(files.private_key),
            "ssl_ca_certs": str(files.ca_certificate),
            "ssl_cert_reqs": ssl.CERT_REQUIRED,
            **overrides,
        }
        config = uvicorn.Config(self.app, host="127.0.0.1", port=settings.port, log_config=None, access_log=False, lifespan="on", **options)
        self.server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self.server.run, name="hub", daemon=True)

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.settings.port}"

    @property
    def context(self):
        return self.app.state.context

    def start(self) -> HubThread:
        self._thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the hub did not start")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self._thread.join(timeout=5)
        if self._thread.is_alive():
            self.server.force_exit = True
            self._thread.join(timeout=10)

    def __enter__(self) -> HubThread:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def hub_settings(files, nats, database_url: str, **overrides) -> HubSettings:
    user, password = files.login(HUB)
    return HubSettings(
        data_dir=files.data_dir,
        nats_url=nats.url,
        nats_user=user,
        nats_password=password,
        database_url=postgres_or_none(database_url),
        port=free_port(),
        **overrides,
    )


# --- the intermediate servers ------------------------------------------------------------


def intermediate_settings(files, nats, database_url: str, city: str, hub_url: str | None, **overrides) -> IntermediateSettings:
    user, password = files.login(Principal("intermediate_server", city))
    return IntermediateSettings(
        city=city,
        data_dir=files.data_dir,
        nats_url=nats.url,
        nats_user=user,
        nats_password=password,
        database_url=postgres_or_none(database_url),
        hub_url=hub_url,
        **overrides,
    )


def intermediate_app(files, nats, database_url: str, city: str, hub_url: str | None, **overrides):
    app = create_intermediate(intermediate_settings(files, nats, database_url, city, hub_url, **overrides))
    return app


def runtime(client: TestClient):
    return runtime_of(client.app.state.context)


def wait_until(predicate: Callable[[], object], timeout: float = 30.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def registered(client: TestClient) -> bool:
    return runtime(client).registered.is_set()


# --- people --------------------------------------------------------------------------------


class Person:
    """Someone known to both cities: one resident code, one integrated address number per city."""

    def __init__(self, rng: random.Random) -> None:
        self.resident_code = generate_resident_code(rng)
        self.numbers = {city: integrated_address_number(city, f"{rng.randrange(10**9):09d}") for city in CITIES}


def people(count: int, seed: int = 3) -> list[Person]:
    rng = random.Random(seed)
    return [Person(rng) for _ in range(count)]


def announce(files, nats, city: str, persons: list[Person]) -> None:
    """Publish ``number_assigned`` for each person as the integrated address system's relay does."""

    async def run() -> None:
        principal = Principal("integrated_address", city)
        bus = make_bus(files.data_dir, files.directory, principal)
        await bus.connect(nats.url, *files.login(principal))
        try:
            js = bus.jetstream()
            await ensure_stream(js, "integrated_address", city)
            for person in persons:
                payload = net.NumberAssigned(integrated_address_number=person.numbers[city], resident_code=person.resident_code)
                await js.publish(
                    net.NUMBER_ASSIGNED.subject(city),
                    payload.model_dump_json().encode(),
                    stream=net.NUMBER_ASSIGNED.stream(city),
                    headers={MSG_ID_HEADER: uuid.uuid4().hex},
                )
        finally:
            await bus.close()

    asyncio.run(run())


def symbol_count(client: TestClient) -> int:
    from sqlalchemy import func, select

    from services.intermediate_server.models import SymbolLink

    rt = runtime(client)
    with rt.ctx.db.session() as session:
        return session.scalar(select(func.count()).select_from(SymbolLink).where(SymbolLink.tenant == rt.tenant)) or 0


# --- calls on the bus ---------------------------------------------------------------------


def call(files, nats, principal: Principal, op, city: str | None, payload, login: Principal | None = None):
    """One bus request as ``principal`` (connected as ``login``); the reply, or the problem raised."""

    async def run():
        bus = make_bus(files.data_dir, files.directory, principal)
        await bus.connect(nats.url, *files.login(login or principal))
        try:
            return await bus.request(op, city, payload, timeout=20)
        except Exception as exc:  # the typed problem is what the tests look at
            return exc
        finally:
            await bus.close()

    return asyncio.run(run())


def consent() -> net.Consent:
    return net.Consent(obtained_at=datetime(2025, 4, 1, 9, 0, tzinfo=UTC), method="written", recorded_by="clerk-0001", reference="転入届-2025-0001")


def vaccination_query(person: Person, city: str = KOSHIGAYA, provider: str = SOKA, **changes) -> net.QueryRequest:
    fields = {
        "integrated_address_number": person.numbers[city],
        "provider": provider,
        "affair_code": net.VACCINATION_AFFAIR,
        "procedure_code": net.MOVE_IN_HISTORY_PROCEDURE,
        "item_code": net.VACCINATION_RECORDS,
        "consent": consent(),
    }
    fields.update(changes)
    return net.QueryRequest(**fields)


def doses(n: int = 3, lot_prefix: str = "LOT") -> list[dict]:
    kinds = ["measles", "rubella", "bcg", "dpt_ipv", "hib", "varicella"]
    return [
        {
            "record_type": kinds[i % len(kinds)],
            "inoculation_date": date(2020, 1 + i, 10).isoformat(),
            "dose_number": 1 + i // len(kinds),
            "lot_number": f"{lot_prefix}{1000 + i}",
            "manufacturer": "第一三共",
            "inoculation_place": "草加市立病院",
        }
        for i in range(n)
    ]


def register_doses(files, nats, city: str, persons: list[Person], per_person: int = 3, lot_prefix: str = "LOT"):
    request = net.CopyImport(
        item_code=net.VACCINATION_RECORDS,
        people=[net.PersonCopy(integrated_address_number=p.numbers[city], records=doses(per_person, f"{lot_prefix}{i}X")) for i, p in enumerate(persons)],
    )
    return call(files, nats, HEALTH[city], OP["intermediate_server.register_copies"], city, request)


def wait_for_result(files, nats, city: str, query_id: str, final: bool = True, timeout: float = 30.0) -> net.QueryResult:
    result: list = []

    def ready() -> bool:
        reply = call(files, nats, HEALTH[city], OP["intermediate_server.query_result"], city, net.QueryResultRequest(query_id=query_id))
        result[:] = [reply]
        return isinstance(reply, net.QueryResult) and (reply.status in net.FINAL_STATUSES or (not final and reply.status != "pending"))

    wait_until(ready, timeout, f"query {query_id} to end")
    return result[0]


def ledger_records(client_or_hub) -> list:
    """Every provision record of the app's ledger, in log order."""
    from shared.ledger import ProvisionRecord

    ctx = client_or_hub.app.state.context
    ledger = ctx.ledger
    return [e for e in (ledger.entry(i) for i in range(ledger.tree_size())) if isinstance(e, ProvisionRecord)]


def mtls_client(files, principal: Principal, base_url: str) -> httpx.Client:
    return httpx.Client(base_url=base_url, verify=tls_files(files.data_dir, principal).client_context(), timeout=20)


# --- speaking the network protocol directly, as one of its parties ---------------------------


def signed_post(files, speaker: Principal, audience: str, base_url: str, path: str, payload) -> httpx.Response:
    """POST ``payload`` over mutual TLS with ``speaker``'s certificate, token and request proof."""
    from renkei.testkit import identity
    from shared.http import http_target

    credentials, _ = identity(files.data_dir, files.directory, speaker)
    body = payload.model_dump_json().encode() if hasattr(payload, "model_dump_json") else payload
    headers = credentials.headers(audience, http_target("POST", path), body)
    headers["Content-Type"] = "application/json"
    with mtls_client(files, speaker, base_url) as client:
        return client.post(path, content=body, headers=headers)


def listener_url(client: TestClient) -> str:
    return runtime(client).listener.url


@contextmanager
def two_cities(tmp_path: Path, database_url: str, **hub_overrides):
    """The hub and Koshigaya's and Soka's intermediate servers, registered with it; yields
    ``(files, nats, hub, koshigaya, soka)``."""
    files = network_files(tmp_path)
    with nats_for(files, tmp_path) as nats, HubThread(hub_settings(files, nats, database_url, **hub_overrides)) as hub:
        koshigaya = intermediate_app(files, nats, database_url, KOSHIGAYA, hub.url)
        soka = intermediate_app(files, nats, database_url, SOKA, hub.url)
        with TestClient(koshigaya) as k, TestClient(soka) as s:
            wait_until(lambda: registered(k) and registered(s), what="both servers to register with the hub")
            yield files, nats, hub, k, s

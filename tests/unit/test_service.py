"""One service assembled by the kernel, against a real nats-server and a real database."""

from __future__ import annotations

import asyncio
import time

from fastapi import APIRouter, Depends
from fastapi.testclient import TestClient

from renkei.testkit import identity, make_bus
from services.health_mgmt.config import Settings
from shared.auth import Caller
from shared.contracts import REGISTRY
from shared.contracts.system import PingRequest
from shared.errors import Forbidden
from shared.http import Audited, ServiceCaller, http_target
from shared.nats_config import nats_user
from shared.service import ServiceSpec, build_app
from shared.trust import Principal

CITY = "112224"
HEALTH = Principal("health_mgmt", CITY)


def settings_for(files, server, database_url: str | None = None) -> Settings:
    user, password = files.login(HEALTH)
    pg = database_url if database_url and not database_url.startswith("sqlite") else None
    return Settings(city=CITY, data_dir=files.data_dir, nats_url=server.url, nats_user=user, nats_password=password, database_url=pg)


def people_router() -> APIRouter:
    router = APIRouter()

    @router.get(
        "/people/{person_key}",
        dependencies=[Depends(Audited("people.read", person_param="person_key"))],
    )
    def read_person(person_key: str, caller: Caller = Depends(ServiceCaller("people.read", {"integrated_address"}))):
        return {"person_key": person_key, "caller": str(caller.principal)}

    return router


def test_a_service_is_live_ready_and_measured(stack_files, nats_secured, database_url):
    app = build_app(ServiceSpec(name="health_mgmt", summary="health"), settings_for(stack_files, nats_secured, database_url))
    with TestClient(app) as client:
        assert client.get("/livez").json() == {"status": "alive"}
        ready = client.get("/readyz")
        assert ready.status_code == 200
        assert ready.json()["checks"] == {"database": "ok", "nats": "ok"}
        metrics = client.get("/metrics").text
        assert 'renkei_http_requests_total{method="GET",route="/readyz",status="200"} 1.0' in metrics
        assert ready.headers["X-Request-ID"]


def test_readiness_fails_when_nats_is_gone(stack_files, nats_secured):
    app = build_app(ServiceSpec(name="health_mgmt", summary="health"), settings_for(stack_files, nats_secured))
    with TestClient(app) as client:
        assert client.get("/readyz").status_code == 200
        nats_secured.kill()
        deadline = time.monotonic() + 5
        while client.get("/readyz").status_code == 200 and time.monotonic() < deadline:
            time.sleep(0.1)
        response = client.get("/readyz")
        assert response.status_code == 503
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["checks"]["nats"] == "disconnected"


def test_errors_are_problem_details(stack_files, nats_secured):
    app = build_app(ServiceSpec(name="health_mgmt", summary="health", routers=[people_router()]), settings_for(stack_files, nats_secured))
    with TestClient(app) as client:
        missing = client.get("/nowhere")
        assert missing.status_code == 404
        assert missing.headers["content-type"] == "application/problem+json"
        assert missing.json()["status"] == 404 and missing.json()["instance"] == "/nowhere"


def test_audited_routes_admit_allowlisted_services_and_log_every_outcome(stack_files, nats_secured):
    app = build_app(ServiceSpec(name="health_mgmt", summary="health", routers=[people_router()]), settings_for(stack_files, nats_secured))

    def signed(caller: Principal, path: str) -> dict:
        credentials, _ = identity(stack_files.data_dir, stack_files.directory, caller)
        return credentials.headers(HEALTH, http_target("GET", path), b"")

    with TestClient(app) as client:
        anonymous = client.get("/people/P-1")
        outsider = client.get("/people/P-2", headers=signed(Principal("juki_cs", CITY), "/people/P-2"))
        insider = client.get("/people/P-3", headers=signed(Principal("integrated_address", CITY), "/people/P-3"))
        replayed = client.get("/people/P-3", headers=signed(Principal("integrated_address", CITY), "/people/P-4"))
        entries = app.state.context.oplog.entries("people.read")

    assert anonymous.status_code == 401 and anonymous.json()["type"] == "urn:renkei:problem:unauthenticated"
    assert outsider.status_code == 403 and outsider.json()["type"] == Forbidden.type
    assert insider.status_code == 200 and insider.json()["caller"] == "integrated_address@112224"
    assert replayed.status_code == 401 and "does not match" in replayed.json()["detail"]  # proof was for another path
    logged = {(e.person_key, e.actor, e.outcome) for e in entries}
    assert logged == {
        ("P-1", "anonymous", "http-401"),
        ("P-2", "juki_cs@112224", "http-403"),
        ("P-3", "integrated_address@112224", "ok"),
        ("P-3", "anonymous", "http-401"),
    }


def test_the_service_answers_ping_and_logs_refusals(stack_files, nats_secured):
    app = build_app(ServiceSpec(name="health_mgmt", summary="health"), settings_for(stack_files, nats_secured))
    ping = REGISTRY.operation("health_mgmt", "ping")

    async def call(principal: Principal, token_principal: Principal):
        bus = make_bus(stack_files.data_dir, stack_files.directory, token_principal)
        await bus.connect(nats_secured.url, nats_user(principal), stack_files.credentials[nats_user(principal)])
        try:
            return await bus.request(ping, CITY, PingRequest(nonce="hello"))
        except Exception as exc:
            return exc
        finally:
            await bus.close()

    with TestClient(app) as client:
        reply = asyncio.run(call(Principal("ops_console"), Principal("ops_console")))
        refused = asyncio.run(call(Principal("ops_console"), Principal("provision_network")))
        metrics = client.get("/metrics").text
        entries = app.state.context.oplog.entries("health_mgmt.ping")

    assert reply.principal == "health_mgmt@112224" and reply.nonce == "hello"
    assert isinstance(refused, Forbidden)
    assert 'renkei_bus_requests_total{operation="health_mgmt.ping",outcome="ok"} 1.0' in metrics
    assert 'renkei_bus_requests_total{operation="health_mgmt.ping",outcome="forbidden"} 1.0' in metrics
    assert [(e.actor, e.outcome) for e in entries] == [("provision_network", "urn:renkei:problem:forbidden")]


def test_the_service_reconnects_when_nats_comes_back(stack_files, nats_secured):
    app = build_app(ServiceSpec(name="health_mgmt", summary="health"), settings_for(stack_files, nats_secured))
    ping = REGISTRY.operation("health_mgmt", "ping")

    async def ping_once():
        bus = make_bus(stack_files.data_dir, stack_files.directory, Principal("ops_console"))
        await bus.connect(nats_secured.url, nats_user(Principal("ops_console")), stack_files.credentials["ops_console"])
        try:
            return await bus.request(ping, CITY, PingRequest(nonce="again"))
        finally:
            await bus.close()

    def wait_for(status: int) -> int:
        deadline = time.monotonic() + 10
        while (code := client.get("/readyz").status_code) != status and time.monotonic() < deadline:
            time.sleep(0.1)
        return code

    with TestClient(app) as client:
        nats_secured.kill()
        assert wait_for(503) == 503
        nats_secured.start()  # same port, same configuration
        assert wait_for(200) == 200
        reply = asyncio.run(ping_once())  # its subscriptions came back with the connection
    assert reply.nonce == "again"


def test_losing_nats_is_a_warning_and_closing_on_purpose_is_not(stack_files, nats_secured, caplog):
    me = Principal("ops_console")

    async def connect():
        bus = make_bus(stack_files.data_dir, stack_files.directory, me)
        await bus.connect(nats_secured.url, nats_user(me), stack_files.credentials["ops_console"])
        return bus

    def bus_log() -> list[tuple[str, str]]:
        found = [(r.levelname, r.msg.get("event") if isinstance(r.msg, dict) else r.getMessage()) for r in caplog.records if r.name == "renkei.bus"]
        caplog.clear()
        return found

    async def scenario():
        bus = await connect()
        await bus.close()
        await asyncio.sleep(0.1)
        closing = bus_log()
        bus = await connect()
        nats_secured.kill()
        for _ in range(50):
            if not bus.connected:
                break
            await asyncio.sleep(0.1)
        lost = bus_log()
        await bus.close(drain_seconds=1)
        return closing, lost

    caplog.set_level("INFO", logger="renkei.bus")
    closing, lost = asyncio.run(scenario())
    assert closing == [("INFO", "nats connection closed")]
    assert ("WARNING", "nats disconnected") in lost


def test_an_audited_route_that_fails_unhandled_is_logged_as_a_server_error(stack_files, nats_secured):
    router = APIRouter()

    @router.get("/broken/{person_key}", dependencies=[Depends(Audited("broken.read", person_param="person_key"))])
    def broken(person_key: str):
        raise RuntimeError("a bug")

    app = build_app(ServiceSpec(name="health_mgmt", summary="health", routers=[router]), settings_for(stack_files, nats_secured))
    with TestClient(app, raise_server_exceptions=False) as client:
        response = client.get("/broken/P-9")
        entries = app.state.context.oplog.entries("broken.read")

    assert response.status_code == 500
    assert [(e.person_key, e.outcome) for e in entries] == [("P-9", "http-500")]

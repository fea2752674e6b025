"""The ops console against real services: real uvicorn servers, a real nats-server with the
stack's users and permissions, and the console's own app; the page's JSON API is what is
tested here, the page itself in tests/e2e/test_ops_console_browser.py."""

from __future__ import annotations

import json
import threading
import time
from contextlib import ExitStack, contextmanager
from pathlib import Path

import pytest
import uvicorn
from fastapi.testclient import TestClient

from renkei.processes import free_port
from renkei.testkit import staff_headers
from services.ops_console import metrics
from services.ops_console.app import SPEC
from services.ops_console.config import Settings
from shared.observability import Metrics
from shared.service import build_app
from shared.trust import Principal

CITY = "112224"
OPERATOR = ["ops_operator"]


def settings_for(settings_class, principal: Principal, files, server, database_url: str | None, **extra):
    user, password = files.login(principal)
    pg = database_url if database_url and not database_url.startswith("sqlite") else None
    return settings_class(
        city=principal.city, data_dir=files.data_dir, nats_url=server.url, nats_user=user, nats_password=password,
        database_url=pg, **extra,
    )


@contextmanager
def serving(app):
    """``app`` served by uvicorn on a free port, in a thread, until the block ends."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, access_log=False, lifespan="on"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the service did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=15)


def write_members(data_dir: Path, server, members: list[tuple[str, str | None, str]], monitor: bool = True) -> Path:
    """A members file as ``renkei up`` writes it (``DATA/run.json``)."""
    record = {
        "data_dir": str(data_dir),
        "cities": ["112224", "112216"],
        "nats": {"service": "nats", "city": None, "url": server.url, "pid": 0, "started": None, "log": ""},
        "nats_monitor_url": f"http://127.0.0.1:{server.monitor_port}" if monitor else None,
        "services": [
            {"service": s, "city": c, "url": url, "pid": 0, "started": None, "log": ""} for s, c, url in members
        ],
    }
    path = data_dir / "run.json"
    path.write_text(json.dumps(record))
    return path


def console_app(files, server, **extra):
    settings = settings_for(Settings, Principal("ops_console"), files, server, None, refresh_seconds=0, **extra)
    return build_app(SPEC, settings)


@pytest.fixture
def live_members(stack_files, nats_secured, database_url):
    """Two real services of Koshigaya (one of which publishes events) and one that is down."""
    from services.health_mgmt.app import SPEC as HEALTH
    from services.health_mgmt.config import Settings as HealthSettings
    from services.resident_registry.app import SPEC as REGISTRY_SPEC
    from services.resident_registry.config import Settings as RegistrySettings

    with ExitStack() as stack:
        health = stack.enter_context(
            serving(build_app(HEALTH, settings_for(HealthSettings, Principal("health_mgmt", CITY), stack_files, nats_secured, database_url)))
        )
        registry = stack.enter_context(
            serving(
                build_app(
                    REGISTRY_SPEC,
                    settings_for(RegistrySettings, Principal("resident_registry", CITY), stack_files, nats_secured, database_url),
                )
            )
        )
        nobody = f"http://127.0.0.1:{free_port()}"
        members = [("health_mgmt", CITY, health), ("resident_registry", CITY, registry), ("integrated_address", CITY, nobody)]
        write_members(stack_files.data_dir, nats_secured, members)
        yield dict((s, url) for s, _, url in members)


def by_principal(overview: dict) -> dict[str, dict]:
    return {s["principal"]: s for s in overview["services"]}


def test_the_overview_shows_each_member_nats_and_the_topology(stack_files, nats_secured, live_members):
    import httpx

    app = console_app(stack_files, nats_secured)
    with TestClient(app) as client:
        headers = staff_headers(client, OPERATOR, user_id="o.sato")
        first = client.get("/api/overview", headers=headers)
        for _ in range(6):  # business traffic: refused sign-ins are requests the service answered
            httpx.post(f"{live_members['health_mgmt']}/staff/login", json={"user_id": "x.nobody", "password": "p", "totp": "000000"})
        second = client.get("/api/overview", headers=headers).json()

    assert first.status_code == 200, first.text
    services = by_principal(first.json())
    assert services["health_mgmt@112224"]["state"] == "ready"
    assert services["resident_registry@112224"]["state"] == "ready"
    assert services["integrated_address@112224"]["state"] == "down"
    assert services["integrated_address@112224"]["detail"]
    assert services["health_mgmt@112224"]["bus"] == "ok"  # pinged through NATS, token and allowlist
    assert services["health_mgmt@112224"]["requests_per_second"] is None  # no earlier round yet
    assert services["resident_registry@112224"]["outbox_backlog"] == 0  # it publishes events
    assert services["health_mgmt@112224"]["outbox_backlog"] is None  # it publishes none

    health = by_principal(second)["health_mgmt@112224"]
    assert health["requests_per_second"] > 0
    assert health["error_ratio"] == 0  # refusals are the caller's errors, not the service's
    assert health["p95_ms"] is not None and health["p95_ms"] > 0

    nats = second["nats"]
    assert nats["reachable"] and nats["healthy"]
    assert {"health_mgmt@112224", "resident_registry@112224", "ops_console"} <= set(nats["clients"])
    assert "EVT_112224_resident_registry" in {s["name"] for s in nats["jetstream"]["streams"]}

    topology = second["topology"]
    assert {n["id"] for n in topology["nodes"]} == {"health_mgmt@112224", "resident_registry@112224", "integrated_address@112224"}
    edges = {(e["source"], e["target"], e["kind"]) for e in topology["edges"]}
    assert ("resident_registry@112224", "integrated_address@112224", "event") in edges
    assert ("health_mgmt@112224", "integrated_address@112224", "bus") in edges
    assert second["cities"] == ["112224", "112216"]


def test_review_queue_and_retention_say_why_when_no_intermediate_server_answers(stack_files, nats_secured, live_members):
    app = console_app(stack_files, nats_secured)
    with TestClient(app) as client:
        overview = client.get("/api/overview", headers=staff_headers(client, OPERATOR, user_id="o.kato")).json()
    for city in overview["intermediate_server"]:
        assert [f["key"] for f in city["features"]] == ["review_queue", "retention_jobs"]
        assert all(f["figures"] is None and "nobody serves" in f["detail"] for f in city["features"])
    assert overview["ledgers"] == []  # no intermediate server among these members


def test_review_queue_and_retention_figures_come_from_the_system_status():
    from datetime import UTC, date, datetime

    from services.ops_console.features import rows_of
    from shared.contracts.network import BatchStatus, DailyFigure, SystemStatus

    ran = datetime(2026, 11, 27, 3, 0, tzinfo=UTC)
    status = SystemStatus(
        tenant="112224",
        review_waiting=2,
        batches=[BatchStatus(name="retention", last_run_at=ran, last_success_at=ran), BatchStatus(name="symbols")],
        figures=[
            DailyFigure(day=date(2026, 11, 26), item_code=None, figure="deleted.expired", count=9),
            DailyFigure(day=date(2026, 11, 27), item_code=None, figure="deleted.expired", count=3),
            DailyFigure(day=date(2026, 11, 27), item_code="TM01400000000001", figure="provision.released", count=1),
            DailyFigure(day=date(2026, 11, 27), item_code="TM01400000000001", figure="provision.provided", count=5),
        ],
    )
    review, retention = rows_of(status)
    assert review["figures"] == {"waiting": 2, "today": {"released": 1}}
    assert retention["figures"]["deleted_today"] == {"expired": 3}
    assert retention["figures"]["last_success"] == "2026-11-27T03:00:00+00:00" and retention["detail"] == ""


def test_an_outsider_is_refused(stack_files, nats_secured, live_members):
    app = console_app(stack_files, nats_secured)
    with TestClient(app) as client:
        anonymous = client.get("/api/overview")
        forged = client.get("/api/overview", headers={"Authorization": "Bearer rks_forged"})
        other_role = client.get("/api/overview", headers=staff_headers(client, ["auditor"], user_id="a.ito"))
        entries = app.state.context.oplog.entries("staff.login")
    assert anonymous.status_code == 401 and anonymous.headers["content-type"] == "application/problem+json"
    assert forged.status_code == 401
    assert other_role.status_code == 403 and "ops.view" in other_role.json()["detail"]
    assert ("a.ito", "ok") in {(e.actor, e.outcome) for e in entries}  # sign-ins are in the operation log


def test_without_members_file_or_nats_monitor_the_overview_says_why(stack_files, nats_secured):
    app = console_app(stack_files, nats_secured, members_file=stack_files.data_dir / "absent.json")
    with TestClient(app) as client:
        headers = staff_headers(client, OPERATOR, user_id="o.mori")
        empty = client.get("/api/overview", headers=headers).json()
        write_members(stack_files.data_dir, nats_secured, [], monitor=False)
        app.state.context.settings.members_file = None
        no_monitor = client.get("/api/overview", headers=headers).json()
    assert "absent.json" in empty["problem"] and empty["services"] == []
    assert no_monitor["problem"] is None
    assert no_monitor["nats"]["reachable"] is False and "RENKEI_NATS_MONITOR_URL" in no_monitor["nats"]["error"]


def test_the_monitor_url_setting_wins_over_the_members_file(stack_files, nats_secured):
    write_members(stack_files.data_dir, nats_secured, [], monitor=False)
    url = f"http://127.0.0.1:{nats_secured.monitor_port}"
    app = console_app(stack_files, nats_secured, nats_monitor_url=url)
    with TestClient(app) as client:
        overview = client.get("/api/overview", headers=staff_headers(client, OPERATOR, user_id="o.abe")).json()
    assert overview["nats"]["reachable"] and overview["nats"]["url"] == url


def test_the_page_and_its_files_come_from_the_console_alone(stack_files, nats_secured):
    app = console_app(stack_files, nats_secured)
    with TestClient(app) as client:
        page = client.get("/")
        script = client.get("/static/console.js")
        style = client.get("/static/console.css")
        elsewhere = client.get("/static/..%2Fapp.py")
        unknown = client.get("/static/index.html.bak")
    assert page.status_code == 200 and 'src="/static/console.js"' in page.text
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assert script.status_code == 200 and script.headers["content-type"].startswith("text/javascript")
    assert style.status_code == 200
    assert "http://" not in page.text and "https://" not in page.text  # nothing loaded from elsewhere
    assert "/api/overview" in script.text
    assert elsewhere.status_code == 404 and unknown.status_code == 404


# --- the figures, from a real metrics registry ---------------------------------------------


def exposition(registry: Metrics) -> str:
    from prometheus_client import generate_latest

    return generate_latest(registry.registry).decode()


def test_rates_count_business_traffic_and_server_errors_only():
    m = Metrics()
    before = metrics.parse(exposition(m), at=100.0)
    for _ in range(90):
        m.http_requests.labels("GET", "/people/{key}", "200").inc()
        m.http_latency.labels("GET", "/people/{key}").observe(0.004)
    for _ in range(10):
        m.http_requests.labels("GET", "/people/{key}", "503").inc()
        m.http_latency.labels("GET", "/people/{key}").observe(0.8)
    for _ in range(50):  # probes and pings are the console's own doing, not the service's traffic
        m.http_requests.labels("GET", "/readyz", "200").inc()
        m.http_latency.labels("GET", "/readyz").observe(2.0)
        m.observe_bus("health_mgmt.ping", "ok", 2.0)
    m.observe_bus("integrated_address.lookup", "forbidden", 0.001)
    m.observe_bus("integrated_address.lookup", "internal", 0.001)
    m.outbox_backlog.set(7)
    after = metrics.parse(exposition(m), at=110.0)

    figures = metrics.rates(before, after)
    assert figures.requests_per_second == pytest.approx(102 / 10)
    assert figures.error_ratio == pytest.approx(11 / 102)  # 10 × 503 and 1 internal; the refusal is not one
    assert 0.5 < figures.p95_seconds <= 1.0  # the slow tenth, not the probes' 2 s
    assert after.outbox_backlog == 7
    assert metrics.rates(None, after).requests_per_second is None
    assert metrics.rates(after, before).requests_per_second is None  # a counter that went down: a restart


def test_quantile_interpolates_like_prometheus():
    buckets = {0.1: 50.0, 0.2: 100.0, float("inf"): 100.0}
    assert metrics.quantile(0.5, buckets) == pytest.approx(0.1)
    assert metrics.quantile(0.75, buckets) == pytest.approx(0.15)
    assert metrics.quantile(0.95, {0.1: 0.0, float("inf"): 10.0}) == pytest.approx(0.1)
    assert metrics.quantile(0.95, {0.1: 0.0, float("inf"): 0.0}) is None

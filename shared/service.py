"""How every service is assembled: one factory, so every service reads and runs the same way.

A service declares a ``ServiceSpec`` (its name, its routers, the bus operations it serves,
the events it consumes, its tables and migrations); ``build_app`` turns it and the
service's settings into a FastAPI app that migrates its database, connects to NATS with
its own identity, serves its operations, relays its outbox, and exposes ``/livez``,
``/readyz`` and ``/metrics``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import structlog
from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import MetaData

from shared import migrate
from shared.auth import Caller, Credentials, TokenIssuer, TokenVerifier
from shared.bus import Bus, Handler
from shared.config import ServiceSettings
from shared.contracts import REGISTRY, Registry
from shared.contracts.ledger import CheckpointQuery, LatestCheckpoint
from shared.contracts.system import PingReply, PingRequest
from shared.db import Database, database_url, schema_name
from shared.errors import Unavailable
from shared.events import EventConsumer, EventHandler, OutboxRelay, ensure_stream, outbox_backlog
from shared.http import OperationLogMiddleware, install_problem_handlers, problem_response
from shared.ledger import HUB_TENANT, CheckpointTimer, Ledger
from shared.ledger.api import ledger_router
from shared.ledger.migrations import LEDGER_MIGRATIONS
from shared.ledger.retention import prune_past_retention
from shared.models import KernelBase
from shared.observability import Metrics, RequestContextMiddleware, configure_logging
from shared.oplog import OperationLog
from shared.staff import StaffDirectory, staff_router
from shared.trust import TrustDirectory, agreement_key, signing_key

log = structlog.get_logger("renkei.service")

HandlerFactory = Callable[["ServiceContext"], Handler]
ConsumerFactory = Callable[["ServiceContext"], EventHandler]
#: A background job: given the context, the coroutine that runs it until cancelled at shutdown.
JobFactory = Callable[["ServiceContext"], Coroutine[Any, Any, None]]


@dataclass
class ServiceContext:
    """Everything a service's handlers need, built once at start-up."""

    settings: ServiceSettings
    db: Database
    directory: TrustDirectory
    credentials: Credentials
    verifier: TokenVerifier
    oplog: OperationLog
    metrics: Metrics
    bus: Bus
    registry: Registry
    staff: StaffDirectory
    roles: Mapping[str, frozenset[str]] = field(default_factory=dict)
    relay: OutboxRelay | None = None
    ledger: Ledger | None = None

    @property
    def principal(self):
        return self.settings.principal

    def require_ledger(self) -> Ledger:
        """The service's provision-record ledger; ``Unavailable`` until it is open."""
        if self.ledger is None:
            raise Unavailable(f"the ledger of {self.principal} is not open yet")
        return self.ledger


@dataclass(frozen=True)
class ServiceSpec:
    """What makes one service different from the others."""

    name: str
    summary: str
    routers: Sequence[APIRouter] = ()
    served: Mapping[str, HandlerFactory] = field(default_factory=dict)
    consumed: Mapping[str, ConsumerFactory] = field(default_factory=dict)
    jobs: Mapping[str, JobFactory] = field(default_factory=dict)  # background jobs, started after the consumers
    metadata: Sequence[MetaData] = ()
    migrations: Sequence[Path] = ()
    roles: Mapping[str, frozenset[str]] = field(default_factory=dict)  # staff role → permissions (M06)
    keeps_ledger: bool = False  # a provision-record ledger (情報提供等記録) of its tenant, with its API


def answer_ping(ctx: ServiceContext) -> Handler:
    """The identity answer every service gives on ``renkei.<lg>.<service>.ping``."""

    service, city, principal = ctx.settings.service, ctx.settings.city, str(ctx.principal)

    async def ping(request: PingRequest, caller: Caller) -> PingReply:
        return PingReply(service=service, city=city, principal=principal, caller=str(caller.principal), nonce=request.nonce)

    return ping


def answer_checkpoint(ctx: ServiceContext) -> Handler:
    """The latest signed checkpoint of the service's ledger, on ``<service>.ledger_checkpoint``."""

    async def checkpoint(request: CheckpointQuery, caller: Caller) -> LatestCheckpoint:
        latest = await asyncio.to_thread(ctx.ledger.latest_checkpoint)
        return LatestCheckpoint(checkpoint=latest.to_json() if latest else None)

    return checkpoint


def open_database(settings: ServiceSettings) -> Database:
    url = database_url(settings.data_dir, settings.service, settings.city, settings.database_url)
    schema = None if url.startswith("sqlite") else schema_name(settings.service, settings.city)
    return Database(url, schema)


def migrate_database(db: Database, spec: ServiceSpec) -> None:
    """Bring a service's database to the newest revision of every branch it uses."""
    versions = [LEDGER_MIGRATIONS, *spec.migrations] if spec.keeps_ledger else list(spec.migrations)
    migrate.upgrade(db, versions, [KernelBase.metadata, *spec.metadata])


def build_context(settings: ServiceSettings, registry: Registry = REGISTRY, roles: Mapping[str, frozenset[str]] | None = None) -> ServiceContext:
    principal = settings.principal
    directory = TrustDirectory.load(settings.data_dir)
    issuer = TokenIssuer(principal, signing_key(settings.data_dir, principal), settings.token_lifetime_seconds)
    agreement = agreement_key(settings.data_dir, principal)
    credentials = Credentials(issuer, agreement, directory)
    verifier = TokenVerifier(principal, directory, agreement)
    db = open_database(settings)
    oplog = OperationLog(db)
    metrics = Metrics()
    bus = Bus(principal, credentials, verifier, oplog=oplog, observe=metrics.observe_bus)
    staff = StaffDirectory(
        db,
        issuer=f"Renkei {principal}",
        idle=timedelta(minutes=settings.staff_idle_minutes),
        lifetime=timedelta(hours=settings.staff_session_hours),
    )
    return ServiceContext(settings, db, directory, credentials, verifier, oplog, metrics, bus, registry, staff, dict(roles or {}))


async def _connect(ctx: ServiceContext, attempts: int = 60) -> None:
    settings = ctx.settings
    for attempt in range(attempts):
        try:
            await ctx.bus.connect(settings.nats_url, settings.nats_user, settings.nats_password)
            return
        except Exception as exc:  # NATS still starting: wait for it rather than die
            if attempt == attempts - 1:
                raise Unavailable(f"cannot reach NATS at {settings.nats_url}: {exc}") from exc
            await asyncio.sleep(0.5)


async def stop_tasks(tasks: Sequence[asyncio.Task], grace_seconds: float = 10.0) -> None:
    """Cancel background tasks and wait for them, but no longer than ``grace_seconds``: a
    shutdown must end, so a task that will not stop is named in the log and left behind."""
    for task in tasks:
        task.cancel()
    if not tasks:
        return
    _, pending = await asyncio.wait(tasks, timeout=grace_seconds)
    for task in pending:
        log.warning("a background task did not stop in time", task=task.get_name())


async def start(ctx: ServiceContext, spec: ServiceSpec) -> list[asyncio.Task]:
    """Migrate, connect, serve, relay, consume and run the jobs; returns the tasks to cancel at shutdown."""
    settings = ctx.settings
    await asyncio.to_thread(migrate_database, ctx.db, spec)
    if spec.keeps_ledger:
        tenant = settings.city or HUB_TENANT
        ctx.ledger = Ledger(ctx.db.engine, tenant, signing_key(settings.data_dir, ctx.principal))
        ctx.ledger.observer = ctx.metrics.observe_records
    await _connect(ctx)
    served: dict[str, HandlerFactory] = {"ping": answer_ping}
    if ctx.ledger is not None and f"{spec.name}.ledger_checkpoint" in ctx.registry.operations:
        served["ledger_checkpoint"] = answer_checkpoint
    served.update(spec.served)
    for name, factory in served.items():
        await ctx.bus.serve(ctx.registry.operation(spec.name, name), factory(ctx), settings.city)
    tasks: list[asyncio.Task] = []
    js = ctx.bus.jetstream()
    if ctx.registry.published_by(spec.name):
        await ensure_stream(js, spec.name, settings.city, settings.jetstream_replicas)
        ctx.relay = OutboxRelay(ctx.db, js)
        tasks.append(asyncio.create_task(ctx.relay.run(), name="outbox-relay"))
    if ctx.ledger is not None:
        tasks.append(asyncio.create_task(_retention_loop(ctx), name="ledger-retention"))
    for key, factory in spec.consumed.items():
        consumer = EventConsumer(ctx.db, js, spec.name, ctx.registry.events[key], settings.city, factory(ctx), metrics=ctx.metrics)
        tasks.append(asyncio.create_task(consumer.run(), name=f"consumer-{consumer.name}"))
    for name, job in spec.jobs.items():
        tasks.append(asyncio.create_task(job(ctx), name=f"job-{name}"))
    return tasks


async def _retention_loop(ctx: ServiceContext) -> None:
    """Prune the ledger past retention at start-up and then every ``ledger_retention_hours``."""
    while True:
        try:
            result = await asyncio.to_thread(prune_past_retention, ctx.ledger, datetime.now(UTC))
            if result.records_pruned:
                log.info("ledger pruned past retention", records=result.records_pruned)
        except Exception:  # a failed sweep is retried at the next one; the records are still there
            log.exception("ledger retention sweep failed")
        await asyncio.sleep(ctx.settings.ledger_retention_hours * 3600)


def build_app(spec: ServiceSpec, settings: ServiceSettings) -> FastAPI:
    if settings.service != spec.name:
        raise ValueError(f"settings are for {settings.service!r}, not {spec.name!r}")
    configure_logging(settings.service, settings.city, settings.log_level)
    ctx = build_context(settings, roles=spec.roles)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        tasks = await start(ctx, spec)
        timer = CheckpointTimer(ctx.ledger, settings.ledger_checkpoint_seconds) if ctx.ledger else None
        if timer:
            timer.start()
        log.info("service started", principal=str(ctx.principal), port=settings.port)
        try:
            yield
        finally:
            if timer:
                timer.stop()
            await stop_tasks(tasks)
            await ctx.bus.close()
            ctx.db.dispose()

    city = f" ({settings.city})" if settings.city else ""
    app = FastAPI(title=f"{spec.summary}{city}", lifespan=lifespan, version="0.1.0")
    app.state.context = ctx
    install_problem_handlers(app)
    app.add_middleware(OperationLogMiddleware, oplog=ctx.oplog)
    app.add_middleware(RequestContextMiddleware, metrics=ctx.metrics)
    app.include_router(health_router())
    app.include_router(staff_router())
    if spec.keeps_ledger:
        app.include_router(ledger_router())
    for router in spec.routers:
        app.include_router(router)
    return app


def health_router() -> APIRouter:
    router = APIRouter(tags=["operations"])

    @router.get("/livez", summary="The process is alive")
    def livez() -> dict:
        return {"status": "alive"}

    @router.get("/readyz", summary="The service can serve: its database and NATS answer")
    def readyz(request: Request) -> Response:
        ctx: ServiceContext = request.app.state.context
        checks = {"database": _check(ctx.db.ping), "nats": "ok" if ctx.bus.connected else "disconnected"}
        ready = all(v == "ok" for v in checks.values())
        ctx.metrics.ready.set(1 if ready else 0)
        if not ready:
            return problem_response(Unavailable("not ready", checks=checks), "/readyz")
        return JSONResponse({"status": "ready", "principal": str(ctx.principal), "checks": checks})

    @router.get("/metrics", summary="Prometheus metrics")
    def metrics(request: Request) -> Response:
        ctx: ServiceContext = request.app.state.context
        if ctx.relay is not None:
            ctx.metrics.outbox_backlog.set(outbox_backlog(ctx.db))
        if ctx.ledger is not None:
            ctx.metrics.ledger_records.set(ctx.ledger.tree_size())
            latest = ctx.ledger.latest_checkpoint()
            if latest is not None:
                ctx.metrics.ledger_checkpoint_age.set(max((datetime.now(UTC) - latest.made_at).total_seconds(), 0.0))
        return Response(generate_latest(ctx.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    return router


def _check(probe: Callable[[], None]) -> str:
    try:
        probe()
        return "ok"
    except Exception as exc:
        return f"failed: {exc}"

"""The prefecture server (simulated) as a FastAPI app, served only over mutual TLS.

It is not a city system: no NATS, no service tokens, no staff. Its peers are named by
their client certificates (``peers.py``); its database holds every city's forwarded
identity information and the kernel's operation log.

Serving it: ``uvicorn_options(settings)`` gives uvicorn what it needs beyond host and port
(the certificate, the key, the CA, ``CERT_REQUIRED`` and the protocol that passes the
client certificate to the app); ``python -m services.juki_prefecture.serve`` runs it so.
"""

from __future__ import annotations

import asyncio
import ssl
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from services.juki_prefecture.api import prefecture_router
from services.juki_prefecture.config import Settings
from services.juki_prefecture.models import Base
from services.juki_prefecture.peers import PeerCertificateProtocol
from shared import migrate
from shared.db import Database
from shared.errors import Unavailable
from shared.http import OperationLogMiddleware, install_problem_handlers, problem_response
from shared.models import KernelBase
from shared.observability import Metrics, RequestContextMiddleware, configure_logging
from shared.oplog import OperationLog
from shared.pki import tls_files
from shared.service import open_database

MIGRATIONS = Path(__file__).parent / "migrations"


@dataclass
class PrefectureContext:
    """What the routes need (``settings`` is where ``shared.serve`` finds host and port)."""

    settings: Settings
    db: Database
    oplog: OperationLog
    metrics: Metrics

    @property
    def principal(self):
        return self.settings.principal


def uvicorn_options(settings: Settings) -> dict[str, Any]:
    """uvicorn's arguments beyond host and port: HTTPS only, client certificates required."""
    files = tls_files(settings.data_dir, settings.principal)
    return {
        "ssl_certfile": str(files.certificate),
        "ssl_keyfile": str(files.private_key),
        "ssl_ca_certs": str(files.ca_certificate),
        "ssl_cert_reqs": ssl.CERT_REQUIRED,
        "http": PeerCertificateProtocol,
    }


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    configure_logging(settings.service, settings.city, settings.log_level)
    db = open_database(settings)
    ctx = PrefectureContext(settings, db, OperationLog(db), Metrics())

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        await asyncio.to_thread(migrate.upgrade, db, MIGRATIONS, [KernelBase.metadata, Base.metadata])
        try:
            yield
        finally:
            db.dispose()

    app = FastAPI(title="都道府県サーバ — Juki-net prefecture server (simulated)", lifespan=lifespan, version="0.1.0")
    app.state.context = ctx
    install_problem_handlers(app)
    app.add_middleware(OperationLogMiddleware, oplog=ctx.oplog)
    app.add_middleware(RequestContextMiddleware, metrics=ctx.metrics)
    app.include_router(_health_router())
    app.include_router(prefecture_router())
    return app


def _health_router() -> APIRouter:
    router = APIRouter(tags=["operations"])

    @router.get("/livez", summary="The process is alive")
    def livez() -> dict:
        return {"status": "alive"}

    @router.get("/readyz", summary="The server can serve: its database answers")
    def readyz(request: Request) -> Response:
        ctx: PrefectureContext = request.app.state.context
        try:
            ctx.db.ping()
        except Exception as exc:
            return problem_response(Unavailable("not ready", checks={"database": f"failed: {exc}"}), "/readyz")
        return JSONResponse({"status": "ready", "principal": str(ctx.principal), "checks": {"database": "ok"}})

    @router.get("/metrics", summary="Prometheus metrics")
    def metrics(request: Request) -> Response:
        ctx: PrefectureContext = request.app.state.context
        return Response(generate_latest(ctx.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    return router

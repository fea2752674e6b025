"""Logs, metrics and request ids: what operators watch.

Logs are JSON lines (structlog) carrying the service, the city and the request id.
Metrics live in one registry per service so that several apps in one process (as in
tests) do not collide.
"""

from __future__ import annotations

import logging
import sys
import time
import uuid

import structlog
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

REQUEST_ID_HEADER = "X-Request-ID"


def configure_logging(service: str, city: str | None, level: str = "INFO") -> None:
    """JSON lines on stderr, for structlog and for the standard library's loggers (uvicorn's too)."""
    shared_processors = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    structlog.configure(
        processors=[*shared_processors, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=shared_processors,
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.format_exc_info,
                structlog.processors.JSONRenderer(ensure_ascii=False),
            ],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "alembic"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    structlog.contextvars.bind_contextvars(service=service, city=city)


class Metrics:
    """The Prometheus metrics every service exposes on ``/metrics``."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.http_requests = Counter(
            "renkei_http_requests", "HTTP requests served", ["method", "route", "status"], registry=self.registry
        )
        self.http_latency = Histogram(
            "renkei_http_request_duration_seconds", "HTTP request latency", ["method", "route"], registry=self.registry
        )
        self.bus_requests = Counter(
            "renkei_bus_requests", "Bus requests answered", ["operation", "outcome"], registry=self.registry
        )
        self.bus_latency = Histogram(
            "renkei_bus_request_duration_seconds", "Bus request handling time", ["operation"], registry=self.registry
        )
        self.outbox_backlog = Gauge(
            "renkei_outbox_backlog", "Outbox messages not yet stored by JetStream", registry=self.registry
        )
        self.ready = Gauge("renkei_ready", "1 when the service is ready", registry=self.registry)
        self.consumer_pending = Gauge(
            "renkei_consumer_pending", "Events not yet delivered to this service's durable consumer (JetStream consumer lag)", ["event"], registry=self.registry
        )
        self.consumer_redeliveries = Counter(
            "renkei_consumer_redeliveries", "Events JetStream delivered again to this service", ["event"], registry=self.registry
        )
        self.ledger_records = Gauge("renkei_ledger_records", "Records in the service's provision-record ledger", registry=self.registry)
        self.ledger_checkpoint_age = Gauge(
            "renkei_ledger_checkpoint_age_seconds", "Age of the ledger's latest signed checkpoint", registry=self.registry
        )
        self.provision_records = Counter(
            "renkei_provision_records",
            "Provision records appended: queries, answers, provisions, permits and their refusals, by item",
            ["kind", "outcome", "item"],
            registry=self.registry,
        )

    def observe_records(self, records) -> None:
        """Count provision records once their batch is committed (``Ledger.observer``)."""
        for record in records:
            self.provision_records.labels(record.kind, record.outcome, record.item_code).inc()

    def observe_bus(self, operation: str, outcome: str, seconds: float) -> None:
        self.bus_requests.labels(operation, outcome).inc()
        self.bus_latency.labels(operation).observe(seconds)


class RequestContextMiddleware:
    """Gives every HTTP request an id (kept from the caller's header if it sent one) and
    measures it. A plain ASGI middleware: no extra task and stream per request."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self._metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = Headers(scope=scope).get(REQUEST_ID_HEADER) or uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id
        structlog.contextvars.bind_contextvars(request_id=request_id)
        started = time.perf_counter()
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = MutableHeaders(scope=message)
                headers[REQUEST_ID_HEADER] = request_id
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            route = scope.get("route")
            path = getattr(route, "path", "unmatched")
            method = scope["method"]
            self._metrics.http_requests.labels(method, path, str(status)).inc()
            self._metrics.http_latency.labels(method, path).observe(time.perf_counter() - started)
            structlog.contextvars.unbind_contextvars("request_id")

"""One round of probes over the whole stack, as ``/api/overview`` returns it.

Every member is asked in parallel for ``/readyz`` and ``/metrics`` and pinged over the bus;
NATS is read from its monitoring endpoint; each ledger's checkpoint and the intermediate
servers' queues are asked over the bus. A member that does not answer is "down", one that
answers ``/readyz`` with anything but 200 "not ready". Overviews asked for within
``refresh_seconds`` of each other share one round, so several open pages cost no more.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import httpx

from services.ops_console import features, ledgers, metrics, nats_monitor, topology
from services.ops_console.config import Settings
from services.ops_console.members import Member, MembersUnavailable, StackMembers, load_members
from shared.contracts.system import PingRequest
from shared.errors import Problem
from shared.pki import tls_files
from shared.service import ServiceContext
from shared.trust import Principal


class Collector:
    def __init__(self, ctx: ServiceContext) -> None:
        self.ctx = ctx
        self._previous: dict[str, metrics.Scrape] = {}
        self._lock = asyncio.Lock()
        self._cached: tuple[float, dict[str, Any]] | None = None

    @property
    def settings(self) -> Settings:
        return self.ctx.settings  # type: ignore[return-value]

    async def overview(self) -> dict[str, Any]:
        async with self._lock:
            if self._cached and time.monotonic() - self._cached[0] < self.settings.refresh_seconds:
                return self._cached[1]
            result = await self._collect()
            self._cached = (time.monotonic(), result)
            return result

    async def _collect(self) -> dict[str, Any]:
        settings = self.settings
        try:
            stack = load_members(settings.members_path())
        except MembersUnavailable as exc:
            stack, problem = StackMembers([], [], None, None), str(exc)
        else:
            problem = None
        monitor_url = settings.nats_monitor_url or stack.nats_monitor_url
        async with httpx.AsyncClient(timeout=settings.scrape_timeout_seconds, verify=self._verify(stack)) as client:
            services, nats, ledger_rows, city_features = await asyncio.gather(
                asyncio.gather(*(self._service(client, m) for m in stack.services)),
                self._nats(client, monitor_url),
                asyncio.gather(*(self._ledger(m) for m in stack.services)),
                asyncio.gather(*(self._features(city) for city in stack.cities)),
            )
        live = {m.principal for m in stack.services}
        self._previous = {k: v for k, v in self._previous.items() if k in live}
        return {
            "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "members_file": str(settings.members_path()),
            "problem": problem,
            "cities": stack.cities,
            "services": list(services),
            "nats": nats,
            "ledgers": [row for row in ledger_rows if row is not None],
            "intermediate_server": [{"city": city, "features": rows} for city, rows in zip(stack.cities, city_features)],
            "topology": topology.build(stack.services, stack.cities, self.ctx.registry),
            "idle_minutes": settings.staff_idle_minutes,
        }

    def _verify(self, stack: StackMembers):
        """Services of other organisations speak only HTTPS with client certificates."""
        if any(m.url.startswith("https") for m in stack.services):
            try:
                return tls_files(self.settings.data_dir, self.ctx.principal).client_context()
            except OSError:
                return True
        return True

    async def _service(self, client: httpx.AsyncClient, member: Member) -> dict[str, Any]:
        row: dict[str, Any] = {
            "principal": member.principal,
            "service": member.service,
            "city": member.city,
            "url": member.url,
            "state": "down",
            "detail": "",
            "requests_per_second": None,
            "error_ratio": None,
            "p95_ms": None,
            "outbox_backlog": None,
            "bus": None,
        }
        ready, bus = await asyncio.gather(self._ready(client, member), self._ping(member))
        row["state"], row["detail"] = ready
        row["bus"] = bus
        if row["state"] == "down":
            self._previous.pop(member.principal, None)
            return row
        try:
            response = await client.get(f"{member.url}/metrics")
            response.raise_for_status()
            scrape = metrics.parse(response.text, time.monotonic())
        except (httpx.HTTPError, ValueError) as exc:
            row["detail"] = row["detail"] or f"metrics: {_reason(exc)}"
            return row
        figures = metrics.rates(self._previous.get(member.principal), scrape)
        self._previous[member.principal] = scrape
        row["requests_per_second"] = figures.requests_per_second
        row["error_ratio"] = figures.error_ratio
        row["p95_ms"] = None if figures.p95_seconds is None else figures.p95_seconds * 1000
        if self.ctx.registry.published_by(member.service):  # the gauge reads 0 in services without an outbox
            row["outbox_backlog"] = scrape.outbox_backlog
        return row

    async def _ready(self, client: httpx.AsyncClient, member: Member) -> tuple[str, str]:
        try:
            response = await client.get(f"{member.url}/readyz")
        except httpx.HTTPError as exc:
            return "down", _reason(exc)
        if response.status_code == 200:
            return "ready", ""
        try:
            checks = response.json().get("checks") or {}
        except ValueError:
            checks = {}
        failing = ", ".join(f"{name}: {state}" for name, state in checks.items() if state != "ok")
        return "not_ready", failing or f"/readyz answered {response.status_code}"

    async def _ping(self, member: Member) -> str | None:
        """The bus path to the member: its ping, through NATS, its token check and its allowlist."""
        operation = self.ctx.registry.operations.get(f"{member.service}.ping")
        if operation is None or member.principal == str(self.ctx.principal):
            return None
        try:
            await self.ctx.bus.request(
                operation, member.city, PingRequest(nonce=uuid.uuid4().hex), timeout=self.settings.scrape_timeout_seconds
            )
        except Problem as problem:
            return problem.detail or problem.title
        return "ok"

    async def _nats(self, client: httpx.AsyncClient, monitor_url: str | None) -> dict[str, Any]:
        if not monitor_url:
            return {"reachable": False, "url": None, "error": "no NATS monitoring URL: set RENKEI_NATS_MONITOR_URL"}
        return await nats_monitor.probe(client, monitor_url)

    async def _ledger(self, member: Member) -> dict[str, Any] | None:
        if member.service == self.ctx.principal.service:
            return None
        principal = Principal(member.service, member.city)
        if ledgers.checkpoint_operation(self.ctx.registry, member.service) is None and member.service != "intermediate_server":
            return None  # only the intermediate servers are expected to keep one; others show when they offer it
        result = await ledgers.latest(
            self.ctx.bus, self.ctx.registry, self.ctx.directory, principal, timeout=self.settings.scrape_timeout_seconds
        )
        return {"principal": member.principal, "city": member.city, **result}

    async def _features(self, city: str) -> list[dict[str, Any]]:
        return await features.read(self.ctx.bus, self.ctx.registry, city, self.settings.scrape_timeout_seconds)


def _reason(exc: Exception) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__

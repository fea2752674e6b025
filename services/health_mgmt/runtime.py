"""What the health management runs beside its API: two background jobs, one set per app.

- ``copies``: sends the people noted in ``copy_outbox`` to the intermediate server's
  provision database (副本), see ``copies.py``;
- ``move_in``: takes the doses of answered move-in queries into the register, see
  ``move_in.py``.

Each job runs a step now and again whenever it is woken (after a commit that gave it work)
or every ``job_idle_seconds``; a step that did a full batch is followed by the next at
once; a failed step (the intermediate server away, the database away) is retried after a
pause that doubles up to ``job_retry_max_seconds``. Nothing is lost meanwhile: the work is
in the database until a step finishes it. The kernel starts the jobs (``ServiceSpec.jobs``)
and cancels them at shutdown.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from weakref import WeakKeyDictionary

import structlog

from services.health_mgmt.config import Settings
from services.health_mgmt.copies import CopySender
from services.health_mgmt.move_in import MoveInTaker
from shared.db import Database
from shared.service import ServiceContext

log = structlog.get_logger("renkei.health_mgmt")

_RUNTIMES: WeakKeyDictionary[Database, HealthRuntime] = WeakKeyDictionary()
FIRST_RETRY_SECONDS = 0.25


def runtime_of(ctx: ServiceContext) -> HealthRuntime:
    """The runtime of the app whose context this is (one per database, made on first use)."""
    runtime = _RUNTIMES.get(ctx.db)
    if runtime is None:
        runtime = _RUNTIMES[ctx.db] = HealthRuntime(ctx)
    return runtime


class Job:
    """A step run until there is nothing left, then on wake-up or every ``idle`` seconds."""

    def __init__(self, name: str, step: Callable[[], Awaitable[int]], full: int, idle: float, retry_max: float) -> None:
        self.name = name
        self._step = step
        self._full = full
        self._idle = idle
        self._retry_max = retry_max
        self._wake = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self.failures = 0
        self.last_error: str | None = None

    def wake(self) -> None:
        """Ask for a prompt step; safe from any thread (routes and event handlers run in workers)."""
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self._wake.set)

    async def run(self) -> None:
        self._loop = asyncio.get_running_loop()
        while True:
            try:
                done = await self._step()
                self.failures, self.last_error = 0, None
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.failures += 1
                self.last_error = str(exc) or type(exc).__name__
                pause = min(self._retry_max, FIRST_RETRY_SECONDS * 2 ** min(self.failures, 16))
                log.warning("job paused", job=self.name, error=self.last_error, retry_in=pause, failures=self.failures)
                await asyncio.sleep(pause)
                continue
            if done < self._full:
                try:
                    await asyncio.wait_for(self._wake.wait(), timeout=self._idle)
                except TimeoutError:
                    pass
                self._wake.clear()


class HealthRuntime:
    def __init__(self, ctx: ServiceContext) -> None:
        settings: Settings = ctx.settings  # type: ignore[assignment]
        self.ctx = ctx
        self.sender = CopySender(ctx, settings.copy_batch, settings.intermediate_timeout_seconds)
        self.copies = Job("copies", self.sender.step, self.sender.batch, settings.job_idle_seconds, settings.job_retry_max_seconds)
        self.taker = MoveInTaker(ctx, timeout=settings.intermediate_timeout_seconds, on_registered=self.copies.wake)
        self.move_in = Job("move_in", self.taker.step, self.taker.batch, settings.job_idle_seconds, settings.job_retry_max_seconds)


def copies_job(ctx: ServiceContext):
    return runtime_of(ctx).copies.run()


def move_in_job(ctx: ServiceContext):
    return runtime_of(ctx).move_in.run()

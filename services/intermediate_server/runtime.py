"""What one tenant's intermediate server holds while it runs, and its background jobs.

- the answer key pair (``DATA/keys/intermediate_server@<city>.hpke-*.pem``) and its key
  statement, signed with the server's Ed25519 key;
- the client of the hub, the network listener, the provision-record recorder;
- the jobs, each recorded in ``batch_runs`` for system management: ``registration`` (tell
  the hub where to reach this server and which key to seal to; fetch and verify the list),
  ``symbols`` (obtain queued symbols), ``deliveries`` (answers released after review),
  ``retention`` (delete finished and abandoned query results, M21).
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from datetime import datetime
from typing import Any

import structlog
from sqlalchemy import select
from sqlalchemy.orm import Session

from services.intermediate_server import permitted
from services.intermediate_server.config import Settings
from services.intermediate_server.hub_client import HubClient
from services.intermediate_server.listener import NetworkListener
from services.intermediate_server.models import BatchRun
from shared.contracts.network import (
    HUB_PRINCIPAL,
    KEY_STATEMENT_LABEL,
    KeyStatement,
    PermittedQuery,
    Registration,
    SignedKeyStatement,
    SignedPermittedList,
)
from shared.crypto import SUITE_NAME, AnswerKeyPair, sign_document
from shared.errors import Unavailable
from shared.group_commit import GroupCall, GroupCommit
from shared.ledger.recorder import Recorder
from shared.models import utcnow
from shared.pki import tls_files
from shared.service import ServiceContext, stop_tasks
from shared.trust import signing_key

log = structlog.get_logger("renkei.intermediate_server")

_RUNTIMES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
IDLE_POLL_SECONDS = 5.0
MAX_RETRY_SECONDS = 30.0


def runtime_of(ctx: ServiceContext) -> Runtime:
    """The runtime of the app whose context this is (one per database, made on first use)."""
    runtime = _RUNTIMES.get(ctx.db)
    if runtime is None:
        runtime = _RUNTIMES[ctx.db] = Runtime(ctx)
    return runtime



class Runtime:
    def __init__(self, ctx: ServiceContext) -> None:
        settings: Settings = ctx.settings  # type: ignore[assignment]
        if not settings.city:
            raise ValueError("the intermediate server serves one city: set RENKEI_CITY")
        self.ctx = ctx
        self.settings = settings
        self.tenant: str = settings.city
        self.tls = tls_files(settings.data_dir, ctx.principal)
        self.answer_keys = AnswerKeyPair.load_or_create(settings.data_dir, ctx.principal)
        self.key_statement = self._sign_key_statement()
        self.hub = HubClient(settings.hub_url, ctx.credentials, self.tls, settings.hub_timeout_seconds)
        self.listener: NetworkListener | None = None
        self.registered = asyncio.Event()
        self._recorder: Recorder | None = None
        self._list: SignedPermittedList | None = None
        self._tasks: set[asyncio.Task] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wakes: dict[str, asyncio.Event] = {}
        self._groups: dict[Callable, GroupCommit | GroupCall] = {}

    def _sign_key_statement(self) -> SignedKeyStatement:
        statement = KeyStatement(
            principal=str(self.ctx.principal),
            suite=SUITE_NAME,
            public_key=self.answer_keys.public_b64,
            key_id=self.answer_keys.key_id,
            created_at=utcnow().replace(microsecond=0),
        )
        key = signing_key(self.settings.data_dir, self.ctx.principal)
        return SignedKeyStatement(statement=statement, signature=sign_document(key, KEY_STATEMENT_LABEL, statement.model_dump(mode="json")))

    @property
    def recorder(self) -> Recorder:
        if self._recorder is None:
            self._recorder = Recorder(self.ctx.require_ledger())
        return self._recorder

    def group_commit(self, write_many: Callable[[Runtime, Session, Sequence[Any]], Sequence[Any]]) -> GroupCommit:
        """The group commit of ``write_many(runtime, session, items)`` on this server (made on
        first use): concurrent queries share the transaction of a batch instead of waiting for
        one each, and share it with the server's other writes (``shared.group_commit``)."""
        group = self._groups.get(write_many)
        if group is None:
            group = self._groups[write_many] = GroupCommit(self.ctx.db.engine, lambda session, items: write_many(self, session, items))
        return group

    def group_read(self, read_many: Callable[[Runtime, Sequence[Any]], Sequence[Any]]) -> GroupCall:
        """The batched read ``read_many(runtime, items)`` (made on first use, run through
        ``Database.read``): what is asked while a read is on its way is read together in the next."""
        group = self._groups.get(read_many)
        if group is None:

            async def read(items: list) -> Sequence[Any]:
                return await self.ctx.db.read(read_many, self, items)

            group = self._groups[read_many] = GroupCall(read)
        return group

    # -- the permitted-query list --------------------------------------------------------

    def list_rows(self) -> list[PermittedQuery]:
        """This tenant's copy of the list (empty until the hub's signed list has been received)."""
        if self._list is None:
            with self.ctx.db.reading() as session:  # a snapshot: callers may hold a write transaction
                self._list = permitted.load(session, self.tenant)
        return list(self._list.document.rows) if self._list else []

    # -- lifecycle -----------------------------------------------------------------------

    async def start(self, network_app) -> None:
        from services.intermediate_server import delivery, querying, retention, symbol_jobs

        self._loop = asyncio.get_running_loop()
        self.listener = NetworkListener(network_app, self.tls, self.settings.network_host, self.settings.network_port)
        await self.listener.start()
        log.info("network listener ready", url=self.listener.url)
        self.spawn(self._job("registration", self.register, self.settings.registration_interval_seconds, wait_registered=False))
        self.spawn(self._job("symbols", lambda: symbol_jobs.fetch_all(self), IDLE_POLL_SECONDS))
        self.spawn(self._job("deliveries", lambda: delivery.deliver_all(self), IDLE_POLL_SECONDS))
        self.spawn(self._job("retention", lambda: retention.sweep(self), self.settings.sweep_interval_seconds, wait_registered=False))
        self.spawn(querying.resume(self))

    async def stop(self) -> None:
        await stop_tasks(list(self._tasks))
        self._tasks.clear()
        if self.listener is not None:
            await self.listener.stop()
        await self.hub.close()

    def spawn(self, coroutine: Coroutine) -> asyncio.Task:
        task = asyncio.create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def wake(self, job: str) -> None:
        """Ask a job to run now; safe from any thread (event handlers run in workers)."""
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._wake_event(job).set)

    def _wake_event(self, job: str) -> asyncio.Event:
        event = self._wakes.get(job)
        if event is None:
            event = self._wakes[job] = asyncio.Event()
        return event

    async def _job(self, name: str, run: Callable[[], Awaitable[object]], interval: float, wait_registered: bool = True) -> None:
        """Run ``run`` now and then every ``interval`` (or when woken), retrying failures with a growing pause."""
        failures = 0
        wake = self._wake_event(name)
        while True:
            if wait_registered and not self.registered.is_set():
                await self.registered.wait()
            started = utcnow()
            try:
                await run()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                failures += 1
                pause = min(MAX_RETRY_SECONDS, 0.25 * 2 ** min(failures, 8))
                log.warning("job failed", job=name, error=str(exc), retry_in=pause)
                await asyncio.to_thread(self._note_run, name, started, str(exc))
                await asyncio.sleep(pause)
                continue
            failures = 0
            await asyncio.to_thread(self._note_run, name, started, None)
            try:
                await asyncio.wait_for(wake.wait(), timeout=interval)
            except TimeoutError:
                pass
            wake.clear()

    def _note_run(self, name: str, started: datetime, error: str | None) -> None:
        with self.ctx.db.session() as session:
            row = session.get(BatchRun, (self.tenant, name)) or BatchRun(tenant=self.tenant, name=name, runs=0)
            row.last_run_at = started
            row.runs = (row.runs or 0) + 1
            row.last_error = error[:2000] if error else None
            if error is None:
                row.last_success_at = started
            session.merge(row)

    def batch_rows(self) -> list[BatchRun]:
        with self.ctx.db.session() as session:
            return list(session.scalars(select(BatchRun).where(BatchRun.tenant == self.tenant).order_by(BatchRun.name)))

    # -- registration --------------------------------------------------------------------

    async def register(self) -> None:
        """Tell the hub where to reach this server and which key to seal to; take its list."""
        if not self.hub.configured:
            raise Unavailable("no hub is configured (RENKEI_HUB_URL)")
        assert self.listener is not None
        await self.hub.register(self.tenant, Registration(network_url=self.listener.url, answer_key=self.key_statement))
        document = await self.hub.permitted_list()
        permitted.verified(document, self.ctx.directory.public_key(HUB_PRINCIPAL))

        def keep() -> None:
            with self.ctx.db.session() as session:
                permitted.store(session, self.tenant, document)

        await asyncio.to_thread(keep)
        self._list = document
        if not self.registered.is_set():
            log.info("registered with the hub", list_version=document.document.version)
        self.registered.set()

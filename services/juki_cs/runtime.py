"""What the community server holds while it runs: the 4-item index, the prefecture link and
the forwarder, one set per app.

The index (``FourItemIndex``) is built from the database at start-up and then follows the
database: a change updates it only after the change's transaction has committed, under a
lock that also covers the start-up load, so the index never shows what the database does
not hold and never misses what it does. Searches take the same lock: the index has one
writer at a time and readers must not see it half-changed.
"""

from __future__ import annotations

import asyncio
import gc
import threading
from weakref import WeakKeyDictionary

import structlog
from sqlalchemy import event
from sqlalchemy.orm import Session

from services.juki_cs import identity
from services.juki_cs.config import MUNICIPALITIES, Settings
from services.juki_cs.forwarding import Forwarder
from services.juki_cs.matching import Candidate, FourItemIndex, FourItemQuery
from services.juki_cs.prefecture import PrefectureClient
from shared.db import Database
from shared.errors import Unavailable
from shared.pki import tls_files
from shared.service import ServiceContext, stop_tasks

log = structlog.get_logger("renkei.juki_cs")

_RUNTIMES: WeakKeyDictionary[Database, JukiRuntime] = WeakKeyDictionary()


def runtime_of(ctx: ServiceContext) -> JukiRuntime:
    """The runtime of the app whose context this is (one per database, made on first use)."""
    runtime = _RUNTIMES.get(ctx.db)
    if runtime is None:
        runtime = _RUNTIMES[ctx.db] = JukiRuntime(ctx)
    return runtime


class JukiRuntime:
    def __init__(self, ctx: ServiceContext) -> None:
        settings: Settings = ctx.settings  # type: ignore[assignment]
        self.ctx = ctx
        self.settings = settings
        self.city: str = settings.city or ""
        own = settings.municipality_name
        self.municipality_prefixes: tuple[str, ...] = (own,) if own else ()
        # Other cities' addresses carry their own municipality: drop any the suite knows.
        self.all_municipalities: tuple[str, ...] = tuple(dict.fromkeys([*self.municipality_prefixes, *MUNICIPALITIES.values()]))
        self.index = self._new_index()
        self._lock = threading.Lock()
        self.ready = False
        self.prefecture: PrefectureClient | None = None
        if settings.prefecture_url:
            files = tls_files(settings.data_dir, settings.principal)
            self.prefecture = PrefectureClient(settings.prefecture_url, files, self.city, settings.prefecture_timeout_seconds)
        self.forwarder = Forwarder(ctx.db, self.prefecture, settings.forward_batch, settings.forward_retry_max_seconds)
        self._tasks: list[asyncio.Task] = []

    def _new_index(self) -> FourItemIndex:
        return FourItemIndex(municipality_prefixes=self.municipality_prefixes)

    # -- lifecycle -----------------------------------------------------------------------

    async def start(self) -> None:
        await asyncio.to_thread(self.load_index)
        self.ready = True
        if self.prefecture is None:
            log.warning("no prefecture server configured: changes wait in prefecture_forwarding")
        self._tasks.append(asyncio.create_task(self.forwarder.run(), name="prefecture-forwarder"))

    async def stop(self) -> None:
        await stop_tasks(self._tasks)
        self._tasks.clear()
        if self.prefecture is not None:
            await self.prefecture.close()

    def load_index(self) -> None:
        """Build the index from every resident on file."""
        with self._lock:
            index = self._new_index()
            index.add_all(identity.resident_people(self.ctx.db))
            self.index = index
        # The index lives as long as the process: keep the collector from rescanning it.
        gc.collect()
        gc.freeze()
        log.info("4-item index built", people=len(index))

    # -- changes -------------------------------------------------------------------------

    def apply_change(self, session: Session, change) -> None:
        """The event handler: apply in the caller's transaction, follow in the index after commit."""
        applied = identity.apply_change(session, change)
        if applied is not None:
            event.listen(session, "after_commit", lambda _session: self._committed(applied), once=True)

    def _committed(self, applied: identity.Applied) -> None:
        with self._lock:
            if applied.is_resident:
                self.index.add(identity.person_of(applied.record))
            elif applied.record.resident_code in self.index:
                self.index.remove(applied.record.resident_code)
        self.forwarder.wake()

    def enqueued(self) -> None:
        """Rows were added to the forwarding table outside a change (a repair)."""
        self.forwarder.wake()

    # -- searching -----------------------------------------------------------------------

    def require_ready(self) -> None:
        if not self.ready:
            raise Unavailable("the 4-item index is still being built")

    def search(self, query: FourItemQuery, limit: int) -> list[Candidate]:
        self.require_ready()
        with self._lock:
            return self.index.search(query, limit=limit)

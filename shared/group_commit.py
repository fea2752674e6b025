"""Many concurrent callers, one call per batch: ``GroupCall`` and its database form ``GroupCommit``.

Each caller hands in one item and waits; items arriving while a batch is being handled go
together into the next one, so concurrent requests share a network round trip
(``GroupCall``) or a transaction (``GroupCommit``: every group commit of a database shares
that database's one line) instead of queueing for one each. Under light load a
batch holds one item and nothing waits for a timer. ``submit`` returns only once its
batch is done: a group commit acknowledges nothing before it is durable. A batch that fails
as a whole fails each of its callers with the error; a call may also fail single items by
returning an exception in their place.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Generic, TypeVar

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from shared.db import may_run_on_loop

Item = TypeVar("Item")
Result = TypeVar("Result")

#: Items per batch unless a call says otherwise (a network batch is bounded by its contract).
BATCH_LIMIT = 500


class _Queue:
    """What waits on one event loop (tests run several loops in one process)."""

    def __init__(self) -> None:
        self.pending: list[tuple[object, asyncio.Future]] = []
        self.flusher: asyncio.Task | None = None  # the one task sending batches, while there are any


class GroupCall(Generic[Item, Result]):
    """``call_many`` gets the items of a batch and returns one result per item, in order (an
    exception in an item's place fails that caller alone). One batch at a time: what is asked
    meanwhile goes in the next, so batches grow with the load (two at a time was measured to
    make smaller batches and cost more per item than the overlap saved)."""

    def __init__(
        self,
        call_many: Callable[[list[Item]], Awaitable[Sequence[Result | BaseException]]],
        max_batch: int = BATCH_LIMIT,
    ) -> None:
        self._call_many = call_many
        self._max_batch = max_batch
        self._queues: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Queue] = weakref.WeakKeyDictionary()

    async def submit(self, item: Item) -> Result:
        return await self._enqueue(item)

    async def submit_many(self, items: Sequence[Item]) -> list[Result | BaseException]:
        """Each item's result, or the exception that failed it (the items may share a batch)."""
        return await asyncio.gather(*(self._enqueue(item) for item in items), return_exceptions=True)

    def _enqueue(self, item: Item) -> asyncio.Future:
        loop = asyncio.get_running_loop()
        queue = self._queues.get(loop)
        if queue is None:
            queue = self._queues[loop] = _Queue()
        future = loop.create_future()
        queue.pending.append((item, future))
        if queue.flusher is None:
            queue.flusher = loop.create_task(self._flush(queue))
        return future

    async def _flush(self, queue: _Queue) -> None:
        try:
            while queue.pending:
                batch, queue.pending = queue.pending[: self._max_batch], queue.pending[self._max_batch :]
                try:
                    results = await self._call_many([item for item, _ in batch])
                    if len(results) != len(batch):
                        raise ValueError(f"{len(results)} results for a batch of {len(batch)}")
                except asyncio.CancelledError:  # the loop is going away: so is what waits on it
                    for _, future in batch + queue.pending:
                        future.cancel()
                    queue.pending = []
                    raise
                except Exception as exc:  # each caller learns it rather than wait for ever
                    for _, future in batch:
                        if not future.done():
                            future.set_exception(exc)
                    continue
                for (_, future), result in zip(batch, results, strict=True):
                    if future.done():
                        continue
                    if isinstance(result, BaseException):
                        future.set_exception(result)
                    else:
                        future.set_result(result)
        finally:
            queue.flusher = None


class GroupCommit(Generic[Item, Result]):
    """``write_many(session, items)`` in its database's transaction line: whatever any group
    commit of that database has waiting when a transaction starts goes into it.

    On SQLite every write takes the file's one write lock anyway, so separate lines would
    only queue behind each other; one line makes one transaction (one ``BEGIN``, one
    ``COMMIT`` and its sync, at most one hand-off to a worker thread) of what several would make.
    ``write_many`` must not commit: the line commits once all its writers have run. If the
    shared transaction fails, each writer runs again in a transaction of its own, so that one
    writer's failure fails its own callers only.
    """

    def __init__(self, engine: Engine, write_many: Callable[[Session, Sequence[Item]], Sequence[Result]]) -> None:
        self._line = transaction_line(engine)
        self._write_many = write_many

    async def submit(self, item: Item) -> Result:
        return await self._line.submit((self._write_many, item))

    async def submit_many(self, items: Sequence[Item]) -> list[Result | BaseException]:
        return await self._line.submit_many([(self._write_many, item) for item in items])


Writer = Callable[[Session, Sequence[Any]], Sequence[Any]]


class TransactionLine(GroupCall[tuple[Writer, Any], Any]):
    """The one line of group commits of an engine (``transaction_line``)."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._sessions = sessionmaker(engine, expire_on_commit=False)
        super().__init__(self._write)

    async def _write(self, items: list[tuple[Writer, Any]]) -> Sequence[Any]:
        # On SQLite, when no other writer of this process holds the file, the batch runs on the
        # event loop: its statements and the WAL sync take less than handing it to a worker
        # thread costs (measured: 13–15 % of the CPU of a secured move-in query). A batch that
        # would wait for another writer or for a connection, and every batch on a server
        # database, goes to a worker thread, so that the loop never waits on a lock or a round trip.
        if may_run_on_loop(self._engine, writes=True):
            return self._write_all(items)
        return await asyncio.to_thread(self._write_all, items)

    def _write_all(self, items: list[tuple[Writer, Any]]) -> list[Any]:
        by_writer: dict[Writer, list[int]] = {}
        for at, (writer, _) in enumerate(items):
            by_writer.setdefault(writer, []).append(at)
        results: list[Any] = [None] * len(items)
        try:
            with self._sessions.begin() as session:
                for writer, positions in by_writer.items():
                    self._run(session, writer, positions, items, results)
            return results
        except Exception:
            if len(by_writer) == 1:
                raise
        for writer, positions in by_writer.items():  # each alone: a failure fails its own callers
            try:
                with self._sessions.begin() as session:
                    self._run(session, writer, positions, items, results)
            except Exception as exc:
                for at in positions:
                    results[at] = exc
        return results

    @staticmethod
    def _run(session: Session, writer: Writer, positions: list[int], items: list[tuple[Writer, Any]], results: list[Any]) -> None:
        written = writer(session, [items[at][1] for at in positions])
        if len(written) != len(positions):
            raise ValueError(f"{len(written)} results for a batch of {len(positions)}")
        for at, result in zip(positions, written, strict=True):
            results[at] = result


_LINES: weakref.WeakKeyDictionary[Engine, TransactionLine] = weakref.WeakKeyDictionary()


def transaction_line(engine: Engine) -> TransactionLine:
    """The transaction line of ``engine`` (made on first use, one per engine)."""
    line = _LINES.get(engine)
    if line is None:
        line = _LINES[engine] = TransactionLine(engine)
    return line

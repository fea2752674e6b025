"""Many concurrent callers, one call per batch: ``GroupCall`` and its database form ``GroupCommit``.

Each caller hands in one item and waits; items arriving while a batch is being handled go
together into the next one, so concurrent requests share a transaction (``GroupCommit``) or
a network round trip (``GroupCall``) instead of queueing for one each. Under light load a
batch holds one item and nothing waits for a timer. ``submit`` returns only once its
batch is done: a group commit acknowledges nothing before it is durable. A batch that fails
as a whole fails each of its callers with the error; a call may also fail single items by
returning an exception in their place.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

Item = TypeVar("Item")
Result = TypeVar("Result")

MAX_BATCH = 500


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
        max_batch: int = MAX_BATCH,
    ) -> None:
        self._call_many = call_many
        self._max_batch = max_batch
        self._queues: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Queue] = weakref.WeakKeyDictionary()

    async def submit(self, item: Item) -> Result:
        loop = asyncio.get_running_loop()
        queue = self._queues.get(loop)
        if queue is None:
            queue = self._queues[loop] = _Queue()
        future = loop.create_future()
        queue.pending.append((item, future))
        if queue.flusher is None:
            queue.flusher = loop.create_task(self._flush(queue))
        return await future

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


class GroupCommit(GroupCall[Item, Result]):
    """One transaction per batch: ``write_many`` runs in a worker thread, one batch at a time."""

    def __init__(self, write_many: Callable[[Sequence[Item]], Sequence[Result]], max_batch: int = MAX_BATCH) -> None:
        async def in_thread(items: list[Item]) -> Sequence[Result]:
            return await asyncio.to_thread(write_many, items)

        super().__init__(in_thread, max_batch)

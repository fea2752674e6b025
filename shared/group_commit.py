"""``GroupCommit``: many concurrent writers, one transaction per batch.

Each caller hands in one item and waits; items arriving while a batch is being written go
together into the next one, so concurrent requests share a commit instead of queueing for
one each. ``submit`` returns only once its batch is committed: nothing is acknowledged
before it is durable. A batch that fails is written not at all, and each of its callers
gets the error.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

Item = TypeVar("Item")
Result = TypeVar("Result")

MAX_BATCH = 500


class _Queue:
    """What waits on one event loop (tests run several loops in one process)."""

    def __init__(self) -> None:
        self.pending: list[tuple[object, asyncio.Future]] = []
        self.flushing = False
        self.task: asyncio.Task | None = None


class GroupCommit(Generic[Item, Result]):
    def __init__(self, write_many: Callable[[Sequence[Item]], Sequence[Result]], max_batch: int = MAX_BATCH) -> None:
        self._write_many = write_many  # runs in a worker thread; one result per item, in order
        self._max_batch = max_batch
        self._queues: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Queue] = weakref.WeakKeyDictionary()

    async def submit(self, item: Item) -> Result:
        loop = asyncio.get_running_loop()
        queue = self._queues.get(loop)
        if queue is None:
            queue = self._queues[loop] = _Queue()
        future = loop.create_future()
        queue.pending.append((item, future))
        if not queue.flushing:
            queue.flushing = True
            queue.task = loop.create_task(self._flush(queue))
        return await future

    async def _flush(self, queue: _Queue) -> None:
        try:
            while queue.pending:
                batch, queue.pending = queue.pending[: self._max_batch], queue.pending[self._max_batch :]
                try:
                    results = await asyncio.to_thread(self._write_many, [item for item, _ in batch])
                    if len(results) != len(batch):
                        raise ValueError(f"{len(results)} results for a batch of {len(batch)}")
                except Exception as exc:  # each caller learns it rather than wait for ever
                    for _, future in batch:
                        if not future.done():
                            future.set_exception(exc)
                    continue
                for (_, future), result in zip(batch, results, strict=True):
                    if not future.done():
                        future.set_result(result)
        finally:
            queue.flushing = False

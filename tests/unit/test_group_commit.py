"""Group commit: concurrent callers share batches, and nobody hears of success before it."""

from __future__ import annotations

import asyncio
import threading

import pytest

from shared.group_commit import GroupCommit


def test_concurrent_items_share_batches_and_each_caller_gets_its_own_result():
    batches: list[list[int]] = []
    first_batch_started, release_first_batch = threading.Event(), threading.Event()

    def write_many(items):
        batches.append(list(items))
        if len(batches) == 1:  # hold the first batch until the others have queued behind it
            first_batch_started.set()
            release_first_batch.wait(10)
        return [item * 10 for item in items]

    async def scenario():
        group = GroupCommit(write_many)
        first = asyncio.create_task(group.submit(0))
        await asyncio.to_thread(first_batch_started.wait, 10)
        others = [asyncio.create_task(group.submit(n)) for n in range(1, 6)]
        await asyncio.sleep(0)
        release_first_batch.set()
        return await first, await asyncio.gather(*others)

    first, others = asyncio.run(scenario())
    assert (first, others) == (0, [10, 20, 30, 40, 50])
    assert batches == [[0], [1, 2, 3, 4, 5]]


def test_a_failed_batch_fails_every_caller_in_it_and_the_next_batch_still_runs():
    calls = 0

    def write_many(items):
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("disk full")
        return list(items)

    async def scenario():
        group = GroupCommit(write_many)
        failed = await asyncio.gather(group.submit("a"), group.submit("b"), return_exceptions=True)
        return failed, await group.submit("c")

    failed, later = asyncio.run(scenario())
    assert [type(f) for f in failed] == [RuntimeError, RuntimeError]
    assert later == "c"


def test_a_writer_that_returns_the_wrong_number_of_results_fails_its_callers_rather_than_leave_them_waiting():
    async def scenario():
        return await GroupCommit(lambda items: []).submit("x")

    with pytest.raises(ValueError):
        asyncio.run(scenario())

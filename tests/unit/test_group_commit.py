"""Group commit: concurrent callers share batches (a database's writers share its transactions),
and nobody hears of success before it."""

from __future__ import annotations

import asyncio
import threading

import pytest

from shared.group_commit import GroupCall, GroupCommit


@pytest.fixture
def engine(tmp_path):
    from sqlalchemy import text

    from shared.db import make_engine

    engine = make_engine(f"sqlite:///{tmp_path / 'line.sqlite3'}")
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE written (writer TEXT, item INTEGER UNIQUE)"))
    yield engine
    engine.dispose()


def _writer(name: str, fail_on: int | None = None):
    """A write function storing (name, item) rows; it fails on ``fail_on`` after writing."""
    from sqlalchemy import text

    def write_many(session, items):
        for item in items:
            session.execute(text("INSERT INTO written VALUES (:w, :i)"), {"w": name, "i": item})
        if fail_on in items:
            raise RuntimeError(f"{name} cannot take {fail_on}")
        return [item * 10 for item in items]

    return write_many


def _stored(engine) -> list[tuple[str, int]]:
    from sqlalchemy import text

    with engine.connect() as conn:
        return sorted(tuple(row) for row in conn.execute(text("SELECT writer, item FROM written")))


def _count_commits(engine) -> list[int]:
    from sqlalchemy import event

    commits = [0]
    event.listen(engine, "commit", lambda _conn: commits.__setitem__(0, commits[0] + 1))
    return commits


def test_concurrent_items_share_batches_and_each_caller_gets_its_own_result(engine):
    batches: list[list[int]] = []

    def write_many(session, items):
        batches.append(list(items))
        return [item * 10 for item in items]

    async def scenario():
        group = GroupCommit(engine, write_many)
        first = await group.submit(0)
        others = await asyncio.gather(*(group.submit(n) for n in range(1, 6)))
        return first, others

    first, others = asyncio.run(scenario())
    assert (first, others) == (0, [10, 20, 30, 40, 50])
    assert batches == [[0], [1, 2, 3, 4, 5]]


def test_a_batch_that_would_wait_for_another_writer_waits_in_a_worker_thread_not_on_the_loop(engine):
    from sqlalchemy import text

    threads: list[bool] = []
    insert = _writer("line")

    def write_many(session, items):
        threads.append(threading.current_thread() is threading.main_thread())
        return insert(session, items)

    async def scenario():
        group = GroupCommit(engine, write_many)
        await group.submit(1)  # nobody else writing: on the loop
        held, release = threading.Event(), threading.Event()

        def other_writer():  # e.g. a copy import of the same process, in its own transaction
            with engine.begin() as conn:
                conn.execute(text("INSERT INTO written VALUES ('import', 99)"))
                held.set()
                release.wait(10)

        importing = asyncio.create_task(asyncio.to_thread(other_writer))
        await asyncio.to_thread(held.wait, 10)
        waiting = asyncio.create_task(group.submit(2))  # behind the import
        await asyncio.sleep(0.05)
        loop_free = not waiting.done()  # the loop answers while the batch waits for the lock
        release.set()
        await importing
        return loop_free, await waiting

    loop_free, written = asyncio.run(scenario())
    assert loop_free and written == 20
    assert threads == [True, False]
    assert _stored(engine) == [("import", 99), ("line", 1), ("line", 2)]


def test_the_group_commits_of_one_database_share_its_transactions(engine):
    commits = _count_commits(engine)

    async def scenario():
        queries, records = GroupCommit(engine, _writer("queries")), GroupCommit(engine, _writer("records"))
        return await asyncio.gather(queries.submit(1), records.submit(2), queries.submit(3), records.submit(4))

    assert asyncio.run(scenario()) == [10, 20, 30, 40]
    assert _stored(engine) == [("queries", 1), ("queries", 3), ("records", 2), ("records", 4)]
    assert commits == [1]  # one transaction for both writers' items


def test_a_writer_failing_in_a_shared_transaction_fails_its_own_callers_and_the_others_still_commit(engine):
    async def scenario():
        queries, records = GroupCommit(engine, _writer("queries", fail_on=3)), GroupCommit(engine, _writer("records"))
        return await asyncio.gather(queries.submit(1), records.submit(2), queries.submit(3), return_exceptions=True)

    first, recorded, failed = asyncio.run(scenario())
    assert recorded == 20
    assert [type(first), type(failed)] == [RuntimeError, RuntimeError]  # the failing writer's whole batch
    assert _stored(engine) == [("records", 2)]  # nothing of the failed batch, all of the other


def test_a_failed_batch_fails_every_caller_in_it_and_the_next_batch_still_runs(engine):
    calls = 0

    def write_many(session, items):
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("disk full")
        return list(items)

    async def scenario():
        group = GroupCommit(engine, write_many)
        failed = await asyncio.gather(group.submit("a"), group.submit("b"), return_exceptions=True)
        return failed, await group.submit("c")

    failed, later = asyncio.run(scenario())
    assert [type(f) for f in failed] == [RuntimeError, RuntimeError]
    assert later == "c"


def test_a_writer_that_returns_the_wrong_number_of_results_fails_its_callers_rather_than_leave_them_waiting(engine):
    async def scenario():
        return await GroupCommit(engine, lambda session, items: []).submit("x")

    with pytest.raises(ValueError):
        asyncio.run(scenario())


def test_a_call_may_fail_single_items_and_the_others_get_their_results():
    async def call_many(items):
        return [ValueError(f"no {item}") if item % 2 else item for item in items]

    async def scenario():
        group = GroupCall(call_many)
        return await asyncio.gather(*(group.submit(n) for n in range(4)), return_exceptions=True)

    results = asyncio.run(scenario())
    assert results[0] == 0 and results[2] == 2
    assert [str(results[1]), str(results[3])] == ["no 1", "no 3"]


def test_one_batch_is_on_its_way_at_a_time_and_what_comes_meanwhile_goes_together_in_the_next():
    running, most, batches = 0, 0, []

    async def call_many(items):
        nonlocal running, most
        running += 1
        most = max(most, running)
        batches.append(list(items))
        await asyncio.sleep(0.05)
        running -= 1
        return [item * 10 for item in items]

    async def scenario():
        group = GroupCall(call_many)
        first = []
        for n in range(2):  # the first on its way alone before the second is asked
            first.append(asyncio.create_task(group.submit(n)))
            await asyncio.sleep(0.01)
        later = [asyncio.create_task(group.submit(n)) for n in range(2, 7)]
        return await asyncio.gather(*first, *later)

    assert asyncio.run(scenario()) == [0, 10, 20, 30, 40, 50, 60]
    assert most == 1
    assert batches == [[0], [1, 2, 3, 4, 5, 6]]  # what came while the first was out went together


def test_the_hub_client_sends_queries_in_one_line_per_provider_so_a_slow_provider_holds_up_only_its_own():
    from types import SimpleNamespace

    from services.intermediate_server.hub_client import HubClient

    def query(provider: str, query_id: str):
        permit = SimpleNamespace(provider=provider, query_id=query_id)
        return SimpleNamespace(permit=SimpleNamespace(permit=permit))

    async def scenario():
        slow_provider_answers = asyncio.Event()
        sent: list[list[str]] = []

        async def send_many(queries):
            sent.append([q.permit.permit.query_id for q in queries])
            if queries[0].permit.permit.provider == "112216":
                await slow_provider_answers.wait()
            return [q.permit.permit.query_id for q in queries]

        client = HubClient("https://hub.invalid", credentials=None, tls=SimpleNamespace(client_context=None), timeout=1)
        client._send_many = send_many
        slow = asyncio.create_task(client.send(query("112216", "a")))
        await asyncio.sleep(0.01)
        waiting = asyncio.create_task(client.send(query("112216", "b")))  # behind "a", in Soka's line
        other = await asyncio.wait_for(client.send(query("112020", "c")), 1)
        held = (slow.done(), waiting.done())
        slow_provider_answers.set()
        return other, held, await slow, await waiting, sent

    other, held, first, second, sent = asyncio.run(scenario())
    assert other == "c" and held == (False, False)
    assert (first, second) == ("a", "b")
    assert sent == [["a"], ["c"], ["b"]]


def test_callers_of_a_cancelled_batch_are_cancelled_rather_than_left_waiting():
    async def scenario():
        started = asyncio.Event()

        async def call_many(items):
            started.set()
            await asyncio.sleep(10)
            return items

        group = GroupCall(call_many)
        waiting = [asyncio.create_task(group.submit(n)) for n in range(2)]
        await started.wait()
        later = asyncio.create_task(group.submit(2))  # queued behind the batch on its way
        await asyncio.sleep(0)
        group._queues[asyncio.get_running_loop()].flusher.cancel()
        return await asyncio.gather(*waiting, later, return_exceptions=True)

    results = asyncio.run(scenario())
    assert [type(r) for r in results] == [asyncio.CancelledError] * 3

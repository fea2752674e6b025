"""Each service has a database of its own: a SQLite file, or a PostgreSQL schema."""

from __future__ import annotations

import asyncio
import threading
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import text

from shared import migrate
from shared.db import SQLITE_MAX_OVERFLOW, SQLITE_POOL_SIZE, Database, connection_is_free, database_url, schema_name
from shared.group_commit import GroupCommit
from shared.oplog import Actor, Entry, OperationLog


def test_sqlite_files_are_per_service_and_city(tmp_path):
    a = database_url(tmp_path, "health_mgmt", "112224")
    b = database_url(tmp_path, "health_mgmt", "112216")
    hub = database_url(tmp_path, "provision_network", None)
    assert len({a, b, hub}) == 3
    assert hub.endswith(str(Path("global") / "provision_network.sqlite3"))


def test_sqlite_runs_in_wal_mode(tmp_path):
    db = Database(database_url(tmp_path, "juki_cs", "112224"))
    with db.engine.connect() as conn:
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1


def test_schema_names_refuse_injection():
    assert schema_name("health_mgmt", "112224") == "health_mgmt_112224"
    with pytest.raises(ValueError):
        schema_name('x"; drop schema public; --', None)


def test_services_sharing_a_postgresql_database_see_only_their_own_schema(database_url):
    if database_url.startswith("sqlite"):
        pytest.skip("schemas are a PostgreSQL matter; SQLite gives each service its own file")
    health = Database(database_url, schema_name("health_mgmt", "112224"))
    juki = Database(database_url, schema_name("juki_cs", "112224"))
    for db in (health, juki):
        migrate.upgrade(db)
    OperationLog(health).record(Entry(Actor("staff-1", "staff"), "http", "people.read", "ok", person_key="P-1"))
    assert [e.person_key for e in OperationLog(health).entries()] == ["P-1"]
    assert OperationLog(juki).entries() == []
    with health.engine.connect() as conn:
        assert conn.execute(text("SELECT current_schema()")).scalar() == "health_mgmt_112224"


def test_migrations_are_idempotent(database_url):
    db = Database(database_url)
    migrate.upgrade(db)
    migrate.upgrade(db)
    with db.engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM alembic_version")).scalar() == 1


def test_work_inside_a_savepoint_commits_only_with_its_transaction(database_url):
    # The consumer reads its inbox, applies the event in a savepoint, then writes the inbox
    # row: if the transaction fails after the savepoint, nothing of it may remain.
    db = Database(database_url)
    with db.engine.begin() as conn:
        conn.execute(text("CREATE TABLE applied (id INTEGER PRIMARY KEY)"))
    with pytest.raises(RuntimeError), db.session() as session:
        session.execute(text("SELECT count(*) FROM applied"))
        with session.begin_nested():
            session.execute(text("INSERT INTO applied (id) VALUES (1)"))
        raise RuntimeError("fails before the inbox row is written")
    with db.engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM applied")).scalar() == 0


def test_two_sqlite_writers_that_read_first_do_not_fail(tmp_path):
    import threading

    db = Database(database_url(tmp_path, "juki_cs", "112224"))
    with db.engine.begin() as conn:
        conn.execute(text("CREATE TABLE counter (n INTEGER)"))
        conn.execute(text("INSERT INTO counter VALUES (0)"))
    errors: list[Exception] = []

    def bump() -> None:
        try:
            for _ in range(50):
                with db.session() as session:
                    n = session.execute(text("SELECT n FROM counter")).scalar()
                    session.execute(text("UPDATE counter SET n = :n"), {"n": n + 1})
        except Exception as exc:  # a lost update or a busy snapshot would show here
            errors.append(exc)

    threads = [threading.Thread(target=bump) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    with db.engine.connect() as conn:
        assert conn.execute(text("SELECT n FROM counter")).scalar() == 200


@contextmanager
def _a_writer_holding(db: Database, statement: str):
    """While inside: another thread's transaction has run ``statement`` and holds the write lock."""
    holding, release = threading.Event(), threading.Event()

    def writer() -> None:
        with db.session() as session:
            session.execute(text(statement))
            holding.set()
            release.wait(10)

    thread = threading.Thread(target=writer)
    thread.start()
    assert holding.wait(5), "the writer did not take the lock"
    try:
        yield
    finally:
        release.set()
        thread.join()


def test_readiness_does_not_wait_for_a_writer(tmp_path):
    db = Database(database_url(tmp_path, "welfare_address", "112224"))
    with db.engine.begin() as conn:
        conn.execute(text("CREATE TABLE busy (n INTEGER)"))
    with _a_writer_holding(db, "INSERT INTO busy VALUES (1)"):
        finished = threading.Event()
        threading.Thread(target=lambda: (db.ping(), finished.set())).start()
        assert finished.wait(2), "the ping waited for the writer's lock"


def test_a_read_from_the_loop_runs_on_it_on_sqlite_and_in_a_worker_thread_on_a_server_database(database_url):
    """On SQLite it sees the last commit and does not wait for a writer holding the file."""
    db = Database(database_url)
    with db.engine.begin() as conn:
        conn.execute(text("CREATE TABLE seen (n INTEGER)"))
        conn.execute(text("INSERT INTO seen VALUES (1)"))

    def count(asked: str) -> tuple[str, int, str]:
        with db.reading() as session:
            return asked, session.execute(text("SELECT count(*) FROM seen")).scalar(), threading.current_thread().name

    async def scenario():
        # The writer lets go only once this returns: on SQLite a read that waited for it would
        # fail with "database is locked" after the busy timeout.
        return await db.read(count, "how many"), threading.current_thread().name

    try:
        with _a_writer_holding(db, "INSERT INTO seen VALUES (2)"):
            (asked, seen, reader), loop_thread = asyncio.run(scenario())
    finally:
        db.dispose()
    assert (asked, seen) == ("how many", 1)  # the snapshot: the writer had not committed
    assert (reader == loop_thread) is database_url.startswith("sqlite")


@pytest.mark.parametrize("through", ["a read", "a group commit"])
def test_on_sqlite_the_loop_hands_its_work_to_a_thread_while_every_connection_is_in_use(tmp_path, through):
    """Work that runs on the event loop when a connection is free waits for one in a worker
    thread when none is, and the loop runs on meanwhile."""
    db = Database(database_url(tmp_path, "welfare_address", "112224"))
    with db.engine.begin() as conn:
        conn.execute(text("CREATE TABLE seen (n INTEGER)"))
        conn.execute(text("INSERT INTO seen VALUES (1)"))
    held = [db.engine.connect() for _ in range(SQLITE_POOL_SIZE + SQLITE_MAX_OVERFLOW)]
    assert not connection_is_free(db.engine)

    def read() -> tuple[int, str]:
        with db.reading() as session:
            return session.execute(text("SELECT count(*) FROM seen")).scalar(), threading.current_thread().name

    def write(session, items) -> list[tuple[int, str]]:
        session.execute(text("INSERT INTO seen VALUES (2)"))
        return [(session.execute(text("SELECT count(*) FROM seen")).scalar(), threading.current_thread().name) for _ in items]

    async def scenario():
        ticks = 0

        async def tick() -> None:
            nonlocal ticks
            while True:
                ticks += 1
                await asyncio.sleep(0.01)

        ticker = asyncio.create_task(tick())
        threading.Timer(0.3, held.pop().close).start()  # a connection comes back
        done = await (db.read(read) if through == "a read" else GroupCommit(db.engine, write).submit("x"))
        ticker.cancel()
        return done, ticks, threading.current_thread().name

    try:
        (seen, worker), ticks, loop_thread = asyncio.run(scenario())
    finally:
        for conn in held:
            conn.close()
        db.dispose()
    assert seen == (1 if through == "a read" else 2)
    assert worker != loop_thread and ticks >= 10  # the loop went on ticking while the work waited
    assert connection_is_free(db.engine)


def test_sqlite_writers_of_one_process_take_turns_and_each_turn_ends_with_its_connection(tmp_path):
    """Writers in several threads and through two engines on one file all commit; a connection
    that commits and writes again keeps its turn; nobody is left waiting."""
    import threading

    from sqlalchemy import text

    from shared.db import make_engine

    url = f"sqlite:///{tmp_path / 'line.sqlite3'}"
    first, second = make_engine(url), make_engine(url)
    with first.begin() as conn:
        conn.execute(text("CREATE TABLE t (n INTEGER)"))

    def write(engine, start: int) -> None:
        for n in range(start, start + 20):
            with engine.connect() as conn:
                conn.execute(text("INSERT INTO t VALUES (:n)"), {"n": n})
                conn.commit()
                conn.execute(text("INSERT INTO t VALUES (:n)"), {"n": -n})
                conn.commit()

    threads = [threading.Thread(target=write, args=(engine, 100 * i)) for i, engine in enumerate([first, second, first, second])]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    with first.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM t")).scalar() == 4 * 20 * 2
    first.dispose()
    second.dispose()

"""Databases: one per service per city.

SQLite (WAL) under the data folder by default; PostgreSQL when a URL is configured,
with one schema per service and city so that no service reads another's tables.
"""

from __future__ import annotations

import asyncio
import functools
import re
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Engine, Row, Table, create_engine, event, make_url, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import QueuePool

from shared.sqlite_writers import WriterLine, writer_line_is_free

T = TypeVar("T")

_SCHEMA_SAFE = re.compile(r"^[a-z_][a-z0-9_]*$")


def schema_name(service: str, city: str | None) -> str:
    """The PostgreSQL schema that holds one service's tables for one city."""
    name = f"{service}_{city}" if city else service
    if not _SCHEMA_SAFE.match(name):
        raise ValueError(f"not a safe schema name: {name!r}")
    return name


def database_url(data_dir: Path, service: str, city: str | None, base_url: str | None = None) -> str:
    """The URL of a service's own database.

    Without ``base_url`` it is a SQLite file ``DATA/db/<city or 'global'>/<service>.sqlite3``;
    with a PostgreSQL ``base_url`` it is that database, and ``make_engine`` confines the
    service to its own schema.
    """
    if base_url:
        return base_url
    folder = Path(data_dir) / "db" / (city or "global")
    folder.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{folder / f'{service}.sqlite3'}"


#: On SQLite, the connections an engine keeps, and how many more it opens while all are in use.
SQLITE_POOL_SIZE, SQLITE_MAX_OVERFLOW = 5, 10


def make_engine(url: str, schema: str | None = None, **kwargs) -> Engine:
    """An engine for ``url``; on PostgreSQL every connection is confined to ``schema``."""
    if url.startswith("sqlite"):
        in_memory = make_url(url).database in (None, "", ":memory:")
        pool = {} if in_memory or "poolclass" in kwargs else {"pool_size": SQLITE_POOL_SIZE, "max_overflow": SQLITE_MAX_OVERFLOW}
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30}, **pool, **kwargs)
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _sqlite_begin(WriterLine(engine)))
        return engine
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    engine = create_engine(url, pool_pre_ping=True, **kwargs)
    if schema:
        event.listen(engine, "connect", _search_path(schema))
        with engine.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))
    return engine


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    # The driver's own transaction handling begins a transaction only at the first write and
    # lets a SAVEPOINT or RELEASE outside it commit on its own: it would split one unit of work
    # in two. Take it out of the driver's hands; ``_sqlite_begin`` begins every transaction.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    # FULL: a commit survives a power cut too, as JetStream's sync_interval: always does.
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


SQLITE_BEGIN = "sqlite_begin"


def connection_is_free(engine: Engine) -> bool:
    """Whether ``engine``'s pool hands out a connection at once (one is idle, or another may
    still be opened) rather than after one comes back: what may run on the event loop must not
    wait for that. A check, not a reservation: a worker thread may take the last connection
    between it and the checkout, and the loop then waits for one as it would without it."""
    pool = engine.pool
    if not isinstance(pool, QueuePool):
        return True  # a memory database's pool (one connection per thread) makes nobody wait
    return pool.checkedin() > 0 or pool.checkedout() < pool.size() + SQLITE_MAX_OVERFLOW


def may_run_on_loop(engine: Engine, writes: bool = False) -> bool:
    """Whether work on ``engine`` may run on the event loop rather than in a worker thread: on
    SQLite, when it need not wait for a connection nor, if it ``writes``, for another writer of
    this process (it then costs less than a hand-off to a thread); never on a server database,
    where every statement is a round trip."""
    if engine.dialect.name != "sqlite":
        return False
    return connection_is_free(engine) and (not writes or writer_line_is_free(engine))


def _sqlite_begin(line: WriterLine):
    """Begin each transaction explicitly; IMMEDIATE (the write lock at once, after this
    process's earlier writers: ``shared.sqlite_writers``) unless the connection asks
    otherwise with ``execution_options(sqlite_begin="BEGIN")`` for a read-only snapshot.
    Taking the lock at once means a transaction that reads and then writes never fails on a
    snapshot another writer made stale meanwhile."""

    def begin(conn) -> None:
        statement = conn.get_execution_options().get(SQLITE_BEGIN, "BEGIN IMMEDIATE")
        if statement != "BEGIN":
            line.enter(conn)
        conn.exec_driver_sql(statement)

    return begin


def _search_path(schema: str):
    def connect(dbapi_connection, _record) -> None:
        autocommit = dbapi_connection.autocommit
        dbapi_connection.autocommit = True
        with dbapi_connection.cursor() as cursor:
            cursor.execute(f'SET search_path TO "{schema}"')
        dbapi_connection.autocommit = autocommit

    return connect


class Database:
    """A service's database: its engine and a session factory."""

    def __init__(self, url: str, schema: str | None = None) -> None:
        self.url = url
        self.engine = make_engine(url, schema)
        self.is_sqlite = url.startswith("sqlite")
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session in one transaction: committed on success, rolled back on error."""
        with self._sessions.begin() as session:
            yield session

    @contextmanager
    def reading(self) -> Iterator[Session]:
        """A session that only reads: on SQLite a snapshot that waits for no writer (``BEGIN``,
        not ``IMMEDIATE``), rolled back at the end."""
        with self.engine.connect().execution_options(**{SQLITE_BEGIN: "BEGIN"}) as conn, Session(conn, expire_on_commit=False) as session:
            yield session

    async def read(self, read: Callable[..., T], *args: Any) -> T:
        """``read(*args)``, which only reads (through ``reading``), from the event loop. On
        SQLite it runs on the loop: a WAL snapshot waits for no writer, and a read costs less
        than handing it to a worker thread; but when every connection of the pool is in use it
        goes to a worker thread, which waits for one to come back (the loop would still wait
        while SQLite recovers or resets its WAL). On a server database it runs in a worker
        thread, so that the loop never waits on a round trip."""
        if may_run_on_loop(self.engine):
            return read(*args)
        return await asyncio.to_thread(read, *args)

    def ping(self) -> None:
        """The database answers (a read: it does not wait for writers)."""
        with self.engine.connect().execution_options(**{SQLITE_BEGIN: "BEGIN"}) as conn:
            conn.execute(text("SELECT 1"))

    def dispose(self) -> None:
        self.engine.dispose()


def insert_ignoring_conflicts(session: Session, table: Table, values: dict) -> bool:
    """``INSERT … ON CONFLICT DO NOTHING`` on SQLite or PostgreSQL; true when a row went in.

    Whether it went in is read from ``RETURNING`` (a row comes back only for an insert),
    as drivers do not all report a row count for this statement.
    """
    key = next(iter(table.primary_key.columns)).name
    return session.execute(_insert_ignoring(session.get_bind().dialect.name, table, key), values).first() is not None


def insert_ignoring_conflicts_many(session: Session, table: Table, rows: list[dict], key: str) -> set:
    """``insert_ignoring_conflicts`` of many rows in one statement: the ``key`` column's value
    of each row that went in (rows must not repeat a key among themselves)."""
    if not rows:
        return set()
    return set(session.execute(_insert_ignoring(session.get_bind().dialect.name, table, key), rows).scalars())


@functools.cache
def _insert_ignoring(dialect: str, table: Table, key: str):
    """The statement, built once per table: only its parameters change from row to row."""
    insert = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}.get(dialect)
    if insert is None:
        raise NotImplementedError(f"no insert-or-ignore for {dialect}")
    return insert(table).on_conflict_do_nothing().returning(table.c[key])


def rows_for(session: Session, statement, keys: Iterable, **params) -> list[Row]:
    """The rows of ``statement`` for ``keys``, bound to its expanding ``keys`` parameter with
    ``params``: one statement for a batch's look-ups, and none for no keys."""
    asked = list(keys)
    return list(session.execute(statement, {**params, "keys": asked})) if asked else []

"""One writer at a time per SQLite file in this process, waiting in line rather than polling.

Every write transaction on SQLite begins IMMEDIATE (``shared.db``): it takes the file's write
lock at once. A second writer that finds it taken is left to SQLite's busy handler, which
sleeps and retries at growing intervals (1, 2, 5, … up to 100 ms): under load the writers of
one service queue behind those sleeps while the lock sits free. So the threads of one
process first take a lock of their own for the file, and the next in line starts the moment
the previous writer's connection goes back to the pool, after its commit or rollback. Other
processes writing the same file still meet SQLite's own lock, as before.
"""

from __future__ import annotations

import threading

from sqlalchemy import Connection, Engine, event

#: How long a writer waits in line before leaving the wait to SQLite's busy handler: the
#: line must never be what keeps a writer out (as ``busy_timeout`` in ``shared.db``).
WAIT_SECONDS = 30.0

_HOLDS = "renkei_sqlite_writer"
_lines: dict[str, threading.Lock] = {}
_lines_guard = threading.Lock()


def writer_line_is_free(engine: Engine) -> bool:
    """Whether no writer of this process holds ``engine``'s file at this moment."""
    lock = _lines.get(engine.url.database or ":memory:")
    return lock is None or not lock.locked()


class WriterLine:
    """The line of an engine's writers (shared by every engine of this process on the file)."""

    def __init__(self, engine: Engine) -> None:
        with _lines_guard:
            self._lock = _lines.setdefault(engine.url.database or ":memory:", threading.Lock())
        event.listen(engine.pool, "checkin", self._leave)

    def enter(self, conn: Connection) -> None:
        """Wait for the turn of ``conn``, which is about to begin a write transaction."""
        info = conn.connection.info
        if info.get(_HOLDS):
            return  # its turn lasts until the connection goes back to the pool
        if self._lock.acquire(timeout=WAIT_SECONDS):
            info[_HOLDS] = True

    def _leave(self, _dbapi_connection, record) -> None:
        if record is not None and record.info.pop(_HOLDS, False):
            self._lock.release()

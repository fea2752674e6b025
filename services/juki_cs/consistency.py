"""Consistency check of identity information with the prefecture server (整合性確認, CS function 6).

Neither side sends its records. The code space of resident codes (11 digits) is a tree of
prefixes; both sides compute, for a prefix, the number of records under it and a digest
over their (resident code, record digest) pairs (``shared.contracts.juki.range_digest``).
The CS asks for the digests of the root; where a digest differs it asks for the ten
children, and so on; a differing range small enough (or a single code) is settled by
exchanging the record digests in it. Cost: about ten digests per level per difference,
a few levels deep, instead of one record per person.
"""

from __future__ import annotations

import asyncio
import bisect
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Protocol

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from services.juki_cs.identity import SNAPSHOT, record_of
from services.juki_cs.models import ConsistencyCheck, IdentityInfo, PrefectureForwarding
from services.juki_cs.schemas import ConsistencyReport
from shared.contracts.juki import (
    MAX_PREFIXES,
    RESIDENT_CODE_LENGTH,
    RangeDigests,
    RangeEntries,
    prefix_bounds,
    range_digest,
)
from shared.db import Database
from shared.errors import NotFound
from shared.models import utcnow

DIGITS = "0123456789"
LEAF_SIZE = 8  # a differing range this small is settled by its record digests


class Ranges(Protocol):
    """The prefecture server's side of the comparison, as the CS sees it."""

    async def range_digests(self, prefixes: list[str]) -> RangeDigests: ...
    async def range_entries(self, prefixes: list[str]) -> RangeEntries: ...


@dataclass
class Differences:
    only_here: list[str] = field(default_factory=list)  # on file at the CS, absent at the prefecture
    only_there: list[str] = field(default_factory=list)  # at the prefecture, unknown to the CS
    different: list[str] = field(default_factory=list)  # both hold the person, with different contents
    records_here: int = 0
    records_there: int = 0
    rounds: int = 0
    digests_exchanged: int = 0  # range digests the prefecture sent
    records_exchanged: int = 0  # record digests the prefecture sent

    @property
    def differing(self) -> list[str]:
        return sorted({*self.only_here, *self.only_there, *self.different})


class LocalRanges:
    """The CS's own (resident code, digest) pairs, sorted, answering by prefix."""

    def __init__(self, entries: Iterable[tuple[str, str]]) -> None:
        self._entries = sorted(entries)
        self._codes = [code for code, _ in self._entries]

    @classmethod
    def load(cls, db: Database) -> LocalRanges:
        """Every (resident code, digest) pair, from one snapshot that does not hold up writers."""
        with db.engine.connect() as conn:
            rows = conn.execution_options(**SNAPSHOT).execute(select(IdentityInfo.resident_code, IdentityInfo.digest))
            return cls((code, digest) for code, digest in rows)

    def __len__(self) -> int:
        return len(self._entries)

    def _slice(self, prefix: str) -> list[tuple[str, str]]:
        low, high = prefix_bounds(prefix)
        return self._entries[bisect.bisect_left(self._codes, low) : bisect.bisect_right(self._codes, high)]

    def digest(self, prefix: str) -> tuple[int, str]:
        entries = self._slice(prefix)
        return len(entries), range_digest(entries)

    def entries(self, prefix: str) -> dict[str, str]:
        return dict(self._slice(prefix))


async def compare(local: LocalRanges, remote: Ranges, leaf_size: int = LEAF_SIZE) -> Differences:
    """Walk down the prefix tree where the two sides differ; returns the differing codes."""
    found = Differences(records_here=len(local))
    frontier = [""]
    while frontier:
        found.rounds += 1
        theirs = {r.prefix: (r.count, r.digest) for r in await _digests(remote, frontier)}
        found.digests_exchanged += len(theirs)
        if "" in theirs:
            found.records_there = theirs[""][0]
        deeper: list[str] = []
        leaves: list[str] = []
        for prefix in frontier:
            ours = local.digest(prefix)
            their_count, their_digest = theirs[prefix]
            if ours[1] == their_digest:
                continue
            if len(prefix) == RESIDENT_CODE_LENGTH or max(ours[0], their_count) <= leaf_size:
                leaves.append(prefix)
            else:
                deeper.extend(prefix + digit for digit in DIGITS)
        if leaves:
            theirs_by_code: dict[str, str] = {}
            for entries in await _entries(remote, leaves):
                theirs_by_code.update((e.resident_code, e.digest) for e in entries.entries)
                found.records_exchanged += len(entries.entries)
            ours_by_code: dict[str, str] = {}
            for prefix in leaves:
                ours_by_code.update(local.entries(prefix))
            for code in sorted(ours_by_code.keys() | theirs_by_code.keys()):
                mine, theirs_digest = ours_by_code.get(code), theirs_by_code.get(code)
                if theirs_digest is None:
                    found.only_here.append(code)
                elif mine is None:
                    found.only_there.append(code)
                elif mine != theirs_digest:
                    found.different.append(code)
        frontier = deeper
    return found


async def _digests(remote: Ranges, prefixes: list[str]):
    ranges = []
    for start in range(0, len(prefixes), MAX_PREFIXES):
        ranges.extend((await remote.range_digests(prefixes[start : start + MAX_PREFIXES])).ranges)
    return ranges


async def _entries(remote: Ranges, prefixes: list[str]) -> list[RangeEntries]:
    return [await remote.range_entries(prefixes[start : start + MAX_PREFIXES]) for start in range(0, len(prefixes), MAX_PREFIXES)]


# --- one check, recorded ------------------------------------------------------------------


def _repair(session: Session, codes: list[str]) -> int:
    """Queue this CS's current record of each code for the prefecture server again."""
    queued = 0
    for start in range(0, len(codes), 500):
        for row in session.scalars(select(IdentityInfo).where(IdentityInfo.resident_code.in_(codes[start : start + 500]))):
            session.add(PrefectureForwarding(resident_code=row.resident_code, record=record_of(row).model_dump_json()))
            queued += 1
    return queued


async def run_check(db: Database, remote: Ranges, actor: str, repair: bool = False) -> ConsistencyReport:
    """Compare with the prefecture server, record the outcome, and optionally queue repairs."""
    started = utcnow()

    local = await asyncio.to_thread(LocalRanges.load, db)
    try:
        found = await compare(local, remote)
    except Exception as exc:
        await asyncio.to_thread(_store_failure, db, actor, started, exc)
        raise

    def store() -> ConsistencyReport:
        with db.session() as session:
            repaired = _repair(session, [*found.only_here, *found.different]) if repair else 0
            row = ConsistencyCheck(actor=actor, started_at=started, outcome="pending", report="")
            session.add(row)
            session.flush()
            report = ConsistencyReport(
                id=row.id,
                outcome="consistent" if not found.differing else "differences",
                records_here=found.records_here,
                records_there=found.records_there,
                only_here=found.only_here,
                only_there=found.only_there,
                different=found.different,
                rounds=found.rounds,
                digests_exchanged=found.digests_exchanged,
                records_exchanged=found.records_exchanged,
                repaired=repaired,
                forwarding_pending=session.scalar(
                    select(func.count()).select_from(PrefectureForwarding).where(PrefectureForwarding.forwarded_at.is_(None))
                )
                or 0,
                started_at=started,
                finished_at=utcnow(),
            )
            row.outcome, row.finished_at, row.report = report.outcome, report.finished_at, report.model_dump_json()
            return report

    return await asyncio.to_thread(store)


def _store_failure(db: Database, actor: str, started, exc: Exception) -> None:
    with db.session() as session:
        session.add(ConsistencyCheck(actor=actor, started_at=started, finished_at=utcnow(), outcome="failed", report=str(exc)[:2000]))


def read_check(db: Database, check_id: int) -> ConsistencyReport:
    with db.session() as session:
        row = session.get(ConsistencyCheck, check_id)
        if row is None:
            raise NotFound(f"no consistency check {check_id}")
        if row.outcome == "failed":
            raise NotFound(f"consistency check {check_id} failed: {row.report}")
        return ConsistencyReport.model_validate_json(row.report)

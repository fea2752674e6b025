"""Asking the city's tax and welfare systems (庁内連携, flow [06]) for the fee determination (実費徴収).

For a fiscal year, every person on the register is asked about, in batches, by integrated
address number and birth date (no My Number travels): first the local-tax status
(``tax_welfare.local_tax_status``: 課税 / 非課税), then public assistance
(``tax_welfare.public_assistance_status``: 生活保護 受給). Each reply is matched with the
register as an imported file is (``fees.match_answers``), in its own transaction, and the
determinations of the people it matched are redone. Asking again when nothing changed on
either side records nothing and redoes nothing.

A city without these systems keeps importing files (``renkei import income``); a system
that does not answer ends the inquiry with ``Unavailable``, and what was matched before
stays matched.
"""

from __future__ import annotations

import asyncio
import hashlib
from dataclasses import dataclass, field
from datetime import UTC, date, datetime

from sqlalchemy import select

from services.health_mgmt import fees
from services.health_mgmt.models import Subject
from shared.contracts.tax_welfare import PersonKey, StatusRequest

#: source (as ``income_matches`` names it) → the operation of the tax and welfare systems that answers it.
OPERATIONS = {"tax": "local_tax_status", "welfare": "public_assistance_status"}
BATCH = 500


@dataclass
class SourceReport:
    """What one system answered and what came of it."""

    source: str
    asked: int = 0
    recorded: int = 0
    matched: int = 0
    unchanged: int = 0
    set_aside: dict[str, int] = field(default_factory=dict)  # outcome → count
    determined: int = 0


@dataclass
class InquiryReport:
    fiscal_year: int
    people: int
    sources: list[SourceReport]


def register_people(db) -> list[tuple[str, date]]:
    """Every person on the register, by integrated address number, with their birth date."""
    with db.session() as session:
        query = select(Subject.integrated_address_number, Subject.birth_date).order_by(Subject.integrated_address_number)
        return [(number, born) for number, born in session.execute(query)]


def reply_digest(operation_key: str, received_at: datetime, body: bytes) -> str:
    """The SHA-256 that names one reply in ``income_matches``: the operation, when it came, and its bytes."""
    return hashlib.sha256(f"{operation_key}\n{received_at.isoformat()}\n".encode() + body).hexdigest()


async def inquire(ctx, fiscal_year: int, asked_by: str, timeout: float = 30.0) -> InquiryReport:
    """Ask both systems about everyone on the register for ``fiscal_year`` and match their answers."""
    people = await asyncio.to_thread(register_people, ctx.db)
    reports = []
    for source, name in OPERATIONS.items():
        operation = ctx.registry.operation("tax_welfare", name)
        report = SourceReport(source)
        for start in range(0, len(people), BATCH):
            chunk = people[start : start + BATCH]
            asked = dict(chunk)
            request = StatusRequest(fiscal_year=fiscal_year, people=[PersonKey(integrated_address_number=n, birth_date=b) for n, b in chunk])
            reply = await ctx.bus.request(operation, ctx.settings.city, request, timeout=timeout)
            digest = reply_digest(operation.key, datetime.now(UTC), reply.model_dump_json().encode())
            answers = [fees.Answer(a.integrated_address_number, a.birth_date, a.outcome, a.status) for a in reply.answers]
            matched = await asyncio.to_thread(_match, ctx.db, source, fiscal_year, asked, answers, digest, asked_by)
            report.asked += len(chunk)
            report.recorded += matched.matched + len(matched.set_aside)
            report.unchanged += matched.rows - matched.matched - len(matched.set_aside)
            report.matched += matched.matched
            report.determined += matched.determined
            for row in matched.set_aside:
                report.set_aside[row["outcome"]] = report.set_aside.get(row["outcome"], 0) + 1
        reports.append(report)
    return InquiryReport(fiscal_year, len(people), reports)


def _match(db, source, fiscal_year, asked, answers, digest, asked_by) -> fees.MatchReport:
    with db.session() as session:
        return fees.match_answers(session, source, fiscal_year, asked, answers, digest, asked_by)

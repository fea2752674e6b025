"""What the tax and welfare systems run beside their API: the yearly assessment (年度更新).

People are assessed as the feeds make them known; a fiscal year that begins while the
systems run (or one they were never run for) is assessed for everyone already known by
this job, at start-up and then every ``assessment_check_hours``. A year is noted as done
(``years_assessed``) only once every known person was looked at, so an interrupted run is
taken up again; records already there are kept.
"""

from __future__ import annotations

import asyncio
from datetime import date

import structlog

from services.tax_welfare import records
from services.tax_welfare.config import Settings
from shared.service import ServiceContext

log = structlog.get_logger("renkei.tax_welfare")


def assess_pending_years(ctx: ServiceContext) -> list[int]:
    settings: Settings = ctx.settings  # type: ignore[assignment]
    with ctx.db.session() as session:
        pending = records.years_not_assessed(session, records.assessed_years(date.today(), settings.assessed_years))
    for year in pending:
        people = records.assess_everyone(ctx.db, settings.city, year)
        log.info("fiscal year assessed", fiscal_year=year, people=people)
    return pending


async def yearly_assessment_job(ctx: ServiceContext) -> None:
    settings: Settings = ctx.settings  # type: ignore[assignment]
    while True:
        try:
            await asyncio.to_thread(assess_pending_years, ctx)
        except Exception:  # the database away: tried again at the next check; nothing is lost meanwhile
            log.exception("yearly assessment failed")
        await asyncio.sleep(settings.assessment_check_hours * 3600)

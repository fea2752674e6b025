"""Benchmark of the reminder batch (勧奨通知) over a city of 340,000 residents.

The register (SQLite under a temporary folder) holds the synthetic population of
``bench.schedule`` (two in five children, with dose histories drawn around the standard
schedule; the rest adults, the elderly with influenza and pneumococcal doses), and the
notices of the months before (a run up to May, made during the set-up without PDFs), as
a register in use has them. The measured batch runs for June 2025 as it runs in
production: every resident read, evaluated where anything could be due, one PDF per
person with a notice, the print file, the notices recorded.

Figures, beside the baseline measured in the same run: reading the same residents and
their doses from the database without evaluating them (``baseline_iterate``). A second run
for the same period shows that nothing is sent twice, and what that costs.

Target: 340,000 residents in at most 60 s.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from collections.abc import Iterable, Sequence
from datetime import date
from pathlib import Path

from sqlalchemy import insert

from bench.schedule import population
from services.health_mgmt.app import MIGRATIONS
from services.health_mgmt.catalogue import load_catalogue
from services.health_mgmt.models import Base, Dose, Subject
from services.health_mgmt.reminders import default_workers, residents, run_batch
from services.health_mgmt.schedule import Person, RecordedDose, load_schedule
from services.health_mgmt.vouchers import voucher_number
from shared import migrate
from shared.db import Database, database_url
from shared.ids import integrated_address_number
from shared.models import KernelBase, utcnow

CITY = "112224"
PERIOD = (date(2025, 6, 1), date(2025, 6, 30))
AS_OF = date(2025, 6, 1)
_SEX = {"F": "female", "M": "male"}


def prepare(folder: Path, size: int) -> Database:
    db = Database(database_url(folder, "health_mgmt", CITY))
    migrate.upgrade(db, [MIGRATIONS], [KernelBase.metadata, Base.metadata])
    fill(db, population(size))
    return db


def fill(db: Database, people: Iterable[tuple[Person, Sequence[RecordedDose]]]) -> None:
    """Put ``people`` into the register as residents, with their doses as counter records."""
    record_types = {v.code: v.record_type for v in load_schedule().vaccines.values()}
    catalogue = load_catalogue()
    now = utcnow()
    subjects, doses = [], []
    for index, (person, history) in enumerate(people):
        number = integrated_address_number(CITY, f"{index:09d}")
        subjects.append({
            "integrated_address_number": number, "voucher_number": voucher_number(f"{index:09d}"), "resident_code": None,
            "name": "越谷　太郎", "name_kana": "コシガヤ　タロウ", "sex": _SEX[person.sex], "birth_date": person.birth_date,
            "address": "埼玉県越谷市越ヶ谷一丁目1番1号", "status": "resident",
            "heart_kidney_respiratory_disability": person.heart_kidney_respiratory_disability,
            "hiv_immune_disability": person.hiv_immune_disability, "hbv_perinatal_prophylaxis": person.hbv_perinatal_prophylaxis,
        })
        seen = set()
        for dose in history:
            record_type = record_types.get(dose.vaccine)
            if record_type is None or (record_type, dose.date) in seen:
                continue  # 五種混合 and 帯状疱疹 have no record type in 別添2
            seen.add((record_type, dose.date))
            items = {"inoculation_date": dose.date.isoformat(), "examination_type": "inoculated"}
            if "fiscal_year" in catalogue.record_type(record_type).item_code_set:
                items["fiscal_year"] = dose.date.year if dose.date.month >= 4 else dose.date.year - 1
            product = dose.product if "vaccine_product" in catalogue.record_type(record_type).item_code_set else None
            if product:
                items["vaccine_product"] = product
            doses.append({
                "subject_number": number, "record_type": record_type, "dose_date": dose.date, "examination_type": "inoculated",
                "product": product, "clinic_code": None, "billing_month": None, "commission_fee_yen": None, "source": "counter",
                "import_id": None, "items": items, "recorded_by": "bench", "recorded_at": now,
            })
    with db.session() as session:
        for start in range(0, len(subjects), 20_000):
            session.execute(insert(Subject), subjects[start : start + 20_000])
        for start in range(0, len(doses), 20_000):
            session.execute(insert(Dose), doses[start : start + 20_000])


def _iterate(db: Database) -> tuple[int, float]:
    started = time.perf_counter()
    people = sum(read for read, _ in residents(db))
    return people, time.perf_counter() - started


def run(quick: bool = False) -> dict:
    size = 3_000 if quick else 340_000
    workers = default_workers()
    with tempfile.TemporaryDirectory(prefix="renkei-bench-reminders-") as tmp:
        folder = Path(tmp)
        started = time.perf_counter()
        db = prepare(folder, size)
        earlier = run_batch(db, CITY, period_start=date(2025, 4, 1), period_end=date(2025, 5, 31), as_of=date(2025, 5, 1),
                            output=folder / "earlier", started_by="bench", workers=workers, pdf=False)
        setup_seconds = time.perf_counter() - started
        iterated, iterate_seconds = _iterate(db)

        marks: dict[str, float] = {}

        def progress(stage: str, _count: int) -> None:
            marks[stage] = time.perf_counter()

        started = batch_started = time.perf_counter()
        first = run_batch(db, CITY, period_start=PERIOD[0], period_end=PERIOD[1], as_of=AS_OF, output=folder / "out",
                          started_by="bench", workers=workers, progress=progress)
        batch_seconds = time.perf_counter() - started
        evaluated_at = marks.get("evaluated", started)
        pdfs = len(list(first.output.glob("*.pdf")))
        pdf_bytes = sum(p.stat().st_size for p in first.output.glob("*.pdf"))

        started = time.perf_counter()
        second = run_batch(db, CITY, period_start=PERIOD[0], period_end=PERIOD[1], as_of=AS_OF, output=folder / "out",
                           started_by="bench", workers=workers)
        again_seconds = time.perf_counter() - started
        db.dispose()
    evaluating_seconds = evaluated_at - batch_started
    return {
        "benchmark": "reminders",
        "quick": quick,
        "residents": size,
        "workers": workers,
        "period": f"{PERIOD[0]}..{PERIOD[1]}",
        "seconds_setup": round(setup_seconds, 1),
        "notices_before_june": earlier.notices,
        "seconds_batch": round(batch_seconds, 2),
        "residents_per_second": round(size / batch_seconds, 1),
        "notices": first.notices,
        "due_doses": first.items,
        "pdfs": pdfs,
        "pdf_kb_average": round(pdf_bytes / max(pdfs, 1) / 1024, 1),
        "seconds_evaluating": round(evaluating_seconds, 2),
        "seconds_rendering_and_recording": round(batch_seconds - evaluating_seconds, 2),
        "second_run_notices": second.notices,
        "second_run_already_sent": second.already_sent,
        "seconds_second_run": round(again_seconds, 2),
        "baseline_iterate_seconds": round(iterate_seconds, 2),
        "baseline_iterate_residents_per_second": round(iterated / iterate_seconds, 1),
        "ratio_batch_to_iterate": round(batch_seconds / iterate_seconds, 2),
        "target_seconds": 60,
        "within_target": (batch_seconds <= 60) if not quick else None,
    }


if __name__ == "__main__":
    json.dump(run(quick="--quick" in sys.argv[1:]), sys.stdout, indent=2, ensure_ascii=False)
    sys.stdout.write("\n")

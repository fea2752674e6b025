"""The clinic master (医療機関マスタ) and the commission fees (接種委託料) owed to clinics.

A clinic report row is accepted only from a clinic in the master that is active. The fee of
each record is fixed when it is stored, from the city's unit prices (``data/commission_fees.json``):
a later change of prices does not rewrite what was owed. Fees per clinic per billing month
are sums over stored records, never kept separately, so they cannot drift from the records.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from services.health_mgmt.models import Clinic, Dose
from shared.errors import InvalidRequest
from shared.models import utcnow

_CLINIC_CODE = re.compile(r"^[0-9]{10}$")
_MONTH = re.compile(r"^([0-9]{4})-(0[1-9]|1[0-2])$")


def check_clinic_code(code: str) -> str:
    """医療機関コード: ten digits (prefecture 2, fee table 1, institution 7)."""
    if not _CLINIC_CODE.match(code):
        raise InvalidRequest(f"{code!r} is not a medical institution code (10 digits)", field="code")
    return code


def check_month(month: str) -> str:
    if not _MONTH.match(month):
        raise InvalidRequest(f"{month!r} is not a month as YYYY-MM", field="billing_month")
    return month


@dataclass(frozen=True)
class FeeTable:
    inoculated: dict[str, int]
    screening_only: int

    def fee(self, record_type: str, examination_type: str) -> int | None:
        if examination_type == "screening_only":
            return self.screening_only
        return self.inoculated.get(record_type)


@lru_cache(maxsize=1)
def load_fee_table() -> FeeTable:
    text = resources.files("services.health_mgmt").joinpath("data", "commission_fees.json").read_text(encoding="utf-8")
    data = json.loads(text)
    return FeeTable(dict(data["inoculated_yen"]), int(data["screening_only_yen"]))


def put_clinic(session: Session, code: str, name: str, in_city: bool = True, active: bool = True) -> tuple[Clinic, bool]:
    """Add or change a clinic of the master; the flag says whether it is new."""
    check_clinic_code(code)
    clinic = session.get(Clinic, code)
    if clinic is None:
        clinic = Clinic(code=code, name=name, in_city=in_city, active=active, updated_at=utcnow())
        session.add(clinic)
        return clinic, True
    clinic.name, clinic.in_city, clinic.active, clinic.updated_at = name, in_city, active, utcnow()
    return clinic, False


def clinics(session: Session) -> list[Clinic]:
    return list(session.scalars(select(Clinic).order_by(Clinic.code)))


@dataclass(frozen=True)
class FeeTotal:
    clinic_code: str
    clinic_name: str
    billing_month: str
    records: int
    fee_yen: int


def fee_totals(session: Session, billing_month: str | None = None) -> list[FeeTotal]:
    """委託料 per clinic per billing month, from the stored records."""
    query = (
        select(Dose.clinic_code, Clinic.name, Dose.billing_month, func.count(Dose.id), func.coalesce(func.sum(Dose.commission_fee_yen), 0))
        .join(Clinic, Clinic.code == Dose.clinic_code)
        .where(Dose.billing_month.is_not(None))
        .group_by(Dose.clinic_code, Clinic.name, Dose.billing_month)
        .order_by(Dose.billing_month, Dose.clinic_code)
    )
    if billing_month is not None:
        query = query.where(Dose.billing_month == check_month(billing_month))
    return [FeeTotal(code, name, month, int(count), int(total)) for code, name, month, count, total in session.execute(query)]

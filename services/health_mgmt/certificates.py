"""Certificates of vaccination (接種済証, flows [09], [18], [19]): what the register holds,
certified, with a number and a record of each issue.

A certificate shows given doses only (not 予診のみ), each with the dose of its series the
schedule counts it as (``第1期``, ``2回目``), or 任意接種 when it is not a routine dose.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

from sqlalchemy import select
from sqlalchemy.orm import Session

from services.health_mgmt import documents, register
from services.health_mgmt.catalogue import load_catalogue
from services.health_mgmt.models import Certificate, Dose, Subject
from shared.errors import NotFound
from shared.models import utcnow


class NothingToCertify(NotFound):
    type = "urn:renkei:problem:health-mgmt:nothing-to-certify"
    title = "No recorded dose matches"


def _chosen(session: Session, subject: Subject, dose_ids: Sequence[int], record_types: Sequence[str]) -> list[Dose]:
    for code in record_types:
        load_catalogue().record_type(code)  # an unknown type is a 404 of its own
    doses = register.doses_of(session, subject.integrated_address_number)
    given = [d for d in doses if d.examination_type == "inoculated"]
    missing = set(dose_ids) - {d.id for d in given}
    if missing:
        raise NothingToCertify(f"no given dose of this person with id {', '.join(map(str, sorted(missing)))}")
    chosen = [d for d in given if d.id in set(dose_ids) or d.record_type in set(record_types)]
    if not chosen:
        raise NothingToCertify("this person has no given dose of the types named")
    return chosen


def issue(
    session: Session, city: str, subject: Subject, dose_ids: Sequence[int], record_types: Sequence[str], issued_by: str, today: date
) -> tuple[Certificate, bytes]:
    """Record a certificate for the chosen doses and render it."""
    chosen = _chosen(session, subject, dose_ids, record_types)
    verdicts = {
        int(e.dose.dose_id): e for e in register.evaluation(subject, register.doses_of(session, subject.integrated_address_number), today).doses
    }
    catalogue = load_catalogue()
    lines = []
    for dose in chosen:
        verdict = verdicts.get(dose.id)
        target = (verdict.target or "") if verdict and verdict.valid else "任意接種" if verdict else ""
        place = dose.items.get("inoculation_place") or dose.items.get("medical_institution_name") or ""
        lines.append(documents.CertifiedDose(catalogue.record_type(dose.record_type).name_ja, dose.dose_date, place, dose.items.get("lot_number", ""), target))
    certificate = Certificate(
        certificate_number="pending", subject_number=subject.integrated_address_number, dose_ids=[d.id for d in chosen],
        issued_by=issued_by, issued_at=utcnow(),
    )
    session.add(certificate)
    session.flush()
    certificate.certificate_number = f"{city}-{certificate.id:07d}"
    person = documents.Addressee(subject.name, subject.address, subject.birth_date, subject.voucher_number)
    return certificate, documents.vaccination_certificate(city, person, lines, certificate.certificate_number, today)


def issued_to(session: Session, number: str) -> list[Certificate]:
    return list(session.scalars(select(Certificate).where(Certificate.subject_number == number).order_by(Certificate.id)))

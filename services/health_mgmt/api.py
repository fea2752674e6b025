"""The staff terminal's HTTP API (窓口): the register, clinics and fees, statistics, exports.

Every route names the permission it needs (M06) and every read or write of a person's data
goes to the operation log with the person's integrated address number (M08). A My Number
never appears in a URL: enrolment by one is a POST. Statistics are counts with small cells
withheld (M35); exports are for supervisors and are logged (M10).
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
from datetime import date
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response
from sqlalchemy import select

from services.health_mgmt import (
    addressing,
    certificates,
    clinics,
    copies,
    fee_inquiry,
    fees,
    register,
    reminders,
    statistics,
)
from services.health_mgmt.catalogue import load_catalogue
from services.health_mgmt.models import Dose, IdentityConfirmation, ReminderRun, Subject
from services.health_mgmt.roles import (
    CERTIFY,
    CLINICS,
    COPIES,
    DETERMINE_FEES,
    ENROL,
    EXPORT,
    FEES,
    READ,
    RECORD,
    REMIND,
    STATISTICS,
)
from services.health_mgmt.runtime import runtime_of
from services.health_mgmt.schemas import (
    CertificateRequest,
    ClinicRequest,
    ClinicView,
    CopyBacklogView,
    CorrectionRequest,
    DoseRequest,
    DoseView,
    EnrolReply,
    EnrolRequest,
    FeeInquiryRequest,
    FeeInquiryView,
    FeeLine,
    FeesReply,
    ForecastView,
    ReconciliationView,
    RecordView,
    ReminderRunRequest,
    ReminderRunView,
    SubjectView,
    Verdict,
)
from shared.contracts.address import IntegratedAddressNumber
from shared.errors import Conflict
from shared.http import Audited, audit_person
from shared.staff import SignedIn, StaffMember

ENROL_OP = "health_mgmt.subject.enrol"
READ_OP = "health_mgmt.subject.read"
RECORD_OP = "health_mgmt.dose.record"
EXPORT_OP = "health_mgmt.register.export"
FEES_OP = "health_mgmt.fees.read"
STATISTICS_OP = "health_mgmt.statistics.read"
CLINICS_OP = "health_mgmt.clinics.write"
CERTIFY_OP = "health_mgmt.certificate.issue"
FEE_OP = "health_mgmt.fee_determination.read"
FEE_INQUIRY_OP = "health_mgmt.fee_determination.inquire"
REMIND_OP = "health_mgmt.reminders.run"
CORRECT_OP = "health_mgmt.dose.correct"
RECONCILE_OP = "health_mgmt.copies.reconcile"


def subject_view(subject: Subject) -> SubjectView:
    return SubjectView.model_validate(subject, from_attributes=True)


def dose_view(dose: Dose, verdict=None) -> DoseView:
    return DoseView(
        id=dose.id,
        record_type=dose.record_type,
        record_type_ja=load_catalogue().record_type(dose.record_type).name_ja,
        dose_date=dose.dose_date,
        examination_type=dose.examination_type,
        source=dose.source,
        clinic_code=dose.clinic_code,
        items=dose.items,
        verdict=verdict,
    )


def verdict_view(judged) -> Verdict:
    return Verdict(
        series=judged.series,
        valid=judged.valid,
        voluntary=judged.voluntary,
        target=judged.target,
        reasons=[{"code": r.code, "rule": r.rule, "message": r.message} for r in judged.reasons],
    )


def record_view(subject: Subject, doses: list[Dose], as_of: date) -> RecordView:
    result = register.evaluation(subject, doses, as_of)
    judged = {int(e.dose.dose_id): verdict_view(e) for e in result.doses}
    return RecordView(
        subject=subject_view(subject),
        doses=[dose_view(d, judged.get(d.id)) for d in doses],
        forecasts=[ForecastView.model_validate(f, from_attributes=True) for f in result.forecasts],
        as_of=as_of,
    )


def db(request: Request):
    return request.app.state.context.db


def router() -> APIRouter:
    api = APIRouter(tags=["register"])

    @api.post("/subjects", dependencies=[Depends(Audited(ENROL_OP))], response_model=EnrolReply, summary="Enrol a person by My Number")
    async def enrol(body: EnrolRequest, request: Request, member: SignedIn = Depends(StaffMember(ENROL))) -> EnrolReply:
        context = request.app.state.context
        await addressing.check_identity(context, body.my_number, body.identity)
        found = await addressing.identify(context, body.my_number, body.items)
        audit_person(request, found.number)
        mismatched = addressing.mismatched_items(body.items, found.items)
        if mismatched:  # M03: the My Number and the four items must name the same person
            raise Conflict(
                f"the person's {', '.join(mismatched)} differ from the address system's record of this My Number: not enrolled",
                mismatched=mismatched,
            )
        details = {
            **found.items,
            "heart_kidney_respiratory_disability": body.heart_kidney_respiratory_disability,
            "hiv_immune_disability": body.hiv_immune_disability,
            "hbv_perinatal_prophylaxis": body.hbv_perinatal_prophylaxis,
        }

        def store() -> EnrolReply:
            with context.db.session() as session:
                subject, new = register.enrol(session, found.number, details)
                session.add(
                    IdentityConfirmation(
                        subject_number=found.number, method=body.identity.method, card_check_id=getattr(body.identity, "card_check_id", None),
                        photo_id=getattr(body.identity, "photo_id", None), confirmed_by=member.user_id,
                    )
                )
                return EnrolReply(subject=subject_view(subject), enrolled=new)

        return await asyncio.to_thread(store)

    @api.get(
        "/subjects/{number}",
        dependencies=[Depends(Audited(READ_OP, person_param="number"))],
        response_model=RecordView,
        summary="A person's records and what is due",
    )
    def read(
        number: IntegratedAddressNumber, request: Request, as_of: date | None = None, member: SignedIn = Depends(StaffMember(READ))
    ) -> RecordView:
        with db(request).session() as session:
            subject = register.find_subject(session, number)
            return record_view(subject, register.doses_of(session, number), as_of or date.today())

    @api.post(
        "/subjects/{number}/doses",
        dependencies=[Depends(Audited(RECORD_OP, person_param="number"))],
        status_code=201,
        response_model=DoseView,
        summary="Record a dose at the counter (flow [13])",
    )
    def record(number: IntegratedAddressNumber, body: DoseRequest, request: Request, member: SignedIn = Depends(StaffMember(RECORD))) -> DoseView:
        checked = register.check_record(body.record_type, body.items)
        with db(request).session() as session:
            subject = register.find_subject(session, number)
            dose = register.record_dose(session, subject, checked, source="counter", recorded_by=member.user_id)
            doses = register.doses_of(session, number)
            result = register.evaluation(subject, doses, max(date.today(), dose.dose_date))
            judged = next((verdict_view(e) for e in result.doses if e.dose.dose_id == str(dose.id)), None)
            view = dose_view(dose, judged)
        runtime_of(request.app.state.context).copies.wake()
        return view

    @api.put(
        "/subjects/{number}/doses/{dose_id}",
        dependencies=[Depends(Audited(CORRECT_OP, person_param="number"))],
        response_model=DoseView,
        summary="Correct a recorded dose (same type; its items replaced, checked again)",
    )
    def correct(
        number: IntegratedAddressNumber, dose_id: int, body: CorrectionRequest, request: Request, member: SignedIn = Depends(StaffMember(RECORD))
    ) -> DoseView:
        with db(request).session() as session:
            subject = register.find_subject(session, number)
            dose = register.find_dose(session, number, dose_id)
            checked = register.check_record(dose.record_type, body.items)
            dose = register.correct_dose(session, subject, dose, checked, corrected_by=member.user_id)
            doses = register.doses_of(session, number)
            result = register.evaluation(subject, doses, max(date.today(), dose.dose_date))
            judged = next((verdict_view(e) for e in result.doses if e.dose.dose_id == str(dose.id)), None)
            view = dose_view(dose, judged)
        runtime_of(request.app.state.context).copies.wake()
        return view

    @api.get("/copies/backlog", response_model=CopyBacklogView, summary="The copy for provision (副本): what waits to be sent")
    def copy_backlog(request: Request, member: SignedIn = Depends(StaffMember(COPIES))) -> CopyBacklogView:
        context = request.app.state.context
        found = copies.backlog(context.db)
        job = runtime_of(context).copies
        return CopyBacklogView(**vars(found), failures=job.failures, job_error=job.last_error)

    @api.post(
        "/copies/reconciliations",
        dependencies=[Depends(Audited(RECONCILE_OP))],
        response_model=ReconciliationView,
        summary="Compare the copy for provision (副本) with the register and send again what differs",
    )
    async def reconcile(request: Request, member: SignedIn = Depends(StaffMember(COPIES))) -> ReconciliationView:
        context = request.app.state.context
        found = await copies.reconcile(context, context.settings.intermediate_timeout_seconds)
        if found.queued:
            runtime_of(context).copies.wake()
        audit_person(request, None, f"{RECONCILE_OP} missing={found.missing} differing={found.differing} extra={found.extra}")
        return ReconciliationView(**vars(found))

    @api.get(
        "/subjects/{number}/fee-determination",
        dependencies=[Depends(Audited(FEE_OP, person_param="number"))],
        summary="Whether the person pays the copayment of B類 vaccinations in a fiscal year (実費徴収)",
    )
    def fee_determination(
        number: IntegratedAddressNumber,
        request: Request,
        fiscal_year: Annotated[int, Query(ge=1990, le=2100)],
        member: SignedIn = Depends(StaffMember(READ)),
    ) -> dict:
        with db(request).session() as session:
            register.find_subject(session, number)
            found = fees.determination(session, number, fiscal_year)
        return {"integrated_address_number": number, **vars(found)}

    @api.post(
        "/fee-determinations/inquiries",
        dependencies=[Depends(Audited(FEE_INQUIRY_OP))],
        response_model=FeeInquiryView,
        summary="Ask the tax and welfare systems about everyone on the register and redo the fee determinations (実費徴収, flow [06])",
    )
    async def inquire_fees(body: FeeInquiryRequest, request: Request, member: SignedIn = Depends(StaffMember(DETERMINE_FEES))) -> FeeInquiryView:
        context = request.app.state.context
        found = await fee_inquiry.inquire(context, body.fiscal_year, member.user_id, context.settings.fee_inquiry_timeout_seconds)
        summary = " ".join(f"{s.source}:asked={s.asked},recorded={s.recorded},matched={s.matched}" for s in found.sources)
        audit_person(request, None, f"{FEE_INQUIRY_OP} fiscal_year={body.fiscal_year} {summary}")
        return FeeInquiryView(fiscal_year=found.fiscal_year, people=found.people, sources=[vars(s) for s in found.sources])

    @api.post(
        "/subjects/{number}/certificates",
        dependencies=[Depends(Audited(CERTIFY_OP, person_param="number"))],
        response_class=Response,
        responses={201: {"content": {"application/pdf": {}}}},
        status_code=201,
        summary="Issue a certificate of vaccination (接種済証) as PDF",
    )
    def certify(number: IntegratedAddressNumber, body: CertificateRequest, request: Request, member: SignedIn = Depends(StaffMember(CERTIFY))) -> Response:
        city = request.app.state.context.settings.city
        with db(request).session() as session:
            subject = register.find_subject(session, number)
            certificate, pdf = certificates.issue(session, city, subject, body.dose_ids, body.record_types, member.user_id, date.today())
            headers = {"Certificate-Number": certificate.certificate_number,
                       "Content-Disposition": f'attachment; filename="{certificate.certificate_number}.pdf"'}
        return Response(pdf, status_code=201, media_type="application/pdf", headers=headers)

    @api.post("/reminders/runs", dependencies=[Depends(Audited(REMIND_OP))], status_code=201, response_model=ReminderRunView,
              summary="Run the reminder batch for a period (勧奨通知)")
    def run_reminders(body: ReminderRunRequest, request: Request, member: SignedIn = Depends(StaffMember(REMIND))) -> ReminderRunView:
        context = request.app.state.context
        summary = reminders.run_batch(
            context.db, context.settings.city, period_start=body.period_start, period_end=body.period_end,
            as_of=body.as_of or date.today(), output=Path(context.settings.data_dir) / "reminders" / context.settings.city,
            started_by=member.user_id,
        )
        with context.db.session() as session:
            return ReminderRunView.model_validate(session.get(ReminderRun, summary.run_id), from_attributes=True)

    @api.get("/reminders/runs", response_model=list[ReminderRunView], summary="The reminder runs, newest first")
    def list_runs(request: Request, member: SignedIn = Depends(StaffMember(REMIND))) -> list[ReminderRunView]:
        with db(request).session() as session:
            runs = session.scalars(select(ReminderRun).order_by(ReminderRun.id.desc()).limit(100))
            return [ReminderRunView.model_validate(r, from_attributes=True) for r in runs]

    @api.get("/clinics", response_model=list[ClinicView], summary="The clinic master")
    def list_clinics(request: Request, member: SignedIn = Depends(StaffMember(READ))) -> list[ClinicView]:
        with db(request).session() as session:
            return [ClinicView.model_validate(c, from_attributes=True) for c in clinics.clinics(session)]

    @api.put("/clinics/{code}", dependencies=[Depends(Audited(CLINICS_OP))], response_model=ClinicView, summary="Add or change a clinic")
    def put_clinic(code: str, body: ClinicRequest, request: Request, member: SignedIn = Depends(StaffMember(CLINICS))) -> ClinicView:
        with db(request).session() as session:
            clinic, _ = clinics.put_clinic(session, code, body.name, body.in_city, body.active)
            return ClinicView.model_validate(clinic, from_attributes=True)

    @api.get("/fees", dependencies=[Depends(Audited(FEES_OP))], response_model=FeesReply, summary="Commission fees per clinic for a month")
    def commission_fees(
        request: Request,
        billing_month: Annotated[str, Query(pattern=r"^[0-9]{4}-(0[1-9]|1[0-2])$")],
        member: SignedIn = Depends(StaffMember(FEES)),
    ) -> FeesReply:
        with db(request).session() as session:
            lines = [FeeLine(**vars(t)) for t in clinics.fee_totals(session, billing_month)]
        return FeesReply(billing_month=billing_month, clinics=lines, total_yen=sum(line.fee_yen for line in lines))

    @api.get("/statistics/doses", dependencies=[Depends(Audited(STATISTICS_OP))], summary="Doses per type and age band (counts only)")
    def dose_statistics(
        request: Request, fiscal_year: Annotated[int, Query(ge=1990, le=2100)], member: SignedIn = Depends(StaffMember(STATISTICS))
    ) -> dict:
        min_cell = request.app.state.context.settings.statistics_min_cell
        with db(request).session() as session:
            table = statistics.doses_by_type_and_age(session, fiscal_year, min_cell)
        return {"fiscal_year": fiscal_year, **table.to_dict()}

    @api.get("/exports/doses.csv", dependencies=[Depends(Audited(EXPORT_OP))], summary="Export a month's records (supervisors)")
    def export(
        request: Request,
        billing_month: Annotated[str, Query(pattern=r"^[0-9]{4}-(0[1-9]|1[0-2])$")],
        member: SignedIn = Depends(StaffMember(EXPORT)),
    ) -> Response:
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\r\n")
        writer.writerow(["統合宛名番号", "予防接種の種類", "接種日", "診察区分", "医療機関コード", "委託料", "記録項目"])
        with db(request).session() as session:
            rows = session.scalars(select(Dose).where(Dose.billing_month == billing_month).order_by(Dose.id))
            count = 0
            for dose in rows:
                count += 1
                writer.writerow(
                    [dose.subject_number, dose.record_type, dose.dose_date.isoformat(), dose.examination_type,
                     dose.clinic_code or "", dose.commission_fee_yen or "", json.dumps(dose.items, ensure_ascii=False, sort_keys=True)]
                )
        audit_person(request, None, f"{EXPORT_OP} billing_month={billing_month} rows={count}")  # what left, in the log (M10)
        return Response(out.getvalue(), media_type="text/csv; charset=utf-8",
                        headers={"Content-Disposition": f'attachment; filename="doses-{billing_month}.csv"'})

    return api

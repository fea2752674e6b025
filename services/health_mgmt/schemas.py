"""HTTP models of the staff terminal (窓口) API; unknown fields are refused (M04)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from shared.contracts.address import PersonItems
from shared.contracts.types import MyNumber


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CardProof(Strict):
    """本人確認 by the My Number card, checked at the Juki-net CS terminal: the check's id."""

    method: Literal["my_number_card"]
    card_check_id: int = Field(ge=1)


class DocumentProof(Strict):
    """本人確認 by the notice card (通知カード) and a photo ID, seen by the staff member."""

    method: Literal["notice_card_and_photo_id"]
    photo_id: str = Field(min_length=1, max_length=60, description="which photo ID was shown, e.g. 運転免許証")


IdentityProof = Annotated[CardProof | DocumentProof, Field(discriminator="method")]


class EnrolRequest(Strict):
    """Enrol a person by My Number and the four items as they present them (their card, or the
    notice card and an ID): the items must match the address system's record of that My Number
    (M03). They are kept only for a person not on the resident register (住登外)."""

    my_number: MyNumber
    items: PersonItems
    identity: IdentityProof  # how the person proved who they are before anything is taken in (M01)
    heart_kidney_respiratory_disability: bool = False
    hiv_immune_disability: bool = False
    hbv_perinatal_prophylaxis: bool = False


class SubjectView(BaseModel):
    integrated_address_number: str
    resident_code: str | None
    voucher_number: str
    name: str
    name_kana: str
    sex: str
    birth_date: date
    address: str
    status: str
    heart_kidney_respiratory_disability: bool
    hiv_immune_disability: bool
    hbv_perinatal_prophylaxis: bool


class EnrolReply(BaseModel):
    subject: SubjectView
    enrolled: bool  # false: the person was already in the register


class DoseRequest(Strict):
    """A record of one dose, as the catalogue defines the type's items (別添2)."""

    record_type: str = Field(min_length=1, max_length=32)
    items: dict[str, Any]


class CorrectionRequest(Strict):
    """The corrected items of a recorded dose (the whole record, as the catalogue defines it)."""

    items: dict[str, Any]


class CopyBacklogView(BaseModel):
    """The copy for provision (副本): people waiting to be sent, and how sending goes."""

    pending: int
    sent: int
    oldest_pending_at: datetime | None
    last_error: str | None
    failures: int
    job_error: str | None


class ReconciliationView(BaseModel):
    """The copy compared with the register: counts only, never a person."""

    in_register: int
    in_copy: int
    missing: int
    differing: int
    extra: int
    queued: int


class Verdict(BaseModel):
    """What the routine schedule says of a dose."""

    series: str | None
    valid: bool
    voluntary: bool
    target: str | None
    reasons: list[dict[str, str]]


class DoseView(BaseModel):
    id: int
    record_type: str
    record_type_ja: str
    dose_date: date
    examination_type: str
    source: str
    clinic_code: str | None
    items: dict[str, Any]
    verdict: Verdict | None = None


class ForecastView(BaseModel):
    series: str
    name_ja: str
    status: str
    valid_doses: int
    next_dose: str | None
    earliest: date | None
    recommended: date | None
    latest: date | None


class RecordView(BaseModel):
    subject: SubjectView
    doses: list[DoseView]
    forecasts: list[ForecastView]
    as_of: date


class ClinicRequest(Strict):
    name: str = Field(min_length=1, max_length=60)
    in_city: bool = True
    active: bool = True


class ClinicView(BaseModel):
    code: str
    name: str
    in_city: bool
    active: bool


class FeeLine(BaseModel):
    clinic_code: str
    clinic_name: str
    billing_month: str
    records: int
    fee_yen: int


class FeesReply(BaseModel):
    billing_month: str
    clinics: list[FeeLine]
    total_yen: int


class CertificateRequest(Strict):
    """Which records the certificate shows: given ids, or every given dose of the types named."""

    dose_ids: list[int] = Field(default_factory=list, max_length=100)
    record_types: list[str] = Field(default_factory=list, max_length=30)

    @model_validator(mode="after")
    def _something(self) -> CertificateRequest:
        if not self.dose_ids and not self.record_types:
            raise ValueError("name the doses (dose_ids) or the vaccine types (record_types) to certify")
        return self


class ReminderRunRequest(Strict):
    period_start: date
    period_end: date
    as_of: date | None = None

    @model_validator(mode="after")
    def _ordered(self) -> ReminderRunRequest:
        if self.period_end < self.period_start:
            raise ValueError("period_end is before period_start")
        if (self.period_end - self.period_start).days > 366:
            raise ValueError("a reminder period is at most a year")
        return self


class ReminderRunView(BaseModel):
    id: int
    period_start: date
    period_end: date
    as_of: date
    people_evaluated: int
    notices: int
    items: int
    already_sent: int
    started_by: str
    started_at: datetime
    finished_at: datetime | None


class FeeInquiryRequest(BaseModel):
    """Ask the tax and welfare systems about everyone on the register for a fiscal year (実費徴収)."""

    model_config = ConfigDict(extra="forbid")

    fiscal_year: int = Field(ge=1990, le=2100)


class FeeInquirySource(BaseModel):
    source: str  # tax (住民税) | welfare (生活保護)
    asked: int
    recorded: int  # answers that differed from the newest one before, kept in income_matches
    matched: int
    unchanged: int
    set_aside: dict[str, int]  # outcome → how many of the recorded answers
    determined: int


class FeeInquiryView(BaseModel):
    fiscal_year: int
    people: int
    sources: list[FeeInquirySource]
